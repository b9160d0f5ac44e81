"""The study's result on one simulated animal: habituation, conditioning, recall and
extinction (protocols/), then ``rig analyze`` on the truth footprints.

    python -m sim.analysis_demo --out analysis-demo          # or: make analysis-demo

Prints where the sessions and the analysis are, and the analysis's table; the figures are in
OUT/analysis (``analysis.png`` is the README's).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAYS = ("habituation", "conditioning", "recall", "extinction")


def rig_command(*args: str) -> str:
    """Run ``rig ARGS`` as a user would; its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "rig.cli", *args], check=True, stdout=subprocess.PIPE, text=True
    )
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("analysis-demo"))
    parser.add_argument("--rig", type=Path, default=ROOT / "docs" / "rigs" / "sim-analysis.yaml")
    parser.add_argument("--animal", default="demo-mouse")
    parser.add_argument("--jobs", default="2")
    args = parser.parse_args()
    sessions = []
    for day in DAYS:
        print(f"running {day} ...", flush=True)
        out = rig_command(
            "run", str(ROOT / "protocols" / f"{day}.yaml"), "--fast", "--rig", str(args.rig),
            "--animal", args.animal, "--out", str(args.out / "sessions"),
        )  # fmt: skip
        sessions.append(out.strip().splitlines()[-1])
    print(rig_command(
        "analyze", *sessions, "--out", str(args.out / "analysis"), "--traces", "footprints",
        "--jobs", args.jobs,
    ))  # fmt: skip


if __name__ == "__main__":
    main()
