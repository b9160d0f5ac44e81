"""The simulated brain: populations, planted hubs, and the two-photon movie."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from rig.program.schedule import OutputSchedule
from sim.brain import POPULATIONS, BrainConfig, TwoPhotonRenderer, simulate_activity
from sim.learning import AnimalState, update_state
from sim.mouse import MouseConfig, simulate_behaviour

SMALL = BrainConfig(width=64, height=64, neurons=40)


def _activity(schedule, times, state, cfg=SMALL, seed=0, behaviour=True):
    t = times(schedule, 30.0)
    track = None
    if behaviour:
        mcfg = MouseConfig(width=160, height=120)
        track = simulate_behaviour(schedule, times(schedule, 30.0), state, mcfg, seed=seed)
    return simulate_activity(schedule, t, track, state, cfg, seed=seed)


def _quiet_frames(activity, schedule):
    """Frames away from every sound and shock."""
    t, rate = activity.frame_times_s, schedule.sample_rate_hz
    busy = np.zeros(len(t), bool)
    for s in [*schedule.sounds, *schedule.shocks]:
        busy |= (t >= s.start_sample / rate) & (t < s.stop_sample / rate + 5.0)
    return ~busy


def _hub_correlation(activity, schedule, population):
    quiet = _quiet_frames(activity, schedule)
    hub = activity.dff[activity.index("shock")].mean(axis=0)[quiet]
    return np.mean(
        [np.corrcoef(hub, activity.dff[k][quiet])[0, 1] for k in activity.index(population)]
    )


def test_config_checks_fractions_and_keys():
    with pytest.raises(ValidationError):
        BrainConfig(frac_cs_plus=0.6, frac_shock=0.6)
    with pytest.raises(ValidationError):
        BrainConfig(nerons=10)


def test_same_seed_same_movie(day, times):
    schedule = day(2, 2, shock_ma=0.5)
    a = _activity(schedule, times, AnimalState(), seed=3)
    b = _activity(schedule, times, AnimalState(), seed=3)
    assert np.array_equal(a.dff, b.dff) and np.array_equal(a.populations, b.populations)
    ra, rb = TwoPhotonRenderer(SMALL, a, seed=9), TwoPhotonRenderer(SMALL, b, seed=9)
    for i in (0, 700, 2000):
        frame = ra.render(i)
        assert frame.dtype == np.uint16 and frame.shape == (64, 64)
        assert np.array_equal(frame, rb.render(i))
    assert not np.array_equal(ra.render(5), TwoPhotonRenderer(SMALL, a, seed=10).render(5))


def test_populations_and_truth(day, times):
    act = _activity(day(1, 1), times, AnimalState())
    counts = {p: len(act.index(p)) for p in POPULATIONS}
    assert counts == {
        "cs_plus": 8,
        "cs_minus": 6,
        "shock": 6,
        "locomotion": 4,
        "unrelated": 12,
        "fear": 4,
    }
    truth = act.truth()
    labels = truth["footprints"]
    assert labels.shape == (64, 64) and set(np.unique(labels)) - {0} <= set(range(1, 41))
    assert len(np.unique(labels)) > 30
    assert truth["dff"].shape == (40, len(act)) and truth["coupling"].shape == (40, 40)
    assert [POPULATIONS[c] for c in truth["population_code"]] == list(truth["populations"])


def test_neurons_answer_their_stimuli(day, times):
    schedule = day(7, 7, shock_ma=0.5)
    act = _activity(schedule, times, AnimalState())
    t, rate = act.frame_times_s, schedule.sample_rate_hz

    def response(pop, intervals):
        mask = np.zeros(len(t), bool)
        for a, b in intervals:
            mask |= (t >= a) & (t < b)
        return act.dff[act.index(pop)][:, mask].mean()

    # the first shock, before any learning: its rise over the tone just before it
    first = schedule.shocks[0]
    shocks = [(first.start_sample / rate, first.stop_sample / rate + 0.5)]
    before = [(first.start_sample / rate - 2.0, first.start_sample / rate)]

    def rise(pop):
        return response(pop, shocks) - response(pop, before)

    minus = [
        (s.start_sample / rate, s.stop_sample / rate)
        for s in schedule.sounds
        if s.stimulus == "cs_minus"
    ]
    # (locomotion neurons answer too, through the startle run: not as strongly)
    assert rise("shock") > 2 * max(rise(p) for p in POPULATIONS if p != "shock")
    assert response("cs_minus", minus) > 2 * response("unrelated", minus)
    assert act.cs_plus_cue == "tone:7500" and act.cs_minus_cue == "tone:2000"


def test_hubs_couple_to_cs_plus_only_after_conditioning(four_days, times):
    hab, cond, recall, ext = four_days
    naive = AnimalState()
    conditioned = update_state(naive, cond)
    before = _activity(hab, times, naive)
    after = _activity(recall, times, conditioned)
    background = before.field.coupling_background
    assert np.array_equal(before.coupling, background)  # nothing learned: background only
    learned = after.coupling - background
    hubs, plus, fear = after.index("shock"), after.index("cs_plus"), after.index("fear")
    block = np.zeros_like(learned, dtype=bool)
    block[np.ix_(np.concatenate([plus, fear]), hubs)] = True
    assert not learned[~block].any()  # hubs drive CS+ and fear neurons, nothing else
    assert (learned[np.ix_(plus, hubs)] > 0).mean() > 0.3
    # hubs are not a clique: at most the sparse background links a pair of them
    assert (before.coupling[np.ix_(hubs, hubs)] > 0).mean() < 0.2
    # the planted coupling shows in the traces, away from any stimulus
    assert (
        _hub_correlation(after, recall, "cs_plus") > _hub_correlation(before, hab, "cs_plus") + 0.2
    )
    assert (
        _hub_correlation(after, recall, "cs_plus")
        > _hub_correlation(after, recall, "unrelated") + 0.2
    )
    # extinction weakens it
    extinguished = _activity(ext, times, update_state(conditioned, recall))
    assert extinguished.coupling.max() < after.coupling.max()


def test_cs_plus_neurons_follow_the_learned_tone_not_its_name(day, times):
    cond = day(7, 7, shock_ma=0.5, plus_hz=2000.0, minus_hz=7500.0)  # shocked tone is 2 kHz
    state = update_state(AnimalState(), cond)
    recall = day(3, 3)
    act = _activity(recall, times, state)
    assert act.cs_plus_cue == "tone:2000" and act.cs_minus_cue == "tone:7500"


def test_a_step_of_frames_renders_as_frame_by_frame(day, times):
    # the simulated microscope renders each engine step's frames as one stack
    schedule = day(2, 1, shock_ma=0.5)
    r = TwoPhotonRenderer(SMALL, _activity(schedule, times, AnimalState(), seed=4), seed=2)
    assert np.abs(r.activity.motion_px).max() >= 1  # frames of one stack are shifted apart
    for indices in ([0], [5, 6, 7], list(range(690, 700)), [3, 1500, 40]):
        stack = r.render_frames(indices)
        assert stack.shape == (len(indices), 64, 64) and stack.dtype == np.uint16
        for frame, i in zip(stack, indices, strict=True):
            assert np.array_equal(frame, r.render(i))
    assert r.render_frames([]).shape == (0, 64, 64)


def test_motion_moves_the_field_of_view(day, times):
    schedule = day(2, 0)
    cfg_still = SMALL.model_copy(update={"motion": False, "shot_noise": False, "read_noise": 0.0})
    cfg_moving = cfg_still.model_copy(update={"motion": True, "motion_amplitude_px": 3.0})
    still = _activity(schedule, times, AnimalState(), cfg_still, behaviour=False)
    moving = _activity(schedule, times, AnimalState(), cfg_moving, behaviour=False)
    assert not still.motion_px.any() and np.abs(moving.motion_px).max() >= 1
    r = TwoPhotonRenderer(cfg_moving, moving, seed=1)
    i, j = np.flatnonzero(np.any(moving.motion_px != moving.motion_px[0], axis=1))[0], 0
    assert not np.array_equal(r.render(i), r.render(j))


@pytest.mark.parametrize("n_frames", [0, 1, 90])
def test_sessions_without_sounds_or_frames_still_simulate(n_frames):
    schedule = OutputSchedule(1000.0, 5000)
    t = np.arange(n_frames) / 30.0
    track = simulate_behaviour(schedule, t, AnimalState(), MouseConfig(width=160, height=120))
    act = simulate_activity(schedule, t, track, AnimalState(), SMALL)
    assert act.dff.shape == (40, n_frames) and act.cs_plus_cue == ""
    if n_frames:
        assert TwoPhotonRenderer(SMALL, act).render(n_frames - 1).shape == (64, 64)


def test_the_neurons_belong_to_the_animal(day, times):
    schedule = day(2, 2)
    first = _activity(schedule, times, AnimalState(animal_id="a"), seed=1)
    again = _activity(schedule, times, AnimalState(animal_id="a", sessions=3), seed=2)
    other = _activity(schedule, times, AnimalState(animal_id="b"), seed=1)
    # same cells on another day (another session seed), other cells in another animal
    assert np.array_equal(first.centers_px, again.centers_px)
    assert np.array_equal(first.populations, again.populations)
    assert not np.array_equal(first.dff, again.dff)
    assert not np.array_equal(first.centers_px, other.centers_px)


def test_the_field_of_view_moves_between_days_not_on_the_first(day, times):
    from sim.neurons import day_offset_px

    assert not day_offset_px("a", 0, 5.0).any()
    shifts = np.array([day_offset_px("a", n, 5.0) for n in range(1, 40)])
    assert np.abs(shifts).max() <= 5 and (np.abs(shifts).sum(axis=1) > 0).mean() > 0.8
    act = _activity(day(1, 0), times, AnimalState(animal_id="a", sessions=2))
    assert np.array_equal(act.offset_px, day_offset_px("a", 2, SMALL.shift_px))
    assert np.array_equal(act.truth()["fov_offset_px"], act.offset_px)


def test_a_shifted_day_shows_the_same_tissue_shifted(day, times):
    cfg = SMALL.model_copy(update={"clean": True, "day_shift_px": 4.0})
    schedule = day(1, 0)
    ref = _activity(schedule, times, AnimalState(animal_id="a"), cfg, behaviour=False)
    moved = _activity(schedule, times, AnimalState(animal_id="a", sessions=5), cfg, behaviour=False)
    dy, dx = moved.offset_px
    assert (dy, dx) != (0, 0)
    a = TwoPhotonRenderer(cfg, ref, seed=1).render(0).astype(float)
    b = TwoPhotonRenderer(cfg, moved, seed=2).render(0).astype(float)
    # clean: no noise or motion, frame 0 of both days before any activity differs by the offset
    h, w = a.shape
    crop = a[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)]
    crop_b = b[max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
    assert np.corrcoef(crop.ravel(), crop_b.ravel())[0, 1] > 0.95


def test_the_cells_are_kept_beside_the_animals_state(tmp_path):
    from sim.neurons import field_path, load_or_draw_field

    geometry = SMALL.geometry()
    field = load_or_draw_field(tmp_path, "m1", geometry)
    assert field_path(tmp_path, "m1").exists()
    again = load_or_draw_field(tmp_path, "m1", geometry)
    assert np.array_equal(field.coupling_learned, again.coupling_learned)
    bigger = load_or_draw_field(
        tmp_path, "m1", BrainConfig(width=64, height=64, neurons=50).geometry()
    )
    assert len(bigger) == 50  # another geometry: drawn for it


def test_clean_renders_without_noise(day, times):
    cfg = SMALL.model_copy(update={"clean": True})
    act = _activity(day(1, 0), times, AnimalState(), cfg)
    assert not act.motion_px.any()
    r1, r2 = TwoPhotonRenderer(cfg, act, seed=1), TwoPhotonRenderer(cfg, act, seed=2)
    assert np.array_equal(r1.render(10), r2.render(10))  # the noise seed changes nothing
