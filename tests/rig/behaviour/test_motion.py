"""The motion and step indices: blocks changed against the frame a gap back and the previous
frame, with the noise cutoff measured from the session and the light's changes compensated."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from rig.behaviour.motion import NOISE_SIGMAS, MotionScorer, motion_indices, region_mask
from rig.files.freezing import FreezingParams, PolygonRegion, RectRegion


def _push_all(scorer: MotionScorer, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pushed = np.array([scorer.push(f) for f in frames])
    return pushed[:, 0], pushed[:, 1]


@pytest.mark.parametrize("bin_px", [3, 4])  # 4,800 blocks a frame (compared one by one), 2,700
def test_stacks_of_any_size_give_the_indices_of_pushing_one_by_one(clip, bin_px):
    # the engine scores a step's frames as one stack: fewer or more frames than the gap
    video, frames = clip
    params = video.params(bin_px=bin_px, gap_s=0.2)  # 0.2 s = 3 frames
    clip_frames = frames[:150]
    one = MotionScorer(240, 180, video.fps, params)
    expected = _push_all(one, clip_frames)
    stacked = MotionScorer(240, 180, video.fps, params)
    sizes = [1, 2, stacked.gap - 1, stacked.gap, stacked.gap + 1, 3 * stacked.gap, 7]
    parts, start = [], 0
    while start < len(clip_frames):
        n = sizes[len(parts) % len(sizes)]
        parts.append(stacked.push_many(clip_frames[start : start + n]))
        start += n
    got = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    assert np.array_equal(got[0], expected[0], equal_nan=True)
    assert np.array_equal(got[1], expected[1], equal_nan=True)
    assert stacked.frames_seen == len(clip_frames)
    with pytest.raises(ValueError, match="frames shape"):
        stacked.push_many(clip_frames[0])


def test_calibration_frames_get_their_indices_once_the_cutoff_is_known(clip):
    video, frames = clip
    params = video.params()  # automatic cutoff over the first second: 15 frames
    scorer = MotionScorer(240, 180, video.fps, params)
    assert scorer.calibration_frames == 15
    motion, _ = _push_all(scorer, frames[:40])
    assert np.isnan(motion[:15]).all() and np.isfinite(motion[15:]).all()
    early_motion, early_step = scorer.early_values()
    assert np.isnan(early_motion[: scorer.gap]).all()
    assert np.isfinite(early_motion[scorer.gap :]).all() and np.isnan(early_step[0])
    whole = motion_indices(frames[:40], video.fps, params)
    assert np.array_equal(whole.motion[:15], early_motion, equal_nan=True)
    assert np.array_equal(whole.motion[15:], motion[15:])
    assert whole.cutoff_grey == scorer.cutoff_grey


def test_a_video_shorter_than_the_calibration_is_still_measured(clip):
    video, frames = clip
    found = motion_indices(frames[:6], video.fps, video.params())
    assert found.cutoff_grey > 0 and np.isfinite(found.step[1:]).all()


def test_automatic_cutoff_is_six_sigma_of_the_block_noise():
    rng = np.random.default_rng(7)
    scene = rng.integers(60, 200, (96, 128)).astype(float)
    sigma = 3.0
    frames = np.clip(np.round(scene + rng.normal(0, sigma, (30, 96, 128))), 0, 255)
    scorer = MotionScorer(128, 96, 30.0, FreezingParams())
    _push_all(scorer, frames.astype(np.uint8))
    # a 4x4 block's mean carries sigma/4 of noise; a difference of two, sqrt(2) times that
    want = NOISE_SIGMAS * np.sqrt(2) * sigma / 4
    assert scorer.cutoff_grey == pytest.approx(want, rel=0.1)


def test_index_is_the_fraction_of_blocks_changed():
    frames = np.full((6, 40, 40), 100, np.uint8)
    frames[3:, 0:20, 0:10] = 200  # a change at frame 3 covering 1/8 of the picture
    params = FreezingParams(gap_s=2.0, bin_px=2, noise_cutoff_grey=10)
    found = motion_indices(frames, 1.0, params)  # gap = 2 frames
    motion, step = found.motion, found.step
    assert np.isnan(motion[:2]).all() and np.isnan(step[0])
    assert motion[2] == 0 and step[2] == 0
    assert motion[3] == pytest.approx(1 / 8) and motion[4] == pytest.approx(1 / 8)
    assert step[3] == pytest.approx(1 / 8) and step[4] == 0  # the change is in frame 3 only
    assert motion[5] == 0  # frame 5 is compared with frame 3: no change any more


def test_a_change_of_light_is_not_motion():
    rng = np.random.default_rng(3)
    scene = rng.integers(40, 200, (64, 64)).astype(float)
    frames = np.stack([scene * g for g in (1.0, 1.0, 1.06, 1.06, 0.95)]).astype(np.uint8)
    frames[4, 8:24, 8:24] = 250  # and a real change
    params = FreezingParams(gap_s=1.0, noise_cutoff_grey=4)
    compensated = motion_indices(frames, 1.0, params).motion
    raw = motion_indices(frames, 1.0, params.model_copy(update={"compensate_illumination": False}))
    assert compensated[2] == 0 and raw.motion[2] > 0.3  # 6 % brighter: every bright block
    assert compensated[4] == pytest.approx(16 / 256)  # the 16x16 patch is 16 of 256 blocks


def test_uint16_frames():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 4096, (20, 48, 64), dtype=np.uint16)
    params = FreezingParams(gap_s=0.1, noise_cutoff_grey=1000)
    scorer = MotionScorer(64, 48, 20.0, params)
    motion, step = _push_all(scorer, frames)
    found = motion_indices(frames, 20.0, params)
    assert np.array_equal(motion, found.motion, equal_nan=True)
    assert np.array_equal(step, found.step, equal_nan=True)


def test_gap_is_at_least_one_frame():
    assert MotionScorer(16, 16, 2.0, FreezingParams(gap_s=0.25)).gap == 1
    assert MotionScorer(16, 16, 100.0, FreezingParams(gap_s=0.25)).gap == 25


def test_exclusion_mask_removes_cable_motion(clip):
    video, frames = clip
    still = video.truth
    masked = motion_indices(frames, video.fps, video.params()).motion
    unmasked = motion_indices(frames, video.fps, video.params(exclude=[])).motion
    assert still.sum() > 50
    # While the mouse freezes the cable still swings: without the mask that is "motion".
    assert np.nanmedian(unmasked[still]) > 0.002
    assert np.nanmedian(masked[still]) == 0


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
    with pytest.raises(ValidationError):
        FreezingParams.model_validate({"noise_cutoff_grey": "loud"})
    p = FreezingParams.model_validate(
        {
            "threshold": "auto",
            "noise_cutoff_grey": 8,
            "min_freeze_s": 2,
            "exclude": [{"points_px": [[0, 0], [5, 0], [0, 5]]}],
        }
    )
    assert isinstance(p.exclude[0], PolygonRegion) and p.noise_cutoff_grey == 8
