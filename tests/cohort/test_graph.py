"""Task keys: a hash of inputs and settings, so what changes a result changes its key, and
nothing else does (a cohort folder moved elsewhere keeps its finished work)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rig.cohort.graph import ANALYZE, EXPORT, SCORE, Settings, plan_tasks
from rig.cohort.sessions import Cohort, CohortSession


def session(animal: str, day: int, stage: str, fingerprint: str = "f") -> CohortSession:
    return CohortSession(
        path=Path(f"/data/{animal}/{animal}_{stage}"),
        animal=animal,
        day=day,
        stage=stage,
        protocol=stage,
        started_utc=f"2026-01-0{day}T00:00:00Z",
        status="complete",
        imaging=True,
        fingerprint=f"{fingerprint}-{animal}-{day}",
    )


COHORT = Cohort(
    Path("/data"),
    tuple(session(a, d, s) for a in ("m1", "m2") for d, s in ((1, "conditioning"), (2, "recall"))),
)
SETTINGS = Settings(traces="footprints")


def keys(cohort: Cohort = COHORT, settings: Settings = SETTINGS, out: str = "/out") -> dict:
    tasks = plan_tasks(cohort, settings, Path(out), Path(out) / "tasks")
    return {(t.kind, t.spec.subject): t.key for t in tasks}


def test_every_session_scored_and_every_animal_analysed_after_its_scores():
    tasks = plan_tasks(COHORT, SETTINGS, Path("/out"), Path("/out/tasks"))
    assert [t.kind for t in tasks].count(SCORE) == 4
    analyses = [t for t in tasks if t.kind == ANALYZE]
    assert [t.spec.subject for t in analyses] == ["m1", "m2"]
    scores = {t.spec.sessions[0]: t.key for t in tasks if t.kind == SCORE}
    for t in analyses:
        assert set(t.deps) == {scores[s] for s in t.spec.sessions}


def test_keys_follow_inputs_and_settings_not_paths():
    base = keys()
    assert keys(out="/elsewhere") == base
    assert keys(Cohort(Path("/moved"), COHORT.sessions)) == base
    reseeded = keys(settings=replace(SETTINGS, seed=1))
    assert {k: reseeded[k] for k in base if k[0] == SCORE} == {
        k: v for k, v in base.items() if k[0] == SCORE
    }
    assert all(reseeded[k] != base[k] for k in base if k[0] == ANALYZE)


def test_a_changed_session_changes_its_score_and_its_animals_analysis_only():
    changed = tuple(
        replace(s, fingerprint="recovered") if (s.animal, s.day) == ("m1", 2) else s
        for s in COHORT.sessions
    )
    after = keys(Cohort(COHORT.root, changed))
    differ = {k for k in after if after[k] != keys()[k]}
    assert differ == {(SCORE, "m1_recall"), (ANALYZE, "m1")}


def test_exports_come_after_the_scoring_and_nwb_after_the_analysis():
    tasks = plan_tasks(COHORT, replace(SETTINGS, exports=("nwb",)), Path("/o"), Path("/o/t"))
    by_key = {t.key: t for t in tasks}
    for t in (t for t in tasks if t.kind == EXPORT):
        assert sorted(by_key[d].kind for d in t.deps) == [ANALYZE, SCORE]
