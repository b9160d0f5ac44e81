"""End to end on the simulated rig: a correctly timed session, and safe ends however it ends."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import zarr

from rig.run.session import prepare_session, run_session
from tests.conftest import PROTOCOLS, SMALL_RIG, info_json, make_rig


def test_conditioning_runs_complete_and_correctly_timed(cli, conditioning_session):
    info = info_json(cli, conditioning_session)
    assert info["status"] == "complete"
    assert info["simulated"] is True
    assert info["protocol"]["name"] == "differential-conditioning"
    assert info["protocol"]["seed"] == 20231006
    trials = info["trials"]
    assert len(trials) == 14
    assert sorted(t["cs"] for t in trials) == ["cs_minus"] * 7 + ["cs_plus"] * 7
    assert info["shocks_delivered"] == 7
    # measured on the played samples: the gates on their planned sample, the tone's envelope
    # (on the recorded sound) inside its 5-ms ramp
    ramp = 0.005
    for t in trials:
        planned = t["planned"]
        assert 0 < t["cs_onset_s"] - planned["cs_onset_s"] < ramp
        assert 0 < planned["cs_offset_s"] - t["cs_offset_s"] < ramp
        if t["cs"] == "cs_plus":
            assert t["us"] == "shock"
            # on the planned sample (the plan's seconds are not rounded to samples)
            assert abs(t["us_onset_s"] - planned["us_onset_s"]) <= 0.5 / 20_000
            assert abs(t["us_offset_s"] - planned["us_offset_s"]) <= 0.5 / 20_000
        else:
            assert t["us_onset_s"] is None
    timing = info["timing"]
    assert timing["worst_gate_error_samples"] == 0 and timing["gates_within_one_sample"]
    assert timing["tones_within_ramp"] and timing["unrecorded"] == 0
    assert len(timing["stimuli"]) == 21
    video = info["streams"]["video"]
    assert video["written"] == video["received"] == video["edges"] == video["frames_expected"]
    assert video["dropped"] == 0
    root = zarr.open_group(str(conditioning_session / "session.zarr"), mode="r")
    stamps = root["timing"]["video"]["timestamps_s"][:]
    assert len(stamps) == video["written"] == root["0"]["0"].shape[0]
    assert np.all(np.diff(stamps) > 0)
    assert root.attrs["protocol_sha256"] == info["protocol"]["sha256"]
    assert "baseline" in root.attrs["protocol_text"]


def test_last_stdout_line_is_the_session_folder(demo_session):
    assert (demo_session / "session.zarr" / "zarr.json").is_file()


def _run_in_thread(plan, out, speed, when):
    """Run a session in a thread; ``when(runner, progress)`` is called from its progress."""
    box: dict = {}

    def on_runner(runner):
        box["runner"] = runner
        runner.signals.progress.connect(lambda p: when(runner, p))

    def target():
        box["folder"], box["result"] = run_session(plan, out, "m", speed, on_runner)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(120)
    assert not thread.is_alive()
    return box


def _assert_safe(runner):
    daq = runner.engine.devices.daq
    assert daq.stopped_at is not None
    assert daq.outputs_low_after(daq.stopped_at)
    emulator = daq.session.shocker_emulator
    assert not emulator.armed


def test_abort_mid_run_ends_aborted_and_safe(tmp_path, cli):
    plan = prepare_session(PROTOCOLS / "demo.yaml", SMALL_RIG)

    def abort_during_first_shock(runner, p):
        if p.shocks_delivered == 0 and p.next_shock_in_s is not None and p.next_shock_in_s < 0.5:
            runner.abort("aborted by the user")

    box = _run_in_thread(plan, tmp_path, 20.0, abort_during_first_shock)
    assert box["result"].status == "aborted"
    _assert_safe(box["runner"])
    info = info_json(cli, box["folder"])
    assert info["status"] == "aborted"
    assert info["end_reason"] == "aborted by the user"
    commands = box["runner"].engine.devices.daq.session.shocker_emulator.commands()
    assert commands[-1] == "disarm"


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("serial_disconnect", "ShockerError"),
        ("daq_error", "DaqError"),
        ("frame_clock_stop", "frame clock stopped"),
        ("camera_stall", "stalled"),
    ],
)
def test_device_faults_end_the_session_safely(tmp_path, cli, kind, words):
    at_s = 33.0  # between the two CS+ of the demo: the shocker current is set again then
    rig = make_rig(tmp_path, f"faults: [{{at_s: {at_s}, kind: {kind}}}]\n")
    result = cli("run", PROTOCOLS / "demo.yaml", "--fast", "--rig", rig, "--out", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert words in result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    info = info_json(cli, folder)
    assert info["status"] == "aborted"
    assert words in info["end_reason"]
    assert any(e["kind"] == "fault" for e in info["events"])
    end = info["duration_s"]
    assert end < 94
    # everything written before the fault is readable
    root = zarr.open_group(str(folder / "session.zarr"), mode="r")
    assert root["0"]["0"].shape[0] == info["streams"]["video"]["written"] > 0


TWO_CURRENTS = """
protocol: two-currents
version: 1
seed: 3
stimuli:
  tone: {type: tone, frequency_hz: 7500, level_db: 70, duration_s: 5}
  low: {type: shock, current_ma: 0.3, duration_s: 0.5}
  high: {type: shock, current_ma: 0.6, duration_s: 0.5}
phases:
  - name: conditioning
    trials: [{cs: tone, us: low}, {cs: tone, us: high}]
    iti_s: 10
"""


def test_refused_current_change_aborts_before_the_shock(tmp_path, cli, write_yaml):
    protocol = write_yaml(TWO_CURRENTS, "two.yaml")
    rig = make_rig(tmp_path, "faults: [{at_s: 3, kind: shocker_refuse}]\n")
    result = cli("run", protocol, "--fast", "--rig", rig, "--out", tmp_path / "out")
    assert result.exit_code == 1, result.output
    info = info_json(cli, Path(result.stdout.strip().splitlines()[-1]))
    assert info["status"] == "aborted"
    assert "refused" in info["end_reason"].lower() or "ShockerError" in info["end_reason"]
    assert info["shocks_delivered"] == 1  # the 0.3 mA shock; the 0.6 mA one never came
