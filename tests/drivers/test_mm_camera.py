"""The real Micro-Manager camera driver on UniMMCore with the simulated triggered camera."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from drivers.mm_camera import SPEC, MMCamera, MMCameraConfig
from rig.devices import BuildContext
from rig.ports import CameraError, FrameSource
from sim.mm_camera import make_sim_camera

W, H = 64, 48
ROOT = Path(__file__).resolve().parents[2]


def render(k: int) -> np.ndarray:
    return np.random.default_rng(k).integers(0, 256, (H, W), dtype=np.uint8)


@pytest.fixture(autouse=True)
def _collect_cores():
    yield
    gc.collect()  # no core may outlive the test into interpreter shutdown


@pytest.fixture
def sim():
    camera, device = make_sim_camera(render, W, H, exposure_ms=5.0)
    yield camera, device
    camera.close()


def trigger(device, count: int) -> None:
    device.trigger(count)
    assert device.flush()


def test_frames_arrive_per_trigger_in_order_with_rendered_content(sim):
    camera, device = sim
    assert isinstance(camera, FrameSource)
    assert camera.simulated and camera.delivers_frames
    camera.start(12)
    assert camera.read_frames() == []
    trigger(device, 5)
    frames = camera.read_frames()
    trigger(device, 7)
    frames += camera.read_frames()
    assert [f.index for f in frames] == list(range(12))
    for frame in frames:
        np.testing.assert_array_equal(frame.image, render(frame.index))
    assert camera.dropped == 0 and camera.drain_faults() == []


def test_triggers_before_start_make_no_frames(sim):
    camera, device = sim
    device.trigger(4)
    camera.start(5)
    trigger(device, 2)
    assert [f.index for f in camera.read_frames()] == [0, 1]
    assert device.ignored_triggers == 4


def test_frames_dropped_by_camera_are_counted_and_reported(sim):
    camera, device = sim
    camera.start(10)
    device.drop([4, 5, 6])
    trigger(device, 10)
    frames = camera.read_frames()
    assert [f.index for f in frames] == [0, 1, 2, 3, 7, 8, 9]
    np.testing.assert_array_equal(frames[4].image, render(7))
    assert camera.dropped == 3
    assert camera.dropped_frames == [4, 5, 6]
    faults = camera.drain_faults()
    assert [index for index, _ in faults] == [4]
    assert "frames 4-6" in faults[0][1] and "dropped by the camera" in faults[0][1]
    assert camera.drain_faults() == []


def test_circular_buffer_overflow_is_reported_as_dropped_frames():
    big_w, big_h = 256, 256  # 128 KiB frames: 8 fit in a 1 MiB buffer
    frame = np.arange(big_w * big_h, dtype=np.uint16).reshape(big_h, big_w)
    camera, device = make_sim_camera(
        lambda k: frame + k, big_w, big_h, "uint16", exposure_ms=1.0, buffer_mb=1
    )
    try:
        camera.start(20)
        trigger(device, 20)
        frames = camera.read_frames()
        received = [f.index for f in frames]
        assert 0 < len(frames) <= 8 and received == sorted(received) and received[-1] == 19
        for f in frames:
            np.testing.assert_array_equal(f.image, frame + f.index)
        assert camera.dropped == 20 - len(frames)
        assert sorted(camera.dropped_frames + received) == list(range(20))
        assert camera.overflowed
        messages = " | ".join(m for _, m in camera.drain_faults())
        assert "lost in the circular buffer" in messages and "overflowed" in messages
    finally:
        camera.close()


def test_exposure_binning_and_roi_from_config_are_applied():
    camera, device = make_sim_camera(
        render, W, H, exposure_ms=7.5, binning=2, roi=(4, 2, 16, 10), rate_hz=50.0
    )
    try:
        info = camera.info()
        assert (info.width, info.height, info.dtype, info.rate_hz) == (16, 10, "uint8", 50.0)
        assert info.extra["exposure_ms"] == 7.5 and info.extra["roi"] == [4, 2, 16, 10]
        assert str(camera.core.getProperty("Camera", "Binning")) == "2"
        checks = camera.preflight()
        assert all(c.ok for c in checks), checks
        camera.start(2)
        trigger(device, 2)
        frames = camera.read_frames()
        binned = render(1).reshape(H // 2, 2, W // 2, 2).mean(axis=(1, 3)).astype(np.uint8)
        np.testing.assert_array_equal(frames[1].image, binned[2:12, 4:20])
    finally:
        camera.close()


def test_preflight_reports_bad_settings_without_raising():
    camera, _ = make_sim_camera(
        render, W, H, exposure_ms=50.0, trigger_properties={"TriggerSource": "Line1"}
    )
    try:
        checks = {c.name: c for c in camera.preflight()}
        assert checks["answers"].ok
        assert not checks["exposure fits trigger period"].ok
        assert "33.3 ms" in checks["exposure fits trigger period"].detail
        assert not checks["trigger properties"].ok
        assert "TriggerSource" in checks["trigger properties"].detail
        with pytest.raises(CameraError):
            camera.start(3)
    finally:
        camera.close()


def test_refused_settings_raise_camera_error_and_unload():
    with pytest.raises(CameraError, match="ROI"):
        make_sim_camera(render, W, H, roi=(60, 0, 16, 16))
    with pytest.raises(CameraError, match="no device 'Cam2'"):
        camera, _ = make_sim_camera(render, W, H)
        core = camera.core
        camera._core = None  # hand the core to a second driver under a wrong label
        MMCamera(MMCameraConfig(device="Cam2"), core)
    assert "Camera" not in core.getLoadedDevices()


def test_missing_frame_number_tag_is_a_camera_error(sim):
    camera, device = sim
    camera.config = camera.config.model_copy(update={"frame_number_key": "HwCounter"})
    camera.start(2)
    trigger(device, 1)
    with pytest.raises(CameraError, match="HwCounter"):
        camera.read_frames()


def test_stop_ends_a_waiting_sequence_and_keeps_buffered_frames(sim):
    camera, device = sim
    camera.start(10)
    trigger(device, 3)
    camera.stop()
    assert not camera.core.isSequenceRunning("Camera")
    assert [f.index for f in camera.read_frames()] == [0, 1, 2]
    camera.stop()
    camera.start(4)  # a new acquisition numbers frames from 0 again
    trigger(device, 4)
    assert [f.index for f in camera.read_frames()] == [0, 1, 2, 3]


def test_close_unloads_devices_and_never_raises():
    camera, device = make_sim_camera(render, W, H)
    core = camera.core
    camera.start(5)
    trigger(device, 1)
    camera.close()
    assert "Camera" not in core.getLoadedDevices()
    camera.close()
    camera.stop()
    with pytest.raises(CameraError, match="closed"):
        camera.read_frames()
    del core

    broken, _ = make_sim_camera(render, W, H)

    def fail() -> None:
        raise RuntimeError("adapter crashed")

    broken.core.unloadAllDevices = fail
    broken.core.stopSequenceAcquisition = fail
    broken.start(2)
    broken.close()


def test_spec_and_config_validation(tmp_path):
    assert SPEC.name == "micromanager" and set(SPEC.sections) == {"camera", "imaging"}
    assert SPEC.config_model is MMCameraConfig
    with pytest.raises(ValidationError):
        MMCameraConfig(device="Camera", exposur_ms=5)
    with pytest.raises(ValidationError, match="quote"):
        MMCameraConfig(trigger_properties={"TriggerMode": True})
    assert MMCameraConfig(trigger_properties={"LineNumber": 1}).trigger_properties == {
        "LineNumber": "1"
    }
    ctx = BuildContext(rig=None)
    with pytest.raises(CameraError, match="required"):
        SPEC.build("camera", MMCameraConfig(), ctx)
    with pytest.raises(CameraError, match="not found"):
        SPEC.build("camera", MMCameraConfig(config=tmp_path / "missing.cfg"), ctx)


def test_interpreter_exits_cleanly_with_a_camera_left_open():
    script = textwrap.dedent(
        """
        import numpy as np
        from sim.mm_camera import make_sim_camera
        camera, device = make_sim_camera(lambda k: np.zeros((8, 8), np.uint8), 8, 8)
        camera.start(10)
        device.trigger(2)
        device.flush()
        print(len(camera.read_frames()))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "2"
