"""Freezing: scoring immobility from the motion index or from wheel speed, live and offline.

A mouse is *freezing* while its motion stays below a threshold for at least ``min_freeze_s``;
once that holds, the whole still bout counts from its start. Two measures are supported:

- ``motion`` (default): the motion index of the behaviour video (:mod:`rig.motion`), the
  fraction of the region of interest that changed between frames ``gap_s`` apart. Because frame
  ``t`` is compared with frame ``t - gap``, a run of low index starting at frame ``s`` means the
  animal has been still since frame ``s - gap``: each still run is extended back by ``gap``
  frames, so bouts are not cut short by the comparison gap.
- ``locomotion``: the speed of the running wheel from a rotary encoder read by a DAQ counter.
  It only sees running: grooming or head movements on a still wheel are not motion for it.

Everything here is vectorised numpy; re-scoring an hour of a 100 fps motion index (360,000
values) with a new threshold takes milliseconds. The method, the automatic threshold and the
epoch definitions are documented in ``docs/freezing.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import ConfigDict, Field

from rig.motion import (
    MotionParams,
    MotionScorer,
    PolygonRegion,
    RectRegion,
    Region,
    gap_frames,
    motion_index,
)

# Added to the motion index before taking logs in :func:`auto_threshold`, so that frames with
# no changed block at all (index 0) stay finite; 1e-4 is 0.01 % of the ROI.
LOG_FLOOR = 1e-3


class FreezingParams(MotionParams):
    """The rig file's ``freezing:`` section.

    Motion fields (see :mod:`rig.motion`): ``gap_s``, ``noise_cutoff_grey``, ``bin_px``,
    ``roi``, ``exclude``. ``threshold`` is a fraction of the ROI (0-1) for ``measure: motion``,
    or ``auto`` to derive it from the ``calibration_s`` window of the session (the whole session
    when omitted) with :func:`auto_threshold`. ``measure: locomotion`` uses
    ``speed_threshold_cm_s`` and the encoder constants instead.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    measure: Literal["motion", "locomotion"] = "motion"
    threshold: Annotated[float, Field(ge=0, le=1)] | Literal["auto"] = "auto"
    min_freeze_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    calibration_s: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    speed_threshold_cm_s: Annotated[float, Field(gt=0)] = 1.0
    encoder_counts_per_rev: Annotated[int, Field(gt=0)] = 4096
    wheel_diameter_cm: Annotated[float, Field(gt=0)] = 15.0
    speed_window_s: Annotated[float, Field(ge=0)] = 0.25


def min_frames(min_freeze_s: float, rate_hz: float) -> int:
    """Samples a still period must span to count as freezing: ``max(1, round(s * rate))``."""
    return max(1, round(min_freeze_s * rate_hz))


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive) indices of the runs of True in ``mask``."""
    edges = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def score_freezing(
    motion: np.ndarray,
    fps: float,
    threshold: float,
    min_freeze_s: float,
    gap_s: float = 0.0,
) -> np.ndarray:
    """Frames that are freezing: ``motion < threshold`` held for at least ``min_freeze_s``.

    A run of below-threshold frames ``[s, e)`` is a still span ``[s - g, e)`` where ``g`` is
    the comparison gap in frames (``gap_frames(gap_s, fps)``, or 0 when ``gap_s == 0``): the
    index at ``s`` compares frame ``s`` with ``s - g``, so the animal was already still at
    ``s - g``. A span of at least ``min_frames(min_freeze_s, fps)`` frames is freezing, all of
    it. NaN counts as motion. Vectorised: O(n).
    """
    motion = np.asarray(motion, dtype=float)
    g = gap_frames(gap_s, fps) if gap_s > 0 else 0
    need = min_frames(min_freeze_s, fps)
    starts, ends = _runs(motion < threshold)
    starts = np.maximum(starts - g, 0)
    keep = ends - starts >= need
    marks = np.zeros(motion.size + 1, dtype=np.int64)
    np.add.at(marks, starts[keep], 1)
    np.add.at(marks, ends[keep], -1)
    return np.cumsum(marks[:-1]) > 0


def calibration_slice(
    n: int, fps: float, calibration_s: Sequence[float] | None, times_s: np.ndarray | None
) -> slice | np.ndarray:
    """Which samples fall in the calibration window ``[start, end)`` (all when None)."""
    if calibration_s is None:
        return slice(0, n)
    start, end = calibration_s
    if times_s is not None:
        t = np.asarray(times_s, dtype=float)
        return (t >= start) & (t < end)
    return slice(max(0, math.ceil(start * fps)), min(n, math.ceil(end * fps)))


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the cut that maximises the between-class variance of ``values``."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)[:-1].astype(float)
    w1 = hist.sum() - w0
    s0 = np.cumsum(hist * centres)[:-1]
    s1 = (hist * centres).sum() - s0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = w0 * w1 * (s0 / w0 - s1 / w1) ** 2
    between = np.nan_to_num(between, nan=-1.0)
    # Empty bins between the classes make a plateau of equal scores: take its middle, the
    # cut farthest from both classes, rather than its first bin.
    best = np.flatnonzero(between >= between.max() * (1 - 1e-9))
    plateau = best[best <= best[0] + np.flatnonzero(np.diff(np.append(best, -2)) != 1)[0]]
    return float(edges[1:-1][plateau].mean())


MOVING_LEVEL_FRACTION = 0.3


def auto_threshold(
    motion: np.ndarray,
    fps: float,
    params: FreezingParams | None = None,
    times_s: np.ndarray | None = None,
    calibration_s: Sequence[float] | None = None,
) -> float:
    """A motion threshold from the distribution of the index during a calibration period.

    Rationale: with the noise cutoff above the sensor noise, the index of a still animal is a
    *noise floor* near zero (residual noise, flicker, breathing), and any movement raises it by
    one to two orders of magnitude. On a log scale the index is therefore bimodal: a tight
    still mode and a broad moving mode. Otsu's method on ``log10(index + 1e-4)`` puts the cut
    where the two modes are best separated, i.e. above the noise floor and below movement,
    without assuming how much of the period the animal spent still. The calibration window
    (``calibration_s``, else ``params.calibration_s``, else everything) must contain both
    still and moving moments: the baseline of a session usually does; when it does not (an
    animal that never stops), set the threshold by hand.

    A baseline in which a naive animal hardly ever stops has no still mode, and Otsu then cuts
    through the moving mode; so the threshold is also capped at ``MOVING_LEVEL_FRACTION`` of
    the 90th percentile of the window (the typical moving level: a moving animal changes a
    roughly constant body-sized area, a still one almost none).

    Raises ``ValueError`` when the window has fewer than 10 finite values or no spread.
    """
    motion = np.asarray(motion, dtype=float)
    if calibration_s is None and params is not None:
        calibration_s = params.calibration_s
    values = motion[calibration_slice(motion.size, fps, calibration_s, times_s)]
    values = values[np.isfinite(values)]
    if values.size < 10:
        raise ValueError(f"auto threshold needs >= 10 motion values, got {values.size}")
    logs = np.log10(values + LOG_FLOOR)
    if np.ptp(logs) <= 0:
        raise ValueError("motion index is constant in the calibration period")
    otsu = float(10.0 ** otsu_threshold(logs) - LOG_FLOOR)
    # When the window holds (almost) no still moments, Otsu splits the moving mode itself;
    # a fraction of the typical moving level caps it (see docs/freezing.md).
    moving = float(np.percentile(values, 90))
    return min(otsu, MOVING_LEVEL_FRACTION * moving) if moving > 0 else otsu


class LiveFreezing:
    """Freezing state while the session runs: push motion values, get the provisional state.

    ``push`` returns True once the current still span (below-threshold run plus the comparison
    gap, as in :func:`score_freezing`) has lasted ``min_freeze_s``; from then on the whole bout
    is freezing and :attr:`bout_start` says from which sample. The value returned for sample
    ``t`` always equals ``score_freezing(values[: t + 1], ...)[t]``; offline scoring of the
    whole trace additionally marks the start of each bout, which live scoring only learns
    ``min_freeze_s`` later.
    """

    def __init__(
        self, fps: float, threshold: float, min_freeze_s: float = 1.0, gap_s: float = 0.0
    ) -> None:
        self.fps = float(fps)
        self.threshold = float(threshold)
        self.min_freeze_s = float(min_freeze_s)
        self.gap = gap_frames(gap_s, fps) if gap_s > 0 else 0
        self.need = min_frames(min_freeze_s, fps)
        self._index = -1
        self._run = 0

    def set_threshold(self, threshold: float) -> None:
        """Change the threshold from the next sample on (e.g. once an auto threshold is known)."""
        self.threshold = float(threshold)

    def push(self, value: float) -> bool:
        """Add the next motion value; return whether the animal is freezing now."""
        self._index += 1
        self._run = self._run + 1 if value < self.threshold else 0
        return self.freezing

    @property
    def freezing(self) -> bool:
        """The state after the last pushed value."""
        return self._run > 0 and min(self._run + self.gap, self._index + 1) >= self.need

    @property
    def bout_start(self) -> int | None:
        """Sample index where the current freezing bout began, or None when not freezing."""
        if not self.freezing:
            return None
        return max(0, self._index - self._run + 1 - self.gap)


# --- locomotion --------------------------------------------------------------------------


def counts_to_steps(counts: np.ndarray, bits: int = 32) -> np.ndarray:
    """Counts per sample from a cumulative counter reading, undoing ``bits``-bit wrap-around.

    The first sample's step is 0. Steps are signed (the wheel can turn backwards).
    """
    c = np.asarray(counts, dtype=np.int64)
    steps = np.diff(c, prepend=c[:1])
    span = 1 << bits
    return (steps + span // 2) % span - span // 2


def encoder_speed(
    counts_per_sample: np.ndarray,
    sample_rate_hz: float,
    counts_per_rev: int = 4096,
    wheel_diameter_cm: float = 15.0,
    window_s: float = 0.25,
) -> np.ndarray:
    """Wheel surface speed in cm/s (absolute) from encoder counts per sample.

    ``counts_per_sample`` are the counter increments per DAQ sample (signed; use
    :func:`counts_to_steps` on cumulative readings). One count is ``pi * diameter /
    counts_per_rev`` cm. The speed is averaged over a centred window of ``window_s`` (at least
    one sample) to smooth the encoder's quantisation.
    """
    steps = np.asarray(counts_per_sample, dtype=float)
    cm_per_count = math.pi * wheel_diameter_cm / counts_per_rev
    n = max(1, round(window_s * sample_rate_hz))
    speed = np.abs(steps) * cm_per_count * sample_rate_hz
    if n == 1 or speed.size == 0:
        return speed
    csum = np.concatenate(([0.0], np.cumsum(speed)))
    lo = np.clip(np.arange(speed.size) - n // 2, 0, speed.size)
    hi = np.clip(lo + n, 0, speed.size)
    lo = np.maximum(hi - n, 0)
    return (csum[hi] - csum[lo]) / (hi - lo)


def score_locomotion_freezing(
    speed_cm_s: np.ndarray,
    sample_rate_hz: float,
    speed_threshold_cm_s: float = 1.0,
    min_freeze_s: float = 1.0,
) -> np.ndarray:
    """Samples where wheel speed stays below ``speed_threshold_cm_s`` for ``min_freeze_s``."""
    return score_freezing(
        np.abs(np.asarray(speed_cm_s, dtype=float)),
        sample_rate_hz,
        speed_threshold_cm_s,
        min_freeze_s,
    )


# --- one call for re-scoring -------------------------------------------------------------


@dataclass(frozen=True)
class FreezingScore:
    """The result of scoring a motion index: the threshold used and the per-frame state."""

    threshold: float
    frozen: np.ndarray
    auto: bool


def score_motion(
    motion: np.ndarray,
    fps: float,
    params: FreezingParams,
    times_s: np.ndarray | None = None,
    threshold: float | None = None,
) -> FreezingScore:
    """Score a stored motion index with ``params`` (the auto threshold resolved if asked).

    ``threshold`` overrides ``params.threshold``; this is what ``rig score`` re-runs.
    """
    auto = threshold is None and params.threshold == "auto"
    if threshold is None:
        threshold = (
            auto_threshold(motion, fps, params, times_s=times_s)
            if auto
            else float(params.threshold)
        )
    frozen = score_freezing(motion, fps, threshold, params.min_freeze_s, params.gap_s)
    return FreezingScore(threshold=threshold, frozen=frozen, auto=auto)


# --- per trial and per phase -------------------------------------------------------------


def percent_frozen(
    times_s: np.ndarray, frozen: np.ndarray, start_s: float, end_s: float
) -> float | None:
    """Percent of the samples with ``start_s <= t < end_s`` that are frozen (None if none)."""
    lo, hi = np.searchsorted(times_s, [start_s, end_s], side="left")
    if hi <= lo:
        return None
    return float(100.0 * np.count_nonzero(frozen[lo:hi]) / (hi - lo))


def _epoch(times_s, frozen, start_s, end_s) -> dict[str, Any] | None:
    if start_s is None or end_s is None or end_s <= start_s:
        return None
    return {
        "start_s": float(start_s),
        "end_s": float(end_s),
        "percent": percent_frozen(times_s, frozen, start_s, end_s),
    }


def _trial_end(trial: dict) -> float:
    ends = [t for t in (trial.get("cs_offset_s"), trial.get("us_offset_s")) if t is not None]
    if not ends:
        raise ValueError(f"trial {trial.get('index')} has neither cs_offset_s nor us_offset_s")
    return max(ends)


def freezing_by_epoch(
    times_s: np.ndarray,
    frozen: np.ndarray,
    trials: Sequence[dict],
    phases: Sequence[dict],
    pre_s: float | None = None,
) -> dict[str, list[dict]]:
    """Percent freezing per trial epoch and per phase. Every epoch is ``[start_s, end_s)``.

    Returns ``{"trials": [...], "phases": [...]}``. Each trial is ``{"index", "phase", "cs",
    "us", "epochs"}`` and each phase ``{"name", "start_s", "end_s", "epochs"}``; ``epochs`` maps
    an epoch name to ``{"start_s", "end_s", "percent"}``, or to None when that epoch does not
    exist. Trial epochs:

    - ``pre``: ``[cs_onset - L, cs_onset)`` with ``L = pre_s`` if given, else the CS duration;
      clipped at 0. It may reach into the previous phase or trial: it is the animal's state
      just before the tone.
    - ``cs``: ``[cs_onset, cs_offset)``.
    - ``us``: ``[us_onset, us_offset)`` (None without a US).
    - ``iti``: ``[trial end, next trial's cs_onset)`` where the trial ends with its last
      stimulus offset; only for a next trial in the same phase. The last trial of a phase has
      none: the rest of its phase is the phase's ``post``.

    Phase epochs: ``all`` over the whole phase, ``baseline`` the
    same for a phase with no trials (None otherwise), ``post`` from the end of its last trial
    to the phase end (None for a phase with no trials).

    ``percent`` is the percent of samples with time in the epoch that are frozen, None when no
    sample falls in it. ``times_s`` must be ascending and aligned with ``frozen``.
    """
    times_s = np.asarray(times_s, dtype=float)
    frozen = np.asarray(frozen, dtype=bool)
    if times_s.shape != frozen.shape:
        raise ValueError(f"times_s {times_s.shape} and frozen {frozen.shape} differ in shape")
    out_trials = []
    ordered = sorted(trials, key=lambda t: t["cs_onset_s"])
    for k, trial in enumerate(ordered):
        onset, offset = trial["cs_onset_s"], trial["cs_offset_s"]
        length = pre_s if pre_s is not None else offset - onset
        nxt = ordered[k + 1] if k + 1 < len(ordered) else None
        iti_end = nxt["cs_onset_s"] if nxt and nxt.get("phase") == trial.get("phase") else None
        out_trials.append(
            {
                "index": trial["index"],
                "phase": trial.get("phase"),
                "cs": trial.get("cs"),
                "us": trial.get("us"),
                "epochs": {
                    "pre": _epoch(times_s, frozen, max(0.0, onset - length), onset),
                    "cs": _epoch(times_s, frozen, onset, offset),
                    "us": _epoch(
                        times_s, frozen, trial.get("us_onset_s"), trial.get("us_offset_s")
                    ),
                    "iti": _epoch(times_s, frozen, _trial_end(trial), iti_end),
                },
            }
        )
    out_phases = []
    for phase in phases:
        mine = [t for t in ordered if t.get("phase") == phase["name"]]
        whole = _epoch(times_s, frozen, phase["start_s"], phase["end_s"])
        post = _epoch(times_s, frozen, _trial_end(mine[-1]), phase["end_s"]) if mine else None
        out_phases.append(
            {
                "name": phase["name"],
                "start_s": float(phase["start_s"]),
                "end_s": float(phase["end_s"]),
                "epochs": {"all": whole, "baseline": None if mine else whole, "post": post},
            }
        )
    return {"trials": out_trials, "phases": out_phases}


__all__ = [
    "FreezingParams",
    "FreezingScore",
    "LiveFreezing",
    "MotionScorer",
    "PolygonRegion",
    "RectRegion",
    "Region",
    "auto_threshold",
    "counts_to_steps",
    "encoder_speed",
    "freezing_by_epoch",
    "min_frames",
    "motion_index",
    "otsu_threshold",
    "percent_frozen",
    "score_freezing",
    "score_locomotion_freezing",
    "score_motion",
]
