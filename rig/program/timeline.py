"""The timeline compiler: protocol + seed -> the exact stimulus onsets and offsets in seconds.

Deterministic for a given protocol and seed. Each phase draws from its own random stream
(``seed``, phase index), so editing one phase never changes the draws of another.

Semantics (design section 4): phases run in order. A trial is its CS onset, an optional US
(by default co-terminating with the CS; ``us_onset_s`` counts from CS onset, past the CS end
for trace conditioning), then the ITI, measured from the end of the trial's last stimulus to
the next CS onset. ``pre_s`` comes before a phase's first CS, ``post_s`` after its last
stimulus. A phase without trials lasts ``duration_s``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from rig.files.protocol import DEFAULT_MAX_CONSECUTIVE, Iti, Phase, Protocol, TrialEntry

TIME_DECIMALS = 6  # microseconds: far below a DAQ sample, and exact in JSON


@dataclass(frozen=True)
class PlannedTrial:
    """One trial on the session clock (seconds from the start trigger)."""

    index: int  # 0-based across the session
    phase: str
    phase_trial: int  # 0-based within its phase
    cs: str
    us: str | None
    cs_onset_s: float
    cs_offset_s: float
    us_onset_s: float | None
    us_offset_s: float | None
    iti_after_s: float | None  # None after a phase's last trial
    entry: int = -1  # index of the phase's trial entry it expands (-1: not recorded)

    @property
    def end_s(self) -> float:
        return max(self.cs_offset_s, self.us_offset_s or 0.0)


@dataclass(frozen=True)
class PhaseSpan:
    name: str
    start_s: float
    end_s: float
    n_trials: int


@dataclass(frozen=True)
class Timeline:
    """Everything the session will deliver, in order."""

    protocol: str
    seed: int
    duration_s: float
    phases: tuple[PhaseSpan, ...]
    trials: tuple[PlannedTrial, ...]

    @property
    def shocks(self) -> list[PlannedTrial]:
        return [t for t in self.trials if t.us is not None]

    def phase_at(self, t_s: float) -> PhaseSpan | None:
        for span in self.phases:
            if span.start_s <= t_s < span.end_s:
                return span
        return None

    def to_dict(self) -> dict:
        return {
            "protocol": self.protocol,
            "seed": self.seed,
            "duration_s": self.duration_s,
            "phases": [asdict(p) for p in self.phases],
            "trials": [asdict(t) for t in self.trials],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Timeline:
        return cls(
            protocol=data["protocol"],
            seed=data["seed"],
            duration_s=data["duration_s"],
            phases=tuple(PhaseSpan(**p) for p in data["phases"]),
            trials=tuple(PlannedTrial(**t) for t in data["trials"]),
        )


def _round(t: float) -> float:
    return round(t, TIME_DECIMALS)


def trial_order(phase: Phase, rng: np.random.Generator) -> list[TrialEntry]:
    """The phase's trial entries expanded by ``repeat`` and put in the phase's order."""
    entries = phase.trials or []
    kinds = [i for i, e in enumerate(entries) for _ in range(e.repeat)]
    if phase.order == "shuffled":
        kinds = [kinds[i] for i in rng.permutation(len(kinds))]
    elif phase.order == "pseudorandom":
        kinds = _pseudorandom(kinds, phase.max_consecutive or DEFAULT_MAX_CONSECUTIVE, rng)
    return [entries[k] for k in kinds]


def _pseudorandom(kinds: list[int], max_run: int, rng: np.random.Generator) -> list[int]:
    """A random order with no more than ``max_run`` of a kind in a row.

    Built one trial at a time, drawing among the kinds still allowed with weights
    proportional to what is left, and never leaving the rest infeasible; validation has
    already checked that some order exists. O(trials x kinds): whether a pick leaves the rest
    feasible depends only on the largest counts (see :func:`_allowed`), so there are no
    retries and no search, whatever the input.
    """
    ids = sorted(set(kinds))
    counts = np.array([kinds.count(k) for k in ids], np.int64)
    order: list[int] = []
    run_kind, run = -1, 0  # the kind at the end of the order (its position in ids) and its run
    for _ in range(len(kinds)):
        candidates = np.flatnonzero(_allowed(counts, run_kind, run, max_run))
        weights = counts[candidates].astype(float)
        pick = int(candidates[int(rng.choice(len(candidates), p=weights / weights.sum()))])
        run = run + 1 if pick == run_kind else 1
        run_kind = pick
        counts[pick] -= 1
        order.append(ids[pick])
    return order


def _allowed(counts: np.ndarray, run_kind: int, run: int, max_run: int) -> np.ndarray:
    """Which kinds can come next and still leave an order for the rest.

    After a pick, ``total`` trials remain; a kind with ``n`` of them left is separable when
    ``n <= (total - n + 1) * max_run``, less the run it is already in. For a kind that is
    not picked that reads ``n * (max_run + 1) <= (total + 1) * max_run`` with ``total`` one
    less than now: at most one kind can break it, and then it alone may come next. For the
    picked kind it holds whenever the state before was feasible, except for the kind at the
    end of the order, whose run grows."""
    total = int(counts.sum()) - 1  # after the pick
    allowed = counts > 0
    if total == 0:
        return allowed
    crowded = counts * (max_run + 1) > (total + 1) * max_run  # cannot wait one more trial
    if crowded.sum() > 1:
        return np.zeros_like(allowed)
    if crowded.any():
        allowed &= crowded
    if run_kind >= 0 and allowed[run_kind]:
        n = int(counts[run_kind]) - 1
        if run >= max_run or n > (total - n + 1) * max_run - (run + 1):
            allowed[run_kind] = False
    # every other pick starts a run of 1: separable iff n - 1 <= (total - n + 2) * max_run - 1
    others = (counts - 1) > (total - counts + 2) * max_run - 1
    if run_kind >= 0:
        others[run_kind] = False
    return allowed & ~others


def draw_iti(iti: Iti, rng: np.random.Generator) -> float:
    """One inter-trial interval in seconds."""
    if iti.fixed is not None:
        return iti.fixed
    if iti.uniform is not None:
        low, high = iti.uniform
        return float(rng.uniform(low, high))
    e = iti.exponential
    assert e is not None
    # A truncated exponential with the given mean of the untruncated draw, by rejection.
    for _ in range(10_000):
        value = e.min + float(rng.exponential(max(e.mean - e.min, 1e-9)))
        if value <= e.max:
            return value
    return e.max


def compile_timeline(protocol: Protocol) -> Timeline:
    """Compile a validated protocol into its exact timeline."""
    t = 0.0
    spans: list[PhaseSpan] = []
    trials: list[PlannedTrial] = []
    for phase_index, phase in enumerate(protocol.phases):
        start = t
        if phase.trials is None:
            assert phase.duration_s is not None
            t += phase.duration_s
        else:
            rng = np.random.default_rng([protocol.seed, phase_index])
            t = _compile_trials(protocol, phase, t, rng, trials)
        spans.append(PhaseSpan(phase.name, _round(start), _round(t), phase.n_trials))
    return Timeline(protocol.protocol, protocol.seed, _round(t), tuple(spans), tuple(trials))


def _compile_trials(
    protocol: Protocol,
    phase: Phase,
    t: float,
    rng: np.random.Generator,
    out: list[PlannedTrial],
) -> float:
    ordered = trial_order(phase, rng)
    entry_index = {id(e): i for i, e in enumerate(phase.trials or [])}
    t += phase.pre_s
    for k, entry in enumerate(ordered):
        cs = protocol.stimuli[entry.cs]
        onset = _round(t)
        offset = _round(t + cs.duration_s)
        us_on = us_off = None
        if entry.us is not None:
            us = protocol.stimuli[entry.us]
            delay = entry.us_onset_s
            if delay is None:
                delay = cs.duration_s - us.duration_s
            us_on = _round(t + delay)
            us_off = _round(t + delay + us.duration_s)
        end = max(offset, us_off or 0.0)
        last = k == len(ordered) - 1
        iti = None if last else _round(draw_iti(phase.iti_s, rng))  # type: ignore[arg-type]
        out.append(
            PlannedTrial(
                index=len(out),
                phase=phase.name,
                phase_trial=k,
                cs=entry.cs,
                us=entry.us,
                cs_onset_s=onset,
                cs_offset_s=offset,
                us_onset_s=us_on,
                us_offset_s=us_off,
                iti_after_s=iti,
                entry=entry_index[id(entry)],
            )
        )
        t = end + (iti or 0.0)
    return t + phase.post_s
