"""Shock limits as properties (issue 8, part 2).

No protocol compiles, for any rig's limits, to a shock above the rig's current, duration or
count limits, or to a shock outside its trial: an over-limit protocol is an ``InputError`` at
validation, naming the field. And the engine's last check before arming,
``rig.safety.schedule_problems``, refuses any hand-built schedule over the limits.
"""

from __future__ import annotations

import dataclasses
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rig.inputfile import InputError
from rig.protocol import LoadedProtocol, Shock, protocol_from_data
from rig.rigfile import RigFile, SafetyLimits, load_rig
from rig.safety import schedule_problems
from rig.schedule import OutputSchedule, ShockPulse, SoundBlock
from rig.session import plan_from_loaded
from rig.timeline import compile_timeline
from tests.conftest import SMALL_RIG

FS = 20_000.0  # the small simulated rig's sample clock
ONE_SAMPLE_S = 1 / FS
SETTINGS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def _small_rig() -> RigFile:
    return load_rig(SMALL_RIG)


def rig_with(limits: SafetyLimits) -> RigFile:
    rig = _small_rig()
    return dataclasses.replace(rig, core=rig.core.model_copy(update={"safety": limits}))


limits_st = st.builds(
    SafetyLimits,
    max_current_ma=st.sampled_from([0.1, 0.3, 0.5, 1.0, 2.5, 5.0]),
    max_shock_s=st.sampled_from([0.1, 0.5, 1.0, 2.0, 10.0]),
    max_shocks=st.integers(0, 12),
    max_session_s=st.sampled_from([30.0, 300.0, 3600.0, 86_400.0]),
)


@st.composite
def near(draw, limit: float, low: float, high: float) -> float:
    """A value in [low, high], often exactly at or just around ``limit``."""
    return draw(
        st.one_of(
            st.floats(low, min(limit, 0.5), allow_nan=False),  # within (short enough for a CS)
            st.floats(low, limit, allow_nan=False),
            st.floats(low, high, allow_nan=False),
            st.sampled_from([v for v in (limit, limit * 1.001, limit * 0.999) if low <= v <= high]),
        )
    )


@st.composite
def protocols(draw, limits: SafetyLimits) -> dict:
    """Protocol data near the rig's limits: shocks, trials with and without US, trace delays."""
    shocks = {
        f"us{i}": {
            "type": "shock",
            "current_ma": round(draw(near(limits.max_current_ma, 0.01, 5.0)), 4),
            "duration_s": round(draw(near(limits.max_shock_s, 0.001, 10.0)), 4),
        }
        for i in range(draw(st.integers(1, 2)))
    }
    stimuli = {
        "cs": {
            "type": "tone",
            "frequency_hz": 5000,
            "level_db": 70,
            "duration_s": draw(st.sampled_from([0.5, 2.0, 5.0, 10.0])),
        },
        **shocks,
    }
    phases = []
    for p in range(draw(st.integers(1, 3))):
        if draw(st.booleans()) and p > 0:
            phases.append({"name": f"p{p}", "duration_s": draw(st.floats(0.1, 60))})
            continue
        entries = []
        for _ in range(draw(st.integers(1, 3))):
            entry = {"cs": "cs", "repeat": draw(st.integers(1, 5))}
            if draw(st.booleans()):
                entry["us"] = draw(st.sampled_from(sorted(shocks)))
                if draw(st.booleans()):
                    entry["us_onset_s"] = draw(st.sampled_from([0.0, 0.25, 1.9, 10.0, 30.0]))
            entries.append(entry)
        phase = {
            "name": f"p{p}",
            "trials": entries,
            "order": draw(st.sampled_from(["sequential", "shuffled"])),
            "iti_s": draw(st.one_of(st.floats(0, 30), st.just({"uniform": [0.0, 20.0]}))),
            "pre_s": draw(st.sampled_from([0.0, 1.5])),
            "post_s": draw(st.sampled_from([0.0, 2.0])),
        }
        phases.append(phase)
    return {
        "protocol": "prop",
        "version": 1,
        "seed": draw(st.integers(0, 2**32 - 1)),
        "stimuli": stimuli,
        "phases": phases,
        "recording": {"video": {"fps": 30}},
    }


def _over_limits(data: dict, limits: SafetyLimits) -> bool:
    """Whether ``data`` asks for more than ``limits`` allow (counted here, not by the app)."""
    shocks = [s for s in data["stimuli"].values() if s["type"] == "shock"]
    if any(s["current_ma"] > limits.max_current_ma for s in shocks):
        return True
    if any(s["duration_s"] > limits.max_shock_s for s in shocks):
        return True
    n = sum(e["repeat"] for p in data["phases"] for e in p.get("trials", []) if "us" in e)
    return n > limits.max_shocks


@SETTINGS
@given(data=st.data(), limits=limits_st)
def test_no_protocol_compiles_to_a_shock_over_the_rig_limits(data, limits):
    raw = data.draw(protocols(limits))
    try:
        protocol = protocol_from_data(raw, "p.yaml")
    except InputError:
        return  # invalid for another reason (e.g. a US that cannot co-terminate): nothing runs
    loaded = LoadedProtocol(protocol, "", "p.yaml")
    try:
        plan = plan_from_loaded(loaded, rig_with(limits))
    except InputError as exc:
        too_long = compile_timeline(protocol).duration_s > limits.max_session_s
        assert _over_limits(raw, limits) or too_long, exc
        assert all(p.path == "phases" or p.path.startswith("stimuli.") for p in exc.problems)
        assert all("safety." in p.message for p in exc.problems)
        return
    assert not _over_limits(raw, limits)
    schedule, timeline = plan.schedule, plan.timeline
    assert timeline.duration_s <= limits.max_session_s
    assert len(schedule.shocks) <= limits.max_shocks
    trials = {t.index: t for t in timeline.trials}
    for pulse in schedule.shocks:
        stim = protocol.stimuli[pulse.stimulus]
        assert isinstance(stim, Shock)
        assert pulse.current_ma == stim.current_ma <= limits.max_current_ma
        width_s = (pulse.stop_sample - pulse.start_sample) / FS
        assert 0 < width_s <= limits.max_shock_s + ONE_SAMPLE_S  # onsets rounded to the clock
        trial = trials[pulse.trial]
        assert trial.us == pulse.stimulus
        # inside its own trial, and over before the next trial's CS
        assert round(trial.cs_onset_s * FS) <= pulse.start_sample
        assert pulse.stop_sample <= round(trial.end_s * FS) <= schedule.n_samples
        later = [t for t in timeline.trials if t.index > trial.index]
        if later:
            assert pulse.stop_sample <= round(later[0].cs_onset_s * FS)
    assert schedule_problems(schedule, limits) == []


@SETTINGS
@given(data=st.data(), limits=limits_st)
def test_over_limit_stimuli_never_validate(data, limits):
    """Any shock stimulus over the limits is refused, named by its field path."""
    raw = data.draw(protocols(limits))
    name = "us0"
    field = data.draw(st.sampled_from(["current_ma", "duration_s"]))
    limit = limits.max_current_ma if field == "current_ma" else limits.max_shock_s
    ceiling = 5.0 if field == "current_ma" else 10.0
    if limit >= ceiling:
        return  # the format's own maximum is the rig's limit: nothing above it parses
    raw["stimuli"][name][field] = data.draw(st.floats(limit, ceiling, exclude_min=True))
    try:
        protocol = protocol_from_data(raw, "p.yaml")
        plan_from_loaded(LoadedProtocol(protocol, "", "p.yaml"), rig_with(limits))
    except InputError as exc:
        if protocol_errors_only(exc):
            return  # refused before the limits were even checked
        assert f"stimuli.{name}.{field}" in {p.path for p in exc.problems}
        return
    raise AssertionError(f"{field}={raw['stimuli'][name][field]} over {limit} compiled")


def protocol_errors_only(exc: InputError) -> bool:
    return all("safety." not in p.message for p in exc.problems)


pulses_st = st.lists(
    st.tuples(
        st.integers(-100, 2_000_000),  # start sample
        st.integers(-10, 300_000),  # width in samples (<= 0 is not a pulse)
        st.floats(0.0, 10.0, allow_nan=False),  # current
    ),
    max_size=25,
)


@SETTINGS
@given(limits=limits_st, pulses=pulses_st, n_samples=st.integers(1, 2_000_000))
def test_engine_refuses_any_unsafe_schedule(limits, pulses, n_samples):
    ordered = sorted(pulses)
    shocks = tuple(
        ShockPulse(start, start + width, current, trial=i)
        for i, (start, width, current) in enumerate(ordered)
    )
    sounds = tuple(  # each shock inside its own trial: the CS starts at or before it
        SoundBlock(start - 10, start + max(width, 1), "tone", 70.0, 7500.0)
        for start, width, _ in ordered
    )
    schedule = OutputSchedule(FS, n_samples, sounds=sounds, shocks=shocks)
    unsafe = (
        len(shocks) > limits.max_shocks
        or n_samples / FS > limits.max_session_s
        or any(
            p.current_ma > limits.max_current_ma
            or not 0 < p.stop_sample - p.start_sample <= round(limits.max_shock_s * FS) + 1
            or not 0 <= p.start_sample < p.stop_sample <= n_samples
            for p in shocks
        )
    )
    assert bool(schedule_problems(schedule, limits)) == unsafe


def test_engine_refuses_a_shock_outside_its_trial():
    limits = SafetyLimits(max_current_ma=1, max_shock_s=2, max_shocks=10, max_session_s=100)
    cs = SoundBlock(FS * 10, FS * 20, "tone", 70.0, 7500.0)
    early = OutputSchedule(
        FS, FS * 60, sounds=(cs,), shocks=(ShockPulse(FS * 5, FS * 6, 0.5, trial=0),)
    )
    orphan = OutputSchedule(FS, FS * 60, sounds=(cs,), shocks=(ShockPulse(FS * 15, FS * 16, 0.5),))
    inside = OutputSchedule(
        FS, FS * 60, sounds=(cs,), shocks=(ShockPulse(FS * 19, FS * 20, 0.5, trial=0),)
    )
    assert any("before its trial" in p for p in schedule_problems(early, limits))
    assert any("no trial" in p for p in schedule_problems(orphan, limits))
    assert schedule_problems(inside, limits) == []
