"""Freezing after a session: re-scoring from the stored index, per-epoch results, the report,
and the wheel-based measure for head-fixed animals."""

from __future__ import annotations

import json
from pathlib import Path

from rig.data.folder import SessionFolder
from tests.conftest import PROTOCOLS, ROOT, info_json


def test_session_is_scored_live_and_rescored_from_the_stored_index(cli, demo_session):
    info = info_json(cli, demo_session)
    live = info["freezing"]
    assert live["threshold_auto"] is True
    assert len(live["trials"]) == 4
    assert all(0 <= t["percent_cs"] <= 100 for t in live["trials"])

    result = cli("score", demo_session, "--threshold", "0.5", "--min-freeze-s", "2", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["threshold"] == 0.5 and record["threshold_auto"] is False
    assert record["min_freeze_s"] == 2
    assert record["percent_frozen"] > live["percent_frozen"]  # everything is below 0.5
    session = SessionFolder.open(demo_session)
    assert session.freezing_record()["threshold"] == 0.5
    assert len(session.scores().motion_index) == session.stream("video").n_frames

    cli("score", demo_session)  # back to the rig file's parameters
    assert info_json(cli, demo_session)["freezing"]["threshold_auto"] is True


def test_plot_writes_a_report(cli, demo_session):
    result = cli("score", demo_session, "--plot")
    assert result.exit_code == 0, result.output
    png = demo_session / "freezing.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000


def test_scored_freezing_tracks_the_truth(cli, demo_session):
    cli("score", demo_session)
    session = SessionFolder.open(demo_session)
    scored, truth = session.scores().freezing, session.true_freezing()[1]
    n = min(len(scored), len(truth))
    assert (scored[:n] == truth[:n]).mean() >= 0.9


def test_roi_and_exclusions_recompute_the_index(cli, demo_session):
    result = cli("score", demo_session, "--roi", "0,0,80,120", "--exclude", "60,0,20,20", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["roi"] == {"x_px": 0.0, "y_px": 0.0, "width_px": 80.0, "height_px": 120.0}
    assert len(record["exclude"]) == 1
    again = json.loads(cli("score", demo_session, "--threshold", "0.02", "--json").stdout)
    assert again["roi"] == record["roi"]  # the stored index was computed with that ROI
    bad = cli("score", demo_session, "--roi", "1,2,3")
    assert bad.exit_code == 2


def test_head_fixed_mouse_is_scored_from_the_wheel(cli, tmp_path):
    rig = ROOT / "docs" / "rigs" / "sim-headfixed.yaml"
    result = cli("run", PROTOCOLS / "demo.yaml", "--fast", "--rig", rig, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip().splitlines()[-1])
    info = info_json(cli, folder)
    assert info["freezing"]["threshold"] == 1.0
    session = SessionFolder.open(folder)
    assert session.freezing_record()["measure"] == "locomotion"
    assert len(session.edges("wheel").samples) > 1000
    scored, truth = session.scores().freezing, session.true_freezing()[1]
    n = min(len(scored), len(truth))
    assert truth[:n].any()
    assert (scored[:n] == truth[:n]).mean() >= 0.9
