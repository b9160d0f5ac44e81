"""A small simulated cohort (three animals, the conditioning and recall days, shortened
protocols, small frames), made once, and its reference run of ``rig cohort`` on one worker."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rig.cli import main
from sim.cohort import PRESETS, shortened_protocols, simulate_cohort
from tests.conftest import SMALL_RIG

ANIMALS = 3  # the group statistics need three
DAYS = ("conditioning", "recall")
ANALYSIS = ("--traces", "footprints", "--shuffles", "2")
RIG = (sys.executable, "-c", "from rig.cli import main; main()")  # `rig` in a process of its own
TABLES = ("sessions.csv", "trials.csv", "freezing.csv", "network.csv", "statistics.csv")


def rig_cohort(*args: object) -> tuple[int, str, str]:
    """``rig cohort ARGS`` in this process: exit code, stdout, stderr."""
    result = CliRunner().invoke(main, ["cohort", *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def tables(out: Path) -> dict[str, str]:
    return {name: (out / name).read_text() for name in TABLES}


@pytest.fixture(scope="session")
def cohort_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cohort")
    protocols = shortened_protocols(root / "protocols", PRESETS["tiny"])
    simulate_cohort(ANIMALS, root / "sessions", SMALL_RIG, protocols, jobs=2, days=DAYS)
    return root / "sessions"


@pytest.fixture(scope="session")
def serial_run(cohort_dir, tmp_path_factory) -> Path:
    """``rig cohort --workers 1``: the reference every other run is compared with."""
    out = tmp_path_factory.mktemp("serial")
    code, stdout, stderr = rig_cohort(cohort_dir, "--out", out, "--workers", 1, *ANALYSIS, "--json")
    assert code == 0, stdout + stderr
    assert json.loads(stdout)["tasks"]["analyze"]["ran"] == ANIMALS
    return out
