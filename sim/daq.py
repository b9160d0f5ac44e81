"""A simulated DAQ: plays the compiled outputs on a simulated sample clock and records them.

The outputs are the buffers a real driver would write: the same :class:`rig.program.output_stream.
OutputStream` hands out the same verified chunks the NI driver writes (the sound, the shock
gate, the tone gate, the imaging start pulse, and the camera trigger train the NI driver's
counter makes), a few chunks ahead of the clock, never past the fence of an unconfirmed shock
current. Every recorded edge comes from those played samples, never from the schedule:

* the looped-back lines (shock gate, tone gate, imaging start) by edge detection on the samples;
* with a sound loopback (``lines.sound_loopback``) the ``tone`` line from the envelope of the
  played sound, with the noise of an analog input (:mod:`rig.program.envelope`);
* the microscope's frame clock and the camera's exposures from the simulated devices
  (:mod:`sim.clocks`), driven by the start pulse and the trigger pulses they see on their
  input lines, on their own clocks (rate, drift, latency, jitter: :class:`DeviceTiming`), with
  the rig file's missing/extra edge faults between them and the DAQ.

A clock that catches up with what was written is an underflow, as on the hardware.

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
from dataclasses import dataclass

import numpy as np

from rig.files.rigfile import Fault, SafetyLimits
from rig.ports import MAX_WAIT_S, DaqError, Edges, PreflightCheck
from rig.program.envelope import EnvelopeDetector, envelope_threshold_v
from rig.program.output_stream import OutputStream
from rig.program.schedule import (
    CAMERA_EXPOSURE,
    CAMERA_TRIGGER,
    FRAME_CLOCK,
    IMAGING,
    IMAGING_START,
    SHOCK_GATE,
    TONE_GATE,
    VIDEO,
    OutputSchedule,
    frame_trigger_samples,
)
from rig.program.waveforms import Chunk, find_edges
from sim.clocks import CameraExposures, GlitchedLine, GrowingArray, MicroscopeClock

OUTPUT_LINES = (TONE_GATE, SHOCK_GATE)  # outputs whose level the safe state checks
LOOPBACK_LINES = (SHOCK_GATE, TONE_GATE, IMAGING_START)  # recorded back from the samples
AHEAD_CHUNKS = 4  # the output buffer holds this many chunks, like the NI driver's

# Faults the simulated DAQ raises itself from ``wait``: a device error, and a plain exception
# that is no DeviceError (it exercises the engine's path for a bug in its own code).
RAISING_FAULTS: dict[str, tuple[type[Exception], str]] = {
    "daq_error": (DaqError, "simulated DAQ error"),
    "engine_exception": (RuntimeError, "simulated bug in the engine"),
}
# Rig-file faults on the lines from the devices to the DAQ -> what happens on the line.
FRAME_CLOCK_FAULTS = {
    "frame_clock_missing": "missing",
    "frame_clock_extra": "extra",
    "frame_clock_stop": "stop",
}
EXPOSURE_FAULTS = {"exposure_missing": "missing", "exposure_extra": "extra"}


@dataclass(frozen=True)
class DeviceTiming:
    """How the simulated devices behind the DAQ keep time (the sim rig file's clocks).

    The defaults are ideal devices (for unit tests); the simulated rig passes the rig file's
    realistic ones (``sim.rig``, ``docs/simulation.md``)."""

    imaging_clock_hz: float | None = None
    """The microscope's frame rate on its own clock; None: the protocol's rate times
    ``1 + imaging_rate_offset_ppm * 1e-6``."""
    imaging_rate_offset_ppm: float = 0.0
    imaging_drift_ppm: float = 0.0
    """Its oscillator against the DAQ's timebase: frames come this much faster on the DAQ clock."""
    imaging_start_latency_s: float = 0.0
    """From the start pulse's rising edge to the first frame clock edge."""
    free_running_hz: float | None = None
    """A microscope started by hand: scans at this rate from sample 0 when the protocol does
    not start it."""
    exposure_latency_s: float = 0.0
    """From a camera trigger's rising edge to the start of its exposure."""
    exposure_jitter_s: float = 0.0
    """Standard deviation of that latency from exposure to exposure."""
    sound_loopback: bool = False
    """The sound output is recorded on an analog input; the tone line comes from its envelope."""
    loopback_noise_v: float = 0.0002
    """RMS noise of that analog input."""
    seed: int = 0


class _Recorded:
    """One recorded input line: its edges so far (ascending), appended chunk by chunk."""

    def __init__(self) -> None:
        self.samples = GrowingArray(np.int64)
        self.rising = GrowingArray(bool)
        self.cursor = 0  # edges handed out by read_edges

    def add(self, edges: Edges) -> None:
        if len(edges.samples):
            self.samples.extend(edges.samples)
            self.rising.extend(edges.rising)

    def rising_at(self, samples: np.ndarray) -> None:
        if len(samples):
            self.samples.extend(samples)
            self.rising.extend(np.ones(len(samples), bool))

    @property
    def high(self) -> bool:
        return bool(self.rising.size and self.rising.values[-1])


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
        timing: DeviceTiming | None = None,
    ):
        self.sample_rate_hz = sample_rate_hz
        self.speed = speed
        self.faults = list(faults or [])
        self.limits = limits
        self.timing = timing or DeviceTiming()
        self.chunk = max(1, round(chunk_s * sample_rate_hz))
        self.stream: OutputStream | None = None
        self.schedule: OutputSchedule | None = None
        self.position = 0  # samples acquired so far
        self.started = False
        self.stopped_at: int | None = None  # sample at which safe_state() forced outputs low
        self.output_log: list[tuple[int, str, bool]] = []  # (sample, line, level)
        self.configured = 0  # how many schedules were configured (devices restart on each)
        self.microscope: MicroscopeClock | None = None
        self.camera: CameraExposures | None = None
        self._frames: dict[str, GrowingArray] = {}  # each stream's frame starts, as exposed
        self._lines: dict[str, _Recorded] = {}
        self._levels: dict[str, bool] = {}
        self._glitches: dict[str, GlitchedLine] = {}
        self._envelope: EnvelopeDetector | None = None
        self._noise = np.random.default_rng([self.timing.seed, 7])
        self._t0 = 0.0
        self._listeners: list[Callable[[int], None]] = []

    # the port -----------------------------------------------------------------
    def preflight(self) -> list[PreflightCheck]:
        return [PreflightCheck("daq", "device", True, f"simulated, {self.sample_rate_hz:g} Hz")]

    def configure(self, schedule: OutputSchedule) -> None:
        self.schedule = schedule
        self.configured += 1
        self.stream = OutputStream(
            schedule, self.limits, chunk_samples=self.chunk, sound=self.timing.sound_loopback
        )
        self._lines = {line: _Recorded() for line in (*LOOPBACK_LINES, CAMERA_EXPOSURE)}
        self._levels = dict.fromkeys(LOOPBACK_LINES, False)
        self._frames = {VIDEO: GrowingArray()}
        t = self.timing
        self.camera = CameraExposures(
            self.sample_rate_hz, t.exposure_latency_s, t.exposure_jitter_s, t.seed
        )
        self._glitches = {
            CAMERA_EXPOSURE: GlitchedLine(self.faults, EXPOSURE_FAULTS, self.sample_rate_hz)
        }
        self.microscope = self._microscope(schedule)
        if self.microscope is not None:
            self._frames[IMAGING] = GrowingArray()
            self._lines[FRAME_CLOCK] = _Recorded()
            self._glitches[FRAME_CLOCK] = GlitchedLine(
                self.faults, FRAME_CLOCK_FAULTS, self.sample_rate_hz
            )
        self._envelope = None
        if t.sound_loopback:
            peak = self.stream.synth.quietest_peak_v()
            self._envelope = EnvelopeDetector(envelope_threshold_v(peak), self.sample_rate_hz)
        self._top_up(0)

    def _microscope(self, schedule: OutputSchedule) -> MicroscopeClock | None:
        t = self.timing
        if schedule.imaging_rate_hz is not None:
            rate = t.imaging_clock_hz or schedule.imaging_rate_hz * (
                1.0 + t.imaging_rate_offset_ppm * 1e-6
            )
            free = False
        elif t.free_running_hz:
            rate, free = t.free_running_hz, True
        else:
            return None
        return MicroscopeClock(
            self.sample_rate_hz,
            schedule.n_samples,
            rate,
            t.imaging_drift_ppm,
            t.imaging_start_latency_s,
            free_running=free,
        )

    def predicted_frame_starts(self, stream: str) -> np.ndarray | None:
        """Where each frame of ``stream`` will start if the outputs play as scheduled: what
        the simulated world is computed for before the session runs. The frames the devices
        actually expose are :meth:`frame_starts`."""
        schedule = self.schedule
        assert schedule is not None and self.camera is not None
        if stream == VIDEO:
            fs, n = schedule.sample_rate_hz, schedule.n_samples
            starts = self.camera.predict(frame_trigger_samples(n, fs, schedule.camera_rate_hz))
            return starts[starts < n]
        if self.microscope is None or schedule.imaging_rate_hz is None:
            return None
        start = self.microscope.started_at
        return self.microscope.predict(schedule.imaging_start_sample if start is None else start)

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
        """The chunk as the hardware plays it: the looped-back lines and the sound recorded,
        the devices on the lines fed with what they see."""
        for line in LOOPBACK_LINES:
            if line == TONE_GATE and self._envelope is not None:
                continue
            found = find_edges(chunk.lines[line], chunk.start, self._levels[line])
            self._lines[line].add(found)
            if found.samples.size:
                self._levels[line] = bool(found.rising[-1])
        if self._envelope is not None:
            recorded = chunk.sound_v
            if recorded.any():  # in silence the noise (>= 10 SD below threshold) finds nothing
                recorded = recorded + self._noise.normal(0.0, self.timing.loopback_noise_v, chunk.n)
            self._lines[TONE_GATE].add(self._envelope.feed(recorded, chunk.start))
        assert self.camera is not None
        exposures = self.camera.see(chunk.start, chunk.lines[CAMERA_TRIGGER])
        self._device_output(VIDEO, CAMERA_EXPOSURE, exposures)
        if self.microscope is not None:
            frames = self.microscope.see(chunk.start, chunk.lines[IMAGING_START])
            self._device_output(IMAGING, FRAME_CLOCK, frames)

    def _device_output(self, stream: str, line: str, starts: np.ndarray) -> None:
        """A device exposed frames at ``starts``; its output line reaches the DAQ input."""
        if self.schedule is not None:
            starts = starts[starts < self.schedule.n_samples]  # acquisition ends there
        self._frames[stream].extend(starts)
        self._lines[line].rising_at(self._glitches[line].pass_on(starts))

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

    @property
    def acquired(self) -> int:
        """The last sample the inputs recorded (the clock, or where the safe state stopped it)."""
        return self.position if self.stopped_at is None else min(self.position, self.stopped_at)

    def read_edges(self) -> dict[str, Edges]:
        out = {}
        limit = self.acquired
        for line, recorded in self._lines.items():
            samples = recorded.samples.values
            start = recorded.cursor
            stop = int(np.searchsorted(samples, limit, side="right"))
            if stop > start:
                rising = recorded.rising.values[start:stop]
                out[line] = Edges(samples[start:stop].copy(), rising.copy())
                recorded.cursor = stop
        return out

    def safe_state(self) -> None:
        if self.stopped_at is not None:
            return
        self.stopped_at = self.position
        for line in LOOPBACK_LINES:
            recorded = self._lines.get(line)
            if recorded is None:
                continue
            keep = int(np.searchsorted(recorded.samples.values, self.position, side="right"))
            recorded.samples.truncate(keep)
            recorded.rising.truncate(keep)
            if recorded.high:  # high now: record it going low here
                recorded.add(Edges(np.array([self.position]), np.zeros(1, bool)))
        for line in OUTPUT_LINES:
            self.output_log.append((self.position, line, False))
        self._notify()  # devices wired to the outputs see them go low

    def close(self) -> None:
        self.safe_state()

    # for the rest of the simulated rig and for tests ------------------------------
    def on_advance(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(position)`` whenever the clock moves (simulated faults use this)."""
        self._listeners.append(listener)

    def add_recorded_line(self, line: str, samples: np.ndarray) -> None:
        """A simulated device's own output on input ``line``: rising edges at ``samples``."""
        recorded = self._lines.setdefault(line, _Recorded())
        recorded.rising_at(np.asarray(samples, np.int64))

    def frame_starts(self, stream: str) -> np.ndarray | None:
        """The sample each frame of ``stream`` started on, as far as the devices have exposed
        them (played ahead of the clock: compare with :attr:`acquired`)."""
        frames = self._frames.get(stream)
        return None if frames is None else frames.values

    def played_edges(self, line: str) -> tuple[np.ndarray, np.ndarray]:
        """Every edge a recorded line has played or has written ahead (samples, rising)."""
        recorded = self._lines.get(line)
        if recorded is None:
            return np.empty(0, np.int64), np.empty(0, bool)
        return recorded.samples.values, recorded.rising.values

    def level(self, line: str, sample: int) -> bool:
        """Was output ``line`` high at ``sample``, as the hardware played it?"""
        samples, rising = self.played_edges(line)
        i = int(np.searchsorted(samples, sample, side="right")) - 1
        return bool(i >= 0 and rising[i])

    def outputs_low_after(self, sample: int) -> bool:
        """True when no output is high at or after ``sample``."""
        for line in OUTPUT_LINES:
            samples, rising = self.played_edges(line)
            if self.level(line, sample) or bool(rising[samples >= sample].any()):
                return False
        return True
