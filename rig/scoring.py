"""Freezing for a session: live during the run, and re-scored afterwards from the stored index.

Live: every video frame goes through :class:`LiveScorer` (motion index, then the live freezing
state), which the engine publishes as :class:`FreezingSample` signals. The per-frame motion
index is stored under ``scores/``, so ``rig score`` re-thresholds without touching the video
(it recomputes the index from the video only when asked for another ROI or masks).

The automatic threshold's calibration window is the rig file's ``freezing.calibration_s``; when
that is not given it is the protocol's first phase without trials (the baseline), or else the
first 60 s. Live scoring shows no freezing until that window has passed.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
from pydantic import ValidationError

from rig.data.folder import FrameStream, SessionFolder, utc_now
from rig.data.trials import trials_table
from rig.freezing import (
    FreezingParams,
    LiveFreezing,
    auto_threshold,
    encoder_speed,
    freezing_by_epoch,
    score_freezing,
    score_locomotion_freezing,
)
from rig.inputfile import InputError, problems_from_validation
from rig.motion import MotionScorer
from rig.schedule import VIDEO, WHEEL
from rig.timeline import PhaseSpan, Timeline

DEFAULT_CALIBRATION_S = 60.0


@dataclass(frozen=True)
class FreezingSample:
    """One live freezing value (what the GUI trace and the CLI progress line show)."""

    t_s: float
    motion: float
    frozen: bool
    threshold: float  # NaN until an automatic threshold is calibrated


def calibration_window(params: FreezingParams, timeline: Timeline) -> tuple[float, float]:
    """The period the automatic threshold is computed from (see the module docstring)."""
    if params.calibration_s is not None:
        return float(params.calibration_s[0]), float(params.calibration_s[1])
    for span in timeline.phases:
        if span.n_trials == 0:
            return span.start_s, span.end_s
    return 0.0, min(DEFAULT_CALIBRATION_S, timeline.duration_s)


class LiveScorer:
    """Motion index and provisional freezing, one video frame at a time."""

    def __init__(
        self, params: FreezingParams, width: int, height: int, fps: float, timeline: Timeline
    ):
        self.params = params
        self.fps = fps
        self.scorer = MotionScorer(width, height, fps, params)
        self.window = calibration_window(params, timeline)
        fixed = params.threshold != "auto"
        self.live = LiveFreezing(
            fps, float(params.threshold) if fixed else np.inf, params.min_freeze_s, params.gap_s
        )
        self.calibrated = fixed
        self.threshold = float(params.threshold) if fixed else float("nan")
        # Typed arrays, 8 bytes a value: a list of floats costs 4x that over hours of frames.
        self.device_index = array("q")
        self.motion = array("d")
        self.times = array("d")

    def push(self, device_index: int, image: np.ndarray, t_s: float) -> FreezingSample:
        """Score one frame."""
        return self.push_many([device_index], image[np.newaxis], [t_s])[0]

    def push_many(
        self, device_indices: Sequence[int], images: np.ndarray, times_s: Sequence[float]
    ) -> list[FreezingSample]:
        """Score the frames of an ``(n, height, width)`` stack, as :meth:`push` one by one."""
        out = []
        motion = self.scorer.push_many(images).tolist()
        for device_index, m, t_s in zip(device_indices, motion, times_s, strict=True):
            self.device_index.append(device_index)
            self.motion.append(m)
            self.times.append(t_s)
            if not self.calibrated and t_s >= self.window[1]:
                self._calibrate()
            frozen = (
                self.live.push(m if math.isfinite(m) else math.inf) if self.calibrated else False
            )
            out.append(FreezingSample(t_s, m, frozen, self.threshold))
        return out

    def _calibrate(self) -> None:
        try:
            self.threshold = auto_threshold(
                np.array(self.motion), self.fps, self.params, np.array(self.times), self.window
            )
        except ValueError:
            return  # not enough data in the window yet: stay uncalibrated
        self.live.set_threshold(self.threshold)
        self.calibrated = True


LOCOMOTION_RATE_HZ = 30.0  # wheel speed is scored in bins of 1/30 s


class LiveLocomotion:
    """Wheel speed and provisional freezing from encoder edges (``measure: locomotion``).

    Counts are binned at :data:`LOCOMOTION_RATE_HZ` on the DAQ clock; the live speed is the
    mean over the last ``speed_window_s`` (causal), offline re-scoring uses a centred window.
    """

    def __init__(self, params: FreezingParams, sample_rate_hz: float, duration_s: float):
        self.params = params
        self.fs = sample_rate_hz
        self.bin = max(1, round(sample_rate_hz / LOCOMOTION_RATE_HZ))
        self.rate = sample_rate_hz / self.bin
        self.counts = np.zeros(int(np.ceil(duration_s * sample_rate_hz / self.bin)) + 1, np.int64)
        self.window = max(1, round(params.speed_window_s * self.rate))
        self.cm_per_count = np.pi * params.wheel_diameter_cm / params.encoder_counts_per_rev
        self.threshold = params.speed_threshold_cm_s
        self.live = LiveFreezing(self.rate, self.threshold, params.min_freeze_s)
        self.next_bin = 0
        self.speed = array("d")
        self.times = array("d")

    def push(self, samples: np.ndarray, position: int) -> list[FreezingSample]:
        """Add encoder edges and score every bin the DAQ has fully acquired."""
        if len(samples):
            np.add.at(self.counts, np.minimum(samples // self.bin, len(self.counts) - 1), 1)
        done = min(position // self.bin, len(self.counts))
        out = []
        for b in range(self.next_bin, done):
            lo = max(0, b - self.window + 1)
            speed = self.counts[lo : b + 1].sum() * self.cm_per_count * self.rate / (b + 1 - lo)
            t_s = (b + 0.5) / self.rate
            self.speed.append(float(speed))
            self.times.append(t_s)
            out.append(FreezingSample(t_s, float(speed), self.live.push(speed), self.threshold))
        self.next_bin = max(self.next_bin, done)
        return out


def _score_locomotion(folder: SessionFolder, params: FreezingParams) -> tuple:
    """Offline: wheel speed per bin from the recorded encoder edges, centred window."""
    attrs = folder.attrs
    fs = attrs.sample_rate_hz
    bin_ = max(1, round(fs / LOCOMOTION_RATE_HZ))
    rate = fs / bin_
    n = int(np.ceil(attrs.timeline.duration_s * rate))
    counts = np.zeros(n, np.int64)
    wheel = folder.edges(WHEEL)
    if wheel is not None:
        np.add.at(counts, np.minimum(wheel.samples // bin_, n - 1), 1)
    speed = encoder_speed(
        counts, rate, params.encoder_counts_per_rev, params.wheel_diameter_cm, params.speed_window_s
    )
    frozen = score_locomotion_freezing(
        speed, rate, params.speed_threshold_cm_s, params.min_freeze_s
    )
    times = (np.arange(n) + 0.5) / rate
    return times, speed, frozen


# ---------------------------------------------------------------------------- stored scores


def _video_times(video: FrameStream, device_index: np.ndarray) -> np.ndarray:
    stamps, frame_dev = video.timestamps_s(), video.device_index()
    if stamps is None or frame_dev is None:
        raise ValueError("the video has no timestamps: run `rig recover` on this session first")
    lookup = dict(zip(frame_dev.tolist(), stamps.tolist(), strict=False))
    return np.array([lookup.get(int(k), np.nan) for k in device_index], float)


def score_session(
    folder: SessionFolder,
    threshold: float | None = None,
    min_freeze_s: float | None = None,
    roi: Any = None,
    exclude: list[Any] | None = None,
) -> dict[str, Any]:
    """(Re-)score a session's freezing; stores the result under ``scores/`` and returns it.

    ``threshold``/``min_freeze_s`` override the rig file's values and reuse the stored index;
    ``roi``/``exclude`` (regions in pixels) recompute the index from the stored video.
    """
    attrs = folder.require_finalized()  # a running or interrupted one has no timestamps yet
    params = folder.attr_as("freezing_params", FreezingParams)
    stored = folder.scores()
    motion_params = stored.motion_params if stored is not None else None
    if motion_params and roi is None and exclude is None:
        # Reusing the stored index: it was computed with these regions, so report those.
        params = FreezingParams.model_validate(
            {
                **params.model_dump(mode="json"),
                "roi": motion_params["roi"],
                "exclude": motion_params["exclude"],
            },
            strict=False,
        )
    changes: dict[str, Any] = {}
    if min_freeze_s is not None:
        changes["min_freeze_s"] = min_freeze_s
    if roi is not None:
        changes["roi"] = roi
    if exclude is not None:
        changes["exclude"] = exclude
    try:
        params = FreezingParams.model_validate(
            {**params.model_dump(mode="json"), **changes}, strict=False
        )
    except ValidationError as exc:  # a region given on the command line: one line each
        option = "--roi/--exclude" if roi is not None or exclude is not None else "--min-freeze-s"
        raise InputError(option, problems_from_validation(exc)) from None
    if params.threshold != "auto" and threshold is None:
        threshold = float(params.threshold)
    fps = attrs.video_fps
    timeline = attrs.timeline
    phases = [_phase(p) for p in timeline.phases]
    if params.measure == "locomotion":
        if threshold is not None:
            params = FreezingParams.model_validate(
                {**params.model_dump(mode="json"), "speed_threshold_cm_s": threshold}, strict=False
            )
        times, speed, frozen = _score_locomotion(folder, params)
        results = freezing_by_epoch(times, frozen, trials_table(folder), phases)
        record = {
            "scored_utc": utc_now(),
            "measure": "locomotion",
            "threshold": params.speed_threshold_cm_s,
            "threshold_auto": False,
            "calibration_s": None,
            "min_freeze_s": params.min_freeze_s,
            "gap_s": 0.0,
            "roi": None,
            "exclude": [],
            "percent_frozen": float(100 * frozen.mean()) if len(frozen) else None,
            "results": results,
        }
        folder.write_freezing(times, frozen, record, wheel_speed_cm_s=speed)
        return record
    video = folder.stream(VIDEO)
    if video is None:
        raise ValueError("this session has no behaviour video to score")
    if roi is not None or exclude is not None or stored is None or stored.motion_index is None:
        frames = video.frames
        device_index = video.device_index()
        if device_index is None:
            raise ValueError("the video has no frame numbers: run `rig recover` first")
        scorer = MotionScorer(frames.shape[2], frames.shape[1], fps, params)
        motion = np.array([scorer.push(f) for f in _frames_iter(frames)], float)
        folder.write_motion(device_index, motion, params.model_dump(mode="json"))
        stored = folder.scores()
        assert stored is not None and stored.motion_index is not None
    device_index = stored.device_index
    motion = stored.motion_index.astype(float)
    times = _video_times(video, device_index)
    window = calibration_window(params, timeline)
    auto = threshold is None
    if auto:
        threshold = auto_threshold(motion, fps, params, times, window)
    frozen = score_freezing(motion, fps, float(threshold), params.min_freeze_s, params.gap_s)
    results = freezing_by_epoch(times, frozen, trials_table(folder), phases)
    record = {
        "scored_utc": utc_now(),
        "measure": "motion",
        "threshold": float(threshold),
        "threshold_auto": auto,
        "calibration_s": list(window) if auto else None,
        "min_freeze_s": params.min_freeze_s,
        "gap_s": params.gap_s,
        "roi": json.loads(json.dumps(params.model_dump(mode="json")["roi"])),
        "exclude": params.model_dump(mode="json")["exclude"],
        "percent_frozen": float(100 * frozen.mean()) if len(frozen) else None,
        "results": results,
    }
    folder.write_freezing(times, frozen, record)
    return record


def _frames_iter(frames: zarr.Array, block: int = 256):
    for start in range(0, frames.shape[0], block):
        yield from frames[start : start + block]


def _phase(p: PhaseSpan) -> dict:
    return {"name": p.name, "start_s": p.start_s, "end_s": p.end_s}


def freezing_summary(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-trial percentages for ``rig info`` and the CSV export."""
    out = []
    for t in record["results"]["trials"]:
        row = {"index": t["index"], "phase": t["phase"], "cs": t["cs"], "us": t["us"]}
        for epoch, value in t["epochs"].items():
            row[f"percent_{epoch}"] = value["percent"] if value else None
        out.append(row)
    return out
