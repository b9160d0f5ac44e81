"""Freezing scoring: motion index, min-duration rule, auto threshold, epochs, locomotion."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from rig.freezing import (
    FreezingParams,
    LiveFreezing,
    auto_threshold,
    counts_to_steps,
    encoder_speed,
    freezing_by_epoch,
    score_freezing,
    score_locomotion_freezing,
    score_motion,
)
from rig.motion import MotionScorer, PolygonRegion, RectRegion, motion_index, region_mask
from tests.freezing_video import SyntheticVideo


@pytest.fixture(scope="module")
def video() -> tuple[SyntheticVideo, np.ndarray]:
    v = SyntheticVideo(width=320, height=240, fps=15.0, seed=3)
    return v, np.concatenate(list(v.chunks()))


def cable_params(v: SyntheticVideo, **kw) -> FreezingParams:
    x, y, w, h = v.cable_box
    return FreezingParams(
        exclude=[RectRegion(x_px=x, y_px=y, width_px=w, height_px=h)],
        calibration_s=[0, v.baseline_s + v.cs_s + v.iti_s],
        **kw,
    )


# --- motion index ------------------------------------------------------------------------


def test_push_and_vectorised_give_identical_index(video):
    v, frames = video
    params = cable_params(v, bin_px=3, gap_s=0.2)  # 320 is not a multiple of 3: cropped
    clip = frames[:120]
    scorer = MotionScorer(v.width, v.height, v.fps, params)
    pushed = np.array([scorer.push(f) for f in clip])
    batch = motion_index(clip, v.fps, params, chunk=50)
    assert np.array_equal(pushed, batch, equal_nan=True)
    assert np.isnan(pushed[: scorer.gap]).all()
    assert np.isfinite(pushed[scorer.gap :]).all()


def test_stacks_of_any_size_give_the_index_of_pushing_one_by_one(video):
    # the engine scores a step's frames as one stack: fewer or more frames than the gap
    v, frames = video
    params = cable_params(v, gap_s=0.2)
    clip = frames[:150]
    one_by_one = MotionScorer(v.width, v.height, v.fps, params)
    expected = np.array([one_by_one.push(f) for f in clip])
    stacked = MotionScorer(v.width, v.height, v.fps, params)
    assert 1 < stacked.gap < 30
    sizes = [1, 2, stacked.gap - 1, stacked.gap, stacked.gap + 1, 3 * stacked.gap, 7]
    parts, start = [], 0
    while start < len(clip):
        n = sizes[len(parts) % len(sizes)]
        parts.append(stacked.push_many(clip[start : start + n]))
        start += n
    assert np.array_equal(np.concatenate(parts), expected, equal_nan=True)
    assert stacked.frames_seen == len(clip)
    with pytest.raises(ValueError, match="frames shape"):
        stacked.push_many(clip[0])


def test_push_and_vectorised_agree_on_uint16_frames():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 4096, (20, 48, 64), dtype=np.uint16)
    params = FreezingParams(gap_s=0.1, noise_cutoff_grey=1000)
    scorer = MotionScorer(64, 48, 20.0, params)
    pushed = [scorer.push(f) for f in frames]
    assert np.array_equal(pushed, motion_index(frames, 20.0, params), equal_nan=True)


def test_index_is_fraction_of_blocks_changed_against_gap_frame():
    frames = np.full((6, 40, 40), 100, np.uint8)
    frames[3:, 0:20, 0:10] = 200  # a change at frame 3 covering 1/8 of the picture
    params = FreezingParams(gap_s=2.0, bin_px=2, noise_cutoff_grey=10)
    index = motion_index(frames, 1.0, params)  # gap = 2 frames
    assert np.isnan(index[:2]).all()
    assert index[2] == 0
    assert index[3] == pytest.approx(1 / 8) and index[4] == pytest.approx(1 / 8)
    assert index[5] == 0  # frame 5 is compared with frame 3: no change any more


def test_gap_is_at_least_one_frame():
    scorer = MotionScorer(16, 16, 2.0, FreezingParams(gap_s=0.25))
    assert scorer.gap == 1
    assert MotionScorer(16, 16, 100.0, FreezingParams(gap_s=0.25)).gap == 25


def test_exclusion_mask_removes_cable_motion(video):
    v, frames = video
    still = v.truth.copy()
    masked = motion_index(frames, v.fps, cable_params(v))
    unmasked = motion_index(frames, v.fps, FreezingParams())
    # While the mouse freezes the cable still swings: without the mask that is "motion".
    assert np.nanmedian(unmasked[still]) > 5 * max(np.nanmedian(masked[still]), 1e-3)
    assert np.nanpercentile(masked[still], 90) < 0.005


def test_regions_rect_and_polygon():
    rect = region_mask(RectRegion(x_px=2, y_px=1, width_px=3, height_px=2), 8, 5)
    assert rect.sum() == 6 and rect[1, 2] and rect[2, 4] and not rect[3, 2]
    tri = region_mask(PolygonRegion(points_px=[[0, 0], [10, 0], [0, 10]]), 10, 10)
    assert tri[0, 0] and not tri[9, 9] and tri.sum() == 45


def test_roi_outside_everything_is_an_error():
    params = FreezingParams(roi=RectRegion(x_px=0, y_px=0, width_px=3, height_px=3), bin_px=4)
    with pytest.raises(ValueError, match="no whole block"):
        MotionScorer(32, 32, 30.0, params)


def test_params_reject_unknown_keys_and_bad_values():
    with pytest.raises(ValidationError):
        FreezingParams.model_validate({"threshhold": 0.01})
    with pytest.raises(ValidationError):
        FreezingParams.model_validate({"threshold": "high"})
    p = FreezingParams.model_validate(
        {
            "threshold": "auto",
            "min_freeze_s": 2,
            "exclude": [{"points_px": [[0, 0], [5, 0], [0, 5]]}],
        }
    )
    assert isinstance(p.exclude[0], PolygonRegion)


# --- min_freeze_s semantics ---------------------------------------------------------------


def test_freezing_needs_min_duration_and_then_counts_whole_bout():
    m = np.array([5, 0, 0, 5, 0, 0, 0, 0, 5, 0, 0, 0], float)
    frozen = score_freezing(m, fps=4.0, threshold=1.0, min_freeze_s=1.0)  # 4 frames
    expected = [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0]
    assert frozen.tolist() == [bool(x) for x in expected]


def test_gap_extends_still_runs_backwards():
    m = np.array([5, 5, 5, 0, 0, 5, 5], float)
    # Two low frames alone are too short; with a 2-frame gap the animal was still since frame 1.
    assert not score_freezing(m, 1.0, 1.0, min_freeze_s=4.0).any()
    frozen = score_freezing(m, 1.0, 1.0, min_freeze_s=4.0, gap_s=2.0)
    assert frozen.tolist() == [False, True, True, True, True, False, False]


def test_nan_counts_as_motion():
    m = np.array([0, 0, np.nan, 0, 0], float)
    assert not score_freezing(m, 1.0, 1.0, min_freeze_s=3.0).any()


def test_live_state_equals_offline_on_each_prefix():
    rng = np.random.default_rng(5)
    m = (rng.random(300) < 0.15).astype(float) + rng.random(300) * 0.1
    live = LiveFreezing(fps=10.0, threshold=0.5, min_freeze_s=0.8, gap_s=0.2)
    states = [live.push(x) for x in m]
    for t in range(len(m)):
        assert states[t] == score_freezing(m[: t + 1], 10.0, 0.5, 0.8, 0.2)[t]
    offline = score_freezing(m, 10.0, 0.5, 0.8, 0.2)
    assert np.all(offline[np.array(states)])  # live never claims more than offline


def test_live_reports_bout_start():
    live = LiveFreezing(fps=1.0, threshold=1.0, min_freeze_s=3.0, gap_s=1.0)
    for x in [5, 5, 0]:
        assert not live.push(x)
    assert live.bout_start is None
    assert live.push(0)
    assert live.bout_start == 1
    assert not live.push(9)


# --- auto threshold -----------------------------------------------------------------------


def test_auto_threshold_sits_between_noise_floor_and_movement():
    rng = np.random.default_rng(2)
    noise = np.abs(rng.normal(0.002, 0.0007, 3000))  # still: a known noise floor near 0.2 %
    moving = rng.lognormal(np.log(0.03), 0.5, 2000)
    m = rng.permutation(np.concatenate([noise, moving]))
    thr = auto_threshold(m, fps=30.0)
    assert np.percentile(noise, 99.5) < thr < np.percentile(moving, 2)


def test_auto_threshold_uses_only_the_calibration_window():
    m = np.concatenate([np.tile([0.0, 0.05], 50), np.full(100, 0.5)])
    thr_window = auto_threshold(m, fps=10.0, calibration_s=(0.0, 10.0))
    assert 0.0 < thr_window < 0.05
    params = FreezingParams(calibration_s=[0.0, 10.0])
    assert auto_threshold(m, 10.0, params) == thr_window


def test_auto_threshold_refuses_a_flat_window():
    with pytest.raises(ValueError, match="constant"):
        auto_threshold(np.zeros(100), fps=10.0)


# --- the synthetic video end to end -------------------------------------------------------


def test_agreement_with_truth_on_synthetic_video(video):
    v, frames = video
    params = cable_params(v)
    score = score_motion(motion_index(frames, v.fps, params), v.fps, params)
    assert score.auto
    assert np.mean(score.frozen == v.truth) >= 0.95
    got = freezing_by_epoch(v.times_s, score.frozen, v.trials, v.phases)
    want = freezing_by_epoch(v.times_s, v.truth, v.trials, v.phases)
    for g, w in zip(got["trials"], want["trials"], strict=True):
        assert abs(g["epochs"]["cs"]["percent"] - w["epochs"]["cs"]["percent"]) <= 5


def test_rescoring_an_hour_at_100_fps():
    rng = np.random.default_rng(0)
    n = 360_000
    bouts = np.repeat(rng.random(n // 500) < 0.4, 500)
    m = np.where(bouts, rng.random(n) * 0.002, 0.02 + rng.random(n) * 0.05)
    params = FreezingParams(threshold=0.005, min_freeze_s=1.0, gap_s=0.25)
    score = score_motion(m, 100.0, params)
    assert score.frozen.shape == (n,)
    # Each bout is found whole, extended back by the 25-frame comparison gap.
    starts = np.flatnonzero(np.diff(bouts.astype(int)) == 1) + 1
    extended = bouts.copy()
    for s in starts:
        extended[s - 25 : s] = True
    assert np.array_equal(score.frozen, extended)
    rescored = score_motion(m, 100.0, params, threshold=0.0)
    assert not rescored.frozen.any()


# --- epochs ---------------------------------------------------------------------------------


def test_epoch_percentages_on_a_hand_made_case():
    times = np.arange(0, 60, 1.0)  # one sample per second
    frozen = np.zeros(60, bool)
    frozen[5:10] = True  # half of the baseline phase [0, 10)
    frozen[15:20] = True  # pre of trial 0: [10, 20) -> 50 %
    frozen[20:30] = True  # CS of trial 0: [20, 30) -> 100 %
    frozen[35:40] = True  # ITI [30, 40) -> 50 %; trial 1 pre [35, 40) -> 100 %
    frozen[50:55] = True  # post [45, 60) -> 5/15
    trials = [
        dict(index=0, phase="cond", cs="cs_plus", us="shock", cs_onset_s=20, cs_offset_s=30,
             us_onset_s=29, us_offset_s=30),
        dict(index=1, phase="cond", cs="cs_minus", us=None, cs_onset_s=40, cs_offset_s=45,
             us_onset_s=None, us_offset_s=None),
    ]  # fmt: skip
    phases = [
        {"name": "base", "start_s": 0, "end_s": 10},
        {"name": "cond", "start_s": 10, "end_s": 60},
    ]
    res = freezing_by_epoch(times, frozen, trials, phases)
    t0, t1 = (t["epochs"] for t in res["trials"])
    assert t0["pre"] == {"start_s": 10.0, "end_s": 20.0, "percent": 50.0}
    assert t0["cs"]["percent"] == 100.0 and t0["us"]["percent"] == 100.0
    assert t0["iti"] == {"start_s": 30.0, "end_s": 40.0, "percent": 50.0}
    assert t1["pre"]["percent"] == 100.0 and t1["pre"]["start_s"] == 35.0
    assert t1["us"] is None and t1["iti"] is None
    base, cond = (p["epochs"] for p in res["phases"])
    assert base["baseline"]["percent"] == 50.0 and base["post"] is None
    assert cond["baseline"] is None
    assert cond["post"]["percent"] == pytest.approx(100 * 5 / 15)
    assert cond["all"]["percent"] == pytest.approx(100 * 25 / 50)
    with_pre = freezing_by_epoch(times, frozen, trials, phases, pre_s=2.0)
    assert with_pre["trials"][0]["epochs"]["pre"]["start_s"] == 18.0


# --- locomotion ----------------------------------------------------------------------------


def test_encoder_speed_in_cm_per_s():
    rate = 1000.0
    steps = np.full(2000, 4)  # 4 counts per ms
    speed = encoder_speed(steps, rate, counts_per_rev=4096, wheel_diameter_cm=15.0)
    want = 4 * rate * math.pi * 15.0 / 4096
    assert np.allclose(speed, want)


def test_counts_to_steps_undoes_wraparound():
    raw = np.array([2**32 - 3, 2**32 - 1, 1, 4], dtype=np.int64)
    assert counts_to_steps(raw).tolist() == [0, 2, 2, 3]
    assert counts_to_steps(np.array([10, 7, 7])).tolist() == [0, -3, 0]


def test_locomotion_freezing_from_wheel_counts():
    rate = 100.0
    steps = np.concatenate([np.full(300, 3), np.zeros(250), np.full(100, -3), np.zeros(50)])
    params = FreezingParams(measure="locomotion")
    speed = encoder_speed(steps, rate, params.encoder_counts_per_rev, params.wheel_diameter_cm, 0.1)
    frozen = score_locomotion_freezing(speed, rate, params.speed_threshold_cm_s, 1.0)
    assert frozen[310:540].all()  # the 2.5 s stop, minus the smoothing window at its edges
    assert not frozen[:290].any() and not frozen[560:660].any()
    assert not frozen[-50:].any()  # a 0.5 s stop is shorter than min_freeze_s
