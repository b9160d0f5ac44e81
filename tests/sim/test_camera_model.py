"""What the simulated camera adds: light that flickers and drifts, noise with row structure,
MJPEG compression; and the sprites' blending under that light."""

from __future__ import annotations

import numpy as np
import pytest

from sim.camera_model import CameraNoise, illumination_gain, mjpeg_roundtrip
from sim.drawing import FRAME_OFFSET, make_sprite


def _gain(times, **kw):
    settings = dict(flicker=0.02, mains_hz=50, drift=0.0, drift_tau_s=600, wander=0.0)
    settings.update(kw)
    return illumination_gain(times, np.random.default_rng(1), wander_tau_s=20.0, **settings)


def _peak_hz(values, fps):
    spectrum = np.abs(np.fft.rfft(values - values.mean()))
    return np.fft.rfftfreq(len(values), 1 / fps)[np.argmax(spectrum)]


def test_a_100_hz_lamp_filmed_at_30_fps_beats_at_10_hz():
    t = np.arange(3000) / 30.0
    g = _gain(t)
    assert _peak_hz(g, 30.0) == pytest.approx(10.0, abs=0.05)
    # three samples a beat: the sine is seen at three phases 120 degrees apart
    assert np.ptp(g) == pytest.approx(2 * 0.02 * np.sin(np.pi / 3), rel=0.01)


def test_a_120_hz_lamp_filmed_at_30_fps_does_not_flicker():
    g = _gain(np.arange(3000) / 30.0, mains_hz=60)  # 120 Hz is a multiple of 30 fps
    assert np.ptp(g) < 1e-9


def test_the_illuminator_warms_up_and_the_light_wanders():
    t = np.arange(0, 1800, 0.5)
    drift = _gain(t, flicker=0.0, drift=0.04)
    assert drift[0] == pytest.approx(1.0)
    assert drift[-1] == pytest.approx(1 - 0.04 * (1 - np.exp(-t[-1] / 600)), rel=1e-9)
    wander = _gain(t, flicker=0.0, wander=0.01)
    assert 0.005 < np.std(wander) < 0.02
    assert np.corrcoef(wander[:-1], wander[1:])[0, 1] > 0.9  # slow: 20 s against 0.5 s steps


def test_camera_noise_has_row_structure():
    noise = CameraNoise(320, 240, sigma=2.0, row_sigma=1.0, rng=np.random.default_rng(2))
    frames = []
    for i in range(20):
        f = np.zeros((240, 320), np.uint8)
        noise.add(f, i)
        frames.append(f.astype(float) - FRAME_OFFSET)
    frames = np.array(frames)
    assert frames.std() == pytest.approx(np.hypot(2.0, 1.0), rel=0.1)
    row_means = frames.mean(axis=2)
    assert row_means.std() == pytest.approx(1.0, rel=0.2)  # white noise alone: 2/sqrt(320)
    assert not np.array_equal(frames[0], frames[1])
    quiet = CameraNoise(32, 16, 0.0, 0.0, np.random.default_rng(0))
    f = np.full((16, 32), 7, np.uint8)
    quiet.add(f, 0)
    assert (f == 7 + FRAME_OFFSET).all()


def test_mjpeg_roundtrip_is_lossy_and_keeps_the_frame():
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (48, 64), dtype=np.uint8)
    out = mjpeg_roundtrip(frame, 50)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert not np.array_equal(out, frame)
    assert np.abs(out.astype(int) - frame).mean() < 40


def test_a_sprite_is_lit_like_the_scene_it_is_pasted_on():
    alpha = np.zeros((4, 4))
    alpha[1:3, 1:3] = 1.0
    alpha[0, 0] = 0.5
    sprite = make_sprite(alpha, np.full((4, 4), 100.0), 0, 0)
    gain256 = round(1.1 * 256)
    scene = 50 * gain256 // 256 - FRAME_OFFSET  # the frame holds scene * gain - offset
    img = np.full((6, 6), scene, np.uint8)
    sprite.paste(img, 0, 0, gain256)
    assert img[1, 1] == 110 - FRAME_OFFSET and img[2, 2] == 110 - FRAME_OFFSET
    assert img[0, 0] == pytest.approx((110 + 55) / 2 - FRAME_OFFSET, abs=1)
    assert img[3, 3] == scene and img[5, 5] == scene  # outside the patch: untouched
