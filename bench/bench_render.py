"""Render speed of the simulated behaviour camera and two-photon microscope.

Prints ms per frame at the full rig sizes (640x480 video, 512x512 imaging) and the test sizes
(160x120, 64x64), plus the one-off cost of simulating a 30-minute session, and writes
``bench/results/render.json``. The simulated rig must run a 30-minute session at least 5x faster
than real time on one core: at 30 fps video + 30 Hz imaging that leaves 6.7 ms per pair of
frames for everything, so rendering should stay near 1.5 ms (video) and 2.5 ms (imaging).

Run: ``PYTHONPATH=. python bench/bench_render.py [--frames N]``
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from rig.program.schedule import OutputSchedule, ShockPulse, SoundBlock
from sim.brain import BrainConfig, TwoPhotonRenderer, simulate_activity
from sim.learning import AnimalState, update_state
from sim.mouse import MouseConfig, simulate_behaviour
from sim.mouse_video import MouseRenderer

RATE = 1000.0
SESSION_S = 30 * 60.0


def session(shock_ma: float) -> OutputSchedule:
    """30 minutes: 7 CS+ (7.5 kHz) and 7 CS- (2 kHz) of 30 s, a shock ending every CS+."""
    sounds, shocks, t = [], [], 180.0
    for trial in range(14):
        plus = trial % 2 == 0
        a, b = round(t * RATE), round((t + 30) * RATE)
        hz = 7500.0 if plus else 2000.0
        name = "cs_plus" if plus else "cs_minus"
        sounds.append(SoundBlock(a, b, "tone", 75.0, frequency_hz=hz, stimulus=name))
        if plus and shock_ma:
            shocks.append(ShockPulse(b - round(RATE), b, shock_ma, "shock", trial))
        t += 30 + 80
    return OutputSchedule(RATE, round(SESSION_S * RATE), tuple(sounds), tuple(shocks))


def per_frame_ms(render, n: int, total: int, warm: int) -> tuple[float, float]:
    """Mean ms per frame over ``n`` frames in stretches through the session, after warming up
    (returned too, in seconds: the lazily built sprites of a whole session)."""
    t0 = time.perf_counter()
    for i in np.linspace(0, total - 1, warm).astype(int):
        render(int(i))
    warm_s = time.perf_counter() - t0
    # frame by frame as a session renders them, in stretches spread through the session, so
    # the cached poses are not all the same
    stretches = 10
    starts = np.linspace(0, total - n // stretches - 1, stretches).astype(int)
    idx = np.concatenate([np.arange(s, s + n // stretches) for s in starts])
    t0 = time.perf_counter()
    for i in idx:
        render(int(i))
    return (time.perf_counter() - t0) / n * 1e3, warm_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=1500)
    args = ap.parse_args()
    times = np.arange(int(SESSION_S * 30)) / 30.0
    naive = AnimalState(animal_id="bench")
    cond = session(0.5)
    recall_state = update_state(naive, cond)
    recall = session(0.0)
    rows = []
    for (vw, vh), (iw, ih) in (((640, 480), (512, 512)), ((160, 120), (64, 64))):
        for view in ("top", "head_fixed"):
            cfg = MouseConfig(view=view, width=vw, height=vh)
            t0 = time.perf_counter()
            track = simulate_behaviour(recall, times, recall_state, cfg, seed=1)
            sim_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            r = MouseRenderer(cfg, track, seed=2)
            init_s = time.perf_counter() - t0
            # sprites are built lazily, once per pose: warm with the whole session's poses
            ms, warm_s = per_frame_ms(r.render, args.frames, len(times), warm=3000)
            rows.append(("video " + view, f"{vw}x{vh}", ms, sim_s, init_s + warm_s))
        bcfg = BrainConfig(width=iw, height=ih, neurons=60)
        t0 = time.perf_counter()
        act = simulate_activity(recall, times, track, recall_state, bcfg, seed=3)
        sim_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        r2 = TwoPhotonRenderer(bcfg, act, seed=4)
        init_s = time.perf_counter() - t0
        ms, warm_s = per_frame_ms(r2.render, args.frames, len(times), warm=50)
        rows.append(("two-photon", f"{iw}x{ih}", ms, sim_s, init_s + warm_s))

    print(f"{'stream':<18}{'size':>10}{'ms/frame':>10}{'sim 30 min (s)':>16}{'setup+warm (s)':>16}")
    for name, size, ms, sim_s, init_s in rows:
        print(f"{name:<18}{size:>10}{ms:>10.3f}{sim_s:>16.2f}{init_s:>16.2f}")
    out = Path(__file__).parent / "results" / "render.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "python": platform.python_version(),
                "frames_timed": args.frames,
                "session_s": SESSION_S,
                "results": [
                    {
                        "stream": n,
                        "size": s,
                        "ms_per_frame": round(ms, 4),
                        "simulate_30min_s": round(sim, 3),
                        "setup_and_warmup_s": round(init, 3),
                    }
                    for n, s, ms, sim, init in rows
                ],
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
