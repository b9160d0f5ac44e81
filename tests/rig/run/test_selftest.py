"""``rig selftest``: passes on the simulated rig, fails in one line on a LIVE rig without
hardware, and catches a broken frame clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import rig.files.rigfile
from rig.cli import main
from rig.devices import available_drivers

ROOT = Path(__file__).resolve().parents[3]
SIM_SMALL = ROOT / "docs" / "rigs" / "sim-small.yaml"
LIVE = ROOT / "docs" / "rigs" / "live-example.yaml"
DEMO = ROOT / "protocols" / "demo.yaml"


@pytest.fixture
def frame_clock_driver(monkeypatch):
    """The LIVE example names ``imaging: {driver: frame-clock}``; register it for the test if
    this environment was installed before its entry point existed."""
    drivers = available_drivers()
    if "frame-clock" not in drivers:
        from drivers.frame_clock import SPEC

        drivers["frame-clock"] = SPEC
        monkeypatch.setattr(rig.files.rigfile, "available_drivers", lambda: drivers)


def selftest(*args: str):
    return CliRunner().invoke(main, ["selftest", *args])


def rows(output: str) -> dict[tuple[str, str], str]:
    """(device, check) -> PASS/FAIL/SKIP from the table."""
    found = {}
    for line in output.splitlines():
        for status in ("PASS", "FAIL", "SKIP"):
            if f"  {status}" in line:
                head = line.split(f"  {status}")[0].split()
                found[(head[0], " ".join(head[1:]))] = status
    return found


def test_passes_on_the_simulated_rig(tmp_path):
    result = selftest("--rig", str(SIM_SMALL), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    table = rows(result.stdout)
    assert set(table.values()) == {"PASS"}
    for row in [
        ("daq", "device"),
        ("shocker", "identity + current"),
        ("daq", "frame clock"),
        ("camera", "frames at trigger rate"),
        ("imaging", "frames at frame clock"),
        ("disk", "free space"),
    ]:
        assert table[row] == "PASS", row
    assert "90 frames, 90 exposure edges, 90 expected at 30 Hz" in result.stdout
    assert "selftest passed" in result.stderr


def test_uses_the_protocols_rates_and_size(tmp_path):
    result = selftest("--protocol", str(DEMO), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "the demo session needs" in result.stdout


def test_live_rig_without_hardware_fails_in_one_line(frame_clock_driver, tmp_path):
    result = selftest("--rig", str(LIVE), "--out", str(tmp_path))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    table = rows(result.stdout)
    assert table[("daq", "device")] == "FAIL"
    assert table[("shocker", "port")] == "FAIL"
    assert table[("camera", "micromanager driver")] == "FAIL"
    assert table[("daq", "frame clock")] == "SKIP"
    errors = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1
    assert errors[0].startswith("error: selftest failed")
    assert "NI-DAQmx is not installed" in errors[0]


def test_a_stopped_frame_clock_fails(tmp_path):
    rig_file = tmp_path / "rig.yaml"
    rig_file.write_text(
        SIM_SMALL.read_text() + "faults: [{at_s: 0, kind: frame_clock_stop}]\n", encoding="utf-8"
    )
    result = selftest("--rig", str(rig_file), "--out", str(tmp_path))
    assert result.exit_code == 1
    table = rows(result.stdout)
    assert table[("daq", "frame clock")] == "FAIL"
    assert table[("camera", "frames at trigger rate")] == "PASS"
    assert "no frame clock edges" in result.stderr


def test_dropped_camera_frames_fail(tmp_path):
    rig_file = tmp_path / "rig.yaml"
    rig_file.write_text(
        SIM_SMALL.read_text() + "faults: [{at_s: 1, kind: camera_drop, count: 2}]\n",
        encoding="utf-8",
    )
    result = selftest("--rig", str(rig_file), "--out", str(tmp_path))
    assert result.exit_code == 1
    assert rows(result.stdout)[("camera", "frames at trigger rate")] == "FAIL"
    assert "88 frames, 90 exposure edges" in result.stdout


def test_a_bad_rig_file_is_bad_input(tmp_path):
    rig_file = tmp_path / "rig.yaml"
    rig_file.write_text(SIM_SMALL.read_text().replace("sample_rate_hz", "sample_rate"))
    result = selftest("--rig", str(rig_file))
    assert result.exit_code == 2
    assert "daq.sample_rate" in result.stderr
    assert "Traceback" not in result.output
