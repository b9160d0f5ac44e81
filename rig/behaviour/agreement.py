"""How well a freezing score matches a reference (the simulated truth, or a human scorer).

Frame agreement alone flatters a scorer when one state dominates: a scorer that never says
"freezing" agrees on 85 % of frames of a session with 15 % freezing. So the comparison also
gives Cohen's kappa (0 for any constant scorer, 1 for perfect agreement), the error of the
percent freezing per epoch (what a study reports), and where each reference bout's onset was
placed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ONSET_TOLERANCE_FRAMES = 2


def bout_spans(frozen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive) frame of every bout of True."""
    edges = np.diff(np.concatenate(([0], np.asarray(frozen, bool).view(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def onset_errors(scored: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per reference bout: the first overlapping scored bout's onset minus the reference's, in
    frames (negative: early); NaN when no scored bout overlaps it (a missed bout)."""
    ref_start, ref_end = bout_spans(reference)
    got_start, got_end = bout_spans(scored)
    out = np.full(len(ref_start), np.nan)
    for k, (a, b) in enumerate(zip(ref_start, ref_end, strict=True)):
        hit = np.flatnonzero((got_start < b) & (got_end > a))
        if len(hit):
            out[k] = got_start[hit[0]] - a
    return out


def cohen_kappa(scored: np.ndarray, reference: np.ndarray) -> float:
    """Agreement beyond chance: ``(p_o - p_e) / (1 - p_e)``; 0 for a constant scorer."""
    s, r = np.asarray(scored, bool), np.asarray(reference, bool)
    p_o = float(np.mean(s == r))
    p_s, p_r = float(s.mean()), float(r.mean())
    p_e = p_s * p_r + (1 - p_s) * (1 - p_r)
    return 1.0 if p_e == 1 else (p_o - p_e) / (1 - p_e)


@dataclass(frozen=True)
class Agreement:
    """A score against its reference."""

    frames: int
    reference_freezing: float  # fraction of frames
    frame_agreement: float
    kappa: float
    epoch_error_pp: list[float]  # |scored - reference| percent freezing, per epoch given
    bouts: int
    onsets_within_tolerance: float  # fraction of reference bouts (missed ones count against)
    onset_error_median_frames: float

    @property
    def epoch_error_pp_max(self) -> float:
        return max(self.epoch_error_pp, default=0.0)

    def as_dict(self) -> dict[str, float | int | list[float]]:
        return {**self.__dict__, "epoch_error_pp_max": self.epoch_error_pp_max}


def compare(
    scored: np.ndarray,
    reference: np.ndarray,
    times_s: np.ndarray,
    epochs_s: Sequence[tuple[float, float]] = (),
) -> Agreement:
    """``scored`` against ``reference`` (both per frame at ``times_s``); ``epochs_s`` are the
    ``[start, end)`` windows whose percent freezing is compared (e.g. every CS)."""
    scored, reference = np.asarray(scored, bool), np.asarray(reference, bool)
    times_s = np.asarray(times_s, float)
    errors = []
    for start, end in epochs_s:
        inside = (times_s >= start) & (times_s < end)
        if inside.any():
            errors.append(100 * abs(float(scored[inside].mean() - reference[inside].mean())))
    onsets = onset_errors(scored, reference)
    found = onsets[np.isfinite(onsets)]
    return Agreement(
        frames=len(scored),
        reference_freezing=float(reference.mean()) if len(reference) else 0.0,
        frame_agreement=float(np.mean(scored == reference)) if len(scored) else 1.0,
        kappa=cohen_kappa(scored, reference),
        epoch_error_pp=errors,
        bouts=len(onsets),
        onsets_within_tolerance=(
            float(np.mean(np.abs(np.nan_to_num(onsets, nan=np.inf)) <= ONSET_TOLERANCE_FRAMES))
            if len(onsets)
            else 1.0
        ),
        onset_error_median_frames=float(np.median(found)) if len(found) else float("nan"),
    )


__all__ = ["Agreement", "bout_spans", "cohen_kappa", "compare", "onset_errors"]
