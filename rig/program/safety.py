"""Shock safety, checked on the samples that are played.

One verifier, :class:`ShockGateVerifier`, reads the shock gate as the DAQ plays it, sample by
sample (in chunks, as a driver writes its buffers), together with the current program (the
current the shock generator is set to, and when). It knows nothing of trials, phases or the
protocol: a gate-high run is a shock, whatever produced it. It finds every way the program
breaks the rig file's limits:

* a continuous gate-high run longer than ``max_shock_s``;
* two runs closer than ``min_shock_gap_s`` (low samples between them);
* more runs than ``max_shocks``;
* more gate-high time than ``max_shock_duty`` of any 60-s window;
* a run outside the session (a high sample at or after its last sample);
* a run at a current above ``max_current_ma``, a current changed while the gate is high, or
  a changed current set less than ``current_change_lead_s`` before the run that uses it.

``rig validate`` runs it over the whole compiled program (:func:`verify_schedule`) and turns
what it finds into protocol field paths (:func:`limit_problems`); the engine runs it again
before arming anything; and every DAQ driver runs it on each buffer chunk just before writing
it (:class:`rig.program.output_stream.OutputStream`). So a protocol that would fail at arm or at a
buffer write never validates.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from rig.files.inputfile import Problem, fmt_against
from rig.files.protocol import Protocol, Shock
from rig.files.rigfile import SafetyLimits
from rig.program.schedule import OutputSchedule, ShockPulse, samples_at_least, samples_at_most
from rig.program.timeline import PlannedTrial, Timeline

DUTY_WINDOW_S = 60.0  # max_shock_duty is over any window this long
VERIFY_CHUNK_S = 10.0  # validate and arm read the program in chunks this long
MAX_PROBLEMS = 20  # a broken protocol gets this many problems listed, then a count


@dataclass(frozen=True)
class CurrentStep:
    """The shock generator is set to ``current_ma`` at sample ``at_sample`` (-1: before the
    session starts, while arming) and stays there until the next step."""

    at_sample: int
    current_ma: float


@dataclass(frozen=True)
class Violation:
    """One limit broken by the gate runs between two samples (end exclusive)."""

    rule: str  # the safety.* key that is broken
    start_sample: int
    stop_sample: int
    message: str


def current_program(shocks: Sequence[ShockPulse]) -> tuple[CurrentStep, ...]:
    """When the engine sets each shock's current: the first before the session starts, each
    next one as soon as the shock before it has ended (the gate is low from its stop sample)."""
    steps = []
    previous_stop = -1
    for pulse in sorted(shocks, key=lambda p: p.start_sample):
        steps.append(CurrentStep(previous_stop, pulse.current_ma))
        previous_stop = max(previous_stop, pulse.stop_sample)  # every shock before has ended
    return tuple(steps)


class ShockGateVerifier:
    """Streams the shock gate's samples and reports every limit they break.

    Feed consecutive chunks with :meth:`feed` (each chunk starts where the last one ended),
    then call :meth:`finish`. Each call returns the violations found so far that it had not
    returned before. Memory is bounded by the runs inside two duty windows.
    """

    def __init__(
        self,
        limits: SafetyLimits,
        sample_rate_hz: float,
        n_samples: int,
        currents: Sequence[CurrentStep] = (),
        *,
        early: bool = True,
    ) -> None:
        """``early``: report a run as too long as soon as it is (a driver refuses the chunk
        that makes it so); else when it ends, with its whole length (for ``rig validate``)."""
        self.early = early
        self.limits = limits
        self.fs = float(sample_rate_hz)
        self.n_samples = int(n_samples)
        self.max_run = samples_at_most(limits.max_shock_s, self.fs)
        self.min_gap = samples_at_least(limits.min_shock_gap_s, self.fs)
        self.lead = samples_at_least(limits.current_change_lead_s, self.fs)
        self.window = max(1, round(DUTY_WINDOW_S * self.fs))
        self.max_high_in_window = math.floor(limits.max_shock_duty * self.window + 1e-9)
        self.currents = sorted(currents, key=lambda s: s.at_sample)
        self.position = 0
        self.runs = 0
        self._high_since: int | None = None  # start of the run in progress
        self._last_stop: int | None = None
        self._recent: deque[tuple[int, int]] = deque()  # closed runs within two windows
        self._pending_starts: deque[int] = deque()  # run starts whose forward window is open
        self._step_index = 0
        self._found: list[Violation] = []
        self._reported = 0
        for step in self.currents:  # a current above the limit is never even set
            if step.current_ma > limits.max_current_ma:
                value, limit = fmt_against(step.current_ma, limits.max_current_ma)
                at = max(step.at_sample, 0)
                self._add(
                    "max_current_ma",
                    at,
                    at + 1,
                    f"the shock current is set to {value} "
                    f"mA; this rig's limit is {limit} mA (safety.max_current_ma)",
                )

    # ------------------------------------------------------------------ input
    def feed(self, start: int, gate: np.ndarray) -> list[Violation]:
        """Take the gate's samples ``[start, start + len(gate))``; return new violations."""
        if start != self.position:
            raise ValueError(f"chunk starts at sample {start}, expected {self.position}")
        values = np.asarray(gate, bool)
        n = values.size
        if n:
            if start + n > self.n_samples and values[max(0, self.n_samples - start) :].any():
                first = self.n_samples + int(np.argmax(values[max(0, self.n_samples - start) :]))
                self._add(
                    "max_session_s",
                    first,
                    start + n,
                    "the shock gate is high after the session's last sample",
                )
            padded = np.concatenate(([self._high_since is not None], values))
            changes = np.flatnonzero(padded[1:] != padded[:-1]) + start
            for sample in changes.tolist():
                if self._high_since is None:
                    self._rise(sample)
                else:
                    self._fall(sample)
            self.position = start + n
            too_long = (
                self._high_since is not None and self.position - self._high_since > self.max_run
            )
            if self.early and too_long:
                # Reported as soon as the run is too long, not when it ends: a driver must
                # refuse the chunk that makes it so.
                self._too_long(self._high_since, self.position, open_run=True)
        self._close_windows(final=False)
        return self._new()

    def finish(self) -> list[Violation]:
        """End of the program: close the run in progress and every window still open."""
        if self._high_since is not None:
            self._fall(self.position)
        self._close_windows(final=True)
        return self._new()

    @property
    def violations(self) -> list[Violation]:
        """Everything found so far."""
        return list(self._found)

    # ------------------------------------------------------------------ runs
    def _rise(self, sample: int) -> None:
        self._high_since = sample
        self.runs += 1
        if self._last_stop is not None and sample - self._last_stop < self.min_gap:
            gap_s, limit_s = fmt_against(
                (sample - self._last_stop) / self.fs, self.limits.min_shock_gap_s
            )
            self._add(
                "min_shock_gap_s",
                self._last_stop - 1,  # the last high sample before the gap, the first after
                sample + 1,
                f"two shocks {gap_s} s apart; this rig needs at least {limit_s} s "
                "between shocks (safety.min_shock_gap_s)",
            )
        if self.runs == self.limits.max_shocks + 1:
            self._add(
                "max_shocks",
                sample,
                sample + 1,
                f"more than {self.limits.max_shocks} shocks; this rig allows "
                f"{self.limits.max_shocks} (safety.max_shocks)",
            )
        self._check_current(sample)
        if self.runs <= self.limits.max_shocks:  # past that the program is refused anyway
            self._pending_starts.append(sample)

    def _fall(self, sample: int) -> None:
        start = self._high_since
        assert start is not None
        self._high_since = None
        if sample - start > self.max_run and not self._reported_long(start):
            self._too_long(start, sample, open_run=False)
        self._last_stop = sample
        if self.runs <= self.limits.max_shocks:  # memory stays bounded whatever the gate does
            self._recent.append((start, sample))
        # A step set while this run was high changed the current mid-shock.
        for i, step in enumerate(self.currents):
            changes = i > 0 and self.currents[i - 1].current_ma != step.current_ma
            if changes and start < step.at_sample < sample:
                self._add(
                    "current_change_lead_s",
                    start,
                    sample,
                    f"the shock current is changed to {step.current_ma:g} mA while the "
                    "gate is high: shocks of different currents need "
                    f"{self.limits.current_change_lead_s:g} s between them "
                    "(safety.current_change_lead_s)",
                )
        self._check_duty_ending_at(sample)

    def _too_long(self, start: int, stop: int, open_run: bool) -> None:
        if self._reported_long(start):
            return
        length_s, limit_s = fmt_against((stop - start) / self.fs, self.limits.max_shock_s)
        more = "at least " if open_run else ""
        self._add(
            "max_shock_s",
            start,
            stop,
            f"the shock gate is high for {more}{length_s} s without a break; this rig "
            f"allows {limit_s} s (safety.max_shock_s)",
        )

    def _reported_long(self, start: int) -> bool:
        return any(v.rule == "max_shock_s" and v.start_sample == start for v in self._found)

    def _check_current(self, onset: int) -> None:
        steps = self.currents
        while self._step_index + 1 < len(steps) and steps[self._step_index + 1].at_sample <= onset:
            self._step_index += 1
        if not steps or steps[self._step_index].at_sample > onset:
            self._add("max_current_ma", onset, onset + 1, "a shock with no current set for it")
            return
        step = steps[self._step_index]
        before = steps[self._step_index - 1].current_ma if self._step_index else None
        changed = before is not None and before != step.current_ma
        if changed and step.at_sample >= 0 and onset - step.at_sample < self.lead:
            lead_s, limit_s = fmt_against(
                (onset - step.at_sample) / self.fs, self.limits.current_change_lead_s
            )
            self._add(
                "current_change_lead_s",
                step.at_sample - 1,  # the end of the shock before, the onset of this one
                onset + 1,
                f"the current changes from {before:g} to {step.current_ma:g} mA only "
                f"{lead_s} s before the shock that needs it; this rig needs "
                f"{limit_s} s (safety.current_change_lead_s)",
            )

    # ------------------------------------------------------------------ duty
    def _high_between(self, a: int, b: int) -> int:
        total = 0
        for start, stop in self._recent:
            total += max(0, min(stop, b) - max(start, a))
        if self._high_since is not None:
            total += max(0, min(self.position, b) - max(self._high_since, a))
        return total

    def _check_duty(self, a: int, b: int) -> None:
        high = self._high_between(a, b)
        if high > self.max_high_in_window:
            if any(v.rule == "max_shock_duty" and v.stop_sample > a for v in self._found):
                return  # one report per stretch of overlapping windows
            duty, limit = fmt_against(high / self.window, self.limits.max_shock_duty)
            self._add(
                "max_shock_duty",
                a,
                b,
                f"the shock gate is high {high / self.fs:g} s in {DUTY_WINDOW_S:g} s "
                f"(duty {duty}); this rig allows a duty of {limit} "
                "(safety.max_shock_duty)",
            )

    def _check_duty_ending_at(self, stop: int) -> None:
        self._check_duty(stop - self.window, stop)
        while self._recent and self._recent[0][1] <= stop - 2 * self.window:
            self._recent.popleft()

    def _close_windows(self, final: bool) -> None:
        """Windows that start at a run's onset, once the stream has passed their end."""
        while self._pending_starts and (
            final or self._pending_starts[0] + self.window <= self.position
        ):
            a = self._pending_starts.popleft()
            self._check_duty(a, a + self.window)

    # ------------------------------------------------------------------ report
    def _add(self, rule: str, start: int, stop: int, message: str) -> None:
        if len(self._found) < 10 * MAX_PROBLEMS:  # bounded, whatever the gate does
            self._found.append(Violation(rule, int(start), int(stop), message))

    def _new(self) -> list[Violation]:
        new = self._found[self._reported :]
        self._reported = len(self._found)
        return new


def verify_schedule(schedule: OutputSchedule, limits: SafetyLimits) -> ShockGateVerifier:
    """Read the whole compiled program's synthesised gate samples (the same synthesis the DAQ
    drivers write) through a verifier; its ``violations`` are every limit broken."""
    from rig.program.waveforms import ShockGateSynth

    gate = ShockGateSynth(schedule)
    verifier = ShockGateVerifier(
        limits,
        schedule.sample_rate_hz,
        schedule.n_samples,
        current_program(schedule.shocks),
        early=False,
    )
    step = max(1, round(VERIFY_CHUNK_S * schedule.sample_rate_hz))
    # One chunk past the end: a run that spills over the session's last sample is seen.
    end = schedule.n_samples + step
    for start in range(0, end, step):
        verifier.feed(start, gate.samples(start, min(step, end - start)))
    verifier.finish()
    return verifier


# ---------------------------------------------------------------------- protocol problems


MAX_SESSION_SAMPLES = 2**31
"""Samples of one session on the DAQ clock: the verifier reads every one of them (about
10 s for this many), so validation stays bounded in time whatever the rig's sample rate."""


def limit_problems(
    protocol: Protocol, timeline: Timeline, schedule: OutputSchedule, limits: SafetyLimits
) -> list[Problem]:
    """Every way ``protocol`` breaks ``limits``, as protocol field-path problems.

    Per-stimulus rules first (their field is exact), then the sample-level verifier on the
    compiled program, each violation placed at the protocol field that produced it.
    """
    problems = _stimulus_problems(protocol, schedule.sample_rate_hz, limits)
    if timeline.duration_s > limits.max_session_s:
        value, limit = fmt_against(timeline.duration_s, limits.max_session_s)
        problems.append(
            Problem(
                "phases",
                f"the session lasts {value} s; this rig allows {limit} s (safety.max_session_s)",
            )
        )
    if schedule.n_samples > MAX_SESSION_SAMPLES:
        problems.append(
            Problem(
                "phases",
                f"the session lasts {schedule.n_samples} samples of the DAQ clock; at most "
                f"{MAX_SESSION_SAMPLES} are checked and played (24 h at 24.8 kHz)",
            )
        )
    if problems:  # the program of a protocol with a bad stimulus says nothing more useful
        return problems
    verifier = verify_schedule(schedule, limits)
    placed = []
    for v in verifier.violations:
        if v.rule == "max_shocks":
            placed.append(
                Problem(
                    "phases",
                    f"{verifier.runs} shocks in the session; this rig "
                    f"allows {limits.max_shocks} (safety.max_shocks)",
                )
            )
        else:
            placed.append(_place(v, protocol, timeline, schedule))
    unique = list(dict.fromkeys(placed))
    if len(unique) > MAX_PROBLEMS:
        more = len(unique) - MAX_PROBLEMS
        unique = [*unique[:MAX_PROBLEMS], Problem("phases", f"... and {more} more like these")]
    return unique


def _stimulus_problems(protocol: Protocol, fs: float, limits: SafetyLimits) -> list[Problem]:
    problems = []
    for name, stim in protocol.stimuli.items():
        if not isinstance(stim, Shock):
            continue
        if stim.current_ma > limits.max_current_ma:
            value, limit = fmt_against(stim.current_ma, limits.max_current_ma)
            problems.append(
                Problem(
                    f"stimuli.{name}.current_ma",
                    f"{value} mA is above this rig's limit of {limit} mA (safety.max_current_ma)",
                )
            )
        if stim.duration_s > limits.max_shock_s:
            value, limit = fmt_against(stim.duration_s, limits.max_shock_s)
            problems.append(
                Problem(
                    f"stimuli.{name}.duration_s",
                    f"{value} s is above this rig's limit of {limit} s (safety.max_shock_s)",
                )
            )
        if samples_at_most(stim.duration_s, fs) < 1:
            problems.append(
                Problem(
                    f"stimuli.{name}.duration_s",
                    f"{stim.duration_s:g} s is shorter than one sample of this rig's DAQ "
                    f"({1e6 / fs:g} µs at {fs:g} Hz)",
                )
            )
    return problems


def _place(v: Violation, protocol: Protocol, timeline: Timeline, sched: OutputSchedule) -> Problem:
    """The protocol field that produced a violation, from the trials whose shocks it covers."""
    fs = sched.sample_rate_hz
    trials = {p.trial: timeline.trials[p.trial] for p in sched.shocks if p.trial >= 0}
    covered = [
        trials[p.trial]
        for p in sched.shocks
        if p.trial in trials
        and p.start_sample < max(v.stop_sample, v.start_sample + 1)
        and p.stop_sample > v.start_sample
    ]
    where = f" (at {max(v.start_sample, 0) / fs:g} s{_trial_names(covered)})"
    if not covered:
        return Problem("phases", v.message + where)
    last = covered[-1]
    phase = _phase_index(protocol, last.phase)
    if v.rule in ("min_shock_gap_s", "current_change_lead_s") and len(covered) >= 2:
        first = covered[-2]
        field = "iti_s" if first.phase == last.phase else "pre_s"
        return Problem(f"phases[{phase}].{field}", v.message + where)
    if v.rule == "max_shock_duty":
        return Problem(f"phases[{phase}].iti_s", v.message + where)
    return Problem(f"phases[{phase}].trials[{max(last.entry, 0)}]", v.message + where)


def _trial_names(trials: Iterable[PlannedTrial]) -> str:
    numbers = [t.index + 1 for t in trials]
    if not numbers:
        return ""
    if len(numbers) == 1:
        return f", trial {numbers[0]}"
    return f", trials {numbers[0]}-{numbers[-1]}"


def _phase_index(protocol: Protocol, name: str) -> int:
    return next(i for i, p in enumerate(protocol.phases) if p.name == name)


def schedule_problems(schedule: OutputSchedule, limits: SafetyLimits) -> list[str]:
    """The engine's check before arming: the same verifier on the whole program."""
    verifier = verify_schedule(schedule, limits)
    return [v.message + f" (at sample {v.start_sample})" for v in verifier.violations]
