"""--fast is deterministic: the same protocol, rig file and seed give identical data."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import zarr

from rig.data.folder import SessionFolder
from tests.conftest import run_fast

ARRAYS = (
    "0/0",  # video
    "timing/video/timestamps_s",
    "1/0",  # imaging
    "timing/imaging/timestamps_s",
    "edges/frame_clock/samples",
    "edges/shock_gate/samples",
    "scores/motion/motion-1/motion_index",
    "truth/freezing",
    "truth/neurons_dff",
)


def _run(out: Path) -> Path:
    return run_fast("demo", out, "twin")


def test_fast_runs_are_identical(tmp_path):
    a, b = _run(tmp_path / "a"), _run(tmp_path / "b")
    ra = zarr.open_group(str(a / "session.zarr"), mode="r")
    rb = zarr.open_group(str(b / "session.zarr"), mode="r")
    for name in ARRAYS:
        np.testing.assert_array_equal(ra[name][:], rb[name][:], err_msg=name)
    assert _events(a) == _events(b)


def _events(folder: Path) -> list[dict]:
    """The session's events; the shock generator emulator's pseudo-terminal is whichever the OS
    hands out (another process may hold the one the first run had), not part of the data."""
    return [
        {**e, "detail": re.sub(r"/dev/pts/\d+", "/dev/pts/N", e.get("detail") or "")}
        for e in SessionFolder.open(folder).events()
    ]
