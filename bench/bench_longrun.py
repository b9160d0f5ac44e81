"""A long simulated session at realistic rates: is every frame accounted for, is memory flat?

Runs a session on the simulated rig through the whole pipeline (engine, Micro-Manager camera
driver, writers, journal, finalize): two-photon imaging at 30 Hz and behaviour video at
100 fps. Default sizes are realistic (512x512 uint16 + 640x480 uint8: about 46 MB/s) and the
session runs in real time for ``--duration`` seconds (default 600). ``--small`` uses the test
sizes (64x64 + 160x120) at the same rates; ``--fast`` runs as fast as the machine allows
(e.g. ``--small --fast --duration 7200``: two hours of session time).

Reports frames expected / written / dropped / unaccounted per stream (unaccounted: exposures
the DAQ recorded that are neither written nor counted as dropped; must be 0) and the resident
memory of the process over time (``/proc/self/status``), with its spread after warm-up.
Deletes the session afterwards. Writes ``bench/results/longrun[-small][-fast].json``.

    python bench/bench_longrun.py [--duration 600] [--small] [--fast]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rig.files.protocol import protocol_from_text
from rig.files.rigfile import DEFAULT_SIM_RIG, rig_from_text
from rig.run.session import plan_from_loaded, run_session

ROOT = Path(__file__).resolve().parent.parent
WARMUP_FRACTION = 0.1  # the first tenth of the run (at least 30 s of host time) is warm-up
RSS_FLAT_MB = 50.0


def protocol_text(duration_s: float) -> str:
    """Baseline, then CS+/CS- tone trials (no shocks) every 60 s until ``duration_s``."""
    n = max(0, int((duration_s - 40) // 60))
    repeats = {"cs_plus": (n + 1) // 2, "cs_minus": n // 2}
    trials = "[" + ", ".join(f"{{cs: {cs}, repeat: {k}}}" for cs, k in repeats.items() if k) + "]"
    phases = f"  - name: baseline\n    duration_s: {duration_s - 60 * n if n else duration_s}\n"
    if n:
        phases = (
            "  - name: baseline\n    duration_s: 30\n"
            f"  - name: tones\n    trials: {trials}\n    order: sequential\n"
            f"    iti_s: 30\n    post_s: {duration_s - 30 - 60 * n + 30}\n"
        )
    return f"""
protocol: longrun
version: 1
seed: 1
stimuli:
  cs_plus: {{type: tone, frequency_hz: 7500, level_db: 75, duration_s: 30}}
  cs_minus: {{type: tone, frequency_hz: 2000, level_db: 75, duration_s: 30}}
phases:
{phases}recording:
  video: {{fps: 100}}
  imaging: {{frame_rate_hz: 30}}
"""


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1e3
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="session seconds")
    parser.add_argument("--small", action="store_true", help="64x64 imaging, 160x120 video")
    parser.add_argument("--fast", action="store_true", help="as fast as the machine allows")
    parser.add_argument("--dir", type=Path, default=None, help="where the session is written")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    suffix = ("-small" if args.small else "") + ("-fast" if args.fast else "")
    out_json = args.json or ROOT / "bench" / "results" / f"longrun{suffix}.json"
    rig_text = (
        (ROOT / "docs" / "rigs" / "sim-small.yaml").read_text() if args.small else DEFAULT_SIM_RIG
    )
    loaded = protocol_from_text(protocol_text(args.duration), "<longrun>")
    plan = plan_from_loaded(loaded, rig_from_text(rig_text, "sim-small" if args.small else "sim"))
    out = Path(tempfile.mkdtemp(prefix="bench-longrun-", dir=args.dir))
    samples: list[dict] = []
    latest: dict = {}
    done = threading.Event()
    t0 = time.monotonic()

    def on_runner(runner) -> None:
        runner.signals.progress.connect(lambda p: latest.update(t_s=p.t_s, frames=p.frames))

    def sample() -> None:
        while not done.wait(2.0 if args.fast else 5.0):
            samples.append(
                {
                    "host_s": round(time.monotonic() - t0, 1),
                    "session_s": round(latest.get("t_s", 0.0), 1),
                    "rss_mb": round(rss_mb(), 1),
                    "written": {k: v["written"] for k, v in latest.get("frames", {}).items()},
                    "dropped": {k: v["dropped"] for k, v in latest.get("frames", {}).items()},
                }
            )

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        folder, result = run_session(plan, out, "longrun", None if args.fast else 1.0, on_runner)
        wall = time.monotonic() - t0
        disk_gb = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e9
    finally:
        done.set()
        sampler.join()
        shutil.rmtree(out, ignore_errors=True)
    streams = {}
    for name, acc in result.accounting.items():
        streams[name] = {
            "expected": acc.frames_expected,
            "edges": acc.edges,
            "written": acc.written,
            "dropped_by_queue": acc.dropped_by_queue,
            "dropped_by_device": acc.dropped_by_device,
            "unaccounted": acc.edges - acc.written - acc.dropped,
        }
    warm = [s for s in samples if s["host_s"] >= max(30.0, WARMUP_FRACTION * wall)]
    rss = [s["rss_mb"] for s in warm]
    spread = (max(rss) - min(rss)) if rss else None
    report = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "command": "python bench/bench_longrun.py "
        + " ".join(
            [f"--duration {args.duration:g}"]
            + (["--small"] if args.small else [])
            + (["--fast"] if args.fast else [])
        ),
        "sizes": "64x64 uint16 @30 Hz + 160x120 uint8 @100 fps"
        if args.small
        else "512x512 uint16 @30 Hz + 640x480 uint8 @100 fps",
        "status": result.status,
        "reason": result.reason,
        "session_s": result.duration_s,
        "wall_s": round(wall, 1),
        "x_real_time": round(result.duration_s / wall, 2),
        "data_gb": round(disk_gb, 2),
        "streams": streams,
        "rss_after_warmup_mb": {"min": min(rss), "max": max(rss), "spread": spread}
        if rss
        else None,
        "rss_flat_within_mb": RSS_FLAT_MB,
        "rss_flat": spread is not None and spread <= RSS_FLAT_MB,
        "samples": samples[:: max(1, len(samples) // 120)],  # at most ~120 points
    }
    table = Table(title=f"bench_longrun {report['command']}  ({report['sizes']})")
    for col in ("stream", "expected", "edges", "written", "dropped", "unaccounted"):
        table.add_column(col, justify="left" if col == "stream" else "right")
    for name, s in streams.items():
        dropped = s["dropped_by_queue"] + s["dropped_by_device"]
        table.add_row(
            name,
            *(str(v) for v in (s["expected"], s["edges"], s["written"], dropped, s["unaccounted"])),
        )
    console = Console()
    console.print(table)
    console.print(
        f"{result.status}: {result.reason}; {result.duration_s:.0f} s of session in {wall:.0f} s "
        f"({report['x_real_time']}x real time), {disk_gb:.2f} GB written (deleted); RSS after "
        f"warm-up {report['rss_after_warmup_mb']} MB (flat within {RSS_FLAT_MB:g} MB: "
        f"{report['rss_flat']})"
    )
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
