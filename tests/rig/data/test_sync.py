"""Frames matched to recorded edges: synthetic edge trains, then whole simulated sessions with
the frame-clock and camera faults that break the one-edge-per-frame count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from rig.data.sync import align_edges, synchronise
from rig.program.schedule import frame_trigger_samples
from sim.clocks import CameraExposures, MicroscopeClock
from sim.rig import RESONANT_OFFSET_PPM, SimCameraConfig, SimImagingConfig
from tests.conftest import info_json, make_rig

FS = 20_000.0
RATE = 30.0
PERIOD = FS / RATE  # 666.67 samples


def train(n: int, rate_hz: float = RATE, jitter_samples: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = 1000 + np.arange(n) * FS / rate_hz + rng.normal(0, jitter_samples, n)
    return np.round(t).astype(np.int64)


def test_a_clean_train_gives_one_slot_per_edge_and_its_clock():
    edges = train(300)
    sync = synchronise("imaging", "frame_clock", np.arange(300), edges, FS, RATE)
    r = sync.report
    assert r.consistent and r.mismatches == []
    np.testing.assert_array_equal(sync.timestamps_s, edges / FS)
    assert r.measured_rate_hz == pytest.approx(RATE, rel=1e-6)
    assert abs(r.drift_ppm) < 1
    assert r.jitter_s < 1 / FS  # only the rounding to whole samples


def test_drift_and_jitter_are_measured():
    rate = RATE * (1 + 200e-6)  # a microscope clock 200 ppm fast
    edges = train(20_000, rate, jitter_samples=2.0)
    r = synchronise("imaging", "frame_clock", np.arange(20_000), edges, FS, RATE).report
    assert r.drift_ppm == pytest.approx(200, abs=5)
    assert r.jitter_s == pytest.approx(2.0 / FS, rel=0.15)
    assert r.consistent  # drift walks 4 frames over the train, but never off the grid


def test_a_missing_edge_keeps_later_frames_on_their_own_edges():
    edges = train(100)
    recorded = np.delete(edges, [40, 41])  # two edges never recorded
    sync = synchronise("imaging", "frame_clock", np.arange(100), recorded, FS, RATE)
    r = sync.report
    assert r.edges_missing == 2 and r.edges_extra == 0
    assert np.isnan(sync.timestamps_s[[40, 41]]).all()
    keep = np.r_[0:40, 42:100]
    np.testing.assert_array_equal(sync.timestamps_s[keep], edges[keep] / FS)
    assert r.frames_without_edge == 2 and not r.consistent
    assert [m["exposure"] for m in r.mismatches if m["kind"] == "missing_edge"] == [40, 41]


@pytest.mark.parametrize("where", ["midway", "duplicate"])
def test_an_extra_edge_is_set_aside(where):
    edges = train(100)
    glitch = (edges[59] + edges[60]) // 2 if where == "midway" else edges[60] + 3
    recorded = np.sort(np.append(edges, [glitch, glitch]))
    sync = synchronise("video", "camera_exposure", np.arange(100), recorded, FS, RATE)
    np.testing.assert_array_equal(sync.timestamps_s, edges / FS)
    r = sync.report
    assert r.edges_extra == 2 and r.edges_missing == 0 and r.frames_without_edge == 0
    assert r.mismatches[0]["kind"] == "extra_edge"


def test_frames_the_device_dropped_leave_exposures_without_frames():
    edges = train(50)
    index = np.delete(np.arange(50), [10, 11, 12])  # the device numbered them, never sent them
    sync = synchronise("video", "camera_exposure", index, edges, FS, RATE)
    np.testing.assert_array_equal(sync.timestamps_s, edges[index] / FS)
    assert sync.report.edges_without_frame == 3
    assert sync.report.frames_without_edge == 0


def test_frames_past_the_last_edge_have_no_time():
    edges = train(40)  # the frame clock stopped; the camera sent 45 frames
    sync = synchronise("imaging", "frame_clock", np.arange(45), edges, FS, RATE)
    assert np.isnan(sync.timestamps_s[40:]).all() and np.isfinite(sync.timestamps_s[:40]).all()
    assert sync.report.frames_without_edge == 5
    assert sync.report.mismatches[-1] == {"kind": "frame_without_edge", "device_index": 44}


def test_alignment_with_everything_at_once():
    edges = train(3000, RATE * (1 - 50e-6), jitter_samples=3)
    recorded = np.delete(edges, [100, 2000, 2001])
    recorded = np.sort(np.append(recorded, [edges[500] + 330, edges[1500] + 1]))
    a = align_edges(recorded, PERIOD)
    assert len(a.slots) == 3000 and a.missing == 3 and len(a.extra) == 2
    ok = a.slots >= 0
    np.testing.assert_array_equal(a.slots[ok], np.delete(edges, [100, 2000, 2001]))


def test_no_edges():
    sync = synchronise("video", "camera_exposure", np.arange(3), np.empty(0, np.int64), FS, RATE)
    assert np.isnan(sync.timestamps_s).all()
    assert sync.report.frames_without_edge == 3 and sync.report.measured_rate_hz is None


# ----------------------------------------------------------------- whole sessions
SHORT = """
protocol: sync-check
version: 1
seed: 5
stimuli:
  cs_plus: {type: tone, frequency_hz: 7500, level_db: 75, duration_s: 2}
phases:
  - name: baseline
    duration_s: 2
  - name: tones
    trials: [{cs: cs_plus, repeat: 2}]
    iti_s: 1
    post_s: 1
recording:
  video: {fps: 30}
  imaging: {frame_rate_hz: 30}
"""


def _run(cli, tmp_path: Path, write_yaml, faults: str) -> tuple[dict, zarr.Group]:
    rig = make_rig(tmp_path, f"faults: {faults}\n")
    protocol = write_yaml(SHORT, "sync-check.yaml")
    result = cli("run", protocol, "--fast", "--rig", rig, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip().splitlines()[-1])
    return info_json(cli, folder), zarr.open_group(str(folder / "session.zarr"), mode="r")


def _default(model, key: str) -> float:
    return model.model_fields[key].default


def _truth_times(root: zarr.Group, stream: str, n: int) -> np.ndarray:
    """Where the exposures really were: the simulated microscope's frames on its own clock
    (0.1 % fast, drifting, started late), the camera's exposures after its triggers."""
    if stream == "imaging":
        clock = MicroscopeClock(
            FS,
            10**9,
            RATE * (1 + RESONANT_OFFSET_PPM * 1e-6),
            _default(SimImagingConfig, "drift_ppm"),
            _default(SimImagingConfig, "start_latency_s"),
        )
        return clock.predict(0)[:n] / FS
    camera = CameraExposures(
        FS,
        _default(SimCameraConfig, "exposure_latency_s"),
        _default(SimCameraConfig, "jitter_s"),
        seed=5,  # the protocol's
    )
    return camera.predict(frame_trigger_samples(10**9, FS, RATE)[:n]) / FS


def test_session_with_missing_frame_clock_edges(cli, tmp_path, write_yaml):
    info, root = _run(
        cli, tmp_path, write_yaml, "[{at_s: 3.0, kind: frame_clock_missing, count: 2}]"
    )
    sync = info["streams"]["imaging"]["sync"]
    assert sync["edges_missing"] == 2 and sync["edges_extra"] == 0
    assert sync["frames_without_edge"] == 2 and not sync["consistent"]
    stamps = root["timing"]["imaging"]["timestamps_s"][:]
    timed = np.isfinite(stamps)
    truth = _truth_times(root, "imaging", len(stamps))
    np.testing.assert_array_equal(stamps[timed], truth[timed])
    assert np.flatnonzero(~timed).tolist() == [90, 91]  # the frames at 3.0 s
    assert info["streams"]["video"]["sync"]["consistent"]
    assert "sync frame_clock: own clock 30.0307 Hz" in (text := cli("info", info["path"]).stdout)
    assert "2 missing / 0 extra edges" in text and "<- mismatch" in text


def test_session_with_extra_frame_clock_edges(cli, tmp_path, write_yaml):
    info, root = _run(cli, tmp_path, write_yaml, "[{at_s: 4.0, kind: frame_clock_extra, count: 3}]")
    acc = info["streams"]["imaging"]
    assert acc["edges"] == acc["written"] + 3  # the count mismatch is there
    assert acc["sync"]["edges_extra"] == 3 and acc["sync"]["edges_missing"] == 0
    assert acc["without_edge"] == 0 and not acc["sync"]["consistent"]
    stamps = root["timing"]["imaging"]["timestamps_s"][:]
    truth = _truth_times(root, "imaging", len(stamps))
    np.testing.assert_array_equal(stamps, truth)  # best alignment kept


def test_session_with_camera_drops(cli, tmp_path, write_yaml):
    info, root = _run(cli, tmp_path, write_yaml, "[{at_s: 2.5, kind: camera_drop, count: 4}]")
    acc = info["streams"]["video"]
    assert acc["dropped_by_device"] == 4 and acc["written"] == acc["edges"] - 4
    assert acc["sync"]["edges_without_frame"] == 4 and acc["sync"]["frames_without_edge"] == 0
    stamps = root["timing"]["video"]["timestamps_s"][:]
    index = root["timing"]["video"]["device_index"][:]
    truth = _truth_times(root, "video", int(index.max()) + 1)
    np.testing.assert_array_equal(stamps, truth[index])
    assert any(e["kind"] == "fault" for e in info["events"])


def test_drift_latency_jitter_and_missing_and_extra_edges_at_once(cli, tmp_path, write_yaml):
    """A microscope at 29.97 Hz on its own clock, 80 ppm slow against the DAQ, starting 23 ms
    after its start pulse; a camera exposing 1.3 ms after each trigger, give or take 0.2 ms; and
    edges lost and added on both lines. The sync step measures the clock and the latencies, sets
    the glitches aside, and times every frame that has an edge on its true exposure."""
    text = make_rig(tmp_path).read_text()
    text = text.replace(
        "imaging: {driver: sim, width: 64, height: 64, neurons: 20,",
        "imaging: {driver: sim, width: 64, height: 64, neurons: 20, clock_hz: 29.97,"
        " drift_ppm: -80, start_latency_s: 0.023,",
    ).replace(
        "camera:  {driver: sim, width: 160, height: 120,",
        "camera:  {driver: sim, width: 160, height: 120, exposure_latency_s: 0.0013,"
        " jitter_s: 0.0002,",
    )
    assert "clock_hz: 29.97" in text and "jitter_s: 0.0002" in text
    faults = (
        "[{at_s: 3.0, kind: frame_clock_missing, count: 2}, {at_s: 5.0, kind: frame_clock_extra},"
        " {at_s: 2.0, kind: exposure_missing}, {at_s: 4.5, kind: exposure_extra, count: 2}]"
    )
    rig = tmp_path / "clocks.yaml"
    rig.write_text(text + f"faults: {faults}\n")
    protocol = write_yaml(SHORT, "sync-check.yaml")
    result = cli("run", protocol, "--fast", "--rig", rig, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip().splitlines()[-1])
    info = info_json(cli, folder)
    root = zarr.open_group(str(folder / "session.zarr"), mode="r")

    imaging = info["streams"]["imaging"]
    sync = imaging["sync"]
    rate = 29.97 * (1 - 80e-6)
    assert sync["clock"] == "device" and sync["nominal_rate_hz"] == 30
    assert sync["measured_rate_hz"] == pytest.approx(rate, rel=2e-6)
    assert sync["drift_ppm"] == pytest.approx((rate / 30 - 1) * 1e6, abs=2)
    assert sync["latency_s"] == pytest.approx(0.023, abs=1 / FS)
    assert sync["latency_reference"] == "imaging start pulse (recorded)"
    assert (sync["edges_missing"], sync["edges_extra"]) == (2, 1)
    assert sync["frames_without_edge"] == 2 and sync["edges_without_frame"] == 0
    # every frame accounted for: each frame the microscope scanned was written, two untimed
    assert imaging["written"] == imaging["received"] == imaging["frames_on_clock"]
    assert imaging["frames_on_clock"] == imaging["edges"] - 1 + 2
    clock = MicroscopeClock(FS, 10**9, 29.97, -80, 0.023)
    stamps = root["timing"]["imaging"]["timestamps_s"][:]
    timed = np.isfinite(stamps)
    np.testing.assert_array_equal(stamps[timed], (clock.predict(0)[: len(stamps)] / FS)[timed])

    video = info["streams"]["video"]
    vsync = video["sync"]
    assert vsync["clock"] == "daq" and vsync["measured_rate_hz"] == pytest.approx(30, rel=1e-5)
    # an edge counts on the next sample: the estimate is up to one sample late
    assert 0.0013 <= vsync["latency_s"] <= 0.0013 + 1.001 / FS
    assert 0.00015 < vsync["latency_sd_s"] < 0.00026  # 0.2 ms, and a sample's rounding
    assert (vsync["edges_missing"], vsync["edges_extra"]) == (1, 2)
    assert video["written"] == video["frames_expected"] and video["without_edge"] == 1
    camera = CameraExposures(FS, 0.0013, 0.0002, seed=5)
    vstamps = root["timing"]["video"]["timestamps_s"][:]
    truth = camera.predict(frame_trigger_samples(10**9, FS, RATE)[: len(vstamps)]) / FS
    vtimed = np.isfinite(vstamps)
    np.testing.assert_array_equal(vstamps[vtimed], truth[vtimed])

    text = cli("info", folder).stdout
    assert "sync frame_clock: own clock 29.9676 Hz (protocol 30 Hz, -1080." in text
    assert "start latency 23.000 ms after the imaging start pulse (recorded)" in text
    assert "2 missing / 1 extra edges" in text and "1 missing / 2 extra edges" in text
