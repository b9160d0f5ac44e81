"""Everything the analysis reads from a session folder, in one place.

The analysis reads a session only here, and only through the session-folder API
(:class:`rig.data.folder.SessionFolder`) and the frame table built on it: the imaging frame
times and frames, the stimuli (with their CS+/CS-/US roles), the scored freezing at every
imaging frame, and, for a simulated session, the simulator's truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import zarr

from rig.data.folder import SessionFolder
from rig.exports.frame_table import CS_MINUS, CS_PLUS, StimulusInterval, build_frame_table
from rig.files.inputfile import InputError, Problem
from rig.program.schedule import IMAGING

FRAME_BLOCK_BYTES = 64_000_000  # frames read at once: bounds memory whatever the session length
SIM_POPULATIONS = ("cs_plus", "cs_minus", "shock", "locomotion", "unrelated", "fear")
"""What ``truth/neurons_population_code`` indexes (``sim.neurons.POPULATIONS``; the core
cannot import ``sim``, a test keeps the two equal)."""


@dataclass(frozen=True)
class SimTruth:
    """A simulated session's ground truth about its neurons (``truth/neurons_*``)."""

    neuron_id: np.ndarray  # (N,) the animal's neuron identity (stable across days)
    populations: np.ndarray  # (N,) str
    conditioned_response: np.ndarray  # (N,) bool
    footprints: np.ndarray  # (H, W) int16 label image in the reference (unshifted) frame
    centers_px: np.ndarray  # (N, 2) y, x in the reference frame
    fov_offset_px: np.ndarray  # (2,) this day's rigid offset of the field of view
    motion_px: np.ndarray  # (T, 2) within-day rigid motion per imaging frame
    coupling: np.ndarray  # (N, N) [post, pre], session mean
    sound_onsets_s: np.ndarray
    sound_drive_hz: np.ndarray  # (N, S)
    shock_onsets_s: np.ndarray
    shock_drive_hz: np.ndarray  # (N, K)

    def evoked_drive_hz(self, onsets_s: np.ndarray, kind: str) -> np.ndarray:
        """Mean evoked rate (N,) over the stimuli with these onsets (``kind``: sound/shock)."""
        table_onsets = self.sound_onsets_s if kind == "sound" else self.shock_onsets_s
        table = self.sound_drive_hz if kind == "sound" else self.shock_drive_hz
        if len(onsets_s) == 0 or len(table_onsets) == 0:
            return np.zeros(len(self.neuron_id))
        idx = [int(np.argmin(np.abs(table_onsets - t))) for t in onsets_s]
        return np.nanmean(table[:, idx], axis=1)


@dataclass
class SessionData:
    """One session, as the analysis sees it."""

    folder: Path
    animal: str
    started_utc: str
    protocol: str
    simulated: bool
    frame_times_s: np.ndarray  # (T,) imaging frame times on the session clock
    intervals: list[StimulusInterval]
    freezing: np.ndarray  # (T,) scored freezing at each imaging frame (NaN: not scored)
    image_shape: tuple[int, int] | None  # (H, W) of the stored imaging frames
    _frames: zarr.Array | None = field(default=None, repr=False)
    _session: SessionFolder | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def n_frames(self) -> int:
        return len(self.frame_times_s)

    @property
    def frame_rate_hz(self) -> float:
        t = self.frame_times_s[np.isfinite(self.frame_times_s)]
        return float(1.0 / np.median(np.diff(t))) if len(t) > 1 else 30.0

    @property
    def session_folder(self) -> SessionFolder:
        """The session through the session-folder API (for the exports the analysis uses)."""
        return self._session or SessionFolder.open(self.folder)

    @property
    def has_frames(self) -> bool:
        return self._frames is not None

    def stimuli(self, role: str) -> list[StimulusInterval]:
        """The delivered stimuli of one role (``cs_plus``, ``cs_minus``, ``us``), in order."""
        return [iv for iv in self.intervals if iv.role == role]

    def frame_blocks(self, block_bytes: int = FRAME_BLOCK_BYTES) -> Iterator[np.ndarray]:
        """The imaging frames, in order, as (n, H, W) blocks of bounded size."""
        frames = self._require_frames()
        per_frame = int(np.prod(frames.shape[1:])) * frames.dtype.itemsize
        step = max(1, block_bytes // max(per_frame, 1))
        for start in range(0, self.n_frames, step):
            yield np.asarray(frames[start : min(start + step, self.n_frames)])

    def mean_image(self, max_frames: int = 3000) -> np.ndarray:
        """The mean of up to ``max_frames`` frames spread over the session (float32)."""
        frames = self._require_frames()
        idx = np.unique(
            np.linspace(0, self.n_frames - 1, min(max_frames, self.n_frames)).astype(int)
        )
        total = np.zeros(frames.shape[1:], np.float64)
        for chunk in np.array_split(idx, max(1, len(idx) // 256)):
            total += np.asarray(frames.get_orthogonal_selection((chunk,))).sum(axis=0)
        return (total / len(idx)).astype(np.float32)

    @cached_property
    def truth(self) -> SimTruth | None:
        """The simulator's truth about the neurons, or None (a real or brainless session)."""
        session = self.session_folder
        if session.truth("neurons_footprints") is None:
            return None
        stored = {}

        def get(key: str) -> np.ndarray:
            if key not in stored:
                stored[key] = session.truth(f"neurons_{key}")
            return stored[key]

        def has(key: str) -> bool:
            return get(key) is not None

        n = len(get("population_code"))
        empty = np.zeros((n, 0), np.float32)
        return SimTruth(
            neuron_id=get("neuron_id") if has("neuron_id") else np.arange(n),
            populations=np.array([SIM_POPULATIONS[c] for c in get("population_code")]),
            conditioned_response=(
                get("conditioned_response").astype(bool)
                if has("conditioned_response")
                else np.zeros(n, bool)
            ),
            footprints=get("footprints"),
            centers_px=get("centers_px"),
            fov_offset_px=(get("fov_offset_px") if has("fov_offset_px") else np.zeros(2, np.int64)),
            motion_px=get("motion_px"),
            coupling=get("coupling"),
            sound_onsets_s=get("sound_onsets_s") if has("sound_onsets_s") else np.empty(0),
            sound_drive_hz=get("sound_drive_hz") if has("sound_drive_hz") else empty,
            shock_onsets_s=get("shock_onsets_s") if has("shock_onsets_s") else np.empty(0),
            shock_drive_hz=get("shock_drive_hz") if has("shock_drive_hz") else empty,
        )

    def _require_frames(self) -> zarr.Array:
        if self._frames is None:
            raise InputError(
                str(self.folder),
                [Problem("imaging", "the session has no stored two-photon frames")],
            )
        return self._frames


def load_session(path: str | Path) -> SessionData:
    """A finalised session folder for the analysis; :class:`InputError` if it cannot be one."""
    session = SessionFolder.open(path)
    table = build_frame_table(session)  # also refuses a running or interrupted session
    if table.stream != IMAGING:
        raise InputError(
            str(session.path),
            [Problem("imaging", "no two-photon frame times (the session recorded no imaging)")],
        )
    stream = session.stream(IMAGING)
    frames = stream.frames if stream is not None else None
    times = np.asarray(table.columns["time_s"], float)
    if frames is not None and frames.shape[0] != len(times):
        frames = None  # frames and timestamps disagree: only external traces can be used
    attrs = session.attrs
    return SessionData(
        folder=session.path,
        animal=str(attrs.animal or ""),
        started_utc=str(attrs.started_utc or ""),
        protocol=str(attrs.protocol_name or ""),
        simulated=bool(attrs.simulated),
        frame_times_s=times,
        intervals=[iv for iv in table.intervals if iv.role in (CS_PLUS, CS_MINUS, "us")],
        freezing=np.asarray(table.columns["freezing"], float),
        image_shape=tuple(frames.shape[1:]) if frames is not None else None,
        _frames=frames,
        _session=session,
    )
