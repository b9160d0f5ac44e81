"""The session-folder API: opening, creating, the typed root attributes, the status, and a
damaged ``zarr.json`` reported as ``FILE: field: message`` (exit 2) by every command."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from rig.data.folder import SessionFolder
from rig.files.inputfile import InputError
from tests.rig.data.conftest import dead_pid


@pytest.fixture
def session_copy(frame_clock_session, tmp_path) -> Path:
    """A finished real session (frame-clock microscope: video, edges, scores), copied."""
    copy = tmp_path / frame_clock_session.name
    shutil.copytree(frame_clock_session, copy)
    return copy


def _metadata(folder: Path) -> dict:
    return json.loads((folder / "session.zarr" / "zarr.json").read_text())


def _write_metadata(folder: Path, meta: dict) -> None:
    (folder / "session.zarr" / "zarr.json").write_text(json.dumps(meta))


def test_open_takes_the_folder_or_its_store_and_refuses_anything_else(session_copy, tmp_path):
    assert SessionFolder.open(session_copy).path == session_copy
    assert SessionFolder.open(session_copy / "session.zarr").path == session_copy
    with pytest.raises(InputError, match="not a fear-rig session"):
        SessionFolder.open(tmp_path)
    with pytest.raises(InputError, match="not a fear-rig session"):
        SessionFolder.open(tmp_path / "missing")


def test_attributes_are_typed(session_copy):
    attrs = SessionFolder.open(session_copy).attrs
    assert attrs.status == "complete" and attrs.format_version == 2
    assert isinstance(attrs.pid, int) and attrs.sample_rate_hz == 20_000.0
    assert attrs.video_fps == 30.0 and attrs.imaging_rate_hz == 15.0
    assert [t.cs for t in attrs.timeline.trials] == ["tone_a", "tone_b"]
    assert attrs.timeline.trials[0].us == "zap"
    assert attrs.frames_expected == {"video": attrs.streams["video"]["frames_expected"]}


def test_create_makes_the_folder_the_journal_and_a_running_store(new_session):
    assert new_session.path.parent.name == "out" and new_session.name.endswith("_m1_short")
    assert new_session.journal_path.is_dir()
    attrs = SessionFolder.open(new_session.path).attrs
    assert attrs.status == "running" and attrs.format == "fear-rig-session"
    assert attrs.pid == os.getpid() and attrs.host == socket.gethostname()
    assert attrs.ended_utc is None and attrs.started_utc.endswith("Z")
    assert new_session.status == "running"  # this process is alive


def test_unknown_attributes_are_kept_through_updates(new_session):
    meta = _metadata(new_session.path)
    meta["attributes"]["from_a_newer_version"] = {"kept": [1, 2]}
    meta["attributes"]["protocol"]["new_section"] = "also kept"
    _write_metadata(new_session.path, meta)
    folder = SessionFolder.open(new_session.path)
    assert folder.attrs.model_extra == {"from_a_newer_version": {"kept": [1, 2]}}
    folder.update_attrs(notes="an update")
    after = _metadata(new_session.path)["attributes"]
    assert after["from_a_newer_version"] == {"kept": [1, 2]}
    assert after["protocol"]["new_section"] == "also kept" and after["notes"] == "an update"


def test_an_update_of_the_wrong_type_is_refused_and_changes_nothing(new_session):
    before = new_session.attrs_path.read_bytes()
    with pytest.raises(InputError, match="sample_rate_hz"):
        new_session.update_attrs(sample_rate_hz="fast")
    assert new_session.attrs_path.read_bytes() == before
    assert not [p for p in new_session.zarr_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("host", "pid", "status"),
    [
        ("here", "alive", "running"),
        ("here", "dead", "interrupted"),
        ("here", None, "interrupted"),  # no writer recorded: nobody is writing it
        ("here", 0, "interrupted"),  # 0 names a process group, not a writer
        ("elsewhere", "dead", "running"),  # another host's process cannot be checked from here
    ],
)
def test_without_a_writer_lock_the_pid_decides(new_session, host, pid, status):
    """A session written before the writer lock (rig.data.writer_lock) existed."""
    new_session.release_writer()
    (new_session.journal_path / "writer.lock").unlink()
    pid = {"alive": os.getpid(), "dead": dead_pid()}.get(pid, pid)
    hostname = socket.gethostname() if host == "here" else "another-machine"
    new_session.update_attrs(host=hostname, pid=pid)
    assert SessionFolder.open(new_session.path).status == status


def test_the_effective_status_gates_the_readers(new_session):
    with pytest.raises(InputError, match="still being written"):
        new_session.require_finalized()
    new_session.release_writer()  # as the OS does when the writer dies
    with pytest.raises(InputError, match="rig recover"):
        new_session.require_finalized()
    new_session.update_attrs(status="aborted")
    assert new_session.require_finalized().status == "aborted"


def test_truth_scores_and_motion_round_trip(new_session):
    assert new_session.scores() is None and new_session.freezing_record() is None
    assert new_session.true_freezing() is None
    new_session.write_truth(
        {"freezing": np.array([0, 1, 1]), "behaviour_frame_times_s": np.array([0.0, 0.1, 0.2])}
    )
    times, frozen = new_session.true_freezing()
    assert frozen.dtype == bool and frozen.tolist() == [False, True, True]
    step = np.array([np.nan, 0.05, 0.0])
    new_session.write_motion(np.array([3, 4, 5]), np.array([np.nan, 0.1, 0.2]), step, {"roi": None})
    record = {"measure": "motion", "threshold": 0.05}
    new_session.write_freezing(times, np.array([0, 0, 1]), record)
    scores = new_session.scores()
    assert scores.device_index.tolist() == [3, 4, 5] and scores.motion_params == {"roi": None}
    assert np.array_equal(scores.step_index, step.astype(np.float32), equal_nan=True)
    assert scores.freezing.dtype == bool
    assert new_session.freezing_record() == {**record, "name": "score-1"}
    assert scores.timed(scores.freezing)[0].tolist() == [0.0, 0.1, 0.2]
    assert scores.timed(scores.wheel_speed_cm_s) is None  # not scored from a wheel


def test_protocol_and_schedule_come_back_from_the_stored_text(session_copy):
    folder = SessionFolder.open(session_copy)
    assert folder.protocol().protocol == "short-differential"
    assert folder.frames_expected("video") == folder.attrs.frames_expected["video"]
    assert folder.frames_expected("imaging") == 150  # not set up: from the schedule


# ---------------------------------------------------------------- a damaged zarr.json

DAMAGES = {
    "truncated": (lambda meta, text: text[: len(text) // 2], "", "unreadable"),
    "not UTF-8": (lambda meta, text: b"\xff\xfe\x00garbage", "", "unreadable"),
    "not an object": (lambda meta, text: "[1, 2]", "", "expected a JSON object"),
    "attributes a list": (
        lambda meta, text: {**meta, "attributes": []},
        "attributes",
        "expected a JSON object",
    ),
    "non-numeric pid": (
        lambda meta, text: _set(meta, "pid", "12ab"),
        "pid",
        "valid integer",
    ),
    "rate of the wrong type": (
        lambda meta, text: _set(meta, "sample_rate_hz", {"hz": 1}),
        "sample_rate_hz",
        "valid number",
    ),
    "unknown status": (lambda meta, text: _set(meta, "status", "paused"), "status", "'running'"),
    "no timeline": (lambda meta, text: _set(meta, "timeline", None), "timeline", ""),
    "a trial time that is text": (
        lambda meta, text: _set_trial(meta, "cs_onset_s", "soon"),
        "timeline.trials[0].cs_onset_s",
        "valid number",
    ),
}


def _set(meta: dict, key: str, value) -> dict:
    meta["attributes"][key] = value
    return meta


def _set_trial(meta: dict, key: str, value) -> dict:
    meta["attributes"]["timeline"]["trials"][0][key] = value
    return meta


COMMANDS = {
    "info": ("info", "--json"),
    "score": ("score",),
    "export": ("export", "--csv"),
    "recover": ("recover",),
    "attach": ("attach", "SESSION", "frames.tif"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_damaged_zarr_json_is_bad_input_naming_the_field(session_copy, cli, damage, command):
    make, field, message = DAMAGES[damage]
    path = session_copy / "session.zarr" / "zarr.json"
    text = path.read_text()
    damaged = make(json.loads(text), text)
    if isinstance(damaged, dict):
        damaged = json.dumps(damaged)
    path.write_bytes(damaged if isinstance(damaged, bytes) else damaged.encode())
    before = {p: p.read_bytes() for p in session_copy.rglob("*") if p.is_file()}
    verb, *rest = COMMANDS[command]
    args = [session_copy if a == "SESSION" else a for a in rest]
    result = cli(verb, session_copy, *args) if verb != "attach" else cli(verb, *args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith(f"{path}: ") for line in lines), result.stderr
    where = f"{path}: {field}: " if field else f"{path}: "
    assert any(line.startswith(where) and message in line for line in lines), result.stderr
    assert "Traceback" not in result.output
    assert {p: p.read_bytes() for p in session_copy.rglob("*") if p.is_file()} == before


def test_freezing_parameters_of_the_wrong_type_are_bad_input_for_rig_score(session_copy, cli):
    meta = _metadata(session_copy)
    meta["attributes"]["freezing_params"]["min_freeze_s"] = "long"
    _write_metadata(session_copy, meta)
    assert cli("info", session_copy).exit_code == 0  # info does not read them
    result = cli("score", session_copy)
    assert result.exit_code == 2 and "Traceback" not in result.output
    path = session_copy / "session.zarr" / "zarr.json"
    assert result.stderr.startswith(f"{path}: freezing_params.min_freeze_s: ")
