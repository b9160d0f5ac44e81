"""The simulated mouse: freezing that follows learning, and video that shows it."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from sim.learning import AnimalState, update_state
from sim.mouse import MOBILE, MouseConfig, simulate_behaviour
from sim.mouse_video import MouseRenderer

SMALL = {"width": 160, "height": 120}


def _clean(view="top", **kw):
    return MouseConfig.model_validate(
        {"view": view, "noise": False, "flicker": False, **SMALL, **kw}
    )


def _conditioned(day):
    return update_state(AnimalState(), day(7, 7, shock_ma=0.5))


def _outside_cable(frame, renderer):
    x0, y0, x1, y1 = renderer.cable_region()
    masked = frame.astype(np.int16).copy()
    masked[y0:y1, x0:x1] = 0
    return masked


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
    still = track.freezing | track.grooming | track.sniffing  # the body stays put
    assert np.all(track.speed_cm_s[still] == 0)
    assert np.all(track.speed_cm_s[~still] > 0)


def test_truth_keeps_freezing_grooming_and_sniffing_apart(day, times):
    schedule = day(6, 6, shock_ma=0.5)
    cfg = MouseConfig(**SMALL, dart_probability=0.5)
    track = simulate_behaviour(schedule, times(schedule, 30.0), AnimalState(), cfg, seed=3)
    labels = np.stack([track.freezing, track.grooming, track.sniffing, track.darting])
    assert labels.any(axis=1).all()  # every behaviour happens
    assert (labels.sum(axis=0) <= 1).all()  # and never two at once
    assert track.speed_cm_s[track.darting].min() > 15  # darts are fast runs
    assert np.all(track.head_bob_mm[~track.freezing] == 0)


def test_a_walking_mouse_slows_down_before_it_stops(day, times):
    schedule = day(8, 8)
    t = times(schedule, 30.0)
    track = simulate_behaviour(schedule, t, _conditioned(day), _clean(), seed=5)
    stops = np.flatnonzero(np.diff(track.freezing.astype(int)) == 1) + 1
    before = [track.speed_cm_s[s - 1] for s in stops if track.state[s - 10 : s].max() == 0]
    assert len(before) > 3 and np.median(before) < 0.5 * 6.0  # below half the mean speed


def _long_bout_frames(track, state, min_frames=20):
    starts = np.flatnonzero(np.diff(np.concatenate(([0], state.astype(int)))) == 1)
    for a in starts:
        n = np.argmax(~state[a:]) if not state[a:].all() else len(state) - a
        if n >= min_frames:
            return np.arange(a, a + n)
    raise AssertionError("no long bout")


@pytest.mark.parametrize("view", ["top", "head_fixed"])
def test_a_freezing_mouse_shows_one_pose_from_its_first_frame_to_its_last(day, times, view):
    # without breathing, noise or light changes the frames of a bout are identical, and the
    # frames just before and after it differ: the truth's frames are the still picture's
    schedule = day(4, 4)
    cfg = _clean(view, breath_amplitude_mm=0.0, breath_shading=0.0, whisker_tremor_deg=0.0)
    track = simulate_behaviour(schedule, times(schedule, 30.0), _conditioned(day), cfg, seed=2)
    r = MouseRenderer(cfg, track, seed=3)
    checked = 0
    for start, stop in track.freeze_bouts_s[:6]:
        idx = np.flatnonzero((track.frame_times_s >= start) & (track.frame_times_s < stop))
        s, e = int(idx[0]), int(idx[-1]) + 1
        if view == "top":  # the pose arrives at the bout's first frame and leaves after its last
            pose = np.stack([track.x_px, track.y_px, track.heading_rad, track.head_yaw_rad])
            assert (pose[:, s : e - 1] == pose[:, s + 1 : e]).all()
            assert (pose[:, s - 1] != pose[:, s]).any() and (pose[:, e] != pose[:, e - 1]).any()
            if track.state[s - 1] == MOBILE:  # walked into it: the body arrives at frame s
                assert (track.x_px[s - 1], track.y_px[s - 1]) != (track.x_px[s], track.y_px[s])
        if idx[0] < 3 or idx[-1] + 3 >= len(track):
            continue
        frames = [_outside_cable(r.render(i), r) for i in range(idx[0] - 3, idx[-1] + 4)]
        bout = frames[3:-3]
        assert all(np.array_equal(bout[0], b) for b in bout[1:])
        # a walking mouse slows down to stop and sets off slowly: its last and first steps
        # may be below a pixel, but the picture before and after the bout is another
        assert not np.array_equal(frames[0], bout[0]) and not np.array_equal(frames[-1], bout[0])
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("view", ["top", "head_fixed"])
def test_a_freezing_mouse_breathes_and_the_cable_swings(day, times, view):
    schedule = day(4, 4)
    cfg = _clean(view, width=320, height=240, breath_shading=0.0)  # the flanks alone
    track = simulate_behaviour(schedule, times(schedule, 30.0), _conditioned(day), cfg, seed=2)
    r = MouseRenderer(cfg, track, seed=3)
    idx = _long_bout_frames(track, track.freezing, min_frames=60)
    frames = np.array([_outside_cable(r.render(i), r) for i in idx])
    changed = np.abs(np.diff(frames, axis=0)) > 0
    # only the body's outline and back change, and only a little
    x0, y0, x1, y1 = r.body_box(int(idx[0]))
    inside = np.zeros(frames.shape[1:], bool)
    inside[max(y0 - 3, 0) : y1 + 3, max(x0 - 3, 0) : x1 + 3] = True  # whiskers tremble
    assert changed.any() and not changed[:, ~inside].any()
    assert np.abs(np.diff(frames, axis=0))[:, inside].mean() < 2.0
    # at the breathing rate (4 Hz while freezing)
    trace = frames[:, inside].astype(float).mean(axis=1)
    spectrum = np.abs(np.fft.rfft(trace - trace.mean()))
    freqs = np.fft.rfftfreq(len(trace), 1 / 30.0)
    assert 3.0 <= freqs[np.argmax(spectrum)] <= 5.0
    x0, y0, x1, y1 = r.cable_region()
    cable = np.array([r.render(i)[y0:y1, x0:x1] for i in idx], dtype=np.int16)
    assert np.count_nonzero(np.abs(np.diff(cable, axis=0)).sum(axis=(1, 2))) >= len(idx) // 2


@pytest.mark.parametrize("view", ["top", "head_fixed"])
def test_grooming_and_sniffing_move_the_head_not_the_body(day, times, view):
    schedule = day(6, 6)
    cfg = _clean(view, width=320, height=240, groom_probability=0.8)
    track = simulate_behaviour(schedule, times(schedule, 30.0), AnimalState(), cfg, seed=4)
    r = MouseRenderer(cfg, track, seed=3)
    for busy in (track.grooming, track.sniffing):
        idx = _long_bout_frames(track, busy, min_frames=20)
        assert np.ptp(track.x_px[idx]) == 0 and np.ptp(track.y_px[idx]) == 0
        frames = np.array([_outside_cable(r.render(i), r) for i in idx])
        moved = (np.abs(np.diff(frames, axis=0)) > 30).sum(axis=(1, 2))
        assert np.mean(moved > 0) > 0.5  # the head or the paws move in most frames


def test_head_fixed_wheel_stops_while_freezing(day, times):
    schedule = day(4, 4)
    cfg = _clean("head_fixed")
    track = simulate_behaviour(schedule, times(schedule, 30.0), _conditioned(day), cfg, seed=4)
    idx = _long_bout_frames(track, track.freezing, min_frames=10)
    assert np.all(track.wheel_counts[idx] == track.wheel_counts[idx[0]])
    assert np.all(np.diff(track.wheel_counts) >= 0) and track.wheel_counts[-1] > 1000


def test_camera_noise_and_light_change_every_frame(day, times):
    schedule = day(1, 0)
    cfg = MouseConfig(**SMALL, cable=False)
    track = simulate_behaviour(schedule, times(schedule, 30.0), AnimalState(), cfg)
    r = MouseRenderer(cfg, track, seed=0)
    frames = np.array([r.render(i) for i in range(20)], dtype=np.int16)
    assert np.all(np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2)) > 0.5)
    gains = np.array([r.illumination(i) for i in range(len(track))])
    assert gains.min() >= 0.8 and gains.max() <= 1.2 and np.ptp(gains) > 0.01


def test_empty_arena_frames_have_no_mouse(day, times):
    schedule = day(1, 0)
    cfg = _clean()
    track = simulate_behaviour(schedule, times(schedule, 30.0), AnimalState(), cfg)
    r = MouseRenderer(cfg, track, seed=0)
    x0, y0, x1, y1 = r.body_box(100)
    with_mouse, empty = r.render(100), r.render(100, animal=False)
    assert (with_mouse[y0:y1, x0:x1] != empty[y0:y1, x0:x1]).any()
    assert np.array_equal(empty, r.render(900, animal=False))  # nothing moves, not the cable


def test_mjpeg_compression_leaves_8x8_block_artefacts(day, times):
    schedule = day(1, 0)
    cfg = MouseConfig(width=320, height=240, jpeg_quality=20)
    track = simulate_behaviour(schedule, times(schedule, 30.0), AnimalState(), cfg)
    compressed = MouseRenderer(cfg, track, seed=0).render(50).astype(float)
    raw = cfg.model_copy(update={"jpeg_quality": None})
    plain = MouseRenderer(raw, track, seed=0).render(50).astype(float)
    assert not np.array_equal(compressed, plain)
    # steps across the 8x8 block borders are larger than steps inside blocks
    steps = np.abs(np.diff(compressed, axis=1)).mean(axis=0)
    border = steps[7::8].mean()
    assert border > 1.2 * np.delete(steps, np.s_[7::8]).mean()


def test_truth_arrays_match_the_frames(day, times):
    schedule = day(2, 2, shock_ma=0.5)
    t = times(schedule, 30.0)
    truth = simulate_behaviour(schedule, t, AnimalState(), _clean()).truth()
    for key in ("freezing", "grooming", "sniffing", "darting", "startle"):
        assert truth[key].dtype == bool and truth[key].shape == t.shape
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
