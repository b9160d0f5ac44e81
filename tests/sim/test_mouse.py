"""The simulated mouse: freezing that follows learning, and video that shows it."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from sim.learning import AnimalState, update_state
from sim.mouse import MouseConfig, MouseRenderer, simulate_behaviour

SMALL = {"width": 160, "height": 120}


def _clean(view="top", **kw):
    return MouseConfig(view=view, noise=False, flicker=False, **SMALL, **kw)


def _conditioned(day):
    return update_state(AnimalState(), day(7, 7, shock_ma=0.5))


def _outside_cable(frame, renderer):
    x0, y0, x1, y1 = renderer.cable_region()
    masked = frame.astype(np.int16).copy()
    masked[y0:y1, x0:x1] = 0
    return masked


def _long_bout_frames(track, min_frames=10):
    for start, stop in track.freeze_bouts_s:
        idx = np.flatnonzero((track.frame_times_s >= start) & (track.frame_times_s < stop))
        if len(idx) >= min_frames:
            return idx
    raise AssertionError("no long freezing bout")


def test_config_rejects_unknown_keys():
    with pytest.raises(ValidationError):
        MouseConfig(colour="brown")


@pytest.mark.parametrize("view", ["top", "head_fixed"])
def test_same_seed_same_frames(day, times, view):
    schedule = day(2, 2, shock_ma=0.5)
    t = times(schedule, 30.0)
    cfg = MouseConfig(view=view, **SMALL)
    a = simulate_behaviour(schedule, t, AnimalState(), cfg, seed=5)
    b = simulate_behaviour(schedule, t, AnimalState(), cfg, seed=5)
    assert np.array_equal(a.freezing, b.freezing) and np.array_equal(a.x_px, b.x_px)
    ra, rb = MouseRenderer(cfg, a, seed=1), MouseRenderer(cfg, b, seed=1)
    for i in (0, 400, 1500):
        fa = ra.render(i)
        assert fa.dtype == np.uint8 and fa.shape == (120, 160)
        assert np.array_equal(fa, rb.render(i))
    other = simulate_behaviour(schedule, t, AnimalState(), cfg, seed=6)
    assert not np.array_equal(a.freezing, other.freezing) or not np.array_equal(a.x_px, other.x_px)


def test_freezing_bouts_last_at_least_the_minimum(day, times):
    schedule = day(4, 4)
    track = simulate_behaviour(schedule, times(schedule, 30.0), _conditioned(day), _clean())
    durations = np.diff(track.freeze_bouts_s, axis=1)
    assert len(durations) > 3 and durations.min() >= 1.0
    assert np.all(track.speed_cm_s[track.freezing] == 0)
    assert np.all(track.speed_cm_s[~track.freezing] > 0)


@pytest.mark.parametrize("view", ["top", "head_fixed"])
def test_a_freezing_mouse_does_not_move_but_the_cable_does(day, times, view):
    schedule = day(4, 4)
    cfg = _clean(view)
    track = simulate_behaviour(schedule, times(schedule, 30.0), _conditioned(day), cfg, seed=2)
    r = MouseRenderer(cfg, track, seed=3)
    idx = _long_bout_frames(track)
    frames = [r.render(i) for i in idx]
    body = [_outside_cable(f, r) for f in frames]
    assert all(np.array_equal(body[0], b) for b in body[1:])
    x0, y0, x1, y1 = r.cable_region()
    cable = np.array([f[y0:y1, x0:x1] for f in frames], dtype=np.int16)
    assert np.count_nonzero(np.abs(np.diff(cable, axis=0)).sum(axis=(1, 2))) >= len(idx) // 2
    # while the mouse moves, the picture outside the cable changes
    moving = np.flatnonzero(~track.freezing & (track.speed_cm_s > 2))[:30]
    diffs = [
        np.abs(_outside_cable(r.render(i), r) - _outside_cable(r.render(i + 1), r)).sum()
        for i in moving
    ]
    assert np.mean(np.array(diffs) > 0) > 0.8


def test_head_fixed_wheel_stops_while_freezing(day, times):
    schedule = day(4, 4)
    cfg = _clean("head_fixed")
    track = simulate_behaviour(schedule, times(schedule, 30.0), _conditioned(day), cfg, seed=4)
    idx = _long_bout_frames(track)
    assert np.all(track.wheel_counts[idx] == track.wheel_counts[idx[0]])
    assert np.all(np.diff(track.wheel_counts) >= 0) and track.wheel_counts[-1] > 1000


def test_noise_and_flicker_change_every_frame(day, times):
    schedule = day(1, 0)
    cfg = MouseConfig(**SMALL, cable=False)
    track = simulate_behaviour(schedule, times(schedule, 30.0), AnimalState(), cfg)
    r = MouseRenderer(cfg, track, seed=0)
    frames = np.array([r.render(i) for i in range(20)], dtype=np.int16)
    assert np.all(np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2)) > 0.5)
    gains = [r.illumination(i) for i in range(0, 900, 30)]
    assert 0.0 < np.ptp(gains) <= 2 * cfg.flicker_amplitude


def test_truth_arrays_match_the_frames(day, times):
    schedule = day(2, 2, shock_ma=0.5)
    t = times(schedule, 30.0)
    truth = simulate_behaviour(schedule, t, AnimalState(), _clean()).truth()
    assert truth["freezing"].dtype == bool and truth["freezing"].shape == t.shape
    assert truth["position_px"].shape == (len(t), 2)
    assert truth["freeze_bouts_s"].shape[1] == 2
    assert truth["startle"].any()  # the shocks make it run


def _cs_freezing(track, schedule, stimulus):
    rate = schedule.sample_rate_hz
    t = track.frame_times_s
    inside = np.zeros(len(t), bool)
    for s in schedule.sounds:
        if s.stimulus == stimulus:
            inside |= (t >= s.start_sample / rate) & (t < s.stop_sample / rate)
    return track.freezing[inside].mean()


def test_cohort_freezing_rises_with_conditioning_and_falls_with_extinction(four_days, times):
    """Three animals over habituation, conditioning, recall and extinction."""
    cfg = MouseConfig(**SMALL)
    plus = np.zeros((3, 4))
    minus = np.zeros((3, 4))
    ext_late = np.zeros(3)
    for animal in range(3):
        state = AnimalState(animal_id=f"m{animal}")
        for d, schedule in enumerate(four_days):
            track = simulate_behaviour(schedule, times(schedule, 10.0), state, cfg, seed=animal)
            plus[animal, d] = _cs_freezing(track, schedule, "cs_plus")
            minus[animal, d] = _cs_freezing(track, schedule, "cs_minus")
            if d == 3:
                late = track.frame_times_s > track.frame_times_s[-1] * 0.6
                ext_late[animal] = track.freezing[late].mean()
            state = update_state(state, schedule)
    hab, recall = plus[:, 0].mean(), plus[:, 2].mean()
    assert recall > hab + 0.25  # CS+ freezing rises after conditioning...
    assert recall > minus[:, 2].mean() + 0.15  # ...above the CS- ...
    assert minus[:, 2].mean() > minus[:, 0].mean()  # ...which generalises a little
    assert ext_late.mean() < recall - 0.2  # and extinction brings it down
