"""Freezing after a session: re-scoring from the stored indices, per-epoch results, the report,
and the wheel-based measure for head-fixed animals. Each test scores its own copy of the demo
session (scoring writes into the session folder)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rig.data.folder import SessionFolder
from rig.program.schedule import VIDEO, WHEEL
from tests.conftest import PROTOCOLS, ROOT, info_json
from tests.rig.behaviour.conftest import assert_agrees


@pytest.fixture
def session(demo_session, tmp_path) -> Path:
    copy = tmp_path / demo_session.name
    shutil.copytree(demo_session, copy)
    return copy


def _truth_and_score(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = SessionFolder.open(folder).scores()
    _, truth = SessionFolder.open(folder).true_freezing()
    n = min(len(scores.freezing), len(truth))
    return scores.freezing[:n], truth[:n], scores.times_s[:n]


def test_session_is_scored_live_and_rescored_from_the_stored_indices(cli, session):
    info = info_json(cli, session)
    live = info["freezing"]
    assert live["threshold_auto"] is True
    assert len(live["trials"]) == 4
    assert all(0 <= t["percent_cs"] <= 100 for t in live["trials"])
    stored = SessionFolder.open(session).scores()
    params = stored.motion_params
    assert params["noise_cutoff_grey"] == "auto" and params["noise_cutoff_measured_grey"] > 0
    assert stored.step_index.shape == stored.motion_index.shape
    motion_before = stored.motion_index

    result = cli("score", session, "--threshold", "0.5", "--min-freeze-s", "2", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["threshold"] == 0.5 and record["threshold_auto"] is False
    assert record["min_freeze_s"] == 2
    assert record["percent_frozen"] > live["percent_frozen"]  # everything is below 0.5
    folder = SessionFolder.open(session)
    assert folder.freezing_record()["threshold"] == 0.5
    assert len(folder.scores().motion_index) == folder.stream(VIDEO).n_frames
    assert np.array_equal(folder.scores().motion_index, motion_before, equal_nan=True)

    text = cli("score", session)  # back to the rig file's parameters
    assert "(auto), step threshold" in text.stdout
    assert info_json(cli, session)["freezing"]["threshold_auto"] is True


def test_plot_writes_a_report(cli, session):
    result = cli("score", session, "--plot")
    assert result.exit_code == 0, result.output
    png = session / "freezing.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000


def test_scored_freezing_tracks_the_truth(cli, session):
    # the small rig (160x120): a sniffing head moves by about a pixel, so a little less exact
    scored, truth, times = _truth_and_score(session)
    assert_agrees(scored, truth, times, [], min_agreement=0.9, min_kappa=0.6)


def test_a_session_scored_before_the_step_index_is_rescored_from_its_video(cli, session):
    stored = SessionFolder.open(session).scores()
    live = stored.motion_index
    motion_set = session / "session.zarr" / "scores" / "motion" / stored.motion_name
    shutil.rmtree(motion_set / "step_index")  # as a session scored before the step index existed
    assert SessionFolder.open(session).scores().step_index is None
    result = cli("score", session, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["step_threshold"] > 0
    # what the session computed live is what the stored video gives again
    again = SessionFolder.open(session).scores()
    assert again.step_index is not None
    assert np.array_equal(again.motion_index, live, equal_nan=True)


def test_roi_and_exclusions_recompute_the_index(cli, session):
    result = cli("score", session, "--roi", "0,0,80,120", "--exclude", "60,0,20,20", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["roi"] == {"x_px": 0.0, "y_px": 0.0, "width_px": 80.0, "height_px": 120.0}
    assert len(record["exclude"]) == 1
    again = json.loads(cli("score", session, "--threshold", "0.02", "--json").stdout)
    assert again["roi"] == record["roi"]  # the stored index was computed with that ROI
    bad = cli("score", session, "--roi", "1,2,3")
    assert bad.exit_code == 2


def test_every_scoring_is_kept_and_one_is_current(cli, session):
    folder = SessionFolder.open(session)
    run = folder.scores()
    assert (run.name, run.motion_name) == ("score-1", "motion-1")  # the run's own scoring

    explore = cli("score", session, "--threshold", "0.5", "--name", "explore", "--keep-current")
    assert explore.exit_code == 0, explore.output
    assert "scoring explore (stored, not current" in explore.stdout
    assert info_json(cli, session)["freezing"]["scoring"] == "score-1"  # still what info says
    assert info_json(cli, session)["freezing"]["threshold_auto"] is True

    roi = cli("score", session, "--roi", "0,0,80,120", "--json")  # a new index set, current
    assert roi.exit_code == 0, roi.output
    record = json.loads(roi.stdout)
    assert (record["name"], record["motion"]) == ("score-3", "motion-2")
    text = cli("info", session).stdout
    assert "freezing  scoring score-3 (current of 3 stored" in text

    back = cli("score", session, "--use", "score-1")  # the run's index is still there
    assert back.exit_code == 0 and "* score-1" in back.stdout
    again = SessionFolder.open(session).scores()
    assert again.name == "score-1" and again.motion_name == "motion-1"
    assert np.array_equal(again.motion_index, run.motion_index, equal_nan=True)
    assert np.array_equal(again.freezing, run.freezing)
    listed = json.loads(cli("score", session, "--list", "--json").stdout)
    assert [r["name"] for r in listed] == ["score-1", "explore", "score-3"]
    assert [r["current"] for r in listed] == [True, False, False]
    assert listed[1]["threshold"] == 0.5

    taken = cli("score", session, "--name", "explore")
    assert taken.exit_code == 2 and "explore" in taken.stderr
    unknown = cli("score", session, "--use", "nope")
    assert unknown.exit_code == 2 and "no scoring named 'nope'" in unknown.stderr


def test_a_session_scored_before_the_history_keeps_its_scoring(cli, session):
    """The layout of scores/ before the history: arrays and record in scores/ itself."""
    import zarr

    folder = SessionFolder.open(session)
    current = folder.scores()
    store = session / "session.zarr" / "scores"
    shutil.rmtree(store)
    group = zarr.open_group(str(store), mode="w")
    for key, value in [
        ("device_index", current.device_index),
        ("motion_index", current.motion_index),
        ("step_index", current.step_index),
        ("times_s", current.times_s),
        ("freezing", current.freezing),
    ]:
        group.create_array(key, data=value)
    record = {k: v for k, v in current.record.items() if k not in ("name", "motion")}
    group.attrs.update({"motion_params": current.motion_params, "freezing": record})
    old = SessionFolder.open(session)
    assert old.scores().name == "original" and old.freezing_record() == record
    result = cli("score", session, "--threshold", "0.02", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["motion"] == "original"  # its indices, reused
    names = [(r["name"], r["current"]) for r in SessionFolder.open(session).scorings()]
    assert names == [("original", False), ("score-1", True)]
    assert np.array_equal(zarr.open_group(str(store))["freezing"][:], current.freezing)


def test_head_fixed_mouse_is_scored_from_the_wheel(cli, tmp_path):
    rig = ROOT / "docs" / "rigs" / "sim-headfixed.yaml"
    result = cli("run", PROTOCOLS / "demo.yaml", "--fast", "--rig", rig, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip().splitlines()[-1])
    info = info_json(cli, folder)
    assert info["freezing"]["threshold"] == 1.0
    session = SessionFolder.open(folder)
    assert session.freezing_record()["measure"] == "locomotion"
    assert len(session.edges(WHEEL).samples) > 1000
    scored, truth, times = _truth_and_score(folder)
    # the wheel cannot see grooming or sniffing on a still wheel: count those as still
    for busy in ("grooming", "sniffing"):
        truth = truth | session.truth(busy)[: len(truth)].astype(bool)
    assert_agrees(scored, truth, times, [], min_agreement=0.9, min_kappa=0.6)
