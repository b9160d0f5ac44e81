"""Freezing scored from the realistic simulated video agrees with the simulated truth.

The video has sensor noise, illumination flicker and a cable that keeps moving while the mouse
freezes (excluded by a mask, as a user would draw it); the threshold is automatic, calibrated
on a baseline in which the naive-looking animal hardly stops.
"""

from __future__ import annotations

import numpy as np

from rig.freezing import FreezingParams, score_motion
from rig.motion import MotionScorer, RectRegion
from rig.schedule import OutputSchedule, SoundBlock
from sim.learning import AnimalState
from sim.mouse import MouseConfig, MouseRenderer, simulate_behaviour

FPS = 30.0
CS_ONSETS = (60.0, 120.0, 180.0)


def _scored_and_true():
    fs = 1000
    sounds = tuple(
        SoundBlock(int(s * fs), int((s + 30) * fs), "tone", 75, 7500.0, stimulus="cs_plus")
        for s in CS_ONSETS
    )
    schedule = OutputSchedule(
        sample_rate_hz=fs, n_samples=240 * fs, sounds=sounds, camera_rate_hz=FPS
    )
    state = AnimalState(animal_id="conditioned", strengths={"tone:7500": 0.8})
    config = MouseConfig()  # 640x480, noise, flicker and cable on
    times = np.arange(int(240 * FPS)) / FPS
    track = simulate_behaviour(schedule, times, state, config, seed=1)
    renderer = MouseRenderer(config, track, seed=1)
    x0, y0, x1, y1 = renderer.cable_region()
    params = FreezingParams(
        exclude=[RectRegion(x_px=x0, y_px=y0, width_px=x1 - x0, height_px=y1 - y0)],
        calibration_s=[0.0, 60.0],
    )
    scorer = MotionScorer(config.width, config.height, FPS, params)
    motion = np.array([scorer.push(renderer.render(i)) for i in range(len(times))])
    return times, score_motion(motion, FPS, params, times).frozen, track.freezing


def test_scored_freezing_agrees_with_truth_on_realistic_video():
    times, scored, truth = _scored_and_true()
    assert truth.any() and not truth.all()
    assert (scored == truth).mean() >= 0.95
    for onset in CS_ONSETS:
        epoch = (times >= onset) & (times < onset + 30)
        assert abs(scored[epoch].mean() - truth[epoch].mean()) * 100 <= 5
