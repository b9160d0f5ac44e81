"""Freezing scorer benchmark: speed on one core and agreement with the truth.

Renders the synthetic session of ``tests/freezing_video.py`` at 640x480 (sensor noise,
illumination flicker, a cable that sways while the mouse freezes, excluded by a mask) and runs,
on the same frames in one pass:

- ``rig`` : :class:`rig.motion.MotionScorer` (4x4 binning, 0.25 s comparison gap), pushed frame
  by frame as the live session does;
- ``rig-no-mask`` : the same without the cable exclusion, to show what the mask is for;
- ``eztrack-cv2`` : an ezTrack-style reference (Pennington et al. 2019, FreezeAnalysis): each
  frame converted to float, Gaussian blur with sigma 1 (``cv2.GaussianBlur``), absolute
  difference with the previous blurred frame, pixels above the cutoff counted inside the same
  mask. It is timed on every frame; ``eztrack-scipy`` (``scipy.ndimage.gaussian_filter``) is
  timed on a sample only.

Both series get the same threshold rule (:func:`rig.freezing.auto_threshold` on the baseline and
first trial) and the same 1 s minimum; agreement is the fraction of frames whose state matches
the truth, and the per-trial CS-epoch error is in percentage points. Everything runs pinned to
one core with OpenCV limited to one thread.

Run: ``PYTHONPATH=. python bench/bench_freezing.py [--quick]``; writes
``bench/results/freezing.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rig.freezing import (  # noqa: E402
    FreezingParams,
    auto_threshold,
    freezing_by_epoch,
    score_freezing,
)
from rig.motion import MotionScorer, RectRegion, pixel_mask  # noqa: E402
from tests.freezing_video import SyntheticVideo  # noqa: E402

try:
    import cv2
except ImportError:  # the reference then uses scipy only
    cv2 = None
try:
    from scipy import ndimage
except ImportError:
    ndimage = None

CUTOFF = 10.0
MIN_FREEZE_S = 1.0


class EzTrackReference:
    """ezTrack-style motion: blur, difference with the previous frame, count above cutoff."""

    def __init__(self, mask: np.ndarray, cutoff: float, sigma: float, backend: str) -> None:
        self.mask = mask.astype(float)
        self.n = float(mask.sum())
        self.cutoff = cutoff
        self.sigma = sigma
        self.backend = backend
        self.prev: np.ndarray | None = None

    def push(self, frame: np.ndarray) -> float:
        f = frame.astype(float)
        if self.backend == "cv2":
            blurred = cv2.GaussianBlur(f, (0, 0), self.sigma)
        else:
            blurred = ndimage.gaussian_filter(f, self.sigma)
        value = np.nan
        if self.prev is not None:
            changed = (np.abs(blurred - self.prev) > self.cutoff) * self.mask
            value = float(np.sum(changed)) / self.n  # fraction, so thresholds compare
        self.prev = blurred
        return value


def agreement(video: SyntheticVideo, frozen: np.ndarray) -> dict:
    got = freezing_by_epoch(video.times_s, frozen, video.trials, video.phases)
    want = freezing_by_epoch(video.times_s, video.truth, video.trials, video.phases)
    errs = [
        abs(g["epochs"]["cs"]["percent"] - w["epochs"]["cs"]["percent"])
        for g, w in zip(got["trials"], want["trials"], strict=True)
    ]
    return {
        "frame_agreement": float(np.mean(frozen == video.truth)),
        "cs_epoch_error_pp_max": float(max(errs)),
        "cs_epoch_error_pp_mean": float(np.mean(errs)),
    }


def rescore_hour() -> float:
    """Seconds to auto-threshold and score an hour of 100 fps motion index (360,000 values)."""
    rng = np.random.default_rng(0)
    still = np.repeat(rng.random(720) < 0.4, 500)
    motion = np.where(still, rng.random(still.size) * 0.002, 0.02 + rng.random(still.size) * 0.05)
    t0 = time.perf_counter()
    thr = auto_threshold(motion, 100.0)
    score_freezing(motion, 100.0, thr, MIN_FREEZE_S, 0.25)
    return time.perf_counter() - t0


def run(quick: bool) -> dict:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    if cv2 is not None:
        cv2.setNumThreads(1)
    video = SyntheticVideo(
        width=640,
        height=480,
        fps=30.0,
        baseline_s=30.0 if quick else 60.0,
        n_trials=3 if quick else 6,
        cs_s=20.0,
        iti_s=25.0,
        seed=11,
    )
    x, y, w, h = video.cable_box
    params = FreezingParams(
        exclude=[RectRegion(x_px=x, y_px=y, width_px=w, height_px=h)],
        noise_cutoff_grey=CUTOFF,
        min_freeze_s=MIN_FREEZE_S,
        calibration_s=[0.0, video.baseline_s + video.cs_s + video.iti_s],
    )
    mask = pixel_mask(video.width, video.height, None, params.exclude)
    scorers = {
        "rig": MotionScorer(video.width, video.height, video.fps, params),
        "rig-no-mask": MotionScorer(
            video.width, video.height, video.fps, params.model_copy(update={"exclude": []})
        ),
    }
    if cv2 is not None:
        scorers["eztrack-cv2"] = EzTrackReference(mask, CUTOFF, 1.0, "cv2")
    elif ndimage is not None:
        scorers["eztrack-scipy"] = EzTrackReference(mask, CUTOFF, 1.0, "scipy")
    series = {name: np.empty(video.n_frames) for name in scorers}
    seconds = dict.fromkeys(scorers, 0.0)
    i = 0
    for chunk in video.chunks(128):
        for name, scorer in scorers.items():
            t0 = time.perf_counter()
            series[name][i : i + len(chunk)] = [scorer.push(f) for f in chunk]
            seconds[name] += time.perf_counter() - t0
        i += len(chunk)
        if ndimage is not None and cv2 is not None and "eztrack-scipy" not in seconds:
            sample = EzTrackReference(mask, CUTOFF, 1.0, "scipy")
            t0 = time.perf_counter()
            for f in chunk:
                sample.push(f)
            seconds["eztrack-scipy"] = time.perf_counter() - t0
            sample_frames = len(chunk)
    rows = {}
    for name, motion in series.items():
        gap_s = params.gap_s if name.startswith("rig") else 0.0
        thr = auto_threshold(motion, video.fps, params)
        frozen = score_freezing(motion, video.fps, thr, MIN_FREEZE_S, gap_s)
        rows[name] = {
            "frames_per_s": video.n_frames / seconds[name],
            "threshold": thr,
            **agreement(video, frozen),
        }
    if "eztrack-scipy" in seconds and "eztrack-scipy" not in rows:
        rows["eztrack-scipy"] = {"frames_per_s": sample_frames / seconds["eztrack-scipy"]}
    ref = "eztrack-cv2" if "eztrack-cv2" in rows else "eztrack-scipy"
    rows["rig"]["speedup_vs_" + ref] = rows["rig"]["frames_per_s"] / rows[ref]["frames_per_s"]
    return {
        "benchmark": "freezing",
        "rescore_hour_100fps_s": rescore_hour(),
        "frame": [video.height, video.width],
        "fps": video.fps,
        "frames": video.n_frames,
        "truth_freezing_fraction": float(video.truth.mean()),
        "params": params.model_dump(mode="json"),
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "opencv": None if cv2 is None else cv2.__version__,
            "cpu": platform.processor() or platform.machine(),
            "one_core": True,
        },
        "results": rows,
    }


def print_table(result: dict) -> None:
    print(
        f"freezing benchmark: {result['frames']} frames of {result['frame'][1]}x"
        f"{result['frame'][0]} uint8 at {result['fps']:g} fps, one core"
    )
    head = f"{'scorer':<15}{'frames/s':>10}{'agree %':>9}{'CS err max':>11}{'CS err mean':>12}"
    print(head)
    print("-" * len(head))
    for name, row in result["results"].items():
        agree = row.get("frame_agreement")
        print(
            f"{name:<15}{row['frames_per_s']:>10.0f}"
            + (
                f"{100 * agree:>9.1f}{row['cs_epoch_error_pp_max']:>11.1f}"
                f"{row['cs_epoch_error_pp_mean']:>12.1f}"
                if agree is not None
                else f"{'(speed only)':>32}"
            )
        )
    print(
        f"re-scoring an hour at 100 fps (auto threshold + score): "
        f"{1000 * result['rescore_hour_100fps_s']:.0f} ms"
    )
    for key, value in result["results"]["rig"].items():
        if key.startswith("speedup"):
            print(f"rig {key.replace('_', ' ')}: {value:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a shorter video")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "freezing.json")
    args = parser.parse_args()
    result = run(args.quick)
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
