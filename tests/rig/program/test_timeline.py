"""The timeline compiler: deterministic for a seed, exact semantics, orders that obey limits."""

from __future__ import annotations

import itertools
import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.files.protocol import protocol_from_text
from rig.program.timeline import compile_timeline
from tests.conftest import PROTOCOLS


def _protocol(phases: str, stimuli: str | None = None, seed: int = 1):
    stimuli = (
        stimuli
        or """
  a: {type: tone, frequency_hz: 7500, level_db: 70, duration_s: 10}
  b: {type: tone, frequency_hz: 2000, level_db: 70, duration_s: 10}
  s: {type: shock, current_ma: 0.5, duration_s: 1.0}"""
    )
    text = f"protocol: t\nversion: 1\nseed: {seed}\nstimuli:{stimuli}\nphases:\n{phases}"
    return protocol_from_text(text).protocol


def test_plan_json_is_identical_for_the_same_file_and_seed(cli):
    first = cli("plan", PROTOCOLS / "conditioning.yaml", "--json")
    second = cli("plan", PROTOCOLS / "conditioning.yaml", "--json")
    assert first.exit_code == 0
    assert first.stdout == second.stdout


def test_another_seed_gives_other_itis(cli, write_yaml):
    text = (PROTOCOLS / "conditioning.yaml").read_text()
    other = write_yaml(text.replace("seed: 20231006", "seed: 99"), "other.yaml")
    a = json.loads(cli("plan", PROTOCOLS / "conditioning.yaml", "--json").stdout)
    b = json.loads(cli("plan", other, "--json").stdout)
    itis_a = [t["iti_after_s"] for t in a["trials"]]
    itis_b = [t["iti_after_s"] for t in b["trials"]]
    assert itis_a != itis_b
    assert all(60 <= x <= 120 for x in itis_a + itis_b if x is not None)


def test_conditioning_schedule_matches_the_study():
    from rig.files.protocol import load_protocol

    tl = compile_timeline(load_protocol(PROTOCOLS / "conditioning.yaml").protocol)
    assert [p.name for p in tl.phases] == ["baseline", "conditioning"]
    assert tl.phases[0].end_s == 180
    cs_plus = [t for t in tl.trials if t.cs == "cs_plus"]
    assert len(cs_plus) == 7 and len(tl.trials) == 14
    for t in cs_plus:  # the 1-s shock co-terminates with the 30-s CS+
        assert t.us == "shock"
        assert t.us_offset_s == t.cs_offset_s
        assert round(t.us_offset_s - t.us_onset_s, 6) == 1.0
    assert all(t.us is None for t in tl.trials if t.cs == "cs_minus")


def test_iti_is_measured_from_the_end_of_the_last_stimulus():
    p = _protocol(
        "  - name: trace\n    trials: [{cs: a, us: s, us_onset_s: 15, repeat: 2}]\n"
        "    iti_s: 20\n    pre_s: 5\n    post_s: 7\n"
    )
    tl = compile_timeline(p)
    first, second = tl.trials
    assert first.cs_onset_s == 5
    assert (first.us_onset_s, first.us_offset_s) == (20, 21)  # trace: 5 s after the CS ends
    assert second.cs_onset_s == 21 + 20
    assert tl.duration_s == second.us_offset_s + 7


def test_block_phase_and_phase_order():
    p = _protocol(
        "  - name: rest\n    duration_s: 30\n"
        "  - name: test\n    trials: [{cs: a}, {cs: b}]\n    iti_s: 5\n"
    )
    tl = compile_timeline(p)
    assert [(s.name, s.start_s, s.end_s) for s in tl.phases] == [
        ("rest", 0, 30),
        ("test", 30, 55),
    ]
    assert [t.cs for t in tl.trials] == ["a", "b"]  # sequential


@settings(max_examples=200, deadline=None)
@given(
    n_a=st.integers(1, 12),
    n_b=st.integers(1, 12),
    max_run=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_pseudorandom_order_never_exceeds_max_consecutive(n_a, n_b, max_run, seed):
    if max(n_a, n_b) > max_run * (min(n_a, n_b) + 1):
        return  # infeasible: validation rejects it (tested below)
    p = _protocol(
        f"  - name: x\n    trials: [{{cs: a, repeat: {n_a}}}, {{cs: b, repeat: {n_b}}}]\n"
        f"    order: pseudorandom\n    max_consecutive: {max_run}\n    iti_s: 1\n",
        seed=seed,
    )
    order = [t.cs for t in compile_timeline(p).trials]
    assert sorted(order) == ["a"] * n_a + ["b"] * n_b
    run = 1
    for prev, cur in itertools.pairwise(order):
        run = run + 1 if cur == prev else 1
        assert run <= max_run


def test_infeasible_pseudorandom_is_a_validation_error():
    import pytest

    from rig.files.inputfile import InputError

    with pytest.raises(InputError) as err:
        _protocol(
            "  - name: x\n    trials: [{cs: a, repeat: 9}, {cs: b, repeat: 1}]\n"
            "    order: pseudorandom\n    max_consecutive: 2\n    iti_s: 1\n"
        )
    assert err.value.problems[0].path == "phases[0].max_consecutive"


def test_iti_distributions_stay_in_range():
    p = _protocol(
        "  - name: u\n    trials: [{cs: a, repeat: 30}]\n    iti_s: {uniform: [60, 120]}\n"
        "  - name: e\n    trials: [{cs: b, repeat: 30}]\n"
        "    iti_s: {exponential: {mean: 90, min: 60, max: 180}}\n"
    )
    tl = compile_timeline(p)
    uni = np.array([t.iti_after_s for t in tl.trials if t.phase == "u" and t.iti_after_s])
    exp = np.array([t.iti_after_s for t in tl.trials if t.phase == "e" and t.iti_after_s])
    assert uni.min() >= 60 and uni.max() <= 120 and uni.std() > 5
    assert exp.min() >= 60 and exp.max() <= 180
