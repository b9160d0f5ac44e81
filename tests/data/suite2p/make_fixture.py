"""Remake the suite2p fixture: four two-minute days of one simulated animal, extracted by a
real suite2p run (``rig extract``), as tests/data/suite2p/README.md says.

    pip install -e '.[suite2p]'
    python tests/data/suite2p/make_fixture.py            # writes tests/data/suite2p/<day>/

Keeps suite2p's ``stat.npy``, ``F.npy``, ``Fneu.npy`` and ``iscell.npy`` as suite2p wrote them,
``ops.npy`` cut to the keys the analysis and a reader need (the full one holds MBs of
registration diagnostics), and the simulator's truth of each day in ``truth.npz``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DAYS = ("habituation", "conditioning", "recall", "extinction")
ANIMAL = "fixture-mouse"
DIAMETER_PX = 5
OPS_KEYS = (
    "meanImg",
    "refImg",
    "Ly",
    "Lx",
    "fs",
    "nframes",
    "tau",
    "diameter",
    "version",
    "date_proc",
)


def run_day(day: str, out: Path) -> Path:
    cmd = [
        sys.executable, "-m", "rig.cli", "run", str(HERE / f"{day}.yaml"), "--fast",
        "--rig", str(HERE / "rig.yaml"), "--animal", ANIMAL, "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return Path(done.stdout.strip().splitlines()[-1])


def keep(session: Path, plane: Path, target: Path) -> None:
    import zarr

    target.mkdir(parents=True, exist_ok=True)
    for name in ("stat.npy", "F.npy", "Fneu.npy", "iscell.npy"):
        shutil.copy2(plane / name, target / name)
    ops = np.load(plane / "ops.npy", allow_pickle=True).item()
    np.save(target / "ops.npy", {k: ops[k] for k in OPS_KEYS if k in ops}, allow_pickle=True)
    truth = zarr.open_group(str(session / "session.zarr"), mode="r")["truth"]
    np.savez_compressed(
        target.parent / "truth.npz",
        **{k: truth[f"neurons_{k}"][:] for k in ("footprints", "centers_px", "fov_offset_px")},
        frames=np.array(truth["neurons_frame_times_s"].shape[0]),
    )


def main() -> None:
    from rig.analysis.extract import extract_session

    with tempfile.TemporaryDirectory(prefix="suite2p-fixture-") as tmp:
        for day in DAYS:
            session = run_day(day, Path(tmp))
            plane = extract_session(session, diameter_px=DIAMETER_PX)
            keep(session, plane, HERE / day / "plane0")
            print(f"{day}: {session.name} -> {HERE / day}")


if __name__ == "__main__":
    main()
