"""Freezing scored by hand while reviewing a session, and how the automatic score agrees.

A hand scoring is what an observer marked while watching the video back (the GUI's Review
tab): the span of session time they reviewed, and inside it the stretches they saw the animal
freeze. It is stored by name beside the automatic scorings, never over them
(:meth:`rig.data.folder.SessionFolder.write_hand_scoring`), and compared with the automatic
score frame by frame inside the reviewed span only (:func:`hand_agreement`), with the
measures of :mod:`rig.behaviour.agreement` (frame agreement, Cohen's kappa, per-CS error).
That is how a lab checks, or calibrates, the freezing threshold on its own camera.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rig.behaviour.agreement import Agreement, compare
from rig.data.folder import SessionFolder, utc_now
from rig.files.inputfile import InputError, problems_from_validation

Stretch = tuple[float, float]


class HandScoring(BaseModel):
    """One observer's scoring of part of a session (times in session seconds)."""

    model_config = ConfigDict(extra="forbid")

    scorer: str = Field(min_length=1, max_length=64)
    created_utc: str = Field(default_factory=utc_now)
    reviewed_s: Stretch
    freezing_s: list[Stretch] = Field(default_factory=list, max_length=100_000)
    note: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _inside(self) -> HandScoring:
        start, end = self.reviewed_s
        if not (0 <= start < end):
            raise ValueError("reviewed_s: the reviewed span must be [start, end) with start < end")
        self.freezing_s = merge_stretches(self.freezing_s, (start, end))
        return self

    @property
    def name(self) -> str:
        """The name it is stored under: one hand scoring per scorer."""
        return f"hand:{self.scorer}"

    def frozen_at(self, times_s: np.ndarray) -> np.ndarray:
        """Per time: inside a stretch marked as freezing."""
        times_s = np.asarray(times_s, float)
        frozen = np.zeros(len(times_s), bool)
        for start, end in self.freezing_s:
            frozen |= (times_s >= start) & (times_s < end)
        return frozen

    def reviewed_at(self, times_s: np.ndarray) -> np.ndarray:
        start, end = self.reviewed_s
        times_s = np.asarray(times_s, float)
        return (times_s >= start) & (times_s < end)


def merge_stretches(stretches: Iterable[Stretch], within: Stretch | None = None) -> list[Stretch]:
    """Stretches sorted, clipped to ``within``, empty ones dropped, overlapping ones merged."""
    out: list[list[float]] = []
    for a, b in sorted((min(a, b), max(a, b)) for a, b in stretches):
        if within is not None:
            a, b = max(a, within[0]), min(b, within[1])
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def hand_scorings(folder: SessionFolder) -> dict[str, HandScoring]:
    """The session's hand scorings, validated (:class:`InputError` naming the bad field)."""
    out = {}
    for name, record in folder.hand_scorings().items():
        try:
            out[name] = HandScoring.model_validate(record)
        except ValidationError as exc:
            where = str(folder.zarr_path)
            raise InputError(where, problems_from_validation(exc, ("hand_scores", name))) from None
    return out


def save_hand_scoring(folder: SessionFolder, scoring: HandScoring) -> str:
    """Store ``scoring`` under its name; returns the name."""
    folder.write_hand_scoring(scoring.name, scoring.model_dump(mode="json"))
    return scoring.name


def hand_agreement(folder: SessionFolder, scoring: HandScoring) -> Agreement | None:
    """The session's current automatic freezing against ``scoring``, over the frames inside
    its reviewed span, with each CS inside it as an epoch; None when the session has no
    automatic score or no scored frame falls in the span."""
    scores = folder.scores()
    timed = scores.timed(scores.freezing) if scores is not None else None
    if timed is None:
        return None
    times, auto = timed
    inside = scoring.reviewed_at(times) & np.isfinite(times)
    if not inside.any():
        return None
    start, end = scoring.reviewed_s
    epochs = [
        (max(t.cs_onset_s, start), min(t.cs_offset_s, end))
        for t in folder.attrs.timeline.trials
        if t.cs_offset_s > start and t.cs_onset_s < end
    ]
    return compare(auto[inside], scoring.frozen_at(times[inside]), times[inside], epochs)


__all__ = [
    "HandScoring",
    "hand_agreement",
    "hand_scorings",
    "merge_stretches",
    "save_hand_scoring",
]
