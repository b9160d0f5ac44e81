"""The output program as a DAQ driver writes it: synthesised, verified chunks behind a fence.

Every DAQ driver (the NI driver, the simulated DAQ) asks an :class:`OutputStream` for the next
chunk of samples to put in its output buffer, and writes exactly what it gets. The stream

* synthesises the samples (:class:`rig.program.waveforms.Synthesizer`, one code path for every
  driver);
* never ends a chunk with the shock gate high: a chunk stops just before a gate-high run, or
  takes the whole run and the low sample after it. With regeneration off, a buffer that runs
  dry (the host stalled or died) holds its last sample, so the gate is left low whatever the
  host does after the write;
* runs the safety verifier (:class:`rig.program.safety.ShockGateVerifier`) on the gate of each chunk
  before handing it out, and raises :class:`UnsafeOutput` instead of returning a chunk that
  breaks a limit;
* never writes past the **fence**: the onset of the first shock whose current the engine has
  not confirmed yet (:meth:`release`). A shock whose current was not read back in time is
  never in the buffer: the DAQ runs dry before it and stops with the gate low.
"""

from __future__ import annotations

import numpy as np

from rig.files.rigfile import SafetyLimits
from rig.ports import DaqError
from rig.program.safety import ShockGateVerifier, Violation, current_program
from rig.program.schedule import SHOCK_GATE, OutputSchedule
from rig.program.waveforms import Chunk, Synthesizer

_SCAN = 4096  # samples read ahead at a time to find where a gate-high run ends


class UnsafeOutput(DaqError):
    """A chunk of the output program breaks a safety limit; it was not handed out (a DAQ
    error: the session ends in the safe state)."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        found = "; ".join(f"{v.message} (at sample {v.start_sample})" for v in violations)
        super().__init__(f"refusing to write an unsafe output buffer: {found}")


class OutputStream:
    """Hands out a schedule's output samples chunk by chunk, each one verified."""

    def __init__(
        self,
        schedule: OutputSchedule,
        limits: SafetyLimits,
        *,
        chunk_samples: int,
        max_output_v: float = 10.0,
        calibration: tuple[tuple[float, float, float], ...] | None = None,
        sound: bool = True,
    ) -> None:
        """``sound=False`` leaves the analog output silent (a driver with no sound output);
        the digital lines are synthesised and verified all the same."""
        self.schedule = schedule
        self.synth = Synthesizer(schedule, max_output_v=max_output_v, calibration=calibration)
        self.verifier = ShockGateVerifier(
            limits, schedule.sample_rate_hz, schedule.n_samples, current_program(schedule.shocks)
        )
        self.chunk_samples = max(1, int(chunk_samples))
        self.sound = sound
        self.written = 0
        self.max_run = self.verifier.max_run
        onsets = sorted(p.start_sample for p in schedule.shocks)
        self.fence: int | None = onsets[0] if onsets else None

    @property
    def longest_pulse(self) -> int:
        """The longest shock pulse of the schedule, in samples (buffers must hold one whole)."""
        return max((p.stop_sample - p.start_sample for p in self.schedule.shocks), default=0)

    def release(self, until_sample: int | None) -> None:
        """Samples before ``until_sample`` may be written (``None``: all of them)."""
        if until_sample is None:
            self.fence = None
        elif self.fence is not None:
            self.fence = max(self.fence, int(until_sample))

    @property
    def at_fence(self) -> bool:
        """Everything the fence allows has been handed out."""
        return self.fence is not None and self.written >= self.fence

    def underflow(self, sample: int) -> DaqError:
        """The error for a buffer that ran dry at ``sample`` (the outputs hold it, gate low)."""
        held = " (held before a shock whose current was not confirmed)" * self.at_fence
        return DaqError(
            f"output buffer underflow at sample {sample}{held}: the outputs stopped with the "
            "shock gate low"
        )

    def next_chunk(self, space: int) -> Chunk | None:
        """The next chunk, at most ``space`` samples long, or ``None`` if nothing can be
        written now (the fence, or too little space for a whole gate-high run).

        Raises :class:`UnsafeOutput` if the chunk would break a safety limit.
        """
        start = self.written
        end = start + min(self.chunk_samples, space)
        if self.fence is not None:
            end = min(end, self.fence)
        if end <= start:
            return None
        gate = self.synth.shock_gate(start, end - start)
        if gate[-1]:
            end = self._end_outside_run(start, gate)
            if end is None or end - start > space or (self.fence is not None and end > self.fence):
                return None
        chunk = self._synthesise(start, end - start)
        violations = self.verifier.feed(start, chunk.lines[SHOCK_GATE])
        if violations:
            raise UnsafeOutput(violations)
        self.written = end
        return chunk

    def _end_outside_run(self, start: int, gate: np.ndarray) -> int | None:
        """Where a chunk that would end inside a gate-high run ends instead: just before the
        run, or (when the run starts the chunk) just after it, with one low sample."""
        lows = np.flatnonzero(~gate)
        if lows.size:
            return start + int(lows[-1]) + 1
        position = start + gate.size
        limit = start + self.max_run + 1  # no legal run is longer than this
        while position <= limit:
            ahead = self.synth.shock_gate(position, _SCAN)
            low = np.flatnonzero(~ahead)
            if low.size:
                return position + int(low[0]) + 1
            position += _SCAN
        # The run is longer than the rig allows: verify it, so the refusal says so.
        violations = self.verifier.feed(start, self.synth.shock_gate(start, limit + 1 - start))
        raise UnsafeOutput(
            violations or [Violation("max_shock_s", start, limit, "gate stuck high")]
        )

    def _synthesise(self, start: int, n: int) -> Chunk:
        if self.sound:
            return self.synth.chunk(start, n)
        return Chunk(start, np.zeros(n), self.synth.lines(start, n))
