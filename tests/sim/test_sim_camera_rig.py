"""The simulated rig's behaviour camera is the real Micro-Manager driver on ``UniMMCore``."""

from __future__ import annotations

from pathlib import Path

from drivers.mm_camera import MMCamera
from rig.data.folder import SessionFolder
from rig.files.protocol import load_protocol
from rig.files.rigfile import rig_from_text
from rig.run.session import plan_from_loaded, run_session
from sim.frames import SimFrameSource

ROOT = Path(__file__).resolve().parents[2]
SIM_SMALL = (ROOT / "docs" / "rigs" / "sim-small.yaml").read_text(encoding="utf-8")
DEMO = ROOT / "protocols" / "demo.yaml"


def run_demo(tmp_path: Path, extra: str = ""):
    rig = rig_from_text(SIM_SMALL + extra, "sim-small.yaml")
    plan = plan_from_loaded(load_protocol(DEMO), rig)
    cameras = []
    folder, result = run_session(
        plan,
        tmp_path / "sessions",
        "sim-mouse",
        speed=None,
        on_runner=lambda runner: cameras.append(runner.engine.devices.camera),
        state_dir=str(tmp_path / "animals"),
    )
    return folder, result, cameras[0]


def test_micromanager_is_the_default_backend():
    assert rig_from_text(SIM_SMALL).device("camera").config.backend == "micromanager"


def test_direct_backend_keeps_the_rendering_frame_source():
    from rig.devices import BuildContext

    rig = rig_from_text(SIM_SMALL.replace("height: 120", "height: 120, backend: direct"))
    ctx = BuildContext(rig=rig, speed=None)
    daq = rig.device("daq").spec.build("daq", rig.device("daq").config, ctx)
    ctx.built = {"daq": daq}
    camera = rig.device("camera").spec.build("camera", rig.device("camera").config, ctx)
    assert isinstance(camera, SimFrameSource)
    daq.close()


def test_every_exposure_is_a_frame_written(tmp_path):
    _, result, camera = run_demo(tmp_path)
    assert isinstance(camera, MMCamera)
    assert result.status == "complete", result.reason
    video = result.accounting["video"]
    assert video.written == video.edges == video.frames_expected
    assert video.dropped == 0


def test_dropped_frames_are_counted_and_logged(tmp_path):
    folder, result, _ = run_demo(tmp_path, "faults: [{at_s: 20, kind: camera_drop, count: 3}]\n")
    assert result.status == "complete", result.reason
    video = result.accounting["video"]
    assert video.dropped_by_device == 3
    assert video.written == video.edges - 3
    faults = [e for e in SessionFolder.open(folder).events() if e["kind"] == "fault"]
    assert any("video" in e["detail"] and "missing" in e["detail"] for e in faults), faults
