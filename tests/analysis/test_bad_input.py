"""``rig analyze`` and ``rig extract`` on bad input: ``FILE: field: message``, exit 2."""

from __future__ import annotations

import pytest

from rig.analysis.session_data import SIM_POPULATIONS
from sim.neurons import POPULATIONS


def test_the_core_knows_the_simulators_population_order():
    assert SIM_POPULATIONS == POPULATIONS


def test_not_a_session(cli, tmp_path):
    result = cli("analyze", tmp_path, "--out", tmp_path / "out", "--traces", "footprints")
    assert result.exit_code == 2
    assert f"{tmp_path}: not a fear-rig session" in result.stderr
    assert "Traceback" not in result.output


def test_sessions_of_two_animals(cli, four_days, fixture_days, tmp_path):
    result = cli(
        "analyze", four_days[0], fixture_days[0], "--out", tmp_path, "--traces", "footprints"
    )
    assert result.exit_code == 2
    assert "animal: sessions of one animal only (got fixture-mouse, m1)" in result.stderr


@pytest.mark.parametrize("traces", ["suite3p", "footprints:x", ""])
def test_unknown_trace_source(cli, four_days, tmp_path, traces):
    result = cli("analyze", four_days[0], "--out", tmp_path, "--traces", traces)
    assert result.exit_code == 2 and "--traces: " in result.stderr


def test_no_suite2p_output_yet(cli, four_days, tmp_path):
    result = cli("analyze", four_days[0], "--out", tmp_path)
    assert result.exit_code == 2
    assert f"{four_days[0] / 'suite2p'}: no suite2p output here" in result.stderr


def test_footprints_need_a_simulated_session(cli, imaging_session, tmp_path):
    import shutil

    real = tmp_path / "real"
    shutil.copytree(imaging_session, real)
    shutil.rmtree(real / "session.zarr" / "truth")
    result = cli("analyze", real, "--out", tmp_path / "out", "--traces", "footprints")
    assert result.exit_code == 2
    assert "traces: footprints are for simulated sessions" in result.stderr


def test_extract_without_suite2p_says_how_to_get_it(cli, four_days, monkeypatch):
    import rig.analysis.extract as extract

    monkeypatch.setattr(extract, "suite2p_available", lambda: False)
    result = cli("extract", four_days[0])
    assert result.exit_code == 1
    assert "pip install 'fear-rig[suite2p]'" in result.stderr
