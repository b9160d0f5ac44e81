"""The frame table: the stimulus and behaviour state at every two-photon frame.

One row per two-photon frame (the rows of ``imaging/0``; for a frame-clock-only microscope, one
row per recorded frame-clock edge; with no imaging at all, one row per behaviour video frame).
Every time is on the session clock (the DAQ's), taken from the recorded edges:

- ``time_s``: the frame's timestamp (NaN for a frame without a recorded edge);
- ``phase``, ``trial``: the protocol phase at that time, and the trial in progress (from its CS
  onset to the next trial's CS onset in the same phase; -1 outside any trial);
- ``cs``: the name of the CS sounding at the frame, ``cs_plus_on``/``cs_minus_on``/``shock_on``:
  1 while a CS+ / CS- / US is on (``[onset, offset)`` of its measured times), else 0;
- ``motion_index``, ``wheel_speed_cm_s``, ``freezing``: the stored motion index, wheel speed and
  scored freezing at the nearest scored time (NaN when not stored or further than 1.5 sample
  periods away);
- ``true_freezing``: the simulated animal's freezing from ``truth/`` (NaN on a real rig).

Which CS is the CS+ comes from the protocol's trial roles (:func:`cs_roles`), not from names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rig.data.folder import SessionFolder
from rig.files.protocol import Protocol
from rig.program.schedule import FRAME_CLOCK, IMAGING, VIDEO
from rig.program.timeline import PhaseSpan, Timeline

CS_PLUS, CS_MINUS, CS_OTHER = "cs_plus", "cs_minus", "cs"
COLUMNS = (
    "frame",
    "time_s",
    "phase",
    "trial",
    "cs",
    "cs_plus_on",
    "cs_minus_on",
    "shock_on",
    "motion_index",
    "wheel_speed_cm_s",
    "freezing",
    "true_freezing",
)
RESAMPLE_TOLERANCE = 1.5  # in sample periods of the resampled series


def cs_roles(protocol: Protocol) -> dict[str, str]:
    """Map every CS of ``protocol`` to ``cs_plus``, ``cs_minus`` or ``cs`` (role unknown).

    A CS paired with a US in any trial is the CS+, and every other CS the CS-. A protocol
    without a US (habituation, recall, extinction) has no pairing to go by: a name containing
    "plus" (``cs_plus``, ``CSPlus``) marks the CS+, and "minus" or a trailing "-" (``CS-``) the
    CS-; when only one of the two is so named and exactly one other CS remains, that one takes
    the other role. Anything still undecided is ``cs``.
    """
    entries = [e for phase in protocol.phases for e in phase.trials or []]
    names = list(dict.fromkeys(e.cs for e in entries))
    paired = {e.cs for e in entries if e.us is not None}
    if paired:
        return {n: CS_PLUS if n in paired else CS_MINUS for n in names}
    roles = {n: _role_from_name(n) for n in names}
    unknown = [n for n, r in roles.items() if r == CS_OTHER]
    known = set(roles.values()) - {CS_OTHER}
    if len(known) == 1 and len(unknown) == 1:
        roles[unknown[0]] = CS_MINUS if known == {CS_PLUS} else CS_PLUS
    return roles


def _role_from_name(name: str) -> str:
    text = name.lower()
    if "plus" in text:
        return CS_PLUS
    if "minus" in text or re.search(r"[a-z0-9]-$", text):
        return CS_MINUS
    return CS_OTHER


@dataclass(frozen=True)
class StimulusInterval:
    """One delivered stimulus, ``[start_s, stop_s)`` on the session clock."""

    kind: str  # "cs" | "us"
    stimulus: str
    role: str  # cs_plus | cs_minus | cs | us
    trial: int
    phase: str
    start_s: float
    stop_s: float


def stimulus_intervals(
    events: list[dict[str, Any]], timeline: Timeline, roles: dict[str, str]
) -> list[StimulusInterval]:
    """Every stimulus with a measured onset, from the events.

    The offset is the measured one; a stimulus whose offset was never logged (the session
    ended during it) ends at the planned offset or at the session's end, whichever is first.
    """
    planned = {t.index: t for t in timeline.trials}
    ends = [e["t_s"] for e in events if e.get("kind") == "session_end"]
    session_end = ends[-1] if ends else np.inf
    onsets: dict[tuple[int, str], dict[str, Any]] = {}
    offsets: dict[tuple[int, str], float] = {}
    for e in events:
        kind, trial = e.get("kind"), e.get("trial")
        if trial is None or kind not in ("cs_on", "cs_off", "us_on", "us_off"):
            continue
        which, edge = kind.split("_")
        if edge == "on":
            onsets.setdefault((trial, which), e)
        else:
            offsets[(trial, which)] = float(e["t_s"])
    out = []
    for (trial, which), e in sorted(onsets.items(), key=lambda kv: kv[1]["t_s"]):
        stop = offsets.get((trial, which))
        if stop is None:
            plan = getattr(planned[trial], f"{which}_offset_s") if trial in planned else None
            stop = min(plan if plan is not None else np.inf, session_end)
        stimulus = e.get("stimulus") or ""
        role = "us" if which == "us" else roles.get(stimulus, CS_OTHER)
        out.append(
            StimulusInterval(
                which, stimulus, role, int(trial), e.get("phase") or "", float(e["t_s"]), stop
            )
        )
    return out


@dataclass
class FrameTable:
    """The per-frame table: ``columns`` maps each name of :data:`COLUMNS` to one array."""

    stream: str  # "imaging", "frame_clock" (edges only) or "video"
    columns: dict[str, np.ndarray]
    roles: dict[str, str] = field(default_factory=dict)
    intervals: list[StimulusInterval] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.columns["frame"])


def frame_times(folder: SessionFolder) -> tuple[str, np.ndarray]:
    """The rows of the frame table: (stream, session-clock times) as the module doc says."""
    imaging = folder.stream(IMAGING)
    stamps = imaging.timestamps_s() if imaging is not None else None
    if stamps is not None and len(stamps):
        return IMAGING, stamps
    clock = folder.rising_edges(FRAME_CLOCK)
    if clock is not None and len(clock):
        return "frame_clock", clock / folder.attrs.sample_rate_hz
    video = folder.stream(VIDEO)
    stamps = video.timestamps_s() if video is not None else None
    return VIDEO, stamps if stamps is not None else np.empty(0)


def resample_nearest(
    times_s: np.ndarray, src_times_s: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """``values`` (at ``src_times_s``) at the nearest source time to each of ``times_s``.

    NaN where the nearest source sample is more than 1.5 median source periods away, or where
    a time is NaN.
    """
    times_s = np.asarray(times_s, float)
    out = np.full(times_s.shape, np.nan)
    src = np.asarray(src_times_s, float)
    vals = np.asarray(values, float)
    ok = np.isfinite(src)
    src, vals = src[ok], vals[ok]
    if len(src) == 0:
        return out
    order = np.argsort(src, kind="stable")
    src, vals = src[order], vals[order]
    period = float(np.median(np.diff(src))) if len(src) > 1 else np.inf
    tolerance = RESAMPLE_TOLERANCE * period
    finite = np.isfinite(times_s)
    t = times_s[finite]
    right = np.clip(np.searchsorted(src, t), 0, len(src) - 1)
    left = np.clip(right - 1, 0, len(src) - 1)
    nearest = np.where(np.abs(src[left] - t) <= np.abs(src[right] - t), left, right)
    picked = vals[nearest]
    picked[np.abs(src[nearest] - t) > tolerance] = np.nan
    out[finite] = picked
    return out


def _phases_at(times_s: np.ndarray, phases: tuple[PhaseSpan, ...]) -> np.ndarray:
    out = np.full(times_s.shape, "", dtype=object)
    for p in phases:
        out[(times_s >= p.start_s) & (times_s < p.end_s)] = p.name
    return out


def _trials_at(
    times_s: np.ndarray, phase_of: np.ndarray, timeline: Timeline, intervals: list
) -> np.ndarray:
    measured = {iv.trial: iv.start_s for iv in intervals if iv.kind == "cs"}
    out = np.full(times_s.shape, -1, np.int64)
    for t in sorted(timeline.trials, key=lambda t: t.cs_onset_s):
        onset = measured.get(t.index, t.cs_onset_s)
        out[(times_s >= onset) & (phase_of == t.phase)] = t.index
    return out


def build_frame_table(folder: SessionFolder) -> FrameTable:
    """The frame table of a finalised session folder (see the module docstring)."""
    timeline = folder.require_finalized().timeline
    stream, times = frame_times(folder)
    times = np.asarray(times, float)
    roles = cs_roles(folder.protocol())
    intervals = stimulus_intervals(folder.events(), timeline, roles)
    n = len(times)
    cs_name = np.full(n, "", dtype=object)
    on = {role: np.zeros(n, np.uint8) for role in (CS_PLUS, CS_MINUS, "us")}
    for iv in intervals:
        inside = (times >= iv.start_s) & (times < iv.stop_s)
        if iv.kind == "cs":
            cs_name[inside] = iv.stimulus
        if iv.role in on:
            on[iv.role][inside] = 1
    phase = _phases_at(times, timeline.phases)
    columns: dict[str, np.ndarray] = {
        "frame": np.arange(n, dtype=np.int64),
        "time_s": times,
        "phase": phase,
        "trial": _trials_at(times, phase, timeline, intervals),
        "cs": cs_name,
        "cs_plus_on": on[CS_PLUS],
        "cs_minus_on": on[CS_MINUS],
        "shock_on": on["us"],
    }
    scores = folder.scores()
    sources = {
        "motion_index": scores.timed(scores.motion_index) if scores else None,
        "wheel_speed_cm_s": scores.timed(scores.wheel_speed_cm_s) if scores else None,
        "freezing": scores.timed(scores.freezing) if scores else None,
        "true_freezing": _timed(folder.true_freezing()),
    }
    for name, found in sources.items():
        columns[name] = resample_nearest(times, *found) if found else np.full(n, np.nan)
    return FrameTable(stream, columns, roles, intervals)


def _timed(series: tuple[np.ndarray, np.ndarray] | None) -> tuple | None:
    """A stored (times, values) pair when both have one value per time."""
    if series is None or len(series[0]) != len(series[1]):
        return None
    return series
