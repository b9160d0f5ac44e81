"""Shared fixtures: the small simulated rig, a CLI runner, and ready-made sessions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from rig.cli import main

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = ROOT / "protocols"
SMALL_RIG = ROOT / "docs" / "rigs" / "sim-small.yaml"

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


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


def info_json(cli, folder: str | Path) -> dict:
    result = cli("info", folder, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="session")
def conditioning_session(tmp_path_factory) -> Path:
    """The full conditioning protocol, once, on the small simulated rig with --fast."""
    out = tmp_path_factory.mktemp("conditioning")
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(PROTOCOLS / "conditioning.yaml"),
            "--fast",
            "--rig",
            str(SMALL_RIG),
            "--out",
            str(out),
            "--animal",
            "m1",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


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
