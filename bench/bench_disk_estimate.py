"""How close is the disk estimate (`rig plan`, `rig selftest`) to what a session writes?

Runs one protocol (default: the demo's 95 s, 30 Hz video and imaging) with ``--fast`` on each
shipped simulated rig, sums the bytes of every file the session folder holds, and compares
the estimate of `rig plan` (sample frames of the rig compressed as the session stores them)
with the fixed-ratio estimate it replaced (video 0.55, imaging 0.75 of the raw bytes). Prints a
table, writes bench/results/disk_estimate.json.

    python bench/bench_disk_estimate.py [--protocol protocols/demo.yaml]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RIGS = {"sim-small": ["--rig", str(ROOT / "docs" / "rigs" / "sim-small.yaml")], "sim (default)": []}
OLD_RATIO = {"video": 0.55, "imaging": 0.75}


def rig_cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "rig.cli", *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", default=str(ROOT / "protocols" / "demo.yaml"))
    args = parser.parse_args()
    rows = []
    for name, rig in RIGS.items():
        plan = json.loads(rig_cli("plan", args.protocol, *rig, "--json"))
        totals = plan["totals"]
        with tempfile.TemporaryDirectory() as out:
            folder = Path(rig_cli("run", args.protocol, *rig, "--fast", "--out", out).split()[-1])
            written = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            info = json.loads(rig_cli("info", str(folder), "--json"))
        from rig.files.rigfile import load_rig

        loaded = load_rig(rig[1] if rig else None)
        raw = {
            s: loaded.device(section).config.width * loaded.device(section).config.height * b
            for s, section, b in (("video", "camera", 1), ("imaging", "imaging", 2))
        }
        frames = {s: info["streams"][s]["written"] for s in ("video", "imaging")}
        old = sum(frames[s] * raw[s] * OLD_RATIO[s] for s in frames)
        rows.append(
            {
                "rig": name,
                "written_bytes": written,
                "estimate_bytes": totals["disk_estimate_bytes"],
                "estimate_error": totals["disk_estimate_bytes"] / written - 1,
                "fixed_ratio_estimate_bytes": old,
                "fixed_ratio_error": old / written - 1,
            }
        )
    print(f"{'rig':<15} {'written MB':>11} {'estimate MB':>12} {'error':>7} {'fixed-ratio':>12}")
    for r in rows:
        print(
            f"{r['rig']:<15} {r['written_bytes'] / 1e6:11.1f} {r['estimate_bytes'] / 1e6:12.1f} "
            f"{r['estimate_error']:+7.1%} {r['fixed_ratio_error']:+12.1%}"
        )
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "disk_estimate.json").write_text(
        json.dumps({"protocol": args.protocol, "rows": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
