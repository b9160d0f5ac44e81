"""``rig cohort`` on a small simulated cohort: the tables, statistics and figures; the same
results on one worker and on two of a scheduler given by address (test_resume: on the two
workers of its own local cluster); a failed session reported while the others finish."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sim.cohort import cs_freezing
from tests.cohort.conftest import ANALYSIS, ANIMALS, DAYS, RIG, rig_cohort, tables
from tests.conftest import ROOT

SESSIONS = ANIMALS * len(DAYS)


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_tables_statistics_and_figures(serial_run, cohort_dir):
    sessions = rows(serial_run / "sessions.csv")
    assert len(sessions) == SESSIONS
    assert {r["animal"] for r in sessions} == {"mouse-01", "mouse-02", "mouse-03"}
    assert {(r["day"], r["stage"]) for r in sessions} == {
        ("1", "differential-conditioning"),
        ("2", "recall"),
    }
    # the cohort's freezing is what the session's own scoring says, per CS role
    freezing = rows(serial_run / "freezing.csv")
    assert len(freezing) == 2 * SESSIONS
    for r in freezing:
        scored = cs_freezing(cohort_dir / r["animal"] / r["session"])[r["role"]]["scored"]
        assert float(r["cs_percent"]) == pytest.approx(scored, abs=2.0), r
    network = rows(serial_run / "network.csv")
    assert len(network) == SESSIONS
    assert all(int(r["neurons"]) > 0 and int(r["edges"]) > 0 for r in network)
    usr = [int(r["usr"]) for r in network if r["stage"] == "differential-conditioning"]
    assert all(n > 0 for n in usr)  # the shock-responsive neurons of the conditioning day

    summary = json.loads((serial_run / "cohort.json").read_text())
    freezing_model = summary["statistics"][0]
    assert "MixedLM" in freezing_model["test"] and "random intercept" in freezing_model["test"]
    assert freezing_model["animals"] == ANIMALS
    assert freezing_model["observations"] == 2 * SESSIONS
    names = [c["name"] for c in freezing_model["contrasts"]]
    assert names == [
        "CS+ vs CS- at differential-conditioning",
        "CS+ vs CS- at recall",
        "CS+ recall vs differential-conditioning",
    ]
    stats = rows(serial_run / "statistics.csv")
    assert {r["contrast"] for r in stats} >= set(names)
    for r in stats:
        assert 0 <= float(r["p"]) <= float(r["p_holm"]) <= 1
        assert float(r["ci_low"]) <= float(r["estimate"]) <= float(r["ci_high"])
        assert float(r["d_low"]) <= float(r["d"]) <= float(r["d_high"])
    for figure in ("freezing.png", "network.png"):
        assert (serial_run / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for animal in ("mouse-01", "mouse-02", "mouse-03"):
        assert (serial_run / "animals" / animal / "summary.json").is_file()


def test_report_names_the_test_and_effect_sizes(serial_run, cohort_dir):
    code, stdout, _ = rig_cohort(cohort_dir, "--out", serial_run, *ANALYSIS)
    assert code == 0
    assert f"tasks: {SESSIONS + ANIMALS} (0 run, {SESSIONS + ANIMALS} cached)" in stdout
    assert "linear mixed-effects model" in stdout and "Holm" in stdout
    assert "CS+ vs CS- at recall" in stdout and "d [95% CI]" in stdout


def test_a_scheduler_given_by_address(serial_run, cohort_dir, tmp_path):
    """A 2-worker LocalCluster started here, given by address: the tables of one worker."""
    from distributed import Client

    from rig.cohort.execute import local_cluster

    with local_cluster(2) as cluster, Client(cluster) as client:
        workers = set(client.run(os.getpid).values())
        code, stdout, stderr = rig_cohort(
            cohort_dir, "--out", tmp_path, "--cluster", cluster.scheduler_address, *ANALYSIS
        )
    assert code == 0, stdout + stderr
    assert tables(tmp_path) == tables(serial_run)
    assert _statistics(tmp_path) == _statistics(serial_run)
    ran_on = {json.loads(p.read_text())["pid"] for p in (tmp_path / "tasks").glob("*/*.json")}
    assert ran_on and ran_on <= workers  # the scheduler's workers did the work


def test_a_failed_session_is_named_and_the_others_finish(cohort_dir, tmp_path):
    copy = tmp_path / "sessions"
    shutil.copytree(cohort_dir, copy, symlinks=True)
    broken = sorted((copy / "mouse-02").iterdir())[0]
    (broken / "session.zarr" / "scores" / "zarr.json").write_text("{not json")
    out = tmp_path / "out"
    # a process of its own: its stderr is the workers' too
    args = ["cohort", copy, "--out", out, "--workers", 1, "--no-analysis", "--export", "csv"]
    run = subprocess.run(
        [*RIG, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    stdout, stderr = run.stdout, run.stderr
    assert run.returncode == 1, stdout + stderr
    assert f"FAILED score {broken.name}" in stderr
    assert (
        f"NOT RUN export {broken.name}: needs score {broken.name}, which did not finish" in stderr
    )
    assert f"score {broken.name}: FAILED:" in stdout
    assert "Traceback" not in stderr and "distributed.worker" not in stderr  # said once, by us
    assert len(rows(out / "sessions.csv")) == SESSIONS - 1
    assert broken.name not in (out / "sessions.csv").read_text()
    summary = json.loads((out / "cohort.json").read_text())
    assert summary["tasks"]["score"] == {
        "total": SESSIONS,
        "cached": 0,
        "ran": SESSIONS - 1,
        "resumed": 0,
        "failed": 1,
        "not_run": 0,
    }
    assert summary["tasks"]["export"] == {
        "total": SESSIONS,
        "cached": 0,
        "ran": SESSIONS - 1,
        "resumed": 0,
        "failed": 0,
        "not_run": 1,
    }
    exported = {p.parent.parent.name for p in copy.glob("*/*/export/trials.csv")}
    assert len(exported) == SESSIONS - 1 and broken.name not in exported


def test_a_folder_without_sessions_is_bad_input(tmp_path):
    code, stdout, stderr = rig_cohort(tmp_path, "--workers", 1)
    assert code == 2
    assert stderr.strip() == f"{tmp_path}: no sessions here (a cohort folder holds session folders)"
    assert stdout == ""


def _statistics(out: Path) -> list[dict]:
    return json.loads((out / "cohort.json").read_text())["statistics"]
