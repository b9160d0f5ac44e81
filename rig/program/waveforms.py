"""Sample-exact output buffers from an :class:`~rig.program.schedule.OutputSchedule`, chunk by
chunk.

A DAQ driver asks a :class:`Synthesizer` for any range ``[start, start + n)`` of samples and
gets the sound output in volts and the digital lines as boolean arrays. Every sample is a pure
function of its absolute index, so the chunks of a long session join up exactly: synthesising
in chunks gives the same samples as synthesising in one go. Samples past the end of the
schedule are silent and low, so a driver can pad the tail of its buffer with them.

Levels become volts through the speaker calibration (:mod:`rig.files.speaker`). Conventions:

* Every sound on/off (each pip of a pip train) gets a raised-cosine ramp of ``ramp_ms``; the
  first and last samples of a sound are small but non-zero, so the first non-zero sample of
  the output is the sound's ``start_sample``.
* Tones restart at the same phase (half a sample past zero) at every pip onset, so every
  pip is identical.
* The output is hard-clipped at ``max_output_v`` whatever happens; the constructor refuses a
  schedule with a sound the rig cannot play (:func:`rig.files.speaker.sound_problems`, the check
  ``rig validate`` runs), one that would need clipping among them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rig.files.speaker import (
    NOISE_PEAK_FACTOR,
    SINE_PEAK_FACTOR,
    SoundError,
    SoundLimits,
    level_to_volts,
    sound_problems,
)
from rig.ports import Edges
from rig.program.schedule import (
    CAMERA_TRIGGER,
    IMAGING_START,
    SHOCK_GATE,
    TONE_GATE,
    OutputSchedule,
    SoundBlock,
)

DIGITAL_LINES = (SHOCK_GATE, TONE_GATE, IMAGING_START, CAMERA_TRIGGER)
"""The lines of a :class:`Chunk`: the DO lines, and the camera trigger a counter makes (the NI
driver programs that counter instead of writing its samples)."""
NOISE_BLOCK = 1 << 16  # white noise is drawn in blocks seeded by (seed, block index)


class WaveformError(SoundError):
    """The schedule cannot be played: no calibration for a sound, too loud, too high."""


@dataclass(frozen=True)
class Segment:
    """One continuous stretch of sound (a whole sound, or one pip), end exclusive."""

    start: int
    stop: int
    block: SoundBlock
    rms_v: float


@dataclass(frozen=True)
class Chunk:
    """Samples ``[start, start + n)`` of every output."""

    start: int
    sound_v: np.ndarray  # float64 volts
    lines: dict[str, np.ndarray]  # bool per digital line, keyed by DIGITAL_LINES

    @property
    def n(self) -> int:
        return len(self.sound_v)


def sound_segments(block: SoundBlock, rate: float) -> list[tuple[int, int]]:
    """The stretches ``[start, stop)`` of samples where ``block`` sounds: the whole block, or
    each pip of its pip train."""
    if block.pips is None:
        return [(block.start_sample, block.stop_sample)]
    period = rate / block.pips.rate_hz
    on = max(1, round(block.pips.on_s * rate))
    out = []
    k = 0
    while True:
        a = block.start_sample + round(k * period)
        if a >= block.stop_sample:
            return out
        out.append((a, min(a + on, block.stop_sample)))
        k += 1


def sound_stop_sample(block: SoundBlock, sample_rate_hz: float) -> int:
    """Where ``block``'s sound ends (exclusive): its stop, or the end of its last pip."""
    return sound_segments(block, float(sample_rate_hz))[-1][1] if block.pips else block.stop_sample


def _ramp(distance: np.ndarray, n_ramp: int) -> np.ndarray:
    """Raised-cosine gain for samples ``distance`` samples inside a segment's edge."""
    if n_ramp <= 0:
        return np.ones(distance.shape)
    x = np.minimum((distance + 0.5) / n_ramp, 1.0)
    return np.sin(0.5 * np.pi * x) ** 2


def _noise(seed: int, offset_start: int, n: int) -> np.ndarray:
    """Uniform white noise of unit RMS for offsets ``[offset_start, +n)`` into a sound."""
    out = np.empty(n)
    first = offset_start // NOISE_BLOCK
    last = (offset_start + n - 1) // NOISE_BLOCK
    pos = 0
    for b in range(first, last + 1):
        values = np.random.default_rng([seed, b]).uniform(-1.0, 1.0, NOISE_BLOCK)
        lo = max(offset_start - b * NOISE_BLOCK, 0)
        hi = min(offset_start + n - b * NOISE_BLOCK, NOISE_BLOCK)
        out[pos : pos + hi - lo] = values[lo:hi]
        pos += hi - lo
    return out * NOISE_PEAK_FACTOR


class Synthesizer:
    """Synthesises any chunk of a schedule's outputs. Checks the schedule when built."""

    def __init__(
        self,
        schedule: OutputSchedule,
        *,
        max_output_v: float = 10.0,
        calibration: tuple[tuple[float, float, float], ...] | None = None,
        imaging_pulse_s: float = 0.01,
    ) -> None:
        """``calibration`` overrides ``schedule.speaker_calibration`` when the schedule has none.

        Raises :class:`WaveformError` if a sound cannot be played
        (:func:`rig.files.speaker.sound_problems`).
        """
        self.schedule = schedule
        self.rate = float(schedule.sample_rate_hz)
        self.max_output_v = float(max_output_v)
        self.calibration = tuple(schedule.speaker_calibration or calibration or ())
        self.limits = self._limits()
        self.segments = self._build_segments()
        self._seg_starts = np.array([s.start for s in self.segments], np.int64)
        self._seg_stops_max = np.maximum.accumulate(
            np.array([s.stop for s in self.segments], np.int64)
        )
        self._tone = IntervalGate([(s.start, s.stop) for s in self.segments])
        self._shock = ShockGateSynth(schedule)
        imaging_start = schedule.imaging_start_sample
        self._imaging = IntervalGate(
            [(imaging_start, imaging_start + max(1, round(imaging_pulse_s * self.rate)))]
            if schedule.imaging_rate_hz is not None
            else []
        )
        self._camera = PulseTrain(
            schedule.n_samples, self.rate, schedule.camera_rate_hz, schedule.camera_pulse_s
        )

    def _build_segments(self) -> list[Segment]:
        segments = []
        for block in self.schedule.sounds:
            rms = self._check_block(block)
            for a, b in sound_segments(block, self.rate):
                segments.append(Segment(a, b, block, rms))
        segments.sort(key=lambda s: s.start)
        return segments

    def _limits(self) -> SoundLimits:
        """The rig's limits on sounds (carried by a schedule compiled for a rig), with this
        synthesiser's own facts: its sample rate, its calibration and its output range."""
        rig = self.schedule.sound_limits
        limits = rig or SoundLimits(self.rate)
        if rig is None or limits.max_volts > self.max_output_v:
            limits = replace(limits, max_volts=self.max_output_v, max_volts_key="daq.max_output_v")
        return replace(limits, sample_rate_hz=self.rate, calibration=self.calibration)

    def _check_block(self, block: SoundBlock) -> float:
        """The RMS volts of ``block``; :class:`WaveformError` if the rig cannot play it."""
        name = block.stimulus or block.kind
        limits = self.limits
        problems = sound_problems(name, block.kind, block.level_db, block.frequency_hz, limits)
        if problems:
            raise WaveformError("; ".join(f"{p.path}: {p.message}" for p in problems))
        frequency = block.frequency_hz if block.kind == "tone" else None
        return level_to_volts(
            block.level_db, frequency, limits.calibration, limits.extrapolate_octaves
        )

    def sound(self, start: int, n: int) -> np.ndarray:
        """The sound output in volts for samples ``[start, start + n)``."""
        out = np.zeros(n)
        if not self.segments or n <= 0:
            return out
        stop = start + n
        # Segments are sorted by start; skip those that ended before this chunk.
        first = int(np.searchsorted(self._seg_stops_max, start, side="right"))
        last = int(np.searchsorted(self._seg_starts, stop, side="left"))
        for seg in self.segments[first:last]:
            a, b = max(seg.start, start), min(seg.stop, stop)
            if a < b:
                out[a - start : b - start] += self._segment_samples(seg, a, b)
        return np.clip(out, -self.max_output_v, self.max_output_v, out=out)

    def _segment_samples(self, seg: Segment, a: int, b: int) -> np.ndarray:
        idx = np.arange(a, b, dtype=np.int64)
        block = seg.block
        n_ramp = round(block.ramp_ms * self.rate / 1000.0)
        envelope = np.minimum(_ramp(idx - seg.start, n_ramp), _ramp(seg.stop - 1 - idx, n_ramp))
        if block.kind == "tone":
            # Half a sample of phase, like the ramp, so no sound starts on an exact zero.
            phase = 2 * np.pi * block.frequency_hz * ((idx - seg.start + 0.5) / self.rate)
            carrier = SINE_PEAK_FACTOR * np.sin(phase)
        else:
            carrier = _noise(block.seed, a - block.start_sample, b - a)
        return seg.rms_v * envelope * carrier

    def lines(self, start: int, n: int) -> dict[str, np.ndarray]:
        """The digital lines (``DIGITAL_LINES``) as booleans for ``[start, start + n)``."""
        return {
            SHOCK_GATE: self._shock.samples(start, n),
            TONE_GATE: self._tone.samples(start, n),
            IMAGING_START: self._imaging.samples(start, n),
            CAMERA_TRIGGER: self._camera.samples(start, n),
        }

    def quietest_peak_v(self) -> float | None:
        """The peak volts of the quietest sound of the schedule (None: no sound); a recorder
        of the played sound sets its envelope threshold from it."""
        if not self.segments:
            return None
        return min(
            s.rms_v * (SINE_PEAK_FACTOR if s.block.kind == "tone" else NOISE_PEAK_FACTOR)
            for s in self.segments
        )

    def shock_gate(self, start: int, n: int) -> np.ndarray:
        """The shock gate alone for ``[start, start + n)``."""
        return self._shock.samples(start, n)

    def chunk(self, start: int, n: int) -> Chunk:
        """Every output for samples ``[start, start + n)``."""
        return Chunk(start, self.sound(start, n), self.lines(start, n))


class IntervalGate:
    """A digital line that is high on a set of sample intervals (end exclusive)."""

    def __init__(self, intervals: list[tuple[int, int]]) -> None:
        ordered = sorted((int(a), int(b)) for a, b in intervals if b > a)
        self._starts = np.array([a for a, _ in ordered], np.int64)
        self._stops = np.array([b for _, b in ordered], np.int64)
        # Intervals may overlap (a broken program): the running maximum of the stops finds
        # every interval still high at a sample.
        self._stops_max = np.maximum.accumulate(self._stops) if ordered else self._stops

    def samples(self, start: int, n: int) -> np.ndarray:
        """The line as booleans for samples ``[start, start + n)``."""
        out = np.zeros(max(n, 0), bool)
        first = int(np.searchsorted(self._stops_max, start, side="right"))
        last = int(np.searchsorted(self._starts, start + n, side="left"))
        starts, stops = self._starts[first:last].tolist(), self._stops[first:last].tolist()
        for a, b in zip(starts, stops, strict=True):
            lo, hi = max(a - start, 0), min(b - start, n)
            if lo < hi:
                out[lo:hi] = True
        return out


class PulseTrain:
    """A counter output's pulse train: a pulse of ``pulse_s`` at every frame trigger of
    :func:`rig.program.schedule.frame_trigger_samples` (``start_sample + round(k * period)``),
    so its rising edges are exactly the triggers every plan counts."""

    def __init__(
        self,
        n_samples: int,
        sample_rate_hz: float,
        rate_hz: float,
        pulse_s: float,
        start_sample: int = 0,
    ) -> None:
        self.n_samples = int(n_samples)
        self.period = float(sample_rate_hz) / float(rate_hz)
        self.start_sample = int(start_sample)
        # never wider than half a period: pulses stay apart at any rate
        self.width = max(1, min(round(pulse_s * sample_rate_hz), int(self.period // 2)))

    def samples(self, start: int, n: int) -> np.ndarray:
        """The line as booleans for samples ``[start, start + n)``."""
        n = max(n, 0)
        first = max(0, int(np.floor((start - self.width - self.start_sample) / self.period)))
        last = max(first, int(np.ceil((start + n - self.start_sample) / self.period)) + 1)
        onsets = self.start_sample + np.round(np.arange(first, last) * self.period).astype(np.int64)
        onsets = onsets[onsets < self.n_samples]
        steps = np.zeros(n + 1, np.int32)
        np.add.at(steps, np.clip(onsets - start, 0, n), 1)
        np.add.at(steps, np.clip(onsets + self.width - start, 0, n), -1)
        return np.cumsum(steps[:n]) > 0


class ShockGateSynth(IntervalGate):
    """The shock gate of a schedule, sample by sample: high for each pulse's samples."""

    def __init__(self, schedule: OutputSchedule) -> None:
        super().__init__([(p.start_sample, p.stop_sample) for p in schedule.shocks])


def find_edges(samples: np.ndarray, start_sample: int, previous: bool = False) -> Edges:
    """Transitions in a boolean sample array whose first sample is ``start_sample``.

    ``previous`` is the line's state just before the array (the last sample of the previous
    chunk), so an edge on a chunk boundary is found exactly once. An edge's sample is the first
    sample at the new level.
    """
    values = np.asarray(samples, bool)
    if values.size == 0:
        return Edges.empty()
    padded = np.concatenate(([bool(previous)], values))
    changed = np.flatnonzero(padded[1:] != padded[:-1])
    return Edges((changed + start_sample).astype(np.int64), values[changed].copy())


def edges_from_counts(counts: np.ndarray, start_sample: int, previous_count: int = 0) -> Edges:
    """Rising edges from a buffered edge counter sampled once per sample clock tick.

    ``counts`` are the running totals (uint32, wrapping) at samples ``start_sample...``;
    ``previous_count`` is the total at the sample before. An edge is placed on the first sample
    whose count includes it; k edges within one sample period give k entries at that sample.
    """
    values = np.asarray(counts, np.uint32)
    if values.size == 0:
        return Edges.empty()
    padded = np.concatenate((np.array([previous_count], np.uint32), values))
    steps = (padded[1:] - padded[:-1]).astype(np.int64)  # uint32 arithmetic wraps correctly
    where = np.flatnonzero(steps)
    samples = np.repeat(where + start_sample, steps[where]).astype(np.int64)
    return Edges(samples, np.ones(samples.size, bool))
