"""Freezing: immobility scored from the motion indices (or from the wheel's speed), one rule for
live and offline scoring.

A mouse is *freezing* while nothing moves but its breathing, for at least ``min_freeze_s``.
From the video (:mod:`rig.behaviour.motion`), a frame is *still* when its motion index (frame
``t`` against ``t - gap``) is below the threshold and its step index (``t`` against ``t - 1``)
below the step threshold. A run of still frames ``[a, b)`` means the picture has not changed
since frame ``a - gap``, so the still span is ``[a - gap, b)``, unless the step index shows a
change after ``a - gap``: the span then begins at the last frame that changed (the frame in
which the animal arrived at its still pose). A span of at least ``min_freeze_s`` is freezing,
all of it.

:func:`score_motion` is the one entry point: ``rig score``, the session's own scoring at its end,
the tests and the docs all call it. :class:`LiveFreezing` applies the same rule frame by frame
during the session. The automatic threshold, the epochs and their definitions are in
``docs/freezing.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rig.behaviour.motion import gap_frames
from rig.files.freezing import FreezingParams
from rig.program.timeline import Timeline

# The automatic threshold: this fraction of the index's moving level (its 90th percentile in
# the calibration window). Head-only movements (sniffing, grooming) change 5-15 % of what a
# walking mouse changes, breathing almost nothing above the noise cutoff (docs/freezing.md).
MOVING_LEVEL_FRACTION = 0.04
DEFAULT_CALIBRATION_S = 60.0  # the calibration window when a protocol has no baseline phase


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
    step: np.ndarray | None = None,
    step_threshold: float | None = None,
) -> np.ndarray:
    """Frames that are freezing (the rule in the module docstring). Vectorised: O(n).

    ``motion`` below ``threshold`` (and ``step`` below ``step_threshold``, when given) is
    still; NaN is never still. ``gap_s`` is the motion index's comparison gap (0: none, as for
    a wheel's speed).
    """
    motion = np.asarray(motion, dtype=float)
    n = motion.size
    g = gap_frames(gap_s, fps) if gap_s > 0 else 0
    still = motion < threshold
    last_moved = None
    if step is not None:
        if step_threshold is None:
            raise ValueError("a step index needs a step threshold")
        moved = ~(np.asarray(step, dtype=float) < step_threshold)
        still &= ~moved
        last_moved = np.maximum.accumulate(np.where(moved, np.arange(n), -1))
    starts, ends = _runs(still)
    begins = np.maximum(starts - g, 0)
    if last_moved is not None and len(starts):
        before = np.where(starts > 0, last_moved[np.maximum(starts - 1, 0)], -1)
        begins = np.maximum(begins, before)
    keep = ends - begins >= min_frames(min_freeze_s, fps)
    marks = np.zeros(n + 1, dtype=np.int64)
    np.add.at(marks, begins[keep], 1)
    np.add.at(marks, ends[keep], -1)
    return np.cumsum(marks[:-1]) > 0


def calibration_window(params: FreezingParams, timeline: Timeline | None) -> tuple[float, float]:
    """The period the automatic threshold is computed from: the rig file's ``calibration_s``,
    else the protocol's first phase without trials (the baseline), else the first 60 s."""
    if params.calibration_s is not None:
        return float(params.calibration_s[0]), float(params.calibration_s[1])
    if timeline is None:
        return 0.0, math.inf
    for span in timeline.phases:
        if span.n_trials == 0:
            return span.start_s, span.end_s
    return 0.0, min(DEFAULT_CALIBRATION_S, timeline.duration_s)


def _in_window(
    values: np.ndarray, fps: float, window: Sequence[float] | None, times_s: np.ndarray | None
) -> np.ndarray:
    """The finite values whose sample falls in ``window`` ``[start, end)`` (all when None)."""
    values = np.asarray(values, dtype=float)
    if window is not None:
        start, end = window
        t = np.arange(values.size) / fps if times_s is None else np.asarray(times_s, float)
        values = values[(t >= start) & (t < end)]
    return values[np.isfinite(values)]


def auto_threshold(
    motion: np.ndarray,
    fps: float,
    window: Sequence[float] | None = None,
    times_s: np.ndarray | None = None,
) -> float:
    """A threshold from the index's own moving level in the calibration ``window``.

    The motion index of a still animal sits at a floor near zero (the cutoff is above the
    camera's noise, and a breath's movement mostly cancels over the comparison gap); any
    movement of the body raises it, a walking mouse by one to two orders of magnitude, a mouse
    that sniffs or grooms in place by a tenth of that. The threshold is
    :data:`MOVING_LEVEL_FRACTION` of the window's 90th percentile (the moving level, as long as
    the animal moved during at least a tenth of the window); it does not depend on how long
    the animal froze in the window, which may be never (a naive animal's baseline).

    Raises ``ValueError`` when the window has fewer than 10 finite values or the animal did not
    move in it (set the threshold by hand then; the index is stored, re-scoring is free).
    """
    values = _in_window(motion, fps, window, times_s)
    if values.size < 10:
        raise ValueError(f"auto threshold needs >= 10 motion values, got {values.size}")
    level = float(np.percentile(values, 90))
    if level <= 0:
        raise ValueError(
            "the animal hardly moved in the calibration window: set the threshold by hand"
        )
    return MOVING_LEVEL_FRACTION * level


def step_threshold(
    threshold: float,
    motion: np.ndarray,
    step: np.ndarray,
    fps: float,
    window: Sequence[float] | None = None,
    times_s: np.ndarray | None = None,
) -> float:
    """The step index's threshold: ``threshold`` scaled by the ratio of the two indices'
    moving levels in the window (so an automatic threshold is the same fraction of each)."""
    m = _in_window(motion, fps, window, times_s)
    s = _in_window(step, fps, window, times_s)
    level_m = float(np.percentile(m, 90)) if m.size else 0.0
    level_s = float(np.percentile(s, 90)) if s.size else 0.0
    if level_m <= 0 or level_s <= 0:
        return threshold
    return threshold * level_s / level_m


class LiveFreezing:
    """Freezing state while the session runs: push index values, get the provisional state.

    ``push`` returns True once the current still span (the rule of :func:`score_freezing`) has
    lasted ``min_freeze_s``; from then on the whole bout is freezing and :attr:`bout_start`
    says from which sample. The value returned for sample ``t`` always equals
    ``score_freezing(values[: t + 1], ...)[t]``; offline scoring of the whole trace also marks
    the first ``min_freeze_s`` of each bout, which live scoring only learns later.
    """

    def __init__(
        self,
        fps: float,
        threshold: float,
        min_freeze_s: float = 1.0,
        gap_s: float = 0.0,
        step_threshold: float | None = None,
    ) -> None:
        self.fps = float(fps)
        self.threshold = float(threshold)
        self.step_threshold = step_threshold
        self.min_freeze_s = float(min_freeze_s)
        self.gap = gap_frames(gap_s, fps) if gap_s > 0 else 0
        self.need = min_frames(min_freeze_s, fps)
        self._index = -1
        self._run = 0
        self._begin = 0
        self._last_moved = -1

    def set_thresholds(self, threshold: float, step_threshold: float | None = None) -> None:
        """Change the thresholds from the next sample on (once an auto threshold is known)."""
        self.threshold = float(threshold)
        self.step_threshold = step_threshold

    def push(self, value: float, step: float = math.nan) -> bool:
        """Add the next motion (and step) value; return whether the animal is freezing now."""
        self._index += 1
        moved = self.step_threshold is not None and not step < self.step_threshold
        if value < self.threshold and not moved:
            if self._run == 0:
                self._begin = max(self._index - self.gap, 0, self._last_moved)
            self._run += 1
        else:
            self._run = 0
        if moved:
            self._last_moved = self._index
        return self.freezing

    @property
    def freezing(self) -> bool:
        """The state after the last pushed value."""
        return self._run > 0 and self._index + 1 - self._begin >= self.need

    @property
    def bout_start(self) -> int | None:
        """Sample index where the current freezing bout began, or None when not freezing."""
        return self._begin if self.freezing else None


# --- the one scoring call ----------------------------------------------------------------


@dataclass(frozen=True)
class FreezingScore:
    """The result of scoring the motion indices: the thresholds used and the per-frame state."""

    threshold: float
    step_threshold: float | None
    frozen: np.ndarray
    auto: bool


def score_motion(
    motion: np.ndarray,
    fps: float,
    params: FreezingParams,
    times_s: np.ndarray | None = None,
    threshold: float | None = None,
    step: np.ndarray | None = None,
    window: Sequence[float] | None = None,
) -> FreezingScore:
    """Score stored motion (and step) indices with ``params``: what ``rig score`` runs.

    ``threshold`` overrides ``params.threshold``; an automatic threshold is computed over
    ``window`` (default: ``params.calibration_s``, else everything). Without a step index
    (sessions recorded before it existed), bouts are placed by the motion index alone.
    """
    if window is None and params.calibration_s is not None:
        window = params.calibration_s
    auto = threshold is None and params.threshold == "auto"
    if threshold is None:
        threshold = (
            auto_threshold(motion, fps, window, times_s) if auto else float(params.threshold)
        )
    step_thr = None
    if step is not None:
        step_thr = step_threshold(threshold, motion, step, fps, window, times_s)
    frozen = score_freezing(
        motion, fps, threshold, params.min_freeze_s, params.gap_s, step, step_thr
    )
    return FreezingScore(threshold=threshold, step_threshold=step_thr, frozen=frozen, auto=auto)


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
    - ``trace``: ``[cs_offset, us_onset)``, the trace interval of trace conditioning (a US
      given after its CS ended); None when the US overlaps the CS or there is none.
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
                    "trace": _epoch(times_s, frozen, offset, trial.get("us_onset_s")),
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
    "FreezingScore",
    "LiveFreezing",
    "auto_threshold",
    "calibration_window",
    "freezing_by_epoch",
    "min_frames",
    "percent_frozen",
    "score_freezing",
    "score_motion",
    "step_threshold",
]
