"""Wheel speed from encoder edges, one binning live and offline, and freezing from it."""

from __future__ import annotations

import math

import numpy as np

from rig.behaviour.live import LiveLocomotion
from rig.behaviour.locomotion import (
    WheelBins,
    counts_to_steps,
    encoder_speed,
    score_locomotion_freezing,
    wheel_speed,
)
from rig.files.freezing import FreezingParams


def test_encoder_speed_in_cm_per_s():
    rate = 1000.0
    steps = np.full(2000, 4)  # 4 counts per ms
    want = 4 * rate * math.pi * 15.0 / 4096
    for centred in (True, False):
        speed = encoder_speed(steps, rate, 4096, 15.0, centred=centred)
        assert np.allclose(speed, want)


def test_trailing_speed_only_sees_the_past():
    steps = np.zeros(100)
    steps[50:] = 1
    trailing = encoder_speed(steps, 10.0, window_s=1.0, centred=False)
    centred = encoder_speed(steps, 10.0, window_s=1.0, centred=True)
    assert trailing[49] == 0 and trailing[50] > 0
    assert centred[46] > 0  # the centred window reaches ahead


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


def test_live_wheel_speed_is_the_trailing_speed_of_the_same_bins():
    rng = np.random.default_rng(3)
    fs, duration = 20_000.0, 20.0
    samples = np.sort(rng.integers(0, int(fs * duration), 30_000))
    samples = samples[(samples < 5 * fs) | (samples > 9 * fs)]  # a 4-s stop
    params = FreezingParams(measure="locomotion", encoder_counts_per_rev=1024)
    live = LiveLocomotion(params, fs, duration)
    chunks = np.array_split(samples, 37)
    position = 0
    for chunk in chunks:  # edges arrive in reads of any size, as the DAQ gives them
        position = int(chunk[-1]) + 1 if len(chunk) else position
        live.push(chunk, position)
    live.push(np.empty(0, np.int64), int(fs * duration))
    bins = WheelBins(fs, duration)
    bins.add(samples)
    offline = wheel_speed(bins, params, centred=False)
    assert np.allclose(np.array(live.speed), offline[: len(live.speed)])
    assert len(live.speed) == len(bins) - 1  # the last bin is never complete
    assert np.allclose(np.array(live.times), bins.times_s()[:-1])
    frozen = score_locomotion_freezing(offline, bins.rate_hz, 1.0, 1.0)
    t = bins.times_s()
    assert frozen[(t > 5.5) & (t < 8.5)].all() and not frozen[t < 4.5].any()
