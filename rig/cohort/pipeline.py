"""``rig cohort``: find a cohort's sessions, run what they still need on a cluster, and write
the cohort's tables, statistics and figures.

Output folder layout (``--out``, default ``DIR/cohort``)::

    sessions.csv trials.csv freezing.csv network.csv   the tables (rig.cohort.tables)
    statistics.csv                                      one row per contrast (rig.cohort.stats)
    cohort.json                                         settings, tasks, models, failures
    freezing.png network.png                            the figures (rig.cohort.plots)
    animals/ANIMAL/                                     each animal's `rig analyze` outputs
    tasks/KIND/KEY.json                                 finished tasks (rig.cohort.cache)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rig.cohort.cache import ResultCache
from rig.cohort.execute import Outcome, TaskEvents, cached_results, dask_client, run_graph
from rig.cohort.graph import KINDS, Settings, Task, plan_tasks
from rig.cohort.sessions import Cohort, find_cohort
from rig.cohort.stats import GroupModel, freezing_model, network_models
from rig.cohort.tables import CohortTables, Table, build_tables, write_table
from rig.data.atomic import write_json_atomic
from rig.files.inputfile import InputError, Problem

TASKS_FOLDER = "tasks"
STAT_COLUMNS = (
    "outcome",
    "contrast",
    "estimate",
    "se",
    "z",
    "p",
    "p_holm",
    "ci_low",
    "ci_high",
    "d",
    "d_low",
    "d_high",
    "animals",
    "observations",
)


@dataclass
class CohortRun:
    """What one ``rig cohort`` run found, did and wrote."""

    cohort: Cohort
    settings: Settings
    tasks: list[Task]
    outcome: Outcome
    tables: CohortTables
    models: list[GroupModel]
    out: Path
    files: list[Path]

    @property
    def stages(self) -> list[str]:
        return self.cohort.stages

    def summary(self) -> dict[str, Any]:
        """``cohort.json``: what ran (``resumed``: left unfinished by a killed run, done now),
        what failed, the models (no times)."""
        by_key = {t.key: t for t in self.tasks}
        o = self.outcome
        return {
            "cohort": str(self.cohort.root),
            "animals": sorted(self.cohort.animals),
            "sessions": len(self.cohort.sessions),
            "stages": self.stages,
            "still_running": [str(p) for p in self.cohort.still_running],
            "settings": asdict(self.settings),
            "tasks": {
                kind: {
                    "total": sum(t.kind == kind for t in self.tasks),
                    "cached": sum(by_key[k].kind == kind for k in o.cached),
                    "ran": sum(by_key[k].kind == kind for k in o.ran),
                    "resumed": sum(by_key[k].kind == kind for k in o.resumed),
                    "failed": sum(by_key[k].kind == kind for k in o.failed),
                    "not_run": sum(by_key[k].kind == kind for k in o.not_run),
                }
                for kind in KINDS
                if any(t.kind == kind for t in self.tasks)
            },
            "failed": [
                {"task": by_key[k].spec.label, "why": why}
                for k, why in sorted(o.failed.items(), key=lambda kv: by_key[kv[0]].spec.label)
            ],
            "not_run": [
                {"task": by_key[k].spec.label, "why": why}
                for k, why in sorted(o.not_run.items(), key=lambda kv: by_key[kv[0]].spec.label)
            ],
            "statistics": [m.as_dict() for m in self.models],
            "files": [p.name for p in self.files],
        }


def run_cohort(
    root: Path,
    out: Path | None,
    settings: Settings,
    cluster: str | None = None,
    workers: int = 1,
    events: TaskEvents | None = None,
) -> CohortRun:
    """Find the cohort under ``root``, run its tasks, write its outputs into ``out``."""
    cohort = find_cohort(root)
    out = out if out is not None else root / "cohort"
    if out.exists() and not out.is_dir():
        raise InputError(str(out), [Problem("", "--out must be a folder")])
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    cache = ResultCache(out / TASKS_FOLDER)
    tasks = plan_tasks(cohort, settings, out, cache.folder)
    display = events or TaskEvents()
    display.start(tasks)
    for path in cohort.still_running:
        display.say(f"skipped {path}: still being written")
    with display:
        outcome, waiting = cached_results(tasks, cache, display)
        if waiting:  # no cluster is started, or reached, when everything is done already
            with dask_client(cluster, workers) as client:
                run_graph(client, tasks, waiting, outcome, display)
    return conclude(cohort, settings, tasks, outcome, out)


def conclude(
    cohort: Cohort, settings: Settings, tasks: list[Task], outcome: Outcome, out: Path
) -> CohortRun:
    """The tables, models and figures from what the tasks gave, written into ``out``."""
    tables = build_tables(cohort, tasks, outcome.entries)
    models = [
        freezing_model(tables.freezing, cohort.stages),
        *network_models(tables.network, cohort.stages),
    ]
    run = CohortRun(cohort, settings, tasks, outcome, tables, models, out, [])
    run.files = write_outputs(run)
    return run


def statistics_table(models: list[GroupModel]) -> Table:
    rows = [
        {
            "outcome": m.outcome,
            "contrast": c.name,
            **asdict(c),
            "animals": m.animals,
            "observations": m.observations,
        }
        for m in models
        for c in m.contrasts
    ]
    return Table("statistics.csv", STAT_COLUMNS, rows)


def write_outputs(run: CohortRun) -> list[Path]:
    """The tables, ``statistics.csv``, ``cohort.json`` and the figures, into ``run.out``."""
    from rig.cohort.plots import freezing_figure, network_figure

    out = run.out
    files = [write_table(t, out) for t in [*run.tables.all(), statistics_table(run.models)]]
    files.append(
        freezing_figure(run.tables.freezing, run.models[0], run.stages, out / "freezing.png")
    )
    files.append(
        network_figure(run.tables.network, run.models[1:], run.stages, out / "network.png")
    )
    files.append(out / "cohort.json")
    run.files = files
    write_json_atomic(out / "cohort.json", run.summary())
    return files
