"""Shared fixtures: the small simulated rig, a CLI runner, and ready-made sessions."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from rig.cli import main

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = ROOT / "protocols"
SMALL_RIG = ROOT / "docs" / "rigs" / "sim-small.yaml"

# A subject file (rig run --subject) with its session defaults.
SUBJECT = """\
subject_id: M0123
strain: C57BL/6J
genotype: Thy1-GCaMP6s +/-
sex: F
date_of_birth: 2026-06-01
weight_g: 24.5
description: implanted microprism over the prelimbic cortex
session:
  experimenter: ["Doe, Jane"]
  institution: Example University
  lab: Fear Lab
"""

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# the rigs' locks (rig.run.rig_lock) of this test run only: another run's simulated sessions on
# the same machine are not "a session on this rig" (subprocesses inherit it)
os.environ.setdefault("RIG_LOCK_DIR", tempfile.mkdtemp(prefix="rig-locks-"))


@pytest.fixture
def small_rig() -> Path:
    return SMALL_RIG


@pytest.fixture
def cli():
    """Run ``rig ARGS...`` in-process; returns the click Result (stdout, stderr, exit_code)."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def write_yaml(tmp_path: Path):
    """Write text to a YAML file in tmp_path and return its path."""

    def write(text: str, name: str = "file.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def make_rig(tmp_path: Path, extra: str = "", name: str = "rig.yaml") -> Path:
    """The small simulated rig plus ``extra`` YAML lines (e.g. a faults list)."""
    path = tmp_path / name
    path.write_text(SMALL_RIG.read_text() + extra, encoding="utf-8")
    return path


def drop_section(text: str, section: str) -> str:
    """Rig-file YAML without its top-level ``section`` (its line and the indented lines that
    continue it)."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith(f"{section}:"):
            skipping = True
            continue
        if skipping and line[:1] in (" ", "\t"):
            continue
        skipping = False
        out.append(line)
    return "".join(out)


def info_json(cli, folder: str | Path) -> dict:
    result = cli("info", folder, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def run_fast(protocol: str, out: Path, animal: str) -> Path:
    """``rig run protocols/PROTOCOL.yaml --fast`` on the small simulated rig into ``out``; the
    session folder (the last line on stdout)."""
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(PROTOCOLS / f"{protocol}.yaml"),
            "--fast",
            "--rig",
            str(SMALL_RIG),
            "--out",
            str(out),
            "--animal",
            animal,
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def conditioning_session(tmp_path_factory) -> Path:
    """The full conditioning protocol, once, on the small simulated rig with --fast."""
    return run_fast("conditioning", tmp_path_factory.mktemp("conditioning"), "m1")


@pytest.fixture(scope="session")
def demo_session(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(
        main,
        ["run", str(PROTOCOLS / "demo.yaml"), "--fast", "--rig", str(SMALL_RIG), "--out", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


# A 10-s differential protocol whose stimuli are not called cs_plus/cs_minus: the CS+ is the
# tone paired with the US. Imaging at 15 Hz, video at 30 Hz. (Frame table, export, attach.)
SHORT_PROTOCOL = """\
protocol: short-differential
version: 1
seed: 3
stimuli:
  tone_a: {type: tone, frequency_hz: 7500, level_db: 75, duration_s: 2}
  tone_b: {type: tone, frequency_hz: 2000, level_db: 75, duration_s: 2}
  zap:    {type: shock, current_ma: 0.5, duration_s: 0.5}
phases:
  - {name: baseline, duration_s: 3}
  - name: conditioning
    trials:
      - {cs: tone_a, us: zap}
      - {cs: tone_b}
    iti_s: 2
    post_s: 1
recording:
  video: {fps: 30}
  imaging: {frame_rate_hz: 15}
"""


@pytest.fixture(scope="session")
def short_protocol(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("short-protocol") / "short.yaml"
    path.write_text(SHORT_PROTOCOL, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def imaging_session(tmp_path_factory, short_protocol) -> Path:
    """The short protocol on the small simulated rig (two-photon frames stored), --fast."""
    out = tmp_path_factory.mktemp("imaging-session")
    result = CliRunner().invoke(
        main,
        ["run", str(short_protocol), "--fast", "--rig", str(SMALL_RIG), "--out", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def frame_clock_session(tmp_path_factory, short_protocol) -> Path:
    """The short protocol with ``imaging: {driver: frame-clock}`` on the simulated DAQ: the
    frame clock is recorded, the frames stay with the microscope. Copy it before changing it."""
    from rig.files.protocol import load_protocol
    from rig.files.rigfile import rig_from_text
    from rig.run.session import plan_from_loaded, run_session

    text = SMALL_RIG.read_text(encoding="utf-8").replace(
        "imaging: {driver: sim, width: 64, height: 64, neurons: 20,",
        "imaging: {driver: frame-clock, width: 48, height: 32,",
    )
    rig = rig_from_text(text, "frame-clock-rig.yaml")
    assert rig.device("imaging").spec.name == "frame-clock"
    out = tmp_path_factory.mktemp("frame-clock-session")
    folder, result = run_session(
        plan_from_loaded(load_protocol(short_protocol), rig),
        out,
        "m1",
        speed=None,
        state_dir=str(out / "animals"),
    )
    assert result.status == "complete", result.reason
    return folder
