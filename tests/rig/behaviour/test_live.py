"""Live scoring: the same indices and the same rule as ``rig score``, frame by frame."""

from __future__ import annotations

import numpy as np

from rig.behaviour import live
from rig.behaviour.freezing import score_freezing, score_motion
from rig.behaviour.live import LiveScorer
from rig.behaviour.motion import motion_indices
from rig.program.timeline import Timeline


def _timeline(baseline_s: float, duration_s: float) -> Timeline:
    return Timeline.from_dict(
        {
            "protocol": "t",
            "seed": 0,
            "duration_s": duration_s,
            "trials": [],
            "blocks": [],
            "phases": [
                {"name": "baseline", "start_s": 0.0, "end_s": baseline_s, "n_trials": 0},
                {"name": "rest", "start_s": baseline_s, "end_s": duration_s, "n_trials": 1},
            ],
        }
    )


def _push(scorer: LiveScorer, frames: np.ndarray, times: np.ndarray, sizes=(7, 8)) -> list:
    samples, k = [], 0
    while k < len(frames):
        n = sizes[len(samples) % len(sizes)]
        samples += scorer.push_many(range(k, k + n), frames[k : k + n], times[k : k + n])
        k += n
    return samples


def test_live_indices_and_states_are_those_rig_score_computes(clip):
    video, frames = clip
    params = video.params(calibration_s=None)  # the protocol's baseline calibrates
    timeline = _timeline(video.baseline_s, video.times[-1] + 1)
    scorer = LiveScorer(params, 240, 180, video.fps, timeline)
    samples = _push(scorer, frames, video.times)
    found = motion_indices(frames, video.fps, params)
    # what is stored: identical to the indices of the whole video, calibration frames included
    assert np.array_equal(np.array(scorer.motion), found.motion, equal_nan=True)
    assert np.array_equal(np.array(scorer.step), found.step, equal_nan=True)
    offline = score_motion(
        found.motion, video.fps, params, video.times, step=found.step, window=scorer.window
    )
    assert scorer.threshold == offline.threshold
    live_states = np.array([s.frozen for s in samples])
    after = video.times >= scorer.window[1]
    assert not live_states[~after].any()  # nothing before the threshold is known
    for t in np.flatnonzero(after):  # then, each frame: the rule on what has come so far
        prefix = score_freezing(
            found.motion[: t + 1], video.fps, offline.threshold, params.min_freeze_s,
            params.gap_s, found.step[: t + 1], offline.step_threshold,
        )  # fmt: skip
        assert live_states[t] == prefix[t]
    assert live_states.any()


def test_a_window_without_movement_is_tried_once(clip, monkeypatch):
    # an animal that never moved in the baseline: no threshold, and no retry on every later
    # frame (each try reads the whole window again: hours of frames make it quadratic)
    video, frames = clip
    still = np.repeat(frames[:1], 200, axis=0)
    times = np.arange(200) / video.fps
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise ValueError("the animal hardly moved in the calibration window")

    monkeypatch.setattr(live, "auto_threshold", refuse)
    scorer = LiveScorer(video.params(calibration_s=None), 240, 180, video.fps, _timeline(2, 10))
    samples = _push(scorer, still, times)
    assert len(calls) == 1 and not scorer.calibrated
    assert not any(s.frozen for s in samples) and np.isnan(samples[-1].threshold)
