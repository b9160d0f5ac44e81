"""The simulated animal's learning: what it learns, about what, and how it is stored."""

from __future__ import annotations

import dataclasses
import json

import pytest

from sim.learning import (
    AnimalState,
    cue_key,
    generalisation,
    load_state,
    run_learning,
    sanitise_animal_id,
    save_state,
    state_path,
    update_state,
)


def _run_days(days, state=None):
    state = state or AnimalState(animal_id="m1")
    out = []
    for schedule in days:
        out.append(run_learning(state, schedule))
        state = out[-1].final
    return out


def _mean_strength(learning, stimulus):
    values = [t.strength for t in learning.trials if t.stimulus == stimulus]
    return sum(values) / len(values)


def test_cue_is_the_sound_not_its_name(day):
    schedule = day(1, 1)
    plus, minus = schedule.sounds
    assert cue_key(plus) == "tone:7500"
    assert cue_key(minus) == "tone:2000"
    noise = dataclasses.replace(plus, kind="white_noise", frequency_hz=None)
    assert cue_key(noise) == "white_noise"


def test_generalisation_falls_with_octave_distance():
    assert generalisation("tone:8000", "tone:8000") == 1.0
    one, two = generalisation("tone:4000", "tone:8000"), generalisation("tone:2000", "tone:8000")
    assert 1.0 > one > two > 0.0
    assert generalisation("white_noise", "tone:8000") == 0.0


def test_four_days_acquisition_recall_and_extinction(four_days):
    hab, cond, recall, ext = _run_days(four_days)
    assert _mean_strength(hab, "cs_plus") == 0.0
    # conditioning: the CS+ prediction climbs trial by trial
    plus = [t.strength for t in cond.trials if t.stimulus == "cs_plus"]
    assert plus == sorted(plus) and plus[-1] > 0.5
    # recall (no shocks): the paired tone is feared, the other one only a little
    assert _mean_strength(recall, "cs_plus") > 0.5
    assert 0.0 < _mean_strength(recall, "cs_minus") < 0.5 * _mean_strength(recall, "cs_plus")
    # extinction: CS-alone trials bring the CS+ down
    ext_plus = [t.strength for t in ext.trials if t.stimulus == "cs_plus"]
    assert ext_plus[-1] < 0.5 * ext_plus[0]
    assert ext.final.strengths["tone:7500"] < recall.final.strengths["tone:7500"]


def test_recall_follows_the_tone_whatever_the_protocol_calls_it(day):
    conditioned = update_state(AnimalState(), day(7, 0, shock_ma=0.5))
    renamed = day(2, 0)
    renamed = dataclasses.replace(
        renamed, sounds=tuple(dataclasses.replace(s, stimulus="probe") for s in renamed.sounds)
    )
    probe = run_learning(conditioned, renamed).trials[0]
    assert probe.stimulus == "probe" and probe.strength > 0.5
    far = run_learning(conditioned, day(1, 0, plus_hz=1000.0)).trials[0]
    assert far.strength < 0.1


def test_shocks_raise_context_fear_which_fades(day):
    after = update_state(AnimalState(), day(7, 7, shock_ma=0.5))
    assert after.context_fear > 0.05
    quiet = update_state(after, day(4, 4))
    assert quiet.context_fear < after.context_fear


def test_update_state_leaves_the_input_alone(day):
    state = AnimalState(animal_id="m2")
    after = update_state(state, day(3, 0, shock_ma=0.5))
    assert state.strengths == {} and state.sessions == 0
    assert after.sessions == 1 and len(after.history) == 1


def test_state_round_trips_and_a_new_animal_is_naive(tmp_path, day):
    fresh = load_state(tmp_path, "mouse-7")
    assert fresh.animal_id == "mouse-7" and fresh.strengths == {} and fresh.sessions == 0
    learned = update_state(fresh, day(3, 3, shock_ma=0.5))
    path = save_state(tmp_path, learned)
    assert path.parent == tmp_path.resolve()
    assert json.loads(path.read_text())["strengths"]["tone:7500"] > 0
    assert load_state(tmp_path, "mouse-7") == learned


@pytest.mark.parametrize("animal_id", ["../../etc/passwd", "/abs/path", "..", "a\\b", "", "x\x00y"])
def test_animal_ids_cannot_escape_the_state_dir(tmp_path, animal_id):
    state_dir = tmp_path / "states"
    path = save_state(state_dir, AnimalState(animal_id=animal_id))
    assert path.parent == state_dir.resolve()
    assert load_state(state_dir, animal_id).animal_id == animal_id
    assert list(state_dir.iterdir()) == [path]


def test_sanitising_keeps_plain_ids_and_separates_different_ones(tmp_path):
    assert sanitise_animal_id("M-12_b.3") == "M-12_b.3"
    assert state_path(tmp_path, "a/b") != state_path(tmp_path, "a_b")
    assert state_path(tmp_path, "a/b") != state_path(tmp_path, "a:b")
