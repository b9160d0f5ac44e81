"""Shock limits proven on the samples that are played (issue 14).

Property tests over random protocols and rig limits:

* whatever validates, the compiled shock gate, synthesised sample by sample, breaks no limit,
  read by an independent brute-force reference written here (runs, gaps, count, duty over every
  60-s window, the session's end, currents and their lead); and whatever the reference finds
  unsafe does not validate, with every problem on a protocol field and a ``safety.`` key;
* whatever is run on the simulated rig, the emulated shock generator gave each shock at its
  own planned current, set and read back before it (its gate input is wired to the DAQ's
  played shock gate), and one ``shock_current`` event per shock records set and read-back.
"""

from __future__ import annotations

import dataclasses
import math
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rig.files.inputfile import InputError
from rig.files.protocol import LoadedProtocol, protocol_from_data
from rig.files.rigfile import RigFile, SafetyLimits, rig_from_text
from rig.program.safety import ShockGateVerifier, current_program, fmt_against, verify_schedule
from rig.program.schedule import OutputSchedule, ShockPulse
from rig.program.waveforms import ShockGateSynth
from rig.run.session import plan_from_loaded, run_session

FS = 1000.0  # a slow DAQ clock keeps the brute-force reference cheap
SETTINGS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

RIG_TEXT = """\
rig: property-rig
daq:     {driver: sim, sample_rate_hz: 1000}
shocker: {driver: sim}
camera:  {driver: sim, width: 64, height: 48, backend: direct}
speaker: {calibration: [{frequency_hz: 100, volts: 0.5, level_db: 75},
                        {frequency_hz: 400, volts: 0.5, level_db: 75}]}
safety:  {max_current_ma: 1.0, max_shock_s: 2.0, max_shocks: 20, max_session_s: 14400}
"""


@cache
def _rig() -> RigFile:
    return rig_from_text(RIG_TEXT, "property-rig.yaml")


def rig_with(limits: SafetyLimits) -> RigFile:
    rig = _rig()
    return dataclasses.replace(rig, core=rig.core.model_copy(update={"safety": limits}))


limits_st = st.builds(
    SafetyLimits,
    max_current_ma=st.sampled_from([0.3, 0.5, 1.0, 5.0]),
    max_shock_s=st.sampled_from([0.1, 0.5, 1.0, 2.0]),
    max_shocks=st.integers(0, 12),
    max_session_s=st.sampled_from([30.0, 300.0, 86_400.0]),
    min_shock_gap_s=st.sampled_from([0.001, 0.5, 1.0, 5.0]),
    max_shock_duty=st.sampled_from([0.01, 0.05, 0.1, 0.5, 1.0]),
    current_change_lead_s=st.sampled_from([0.001, 1.0, 2.0, 10.0]),
)


@st.composite
def protocols(draw) -> dict:
    """Protocol data that walks the edges: shocks that touch (ITI 0, co-terminating shocks
    filling their CS), one-sample gaps, a phase's last shock against the next phase's first,
    trace delays, and shocks of different currents close together."""
    shocks = {
        f"us{i}": {
            "type": "shock",
            "current_ma": draw(st.sampled_from([0.2, 0.3, 0.5, 0.7, 1.0, 1.0000000001])),
            "duration_s": draw(st.sampled_from([0.0004, 0.001, 0.05, 0.1, 0.5, 1.0, 2.0, 2.001])),
        }
        for i in range(draw(st.integers(1, 2)))
    }
    cs_s = draw(st.sampled_from([0.1, 0.5, 1.0, 2.0]))
    stimuli = {
        "cs": {"type": "tone", "frequency_hz": 200, "level_db": 70, "duration_s": cs_s},
        **shocks,
    }
    phases = []
    for p in range(draw(st.integers(1, 3))):
        if p > 0 and draw(st.integers(0, 4)) == 0:
            phases.append({"name": f"p{p}", "duration_s": draw(st.sampled_from([0.001, 1.0]))})
            continue
        entries = []
        for _ in range(draw(st.integers(1, 2))):
            entry = {"cs": "cs", "repeat": draw(st.integers(1, 4))}
            if draw(st.integers(0, 3)):
                entry["us"] = draw(st.sampled_from(sorted(shocks)))
                if draw(st.booleans()):
                    entry["us_onset_s"] = draw(st.sampled_from([0.0, 0.05, 1.0, 3.0]))
            entries.append(entry)
        iti = draw(
            st.one_of(
                st.sampled_from([0.0, 0.001, 0.002, 0.5, 1.0, 1.999, 2.0, 5.0, 30.0]),
                st.just({"uniform": [0.0, 3.0]}),
            )
        )
        phases.append(
            {
                "name": f"p{p}",
                "trials": entries,
                "order": draw(st.sampled_from(["sequential", "shuffled"])),
                "iti_s": iti,
                "pre_s": draw(st.sampled_from([0.0, 0.001, 1.5])),
                "post_s": draw(st.sampled_from([0.0, 2.0])),
            }
        )
    return {
        "protocol": "prop",
        "version": 1,
        "seed": draw(st.integers(0, 2**32 - 1)),
        "stimuli": stimuli,
        "phases": phases,
    }


def reference_problems(
    gate: np.ndarray, schedule: OutputSchedule, limits: SafetyLimits, raw: dict
) -> set[str]:
    """The limits broken, found by brute force on the whole gate array (no verifier code)."""
    found = set()
    fs, n = schedule.sample_rate_hz, schedule.n_samples
    for stim in raw["stimuli"].values():
        if stim["type"] == "shock":
            if stim["current_ma"] > limits.max_current_ma:
                found.add("max_current_ma")
            if stim["duration_s"] > limits.max_shock_s:
                found.add("max_shock_s")
            if math.floor(stim["duration_s"] * fs + 1e-6) < 1:
                found.add("one_sample")
    if n / fs > limits.max_session_s:
        found.add("max_session_s")
    if gate[n:].any():
        found.add("inside")
    edges = np.diff(np.concatenate(([0], gate.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if ((stops - starts) > math.floor(limits.max_shock_s * fs + 1e-6)).any():
        found.add("max_shock_s")
    if ((starts[1:] - stops[:-1]) < math.ceil(limits.min_shock_gap_s * fs - 1e-6)).any():
        found.add("min_shock_gap_s")
    if len(starts) > limits.max_shocks:
        found.add("max_shocks")
    window = round(60 * fs)
    total = np.concatenate(([0], np.cumsum(gate, dtype=np.int64)))
    ends = np.minimum(np.arange(len(gate)) + window, len(gate))
    if (total[ends] - total[:-1]).max(initial=0) > math.floor(limits.max_shock_duty * window):
        found.add("max_shock_duty")
    # The current program, as the engine carries it out: the first current before the session,
    # each next one once every pulse before it has ended. Judged on the runs that are played.
    pulses = sorted(schedule.shocks, key=lambda p: p.start_sample)
    ended = [-1, *np.maximum.accumulate([p.stop_sample for p in pulses]).tolist()]
    steps = [(ended[k], p.current_ma) for k, p in enumerate(pulses)]
    if any(current > limits.max_current_ma for _, current in steps):
        found.add("max_current_ma")
    lead = math.ceil(limits.current_change_lead_s * fs - 1e-6)
    for k in range(1, len(steps)):
        at, current = steps[k]
        if current == steps[k - 1][1]:
            continue
        if 0 < at < len(gate) and gate[at - 1] and gate[at]:
            found.add("current_change_lead_s")  # changed in the middle of a gate-high run
        later = starts[starts >= at]
        next_change = steps[k + 1][0] if k + 1 < len(steps) else None
        uses_it = later.size and (next_change is None or later[0] < next_change)
        if uses_it and later[0] - at < lead:  # the first run at the new current comes too soon
            found.add("current_change_lead_s")
    return found


@SETTINGS
@given(data=st.data(), limits=limits_st)
def test_what_validates_plays_within_the_limits_and_nothing_else_validates(data, limits):
    raw = data.draw(protocols())
    try:
        protocol = protocol_from_data(raw, "p.yaml")
    except InputError:
        event("invalid protocol")
        return  # invalid for another reason (e.g. a US that cannot co-terminate)
    rig = rig_with(limits)
    try:
        plan = plan_from_loaded(LoadedProtocol(protocol, "", "p.yaml"), rig)
    except InputError as exc:
        refused = exc
    else:
        refused = None
    # The program as compiled, whether or not it validated: synthesised like a driver does.
    from rig.program.schedule import compile_schedule
    from rig.program.timeline import compile_timeline

    schedule = compile_schedule(protocol, compile_timeline(protocol), FS)
    gate = ShockGateSynth(schedule).samples(0, schedule.n_samples + round(FS))
    broken = reference_problems(gate, schedule, limits, raw)
    event("validated" if refused is None else "refused for safety")
    if refused is None:
        assert broken == set(), f"validated, but the gate breaks {broken}"
        assert plan.schedule.shocks == schedule.shocks
    else:
        assert broken, f"refused a safe protocol: {refused.report()}"
        for problem in refused.problems:
            assert problem.path.startswith(("stimuli.", "phases")), problem
            assert "safety." in problem.message or "one sample" in problem.message, problem


@settings(SETTINGS, max_examples=150)
@given(
    limits=limits_st,
    pulses=st.lists(
        st.tuples(st.integers(0, 150_000), st.integers(-3, 3_000), st.sampled_from([0.3, 0.7])),
        max_size=12,
    ),
    chunk=st.sampled_from([53, 1000, 7919, 300_000]),
)
def test_the_verifier_agrees_with_the_reference_whatever_the_chunking(limits, pulses, chunk):
    """Hand-built programs (overlapping and touching pulses included), fed in chunks of any
    size: the streaming verifier finds a problem exactly when the brute force does."""
    shocks = tuple(ShockPulse(a, a + w, c) for a, w, c in sorted(pulses) if w > 0)
    schedule = OutputSchedule(FS, 150_000, shocks=shocks)
    gate = ShockGateSynth(schedule).samples(0, schedule.n_samples + 3_000)
    verifier = ShockGateVerifier(limits, FS, schedule.n_samples, current_program(shocks))
    for start in range(0, gate.size, chunk):
        verifier.feed(start, gate[start : start + chunk])
    verifier.finish()
    raw = {"stimuli": {}}
    expected = reference_problems(gate, schedule, limits, raw) - {"max_session_s"}
    got = {v.rule for v in verifier.violations}
    got = {"inside" if r == "max_session_s" else r for r in got}
    assert bool(got) == bool(expected), (got, expected)


def test_limit_messages_tell_the_value_from_the_limit():
    assert fmt_against(1.0000000001, 1.0) == ("1.0000000001", "1")
    assert fmt_against(0.5, 1.0) == ("0.5", "1")
    assert fmt_against(2.0, 2.0) == ("2", "2")


@pytest.fixture
def refusal(write_yaml, cli):
    """``refusal(shocks, phases, cs_s)``: ``rig validate`` of a protocol with one CS of
    ``cs_s`` and the given shock stimuli and phases (YAML lines) on the default rig; asserts
    exit 2 and returns standard error."""

    def validate(shocks: str, phases: str, cs_s: float = 2) -> str:
        cs = f"  cs: {{type: tone, frequency_hz: 7500, level_db: 70, duration_s: {cs_s}}}\n"
        text = f"protocol: p\nversion: 1\nseed: 1\nstimuli:\n{cs}{shocks}phases:\n{phases}"
        result = cli("validate", write_yaml(text))
        assert result.exit_code == 2, result.output
        return result.stderr

    return validate


ONE_TRIAL = "  - {name: a, trials: [{cs: cs, us: us}]}\n"


def test_a_current_a_hair_over_the_limit_is_named_with_its_digits(refusal):
    err = refusal("  us: {type: shock, current_ma: 1.0000000001, duration_s: 1}\n", ONE_TRIAL)
    assert (
        "stimuli.us.current_ma: 1.0000000001 mA is above this rig's limit of 1 mA "
        "(safety.max_current_ma)" in err
    )


def test_a_shock_shorter_than_one_sample_does_not_validate(refusal):
    err = refusal("  us: {type: shock, current_ma: 0.5, duration_s: 0.00001}\n", ONE_TRIAL)
    assert "stimuli.us.duration_s: 1e-05 s is shorter than one sample" in err


def test_touching_shocks_are_one_long_run_and_never_validate(refusal):
    """The adversarial case: 20 co-terminating 2-s shocks, each filling its 2-s CS, ITI 0,
    on a rig with max_shock_s 2: one 40-s gate-high run."""
    err = refusal(
        "  us: {type: shock, current_ma: 0.5, duration_s: 2}\n",
        "  - {name: a, trials: [{cs: cs, us: us, repeat: 20}], iti_s: 0}\n",
    )
    assert (
        "phases[0].trials[0]: the shock gate is high for 40 s without a break; this rig allows "
        "2 s (safety.max_shock_s) (at 0 s, trials 1-20)" in err
    )


def test_shocks_across_a_phase_boundary_are_checked_like_any_others(refusal):
    err = refusal(
        "  us: {type: shock, current_ma: 0.5, duration_s: 1}\n",
        ONE_TRIAL + "  - {name: b, trials: [{cs: cs, us: us}], pre_s: 0.5}\n",
        cs_s=1,
    )
    assert "phases[1].pre_s: two shocks 0.5 s apart" in err


def test_a_current_change_without_its_lead_does_not_validate(refusal):
    err = refusal(
        "  weak: {type: shock, current_ma: 0.3, duration_s: 1}\n"
        "  strong: {type: shock, current_ma: 0.6, duration_s: 1}\n",
        "  - {name: a, trials: [{cs: cs, us: weak}, {cs: cs, us: strong}], iti_s: 1.5}\n",
        cs_s=1,
    )
    assert (
        "phases[0].iti_s: the current changes from 0.3 to 0.6 mA only 1.5 s before the shock "
        "that needs it; this rig needs 2 s (safety.current_change_lead_s)" in err
    )


def test_duty_over_a_minute_is_limited(refusal):
    err = refusal(  # 10 s of shock in 28 s: duty 0.17 > 0.1
        "  us: {type: shock, current_ma: 0.5, duration_s: 2}\n",
        "  - {name: a, trials: [{cs: cs, us: us, repeat: 5}], iti_s: 5}\n",
    )
    assert "(safety.max_shock_duty)" in err and "phases[0].iti_s" in err


# ----------------------------------------------------------------------------- the sim rig

RUN_SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@st.composite
def current_protocols(draw) -> dict:
    """Short protocols whose shocks change current, as close as the rig allows."""
    currents = draw(st.lists(st.sampled_from([0.2, 0.35, 0.5, 0.8]), min_size=2, max_size=2))
    n = draw(st.integers(2, 5))
    return {
        "protocol": "currents",
        "version": 1,
        "seed": draw(st.integers(0, 1000)),
        "stimuli": {
            "cs": {"type": "tone", "frequency_hz": 200, "level_db": 70, "duration_s": 0.5},
            "a": {"type": "shock", "current_ma": currents[0], "duration_s": 0.2},
            "b": {"type": "shock", "current_ma": currents[1], "duration_s": 0.3},
        },
        "phases": [
            {
                "name": "conditioning",
                "trials": [
                    {"cs": "cs", "us": "a", "repeat": n},
                    {"cs": "cs", "us": "b", "repeat": n},
                ],
                "order": "shuffled",
                "iti_s": draw(st.sampled_from([2.0, 2.5, {"uniform": [2.0, 4.0]}])),
                "pre_s": 0.5,
                "post_s": 0.5,
            }
        ],
    }


@RUN_SETTINGS
@given(raw=current_protocols())
def test_every_shock_is_given_at_its_own_current(raw, tmp_path_factory):
    limits = SafetyLimits(max_current_ma=1.0, max_shock_s=2.0, max_shocks=20, max_session_s=600)
    plan = plan_from_loaded(
        LoadedProtocol(protocol_from_data(raw, "c.yaml"), "", "c.yaml"), rig_with(limits)
    )
    runners = []
    folder, result = run_session(plan, tmp_path_factory.mktemp("run"), "m1", None, runners.append)
    assert result.status == "complete", result.reason
    emulator = runners[0].engine.devices.daq.session.shocker_emulator
    pulses = sorted(plan.schedule.shocks, key=lambda p: p.start_sample)
    delivered = emulator.delivered
    assert [d.onset_sample for d in delivered] == [p.start_sample for p in pulses]
    for pulse, shock in zip(pulses, delivered, strict=True):
        assert shock.armed and shock.offset_sample == pulse.stop_sample
        assert shock.current_ma == pytest.approx(pulse.current_ma, abs=1e-9)
        # the device's command log: the last current set before this shock is its own
        before = [r for r in emulator.received[: shock.lines_before] if r.command == "set_current"]
        assert float(before[-1].line.split()[1]) == pytest.approx(pulse.current_ma)
    events = [e for e in _events(folder) if e["kind"] == "shock_current"]
    assert [e["planned_ma"] for e in events] == [p.current_ma for p in pulses]
    assert all(e["readback_ma"] == pytest.approx(e["planned_ma"], abs=1e-3) for e in events)
    assert result.shocks_delivered == len(pulses)


def _events(folder: Path) -> list[dict]:
    from rig.data.folder import SessionFolder

    return SessionFolder.open(folder).events()


def test_a_current_not_confirmed_in_time_ends_the_session_before_that_shock(tmp_path, monkeypatch):
    """Break the engine on purpose: it skips the set of the second shock's (different)
    current. The deadline ends the session before that shock, and its onset is never played."""
    from rig.run.shock_current import CurrentSequencer

    raw = {
        "protocol": "skip",
        "version": 1,
        "seed": 1,
        "stimuli": {
            "cs": {"type": "tone", "frequency_hz": 200, "level_db": 70, "duration_s": 1},
            "a": {"type": "shock", "current_ma": 0.3, "duration_s": 0.5},
            "b": {"type": "shock", "current_ma": 0.6, "duration_s": 0.5},
        },
        "phases": [
            {"name": "c", "trials": [{"cs": "cs", "us": "a"}, {"cs": "cs", "us": "b"}], "iti_s": 5}
        ],
    }
    limits = SafetyLimits(max_current_ma=1.0, max_shock_s=2.0, max_shocks=20, max_session_s=600)
    plan = plan_from_loaded(
        LoadedProtocol(protocol_from_data(raw, "s.yaml"), "", "s.yaml"), rig_with(limits)
    )
    real_set = CurrentSequencer._set

    def skip_second(self, shock, position):
        if shock.number == 1:
            shock.set_done = True  # "done", but nothing sent: the current stays at 0.3 mA
            return
        real_set(self, shock, position)

    monkeypatch.setattr(CurrentSequencer, "_set", skip_second)
    runners = []
    _, result = run_session(plan, tmp_path, "m1", None, runners.append)
    assert result.status == "aborted"
    assert "was not given: its current was not read back" in result.reason
    second = sorted(plan.schedule.shocks, key=lambda p: p.start_sample)[1]
    daq = runners[0].engine.devices.daq
    assert daq.stopped_at == second.start_sample - round(limits.current_change_lead_s * FS)
    assert daq.outputs_low_after(daq.stopped_at)
    assert [d.onset_sample for d in daq.session.shocker_emulator.delivered] == [
        plan.schedule.shocks[0].start_sample
    ]
    assert result.shocks_delivered == 1


def test_verify_schedule_reads_the_same_samples_the_drivers_write():
    schedule = OutputSchedule(FS, 10_000, shocks=(ShockPulse(100, 200, 0.5),))
    limits = SafetyLimits(max_current_ma=1.0, max_shock_s=0.05, max_shocks=5, max_session_s=60)
    (violation,) = verify_schedule(schedule, limits).violations
    assert violation.rule == "max_shock_s" and violation.start_sample == 100
