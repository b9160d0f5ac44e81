"""A run killed mid-way (its worker first, then the run itself) resumes: the rerun does only
what was not finished, and its tables (on two workers) are those of an uninterrupted run on
one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.cohort.conftest import ANALYSIS, ANIMALS, DAYS, RIG, rig_cohort, tables
from tests.conftest import ROOT

DEADLINE_S = 180


def wait_for_started_analysis(out: Path, run: subprocess.Popen) -> Path:
    """The ``.started`` mark of the first analysis a worker began (the run still going)."""
    folder = out / "tasks" / "analyze"
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        started = sorted(folder.glob("*.started")) if folder.is_dir() else []
        if started:
            return started[0]
        assert run.poll() is None, "the run ended before any analysis started"
        time.sleep(0.05)
    raise AssertionError(f"no analysis started within {DEADLINE_S} s")


def test_a_killed_run_resumes_without_redoing_finished_work(cohort_dir, serial_run, tmp_path):
    out = tmp_path / "out"
    run = subprocess.Popen(
        [*RIG, "cohort", str(cohort_dir), "--out", str(out), "--workers", "1", *ANALYSIS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,  # its own process group: the cluster's processes die with it
    )
    try:
        mark = wait_for_started_analysis(out, run)
        worker = json.loads(mark.read_text())["pid"]
        os.kill(worker, signal.SIGKILL)  # the worker, mid-analysis
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # then the whole run
        run.wait()
    finished = {p: p.read_bytes() for p in (out / "tasks").glob("*/*.json")}
    interrupted = [
        p for p in (out / "tasks").glob("*/*.started") if not p.with_suffix(".json").exists()
    ]
    assert interrupted, "the kill came after every task had finished"
    assert len(finished) < ANIMALS * len(DAYS) + ANIMALS

    # the rest on the two workers of a local cluster: the tables of one worker's run
    code, stdout, stderr = rig_cohort(cohort_dir, "--out", out, "--workers", 2, *ANALYSIS, "--json")
    assert code == 0, stdout + stderr
    counts = json.loads(stdout)["tasks"]
    assert sum(c["cached"] for c in counts.values()) == len(finished)
    assert sum(c["ran"] for c in counts.values()) == ANIMALS * len(DAYS) + ANIMALS - len(finished)
    assert sum(c["resumed"] for c in counts.values()) == len(interrupted)
    for path, content in finished.items():
        assert path.read_bytes() == content, f"{path.name} was done again"
    assert not list((out / "tasks").glob("*/*.started"))
    assert tables(out) == tables(serial_run)
