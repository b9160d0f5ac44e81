"""Matching frames to the DAQ's recorded edges, and accounting for every frame.

Frame timestamps come only from edges recorded on the DAQ clock (design section 9): the frame
a device numbered ``k`` was exposed at its ``k``-th exposure. Recorded edges are not always one
per exposure: a glitch on the line adds an edge, a missed transition loses one. So the edges
are first laid on the grid of exposures (:func:`align_edges`): an edge off the grid (far from
a whole number of periods after the last good edge) is extra and set aside; a gap of ``n``
periods holds ``n - 1`` exposures whose edges are missing. Frame ``k`` then takes slot ``k``
(a frame the device dropped leaves a gap in its numbers, so later frames still find their own
slot); a frame whose slot has no edge gets a NaN timestamp. Every mismatch is counted and
reported (:class:`SyncReport`), never hidden.

Two kinds of stream clock. The behaviour camera is triggered by the DAQ, so its exposures
are as many as the triggers and its rate is the DAQ's; the sync step estimates the camera's
latency (exposure edge minus trigger) and its jitter. The microscope scans on its own
oscillator: the protocol's ``frame_rate_hz`` is what the user expects, the recorded frame clock
is what happened. Its rate is measured on the session clock, its start latency (first frame
clock edge minus the recorded start pulse) estimated, and its frames are accounted for against
the exposures its own clock shows (``frames_on_clock``), not against the planned count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

OFF_GRID = 0.25  # an edge this far (in periods) from the exposure grid is not an exposure
MISMATCHES_LISTED = 20  # mismatches listed one by one in a report; all are counted


@dataclass
class FrameAccounting:
    """Where every frame of one stream went."""

    stream: str
    frames_expected: int
    edges: int = 0
    received: int = 0
    written: int = 0
    dropped_by_device: int = 0  # gaps in the device's frame numbers
    dropped_by_queue: int = 0  # the writer queue was full
    without_edge: int = 0  # written frames with no recorded edge: timestamp NaN
    edges_without_frame: int = 0
    frames_on_clock: int | None = None
    """A stream on its device's own clock: the exposures that clock shows (recorded edges laid
    on its grid, missing ones counted); every frame is accounted for against these. None: a
    stream triggered by the DAQ, accounted for against ``frames_expected``."""

    @property
    def dropped(self) -> int:
        return self.dropped_by_device + self.dropped_by_queue

    @property
    def target(self) -> int:
        """The frames there should be: on the device's clock, or as planned."""
        return self.frames_expected if self.frames_on_clock is None else self.frames_on_clock

    @property
    def complete(self) -> bool:
        return (
            self.written == self.received == self.edges == self.target
            and self.dropped == 0
            and self.without_edge == 0
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "dropped": self.dropped, "complete": self.complete}

    def problems(self) -> list[str]:
        """Human-readable discrepancies (empty when every frame is accounted for)."""
        out = []
        if self.dropped_by_device:
            out.append(f"{self.dropped_by_device} frames dropped by the device")
        if self.dropped_by_queue:
            out.append(f"{self.dropped_by_queue} frames lost: writer queue full")
        if self.received - self.dropped_by_queue != self.written:
            out.append(f"{self.received - self.dropped_by_queue - self.written} frames not written")
        if self.without_edge:
            out.append(f"{self.without_edge} frames have no recorded edge")
        if self.edges != self.target:
            on_clock = " on the device's clock" if self.frames_on_clock is not None else ""
            out.append(f"{self.edges} edges recorded, {self.target} expected{on_clock}")
        return out


@dataclass
class EdgeAlignment:
    """Recorded edges laid on the grid of exposures."""

    slots: np.ndarray  # int64 sample of exposure k's edge, -1 where that edge is missing
    extra: np.ndarray  # int64 samples of recorded edges that are no exposure

    @property
    def missing(self) -> int:
        return int((self.slots < 0).sum())


def align_edges(edges: np.ndarray, nominal_period: float) -> EdgeAlignment:
    """Lay rising-edge samples on the exposure grid (see the module docstring).

    ``nominal_period`` (in samples) seeds the period; after the first good interval the period
    is the mean over every good edge so far, so a clock that runs slightly fast or slow (drift)
    never walks off the grid.
    """
    edges = np.asarray(edges, np.int64)
    if len(edges) == 0:
        return EdgeAlignment(np.empty(0, np.int64), np.empty(0, np.int64))
    if nominal_period <= 0:
        raise ValueError("nominal_period must be positive")
    slots = [int(edges[0])]
    extra: list[int] = []
    first = last = int(edges[0])
    period = float(nominal_period)
    for e in edges[1:].tolist():
        periods = (e - last) / period
        whole = round(periods)
        if whole == 0 or abs(periods - whole) > OFF_GRID:
            extra.append(e)
            continue
        slots.extend([-1] * (whole - 1))
        slots.append(e)
        last = e
        period = (last - first) / (len(slots) - 1)
    return EdgeAlignment(np.array(slots, np.int64), np.array(extra, np.int64))


@dataclass
class SyncReport:
    """How one stream's frames met its recorded edges, and how its clock behaved."""

    stream: str
    line: str
    nominal_rate_hz: float  # what the protocol asks
    clock: str = "daq"  # "daq": triggered by the DAQ; "device": the device's own oscillator
    measured_rate_hz: float | None = None  # on the session clock
    drift_ppm: float | None = None  # measured rate vs nominal, parts per million
    frames_on_clock: int = 0  # exposures the recorded clock shows (missing edges included)
    latency_s: float | None = None  # median trigger (or start pulse) -> recorded edge
    latency_sd_s: float | None = None  # its standard deviation (the device's jitter)
    latency_reference: str = ""  # what the latency is measured from
    jitter_s: float | None = None  # RMS deviation of edges from a straight line
    max_deviation_s: float | None = None
    edges_recorded: int = 0
    edges_extra: int = 0
    edges_missing: int = 0
    frames: int = 0
    frames_without_edge: int = 0  # NaN timestamp (missing edge, or a frame past the last edge)
    edges_without_frame: int = 0  # an exposure recorded, but its frame never written
    mismatches: list[dict] = field(default_factory=list)  # the first few, with session times

    @property
    def consistent(self) -> bool:
        return not (
            self.edges_extra
            or self.edges_missing
            or self.frames_without_edge
            or self.edges_without_frame
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "consistent": self.consistent}

    def problems(self) -> list[str]:
        out = []
        if self.edges_missing:
            out.append(f"{self.edges_missing} {self.line} edges missing")
        if self.edges_extra:
            out.append(f"{self.edges_extra} extra {self.line} edges ignored")
        if self.frames_without_edge:
            out.append(f"{self.frames_without_edge} frames without an edge")
        if self.edges_without_frame:
            out.append(f"{self.edges_without_frame} exposures without a frame")
        return out


@dataclass
class StreamSync:
    """Per-frame timestamps for one stream plus the report on how they were found."""

    timestamps_s: np.ndarray
    report: SyncReport


@dataclass(frozen=True)
class ClockReference:
    """What a stream's recorded edges answer to, for the latency estimate: the DAQ's trigger
    of each exposure (``triggers``), or the recorded start pulse of a device that then runs on
    its own clock (``start_sample``)."""

    what: str
    triggers: np.ndarray | None = None
    start_sample: int | None = None


def synchronise(
    stream: str,
    line: str,
    device_indices: np.ndarray,
    edges: np.ndarray,
    sample_rate_hz: float,
    nominal_rate_hz: float,
    reference: ClockReference | None = None,
) -> StreamSync:
    """Timestamp frames (by device frame number) from the rising edges of their line; with a
    ``reference``, estimate the latency of the edges after their triggers or start pulse."""
    fs = float(sample_rate_hz)
    idx = np.asarray(device_indices, np.int64)
    alignment = align_edges(edges, fs / nominal_rate_hz) if nominal_rate_hz > 0 else None
    slots = alignment.slots if alignment is not None else np.asarray(edges, np.int64)
    stamps = np.full(idx.shape, np.nan)
    inside = (idx >= 0) & (idx < len(slots))
    sample = np.full(idx.shape, -1, np.int64)
    sample[inside] = slots[idx[inside]]
    timed = sample >= 0
    stamps[timed] = sample[timed] / fs
    report = SyncReport(stream, line, float(nominal_rate_hz))
    report.edges_recorded = len(edges)
    report.frames = len(idx)
    report.frames_without_edge = int((~timed).sum())
    has_frame = np.zeros(len(slots), bool)
    has_frame[idx[inside]] = True
    report.edges_without_frame = int(((slots >= 0) & ~has_frame).sum())
    mismatches: list[dict] = []
    if alignment is not None:
        report.edges_extra = len(alignment.extra)
        report.edges_missing = alignment.missing
        mismatches += [{"kind": "extra_edge", "t_s": s / fs} for s in alignment.extra.tolist()]
        missing = np.flatnonzero(slots < 0)
        mismatches += [{"kind": "missing_edge", "exposure": int(k)} for k in missing.tolist()]
    lost = np.flatnonzero((slots >= 0) & ~has_frame)
    mismatches += [
        {"kind": "frame_missing", "exposure": int(k), "t_s": slots[k] / fs} for k in lost.tolist()
    ]
    beyond = idx[idx >= len(slots)]
    mismatches += [{"kind": "frame_without_edge", "device_index": int(k)} for k in beyond.tolist()]
    report.mismatches = mismatches[:MISMATCHES_LISTED]
    report.frames_on_clock = len(slots)
    _clock_quality(report, slots, fs)
    if reference is not None:
        _latency(report, slots, reference, fs)
    return StreamSync(stamps, report)


def _latency(report: SyncReport, slots: np.ndarray, ref: ClockReference, fs: float) -> None:
    report.latency_reference = ref.what
    if ref.triggers is not None:
        report.clock = "daq"
        n = min(len(slots), len(ref.triggers))
        k = np.flatnonzero(slots[:n] >= 0)
        if len(k):
            delay = (slots[k] - np.asarray(ref.triggers)[k]) / fs
            report.latency_s = float(np.median(delay))
            report.latency_sd_s = float(np.std(delay))
    else:
        report.clock = "device"
        if ref.start_sample is not None and len(slots) and slots[0] >= 0:
            report.latency_s = float((slots[0] - ref.start_sample) / fs)


def _clock_quality(report: SyncReport, slots: np.ndarray, fs: float) -> None:
    k = np.flatnonzero(slots >= 0)
    if len(k) < 3:
        return
    t = slots[k] / fs
    slope, intercept = np.polyfit(k.astype(float), t, 1)
    residual = t - (slope * k + intercept)
    report.measured_rate_hz = float(1.0 / slope)
    if report.nominal_rate_hz > 0:
        report.drift_ppm = float((report.measured_rate_hz / report.nominal_rate_hz - 1.0) * 1e6)
    report.jitter_s = float(np.sqrt(np.mean(residual**2)))
    report.max_deviation_s = float(np.abs(residual).max())


def frame_timestamps(
    device_indices: np.ndarray, edge_samples: np.ndarray, sample_rate_hz: float
) -> np.ndarray:
    """Seconds on the session clock for each frame, taking edge ``k`` for frame ``k`` as
    recorded (NaN where there is no such edge); :func:`synchronise` also repairs the edges."""
    idx = np.asarray(device_indices, np.int64)
    out = np.full(idx.shape, np.nan)
    ok = (idx >= 0) & (idx < len(edge_samples))
    out[ok] = np.asarray(edge_samples, np.int64)[idx[ok]] / sample_rate_hz
    return out
