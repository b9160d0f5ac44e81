"""A simulated DAQ: plays the compiled outputs on a simulated sample clock and records them.

The outputs are the buffers a real driver would write: the same :class:`rig.program.output_stream.
OutputStream` hands out the same verified chunks the NI driver writes, a few chunks ahead of
the clock, never past the fence of an unconfirmed shock current; the looped-back lines (shock
gate, tone gate) are recorded by edge detection on those played samples, never from the
schedule. A clock that catches up with what was written is an underflow, as on the hardware.

The clock only moves in :meth:`SimDaq.wait`: at ``speed`` times real time, or, with
``speed=None``, straight to the requested time (``--fast``: as fast as the machine allows and
deterministic). What the hardware "did" is kept in :attr:`SimDaq.output_log`, so tests can check
that every output went low when a session ended, however it ended.

Faults the DAQ itself raises from :meth:`SimDaq.wait` at their ``at_s``: ``daq_error`` (a
:class:`~rig.ports.DaqError`) and ``engine_exception`` (a plain ``RuntimeError``, standing for a
bug in the engine). The clock stops at every fault's sample, so the rest of the simulated rig
(the shock generator emulator, the cameras) sees each fault at exactly its session time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from rig.files.rigfile import Fault, SafetyLimits
from rig.ports import MAX_WAIT_S, DaqError, Edges, PreflightCheck
from rig.program.output_stream import OutputStream
from rig.program.schedule import (
    CAMERA_EXPOSURE,
    FRAME_CLOCK,
    SHOCK_GATE,
    TONE_GATE,
    OutputSchedule,
    frame_trigger_samples,
)
from rig.program.waveforms import Chunk, find_edges

OUTPUT_LINES = (TONE_GATE, SHOCK_GATE)
AHEAD_CHUNKS = 4  # the output buffer holds this many chunks, like the NI driver's

# Faults the simulated DAQ raises itself from ``wait``: a device error, and a plain exception
# that is no DeviceError (it exercises the engine's path for a bug in its own code).
RAISING_FAULTS: dict[str, tuple[type[Exception], str]] = {
    "daq_error": (DaqError, "simulated DAQ error"),
    "engine_exception": (RuntimeError, "simulated bug in the engine"),
}


class SimDaq:
    """Simulated session clock, outputs and edge recorder (implements ``rig.ports.Daq``)."""

    simulated = True

    def __init__(
        self,
        sample_rate_hz: float,
        speed: float | None = 1.0,
        faults: list[Fault] | None = None,
        *,
        limits: SafetyLimits,
        chunk_s: float = 0.5,
    ):
        self.sample_rate_hz = sample_rate_hz
        self.speed = speed
        self.faults = list(faults or [])
        self.limits = limits
        self.chunk = max(1, round(chunk_s * sample_rate_hz))
        self.stream: OutputStream | None = None
        self.schedule: OutputSchedule | None = None
        self.position = 0  # samples acquired so far
        self.started = False
        self.stopped_at: int | None = None  # sample at which safe_state() forced outputs low
        self.output_log: list[tuple[int, str, bool]] = []  # (sample, line, level)
        self.triggers: dict[str, np.ndarray] = {}  # nominal frame triggers per stream
        self._edges: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._cursor: dict[str, int] = {}
        self._t0 = 0.0
        self._listeners: list[Callable[[int], None]] = []

    # the port -----------------------------------------------------------------
    def preflight(self) -> list[PreflightCheck]:
        return [PreflightCheck("daq", "device", True, f"simulated, {self.sample_rate_hz:g} Hz")]

    def configure(self, schedule: OutputSchedule) -> None:
        self.schedule = schedule
        fs, n = schedule.sample_rate_hz, schedule.n_samples
        video = frame_trigger_samples(n, fs, schedule.camera_rate_hz)
        self.triggers["video"] = video
        self._edges[CAMERA_EXPOSURE] = (video, np.ones(len(video), bool))
        if schedule.imaging_rate_hz:
            imaging = frame_trigger_samples(
                n, fs, schedule.imaging_rate_hz, schedule.imaging_start_sample
            )
            self.triggers["imaging"] = imaging
            self._edges[FRAME_CLOCK] = self._glitch_frame_clock(imaging)
        # Silent analog output: the simulated speaker plays no samples (yet); the digital lines
        # are synthesised, verified and played exactly as the NI driver writes them.
        self.stream = OutputStream(schedule, self.limits, chunk_samples=self.chunk, sound=False)
        for line in OUTPUT_LINES:
            self._edges[line] = (np.empty(0, np.int64), np.empty(0, bool))
        self._levels = dict.fromkeys(OUTPUT_LINES, False)
        self._cursor = dict.fromkeys(self._edges, 0)
        self._top_up(0)

    def release(self, until_sample: int | None) -> None:
        """Outputs may be written up to ``until_sample`` (``None``: to the end)."""
        if self.stream is not None:
            self.stream.release(until_sample)
            self._top_up(self.position)

    def _top_up(self, target: int) -> None:
        """Write chunks until the buffer holds ``AHEAD_CHUNKS`` beyond ``target``."""
        stream = self.stream
        if stream is None or self.stopped_at is not None:
            return
        while stream.written < target + AHEAD_CHUNKS * self.chunk:
            chunk = stream.next_chunk(AHEAD_CHUNKS * self.chunk)  # raises UnsafeOutput
            if chunk is None:
                return
            self._play(chunk)

    def _play(self, chunk: Chunk) -> None:
        """The chunk's digital lines as the loopback inputs record them: their edges."""
        for line in OUTPUT_LINES:
            found = find_edges(chunk.lines[line], chunk.start, self._levels[line])
            if found.samples.size:
                samples, rising = self._edges[line]
                self._edges[line] = (
                    np.concatenate((samples, found.samples)),
                    np.concatenate((rising, found.rising)),
                )
                self._levels[line] = bool(found.rising[-1])

    def start(self) -> None:
        self._t0 = time.monotonic()
        self.started = True
        for line in OUTPUT_LINES:
            self.output_log.append((0, line, False))

    def wait(self, until_s: float) -> float:
        assert self.schedule is not None
        target = min(round(until_s * self.sample_rate_hz), self.schedule.n_samples)
        if self.speed is not None:
            elapsed = (time.monotonic() - self._t0) * self.speed * self.sample_rate_hz
            if elapsed < target:
                time.sleep(min(MAX_WAIT_S, (target - elapsed) / self.sample_rate_hz / self.speed))
                elapsed = (time.monotonic() - self._t0) * self.speed * self.sample_rate_hz
            target = min(target, max(self.position, int(elapsed)))
        # The clock never runs past a fault: it stops at the fault's sample, so whatever the
        # fault causes happens at its own session time, whatever step the caller asked for.
        for fault in sorted(self.faults, key=lambda f: f.at_s):
            at = round(fault.at_s * self.sample_rate_hz)
            if not self.position <= at <= target:
                continue
            if fault.kind in RAISING_FAULTS:
                self.position = at
                self._notify()
                error, what = RAISING_FAULTS[fault.kind]
                raise error(f"{what} at {fault.at_s:g} s (injected fault)")
            if at > self.position:
                target = at
                break
        self._top_up(target)
        assert self.stream is not None
        if target > self.stream.written:
            # The buffer ran dry: the hardware stops, holding its last sample (gate low).
            self.position = max(self.position, self.stream.written)
            self._notify()
            raise self.stream.underflow(self.position)
        self.position = max(self.position, target)
        self._notify()
        return self.position / self.sample_rate_hz

    def _notify(self) -> None:
        for listener in self._listeners:
            listener(self.position)

    def read_edges(self) -> dict[str, Edges]:
        out = {}
        limit = self.position if self.stopped_at is None else min(self.position, self.stopped_at)
        for line, (samples, rising) in self._edges.items():
            start = self._cursor[line]
            stop = int(np.searchsorted(samples, limit, side="right"))
            if stop > start:
                out[line] = Edges(samples[start:stop], rising[start:stop])
                self._cursor[line] = stop
        return out

    def safe_state(self) -> None:
        if self.stopped_at is not None:
            return
        self.stopped_at = self.position
        for line in OUTPUT_LINES:
            if line in self._edges:
                samples, rising = self._edges[line]
                keep = samples <= self.position
                samples, rising = samples[keep], rising[keep]
                if len(rising) and rising[-1]:  # high now: record it going low here
                    samples = np.append(samples, self.position)
                    rising = np.append(rising, False)
                self._edges[line] = (samples, rising)
            self.output_log.append((self.position, line, False))
        self._notify()  # devices wired to the outputs see them go low

    def close(self) -> None:
        self.safe_state()

    # for the rest of the simulated rig and for tests ------------------------------
    def on_advance(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(position)`` whenever the clock moves (simulated faults use this)."""
        self._listeners.append(listener)

    def played_edges(self, line: str) -> tuple[np.ndarray, np.ndarray]:
        """Every edge an output line has played or has written ahead (samples, rising)."""
        return self._edges.get(line, (np.empty(0, np.int64), np.empty(0, bool)))

    def level(self, line: str, sample: int) -> bool:
        """Was output ``line`` high at ``sample``, as the hardware played it?"""
        samples, rising = self._edges.get(line, (np.empty(0, np.int64), np.empty(0, bool)))
        i = int(np.searchsorted(samples, sample, side="right")) - 1
        return bool(i >= 0 and rising[i])

    def outputs_low_after(self, sample: int) -> bool:
        """True when no output is high at or after ``sample``."""
        for line in OUTPUT_LINES:
            samples, rising = self._edges.get(line, (np.empty(0), np.empty(0, bool)))
            if self.level(line, sample) or bool(rising[samples >= sample].any()):
                return False
        return True

    def _glitch_frame_clock(self, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fs = self.sample_rate_hz
        for fault in self.faults:
            at = round(fault.at_s * fs)
            i = int(np.searchsorted(edges, at))
            if fault.kind == "frame_clock_missing":
                edges = np.delete(edges, np.arange(i, min(i + fault.count, len(edges))))
            elif fault.kind == "frame_clock_extra" and 0 < i < len(edges):
                extra = (edges[i - 1] + edges[i]) // 2
                edges = np.insert(edges, i, np.full(fault.count, extra))
            elif fault.kind == "frame_clock_stop":
                edges = edges[:i]
        return edges, np.ones(len(edges), bool)
