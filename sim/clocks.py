"""The simulated devices' own clocks: what a microscope and a camera do with the lines they see.

The simulated DAQ hands each device the samples it plays on the device's input line, chunk by
chunk, and records what the device puts out on its output line. Nothing here reads the
schedule: a device only knows its input samples and its own settings.

* :class:`MicroscopeClock`: a resonant-scanning microscope. It waits for the first rising edge
  on its start input, then after ``start_latency_s`` scans frames on its own oscillator at
  ``clock_hz`` (which is not the protocol's rate: the mirror's resonance sets it), running
  ``drift_ppm`` fast or slow against the DAQ's timebase. Each frame start is an edge of its
  frame clock output. A microscope started by hand (``free_running``) scans from sample 0.
* :class:`CameraExposures`: a triggered camera. Each rising edge on its trigger input starts an
  exposure ``exposure_latency_s`` later, give or take a Gaussian ``jitter_s``; the exposure's
  start is an edge of its exposure-out (strobe) line.

A device's output edge at session time ``t`` is recorded on the first DAQ sample at or after
``t`` (an edge counter counts an edge on the next sample clock tick). :class:`GlitchedLine`
puts the rig file's missing/extra edge faults between a device's output and the DAQ input.
"""

from __future__ import annotations

import math

import numpy as np

from rig.files.rigfile import Fault
from rig.ports import Edges
from rig.program.waveforms import find_edges

_EPS = 1e-9  # of a sample: an output edge exactly on a sample is recorded on that sample


def sample_at_or_after(t_s: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    """The DAQ sample on which an edge at session time ``t_s`` is recorded."""
    return np.ceil(np.asarray(t_s, float) * sample_rate_hz - _EPS).astype(np.int64)


class GrowingArray:
    """An int64 array appended to in pieces, amortised (a session's edges, chunk by chunk)."""

    def __init__(self, dtype: type = np.int64) -> None:
        self._data = np.empty(256, dtype)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        n = len(values)
        if self.size + n > len(self._data):
            grown = np.empty(max(2 * len(self._data), self.size + n), self._data.dtype)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : self.size + n] = values
        self.size += n

    def truncate(self, size: int) -> None:
        self.size = min(self.size, max(0, size))

    @property
    def values(self) -> np.ndarray:
        """A view of the values so far (valid until the next ``extend``)."""
        return self._data[: self.size]


class MicroscopeClock:
    """A resonant-scanning microscope's frame clock (see the module docstring)."""

    def __init__(
        self,
        sample_rate_hz: float,
        n_samples: int,
        clock_hz: float,
        drift_ppm: float = 0.0,
        start_latency_s: float = 0.0,
        free_running: bool = False,
    ) -> None:
        self.fs = float(sample_rate_hz)
        self.n_samples = int(n_samples)
        self.clock_hz = float(clock_hz)
        # its frame rate measured on the DAQ's timebase
        self.rate_on_daq_hz = self.clock_hz * (1.0 + drift_ppm * 1e-6)
        # a microscope started by hand scans from sample 0 (its phase is anyone's guess)
        self.start_latency_s = 0.0 if free_running else float(start_latency_s)
        self.started_at: int | None = 0 if free_running else None  # start edge's sample
        self._previous = False  # the start input's level before the next chunk
        self._next = 0  # next frame number to put out

    def frame_samples(self, start_sample: int, first: int, last: int) -> np.ndarray:
        """Samples of frames ``first..last-1`` after a start edge on ``start_sample``."""
        k = np.arange(first, last, dtype=np.float64)
        t0 = start_sample / self.fs + self.start_latency_s
        return sample_at_or_after(t0 + k / self.rate_on_daq_hz, self.fs)

    def predict(self, start_sample: int) -> np.ndarray:
        """Every frame of a session whose start edge is on ``start_sample`` (for the world's
        simulation, which needs the frame times before the session runs)."""
        t0 = start_sample / self.fs + self.start_latency_s
        count = max(0, math.ceil((self.n_samples / self.fs - t0) * self.rate_on_daq_hz) + 1)
        samples = self.frame_samples(start_sample, 0, count)
        return samples[samples < self.n_samples]

    def see(self, start: int, start_line: np.ndarray | None) -> np.ndarray:
        """Play ``start_line`` (its samples from ``start``; None: nothing on the input) and
        return the frame starts up to the end of those samples."""
        n = 0 if start_line is None else len(start_line)
        if self.started_at is None and start_line is not None:
            rising = find_edges(start_line, start, self._previous)
            self._previous = bool(start_line[-1]) if n else self._previous
            ups = rising.samples[rising.rising]
            if ups.size:
                self.started_at = int(ups[0])
        if self.started_at is None:
            return np.empty(0, np.int64)
        end = min(start + n, self.n_samples)
        t0 = self.started_at / self.fs + self.start_latency_s
        # frames whose start lies before the end of what was played
        last = max(self._next, math.ceil((end / self.fs - t0) * self.rate_on_daq_hz) + 1)
        samples = self.frame_samples(self.started_at, self._next, last)
        samples = samples[samples < end]
        self._next += len(samples)
        return samples


class CameraExposures:
    """A triggered camera's exposure starts (see the module docstring)."""

    def __init__(
        self,
        sample_rate_hz: float,
        exposure_latency_s: float = 0.0,
        jitter_s: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.fs = float(sample_rate_hz)
        self.latency_s = float(exposure_latency_s)
        self.jitter_s = float(jitter_s)
        self.seed = seed
        self._previous = False
        self._seen = 0  # trigger edges seen so far
        self._block: tuple[int, np.ndarray] | None = None  # the last block of jitter drawn

    def _jitter(self, first: int, count: int) -> np.ndarray:
        """The jitter of exposures ``first..first+count-1``: a pure function of the number,
        so predictions and the played session agree however the samples were chunked."""
        if self.jitter_s <= 0 or count == 0:
            return np.zeros(count)
        block = 4096
        out = np.empty(count)
        for b in range(first // block, (first + count - 1) // block + 1):
            if self._block is None or self._block[0] != b:
                rng = np.random.default_rng([self.seed, 16, b])
                self._block = (b, rng.normal(0.0, self.jitter_s, block))
            values = self._block[1]
            lo, hi = max(first, b * block), min(first + count, (b + 1) * block)
            out[lo - first : hi - first] = values[lo - b * block : hi - b * block]
        # an exposure never starts before its trigger
        return np.maximum(out, -self.latency_s)

    def exposures(self, first: int, triggers: np.ndarray) -> np.ndarray:
        """Exposure-start samples of the triggers numbered from ``first`` at ``triggers``."""
        jitter = self._jitter(first, len(triggers))
        return sample_at_or_after(np.asarray(triggers) / self.fs + self.latency_s + jitter, self.fs)

    def predict(self, triggers: np.ndarray) -> np.ndarray:
        """Every exposure of a session triggered at ``triggers`` (for the world's simulation)."""
        return self.exposures(0, triggers)

    def see(self, start: int, trigger_line: np.ndarray) -> np.ndarray:
        """Play ``trigger_line`` (its samples from ``start``); the exposures it starts."""
        found = find_edges(trigger_line, start, self._previous)
        if len(trigger_line):
            self._previous = bool(trigger_line[-1])
        triggers = found.samples[found.rising]
        out = self.exposures(self._seen, triggers)
        self._seen += len(triggers)
        return out


class GlitchedLine:
    """A device's output on its way to the DAQ input, with the rig file's edge faults.

    ``missing`` (``count`` edges from ``at_s`` never reach the input), ``extra`` (``count``
    spurious edges halfway between the last edge before ``at_s`` and the next one: a glitch),
    ``stop`` (no edge from ``at_s`` on: a cable pulled). Streaming: edges go in in order."""

    def __init__(self, faults: list[Fault], kinds: dict[str, str], sample_rate_hz: float) -> None:
        self.faults = sorted(
            (round(f.at_s * sample_rate_hz), kinds[f.kind], f.count)
            for f in faults
            if f.kind in kinds
        )
        self._pending = [list(f) for f in self.faults]
        self._last: int | None = None  # the last edge passed on (for a glitch between two)

    def pass_on(self, edges: np.ndarray) -> np.ndarray:
        """The edges the DAQ sees of the device's ``edges`` (ascending, after all before)."""
        if not self._pending:
            if len(edges):
                self._last = int(edges[-1])
            return edges
        out: list[int] = []
        for e in edges.tolist():
            keep = True
            for fault in self._pending:
                at, kind, count = fault
                if e < at or count <= 0:
                    continue
                if kind == "stop":
                    keep = False
                elif kind == "missing":
                    fault[2] -= 1
                    keep = False
                elif kind == "extra" and self._last is not None:
                    out.extend([(self._last + e) // 2] * count)
                    fault[2] = 0
            if keep:
                out.append(e)
                self._last = e
        self._pending = [f for f in self._pending if f[2] > 0 or f[1] == "stop"]
        return np.array(out, np.int64)


def edges_of(samples: np.ndarray) -> Edges:
    """Rising edges at ``samples`` (a device's pulses, as an edge counter records them)."""
    samples = np.asarray(samples, np.int64)
    return Edges(samples, np.ones(len(samples), bool))
