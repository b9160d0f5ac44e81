"""Freezing while the session runs: what the engine feeds every video frame (or wheel edge) to.

:class:`LiveScorer` computes each video frame's motion and step indices and the provisional
freezing state (:class:`rig.behaviour.freezing.LiveFreezing`, the rule of ``rig score``);
:class:`LiveLocomotion` does the same from the wheel's encoder. Both keep the per-frame values,
which the session stores under ``scores/`` when it ends (:func:`write_live_scores`) so that
``rig score`` re-scores without the video.

The automatic threshold is computed once the calibration window (the baseline, see
:func:`rig.behaviour.freezing.calibration_window`) has passed; live scoring shows no freezing
before that.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rig.behaviour.freezing import LiveFreezing, auto_threshold, calibration_window, step_threshold
from rig.behaviour.locomotion import WheelBins, encoder_speed
from rig.behaviour.motion import MotionScorer
from rig.behaviour.rescore import motion_params_record
from rig.data.folder import SessionFolder
from rig.files.freezing import FreezingParams
from rig.program.timeline import Timeline


@dataclass(frozen=True)
class FreezingSample:
    """One live freezing value (what the GUI trace and the CLI progress line show)."""

    t_s: float
    motion: float
    frozen: bool
    threshold: float  # NaN until an automatic threshold is calibrated


class LiveScorer:
    """Motion indices and provisional freezing, one video frame at a time."""

    def __init__(
        self, params: FreezingParams, width: int, height: int, fps: float, timeline: Timeline
    ):
        self.params = params
        self.fps = fps
        self.scorer = MotionScorer(width, height, fps, params)
        self.window = calibration_window(params, timeline)
        fixed = params.threshold != "auto"
        self.threshold = float(params.threshold) if fixed else math.nan
        self.live = LiveFreezing(
            fps, self.threshold if fixed else -math.inf, params.min_freeze_s, params.gap_s
        )
        self.calibrated = False
        self._window_passed = False  # the threshold is computed once, when the window ends
        self._early_filled = False
        # Typed arrays, 8 bytes a value: a list of floats costs 4x that over hours of frames.
        self.device_index = array("q")
        self.motion = array("d")
        self.step = array("d")
        self.times = array("d")

    def push(self, device_index: int, image: np.ndarray, t_s: float) -> FreezingSample:
        """Score one frame."""
        return self.push_many([device_index], image[np.newaxis], [t_s])[0]

    def push_many(
        self, device_indices: Sequence[int], images: np.ndarray, times_s: Sequence[float]
    ) -> list[FreezingSample]:
        """Score the frames of an ``(n, height, width)`` stack, as :meth:`push` one by one."""
        motion, step = self.scorer.push_many(images)
        self.device_index.extend(device_indices)
        self.motion.extend(motion.tolist())
        self.step.extend(step.tolist())
        self.times.extend(times_s)
        self._fill_early()
        out = []
        for m, s, t_s in zip(motion.tolist(), step.tolist(), times_s, strict=True):
            if not self._window_passed and t_s >= self.window[1]:
                self._window_passed = True
                self._calibrate()
            frozen = self.live.push(m if math.isfinite(m) else math.inf, s)
            out.append(FreezingSample(t_s, m, frozen, self.threshold))
        return out

    def _fill_early(self) -> None:
        """Once the noise cutoff is known, the calibration frames' indices replace their NaN
        in what is stored (the live state went on without them: it was not calibrated yet)."""
        early = self.scorer.early_values()
        if self._early_filled or early is None:
            return
        k = len(early[0])
        self.motion[:k] = array("d", early[0].tolist())
        self.step[:k] = array("d", early[1].tolist())
        self._early_filled = True

    def _calibrate(self) -> None:
        """The thresholds from the calibration window, once. When they cannot be had (the
        animal never moved in it), live scoring shows no freezing; ``rig score`` says why."""
        motion, step, times = np.array(self.motion), np.array(self.step), np.array(self.times)
        try:
            if self.params.threshold == "auto":
                self.threshold = auto_threshold(motion, self.fps, self.window, times)
            step_thr = step_threshold(self.threshold, motion, step, self.fps, self.window, times)
        except ValueError:
            return
        self.calibrated = True
        self.live.set_thresholds(self.threshold, step_thr)

    def write(self, folder: SessionFolder) -> None:
        """Store the indices under ``scores/`` (``rig score`` reads them back)."""
        folder.write_motion(
            np.array(self.device_index),
            np.array(self.motion),
            np.array(self.step),
            motion_params_record(self.params, self.scorer.cutoff_grey, self.scorer.n_blocks),
        )


class LiveLocomotion:
    """Wheel speed and provisional freezing from encoder edges (``measure: locomotion``).

    Counts are binned (:class:`rig.behaviour.locomotion.WheelBins`) on the DAQ clock; the live
    speed is the mean over the last ``speed_window_s`` (trailing), offline re-scoring uses a
    centred window.
    """

    def __init__(self, params: FreezingParams, sample_rate_hz: float, duration_s: float):
        self.params = params
        self.bins = WheelBins(sample_rate_hz, duration_s)
        self.rate = self.bins.rate_hz
        self.window = max(1, round(params.speed_window_s * self.rate))
        self.threshold = params.speed_threshold_cm_s
        self.live = LiveFreezing(self.rate, self.threshold, params.min_freeze_s)
        self.next_bin = 0
        self.speed = array("d")
        self.times = array("d")

    def push(self, samples: np.ndarray, position: int) -> list[FreezingSample]:
        """Add encoder edges and score every bin the DAQ has fully acquired."""
        self.bins.add(samples)
        done = min(position // self.bins.bin_samples, len(self.bins))
        if done <= self.next_bin:
            return []
        lo = max(0, self.next_bin - self.window + 1)
        speed = encoder_speed(
            self.bins.counts[lo:done],
            self.rate,
            self.params.encoder_counts_per_rev,
            self.params.wheel_diameter_cm,
            self.params.speed_window_s,
            centred=False,
        )[self.next_bin - lo :]
        times = (np.arange(self.next_bin, done) + 0.5) / self.rate
        out = []
        for t_s, v in zip(times.tolist(), speed.tolist(), strict=True):
            self.speed.append(v)
            self.times.append(t_s)
            out.append(FreezingSample(t_s, v, self.live.push(v), self.threshold))
        self.next_bin = done
        return out


def write_live_scores(folder: SessionFolder, scorer: LiveScorer | None) -> None:
    """Store a session's live indices, if it scored any video."""
    if scorer is not None and len(scorer.motion):
        scorer.write(folder)


__all__ = ["FreezingSample", "LiveLocomotion", "LiveScorer", "write_live_scores"]
