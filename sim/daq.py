"""A simulated DAQ: plays the compiled outputs on a simulated sample clock and records them.

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

from rig.ports import MAX_WAIT_S, DaqError, Edges, PreflightCheck
from rig.rigfile import Fault
from rig.schedule import (
    CAMERA_EXPOSURE,
    FRAME_CLOCK,
    SHOCK_GATE,
    TONE_GATE,
    OutputSchedule,
    frame_trigger_samples,
)

OUTPUT_LINES = (TONE_GATE, SHOCK_GATE)

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
        self, sample_rate_hz: float, speed: float | None = 1.0, faults: list[Fault] | None = None
    ):
        self.sample_rate_hz = sample_rate_hz
        self.speed = speed
        self.faults = list(faults or [])
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
        self._edges[TONE_GATE] = _pulses([(s.start_sample, s.stop_sample) for s in schedule.sounds])
        self._edges[SHOCK_GATE] = _pulses(
            [(p.start_sample, p.stop_sample) for p in schedule.shocks]
        )
        self._cursor = dict.fromkeys(self._edges, 0)

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

    def close(self) -> None:
        self.safe_state()

    # for the rest of the simulated rig and for tests ------------------------------
    def on_advance(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(position)`` whenever the clock moves (simulated faults use this)."""
        self._listeners.append(listener)

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


def _pulses(windows: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    samples = np.array([s for w in windows for s in w], np.int64)
    rising = np.tile([True, False], len(windows)).astype(bool)
    order = np.argsort(samples, kind="stable")
    return samples[order], rising[order]
