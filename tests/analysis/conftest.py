"""One simulated animal's four short days, analysed once (session-scoped: tests only read)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rig.cli import main

DATA = Path(__file__).resolve().parent.parent / "data"
DAYS = ("habituation", "conditioning", "recall", "extinction")
SHUFFLES = 20  # the CLI's default: the null's pooled thresholds settle by 20 (docs/analysis.md)


def run_day(folder: Path, protocol: Path, rig: Path, animal: str) -> Path:
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(protocol),
            "--fast",
            "--rig",
            str(rig),
            "--out",
            str(folder),
            "--animal",
            animal,
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def four_days(tmp_path_factory) -> list[Path]:
    """Habituation, conditioning, recall, extinction of animal m1 (tests/data/analysis)."""
    out = tmp_path_factory.mktemp("four-days")
    rig = DATA / "analysis" / "rig.yaml"
    return [run_day(out, DATA / "analysis" / f"{d}.yaml", rig, "m1") for d in DAYS]


@pytest.fixture(scope="session")
def analysed(four_days, tmp_path_factory) -> Path:
    """``rig analyze`` of the four days on the truth footprints (given in shuffled order)."""
    out = tmp_path_factory.mktemp("analysis")
    args = ["analyze", *map(str, [four_days[2], four_days[0], four_days[3], four_days[1]])]
    args += ["--out", str(out), "--traces", "footprints", "--shuffles", str(SHUFFLES)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def summary(analysed) -> dict:
    return json.loads((analysed / "summary.json").read_text())


@pytest.fixture(scope="session")
def fixture_days(tmp_path_factory) -> list[Path]:
    """The four two-minute days the committed suite2p fixture was extracted from, simulated
    again (the simulation is deterministic: same animal, protocols, seeds)."""
    out = tmp_path_factory.mktemp("suite2p-days")
    rig = DATA / "suite2p" / "rig.yaml"
    folders = [run_day(out, DATA / "suite2p" / f"{d}.yaml", rig, "fixture-mouse") for d in DAYS]
    for folder, day in zip(folders, DAYS, strict=True):
        stored = np.load(DATA / "suite2p" / day / "truth.npz")
        import zarr

        truth = zarr.open_group(str(folder / "session.zarr"), mode="r")["truth"]
        assert np.array_equal(truth["neurons_footprints"][:], stored["footprints"]), (
            "the simulator changed: remake the fixture (tests/data/suite2p/README.md)"
        )
    return folders
