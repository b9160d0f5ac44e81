"""How much faster than real time does ``--fast`` run the 30-minute conditioning session?

Runs protocols/conditioning.yaml on the simulated rig with ``--fast`` at the realistic default
sizes (640x480 video at 30 fps + 512x512 imaging at 30 Hz) and at the small sizes the tests use
(160x120 + 64x64), and reports session seconds per wall second (a ratio, so the machine's
speed cancels out as far as it can). The realistic run is cut after ``--realistic-minutes``
of session time by default, because the whole session writes tens of GB; the ratio is per
session second either way. Also reports the CPU seconds the process spent (all threads), less
sensitive to the machine's load than the wall time. Prints a table and writes
bench/results/fast_session.json.

    python bench/bench_fast_session.py [--realistic-minutes 5] [--small-minutes 30]
                                       [--rigs realistic,small]

Side by side with other code (e.g. main's), run it in turns with ``PYTHONPATH=OTHER_CHECKOUT``
(this script then runs that checkout's ``rig`` and ``sim``).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

from rig.files.protocol import load_protocol
from rig.files.rigfile import DEFAULT_SIM_RIG, rig_from_text
from rig.run.session import plan_from_loaded, run_session

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"realistic": 5.0, "small": 30.0}


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(name: str, rig_text: str, minutes: float) -> dict:
    loaded = load_protocol(ROOT / "protocols" / "conditioning.yaml")
    plan = plan_from_loaded(loaded, rig_from_text(rig_text, name))
    limit = min(minutes * 60, plan.timeline.duration_s)
    out = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    reached = {"t": 0.0}

    def on_runner(runner) -> None:
        def watch(p) -> None:
            reached["t"] = p.t_s
            if p.t_s >= limit and p.t_s < plan.timeline.duration_s:
                runner.abort("benchmark limit")

        runner.signals.progress.connect(watch)

    cpu0 = _cpu_s()
    start = time.perf_counter()
    folder, result = run_session(plan, out, "bench", None, on_runner)
    wall = time.perf_counter() - start
    cpu = _cpu_s() - cpu0
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    shutil.rmtree(out, ignore_errors=True)
    session_s = result.duration_s
    video = result.accounting["video"]
    return {
        "rig": name,
        "session_s": session_s,
        "wall_s": wall,
        "speedup": session_s / wall,
        "cpu_s": cpu,
        "target": TARGETS[name],
        "frames_written": {k: v.written for k, v in result.accounting.items()},
        "frames_dropped": {k: v.dropped for k, v in result.accounting.items()},
        "video_complete": video.written == video.edges,
        "disk_mb": size / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--realistic-minutes", type=float, default=5.0)
    parser.add_argument("--small-minutes", type=float, default=31.0)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "bench" / "results" / "fast_session.json"
    )
    parser.add_argument("--rigs", default="realistic,small", help="which rigs, in order")
    args = parser.parse_args()
    rigs = {
        "realistic": (DEFAULT_SIM_RIG, args.realistic_minutes),
        "small": ((ROOT / "docs" / "rigs" / "sim-small.yaml").read_text(), args.small_minutes),
    }
    rows = [measure(name, *rigs[name]) for name in args.rigs.split(",")]
    print(
        f"{'rig':<10} {'session s':>10} {'wall s':>8} {'x real time':>12} {'target':>7} "
        f"{'CPU s':>7} {'dropped':>8} {'disk MB':>8}"
    )
    for r in rows:
        print(
            f"{r['rig']:<10} {r['session_s']:10.1f} {r['wall_s']:8.1f} {r['speedup']:12.1f} "
            f"{r['target']:7.0f} {r['cpu_s']:7.1f} {sum(r['frames_dropped'].values()):8d} "
            f"{r['disk_mb']:8.0f}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
