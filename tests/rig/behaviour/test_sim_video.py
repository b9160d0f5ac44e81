"""Freezing scored from the harder simulated video agrees with the simulated truth.

The mouse breathes while it freezes, grooms and sniffs in place without walking, slows down
before it stops; the camera adds temporal and row noise, lamp flicker, a slow drift of the
light and a cable that swings while the mouse freezes (excluded by a rectangle, as a user would
draw it). Cutoff and threshold are automatic, calibrated on the session's baseline.
"""

from __future__ import annotations

import pytest

from rig.behaviour.freezing import score_motion
from rig.behaviour.motion import motion_indices
from tests.rig.behaviour.conftest import assert_agrees, simulated_video


def _score(video):
    params = video.params()
    found = motion_indices(video.video(), video.fps, params)
    return score_motion(found.motion, video.fps, params, video.times, step=found.step)


@pytest.fixture(scope="module")
def default_rig_video():
    """The default simulated rig's camera (640x480 at 30 fps): 2 min of baseline, 4 CS+."""
    video = simulated_video(640, 480, 30.0, 120.0, 30.0, 40.0, 4, seed=1)
    return video, _score(video)


def test_the_video_holds_what_makes_scoring_hard(default_rig_video):
    video, _ = default_rig_video
    track = video.track
    assert track.grooming.mean() > 0.005 and track.sniffing.mean() > 0.03
    assert not (track.freezing & (track.grooming | track.sniffing)).any()
    assert len(track.freeze_bouts_s) >= 10


def test_scored_freezing_agrees_with_the_truth(default_rig_video):
    video, score = default_rig_video
    result = assert_agrees(score.frozen, video.truth, video.times, video.cs_epochs)
    assert result.onsets_within_tolerance >= 0.9, result


def test_grooming_and_sniffing_are_not_freezing(default_rig_video):
    video, score = default_rig_video
    for busy in (video.track.grooming, video.track.sniffing):
        assert score.frozen[busy].mean() <= 0.05


def test_compressed_video_is_scored_as_well():
    video = simulated_video(320, 240, 30.0, 60.0, 20.0, 20.0, 3, seed=4, jpeg_quality=60)
    score = _score(video)
    assert_agrees(score.frozen, video.truth, video.times, video.cs_epochs)
