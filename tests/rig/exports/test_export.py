"""``rig export``: CSV tables, a suite2p TIFF and an NWB file, checked against the plan and the
Zarr store they come from."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pynwb
import pytest
import tifffile

from rig.behaviour.rescore import freezing_summary
from rig.data.folder import SessionFolder
from rig.exports.csv_tiff import EVENT_COLUMNS, iter_frame_blocks
from rig.exports.frame_table import COLUMNS
from tests.conftest import SMALL_RIG


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _num(text: str) -> float:
    return float(text) if text != "" else float("nan")


@pytest.fixture(scope="module")
def session(imaging_session) -> SessionFolder:
    return SessionFolder.open(imaging_session)


@pytest.fixture(scope="module")
def csv_export(imaging_session, tmp_path_factory):
    from click.testing import CliRunner

    from rig.cli import main

    out = tmp_path_factory.mktemp("csv-export")
    result = CliRunner().invoke(main, ["export", str(imaging_session), "--csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.stdout.split()


def test_csv_export_prints_the_paths_it_wrote(csv_export):
    out, printed = csv_export
    names = ["frames.csv", "events.csv", "trials.csv", "phases.csv"]
    assert printed == [str(out / n) for n in names]
    assert all((out / n).is_file() for n in names)
    assert not list(out.glob(".*"))  # no temporary files left


def test_frames_csv_matches_the_plan_and_the_store(csv_export, session):
    rows = _rows(csv_export[0] / "frames.csv")
    assert list(rows[0]) == list(COLUMNS)
    stamps = session.stream("imaging").timestamps_s()
    assert len(rows) == len(stamps)
    np.testing.assert_array_equal([float(r["time_s"]) for r in rows], stamps)
    assert [int(r["frame"]) for r in rows] == list(range(len(rows)))
    t = stamps
    period = 1 / 15
    plan = {tr.cs: tr for tr in session.attrs.timeline.trials}
    for column, start, stop in [
        ("cs_plus_on", plan["tone_a"].cs_onset_s, plan["tone_a"].cs_offset_s),
        ("cs_minus_on", plan["tone_b"].cs_onset_s, plan["tone_b"].cs_offset_s),
        ("shock_on", plan["tone_a"].us_onset_s, plan["tone_a"].us_offset_s),
    ]:
        on = np.array([r[column] == "1" for r in rows])
        assert set(r[column] for r in rows) == {"0", "1"}
        first, last = t[on][0], t[on][-1]
        assert start <= first < start + period and stop - period <= last < stop, column
        assert np.array_equal(on, (t >= start) & (t < stop)), column
    freezing = [_num(r["freezing"]) for r in rows]
    assert set(freezing) <= {0.0, 1.0} and 1.0 in [_num(r["true_freezing"]) for r in rows]


def test_events_csv_has_every_event_with_the_cs_role(csv_export, imaging_session):
    rows = _rows(csv_export[0] / "events.csv")
    assert list(rows[0]) == [*EVENT_COLUMNS, "extra"]
    journal = (imaging_session / "journal" / "events.jsonl").read_text().splitlines()
    assert len(rows) == len(journal)
    onsets = {r["stimulus"]: r for r in rows if r["kind"] == "cs_on"}
    assert onsets["tone_a"]["role"] == "cs_plus" and onsets["tone_b"]["role"] == "cs_minus"
    assert [r["role"] for r in rows if r["kind"] == "us_on"] == ["us"]
    end = next(r for r in rows if r["kind"] == "session_end")
    assert json.loads(end["extra"]) == {"status": "complete"}


def test_trials_csv_has_measured_times_and_the_scored_percentages(csv_export, session):
    rows = _rows(csv_export[0] / "trials.csv")
    planned_trials = session.attrs.timeline.trials
    summary = {r["index"]: r for r in freezing_summary(session.freezing_record())}
    assert [r["cs"] for r in rows] == [t.cs for t in planned_trials]
    assert [r["cs_role"] for r in rows] == ["cs_plus", "cs_minus"]
    assert [r["delivered"] for r in rows] == ["1", "1"]
    for row, planned in zip(rows, planned_trials, strict=True):
        # the tone's envelope, measured on the recorded sound: inside its 5-ms ramp
        assert 0 < float(row["cs_onset_s"]) - planned.cs_onset_s < 0.005
        for epoch in ("pre", "cs", "us", "iti"):
            expected = summary[int(row["trial"])][f"percent_{epoch}"]
            got = _num(row[f"percent_{epoch}"])
            assert (np.isnan(got) and expected is None) or got == pytest.approx(expected)
        assert row["true_percent_cs"] != ""  # simulated: the truth is scored too
    assert rows[0]["us"] == "zap" and rows[1]["us_onset_s"] == ""
    phases = _rows(csv_export[0] / "phases.csv")
    assert [p["name"] for p in phases] == ["baseline", "conditioning"]
    assert phases[0]["percent_baseline"] != "" and phases[1]["percent_baseline"] == ""


def test_tiff_holds_the_frames_of_the_store(imaging_session, session, tmp_path, cli):
    result = cli("export", imaging_session, "--tiff", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip())
    assert path == tmp_path / "imaging.tif"
    frames = session.stream("imaging").frames[:]
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == frames.shape[0]  # suite2p counts pages
        assert not tif.is_bigtiff
        data = tif.asarray()
    assert data.shape == frames.shape and data.dtype == frames.dtype
    np.testing.assert_array_equal(data, frames)


def test_bigtiff_on_request(imaging_session, tmp_path, cli):
    result = cli("export", imaging_session, "--tiff", "--bigtiff", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    with tifffile.TiffFile(tmp_path / "imaging.tif") as tif:
        assert tif.is_bigtiff
        assert tif.pages[7].asarray().shape == (64, 64)


def test_frames_are_read_in_bounded_blocks_of_whole_chunks(session):
    frames = session.stream("imaging").frames
    chunk_t = frames.chunks[0]
    frame_bytes = 64 * 64 * 2
    blocks = list(iter_frame_blocks(frames, block_bytes=3 * chunk_t * frame_bytes))
    assert [s for s, _ in blocks] == list(range(0, frames.shape[0], 3 * chunk_t))
    assert max(len(b) for _, b in blocks) == 3 * chunk_t
    np.testing.assert_array_equal(np.concatenate([b for _, b in blocks]), frames[:])


def test_tiff_of_a_session_without_frames_is_a_one_line_error(frame_clock_session, cli):
    result = cli("export", frame_clock_session, "--tiff")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "rig attach" in result.stderr
    assert not (frame_clock_session / "export" / "imaging.tif").exists()


@pytest.fixture(scope="module")
def nwb_file(imaging_session, tmp_path_factory):
    from click.testing import CliRunner

    from rig.cli import main

    out = tmp_path_factory.mktemp("nwb-export")
    result = CliRunner().invoke(main, ["export", str(imaging_session), "--nwb", "--out", str(out)])
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip())
    assert path == out / "session.nwb" and not list(out.glob(".*"))
    return path


def test_nwb_validates(nwb_file):
    assert pynwb.validate(path=str(nwb_file)) == []


def test_nwb_frames_and_timestamps_equal_the_store(nwb_file, session):
    imaging, video_stream, scores = (
        session.stream("imaging"),
        session.stream("video"),
        session.scores(),
    )
    with pynwb.NWBHDF5IO(str(nwb_file), "r") as io:
        nwb = io.read()
        two_photon = nwb.acquisition["two_photon"]
        np.testing.assert_array_equal(two_photon.timestamps[:], imaging.timestamps_s())
        # NWB stores (frame, x, y)
        np.testing.assert_array_equal(two_photon.data[:].transpose(0, 2, 1), imaging.frames[:])
        video = nwb.acquisition["behaviour_video"]
        np.testing.assert_array_equal(video.timestamps[:], video_stream.timestamps_s())
        assert video.data.shape == (video_stream.n_frames, 160, 120)
        np.testing.assert_array_equal(video.data[5].T, video_stream.frames[5])
        behaviour = nwb.processing["behavior"]
        np.testing.assert_array_equal(
            behaviour["freezing"].data[:], scores.freezing.astype(np.uint8)
        )
        np.testing.assert_array_equal(behaviour["freezing"].timestamps[:], scores.times_s)
        np.testing.assert_array_equal(
            behaviour["true_freezing"].data[:], session.true_freezing()[1].astype(np.uint8)
        )
        assert behaviour["motion_index"].data.shape == scores.motion_index.shape


def test_nwb_trials_stimuli_and_phases(nwb_file, session):
    attrs = session.attrs
    summary = freezing_summary(session.freezing_record())
    with pynwb.NWBHDF5IO(str(nwb_file), "r") as io:
        nwb = io.read()
        trials = nwb.trials.to_dataframe()
        assert list(trials["cs"]) == ["tone_a", "tone_b"]
        assert list(trials["cs_role"]) == ["cs_plus", "cs_minus"]
        assert list(trials["us"]) == ["zap", ""]
        assert list(trials["phase"]) == ["conditioning", "conditioning"]
        planned = attrs.timeline.trials
        np.testing.assert_allclose(  # measured on the sound's envelope: inside the ramp
            trials["start_time"], [t.cs_onset_s for t in planned], atol=0.005
        )
        np.testing.assert_allclose(
            trials["percent_cs"], [s["percent_cs"] for s in summary], equal_nan=True
        )
        stimuli = nwb.intervals["stimuli"].to_dataframe()
        assert list(stimuli["role"]) == ["cs_plus", "us", "cs_minus"]
        assert list(stimuli["stimulus"]) == ["tone_a", "zap", "tone_b"]
        us = stimuli[stimuli["kind"] == "us"].iloc[0]
        assert us["start_time"] == pytest.approx(planned[0].us_onset_s, abs=1e-4)
        epochs = nwb.epochs.to_dataframe()
        assert [list(t) for t in epochs["tags"]] == [["baseline"], ["conditioning"]]
        assert nwb.subject.subject_id == "sim-mouse"
        assert nwb.protocol == attrs.protocol_text


def test_not_a_session_is_a_one_line_error(tmp_path, cli):
    for flag in ("--csv", "--tiff", "--nwb"):
        result = cli("export", tmp_path, flag)
        assert result.exit_code == 2
        assert result.stderr.count("\n") == 1 and "not a fear-rig session" in result.stderr
        assert "Traceback" not in result.output


def test_export_needs_a_format(imaging_session, cli):
    result = cli("export", imaging_session)
    assert result.exit_code == 2 and "--csv" in result.stderr


# ---------------------------------------------------------------- an interrupted session


@pytest.fixture(scope="module")
def killed_session(short_protocol, tmp_path_factory) -> Path:
    """A real ``rig run`` SIGKILLed part-way: status ``interrupted``, journal not folded in."""
    out = tmp_path_factory.mktemp("killed")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rig.cli",
            "run",
            str(short_protocol),
            "--rig",
            str(SMALL_RIG),
            "--out",
            str(out),
            "--speed",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            progress = list(out.glob("*/journal/progress-imaging.json"))
            if progress and json.loads(progress[0].read_text() or "{}").get("written", 0) >= 40:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the session wrote no imaging frames")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    (folder,) = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return folder


def test_interrupted_session_exports_after_recover(killed_session, tmp_path, cli):
    folder = tmp_path / killed_session.name
    shutil.copytree(killed_session, folder)
    before = cli("export", folder, "--csv")
    assert before.exit_code == 2 and "rig recover" in before.stderr
    assert cli("recover", folder).exit_code == 0
    recovered = SessionFolder.open(folder)
    assert recovered.attrs.status == "recovered"
    result = cli("export", folder, "--csv", "--tiff", "--nwb")
    assert result.exit_code == 0, result.output
    kept = recovered.stream("imaging").n_frames
    assert 40 <= kept < 150  # the session was cut short
    assert len(_rows(folder / "export" / "frames.csv")) == kept
    assert tifffile.TiffFile(folder / "export" / "imaging.tif").series[0].shape[0] == kept
    assert pynwb.validate(path=str(folder / "export" / "session.nwb")) == []


def test_frame_clock_only_session_exports_its_edges(frame_clock_session, tmp_path, cli):
    result = cli("export", frame_clock_session, "--csv", "--nwb", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    session = SessionFolder.open(frame_clock_session)
    edges = session.rising_edges("frame_clock") / session.attrs.sample_rate_hz
    rows = _rows(tmp_path / "frames.csv")
    np.testing.assert_array_equal([float(r["time_s"]) for r in rows], edges)
    assert sum(r["cs_plus_on"] == "1" for r in rows) == 30  # 2 s of CS+ at 15 Hz
    assert pynwb.validate(path=str(tmp_path / "session.nwb")) == []
    with pynwb.NWBHDF5IO(str(tmp_path / "session.nwb"), "r") as io:
        nwb = io.read()
        assert "two_photon" not in nwb.acquisition
        np.testing.assert_array_equal(nwb.acquisition["frame_clock"].timestamps[:], edges)
        np.testing.assert_array_equal(nwb.acquisition["frame_clock"].data[:], np.arange(len(edges)))


def test_nwb_compressed_frames_read_back_equal(imaging_session, session, tmp_path, cli):
    import h5py

    result = cli("export", imaging_session, "--nwb", "--compress", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    frames = session.stream("imaging").frames
    with h5py.File(tmp_path / "session.nwb", "r") as f:
        data = f["acquisition/two_photon/data"]
        assert data.compression == "gzip" and data.chunks[0] == frames.chunks[0]
        np.testing.assert_array_equal(data[:].transpose(0, 2, 1), frames[:])


def test_out_that_is_a_file_is_a_one_line_error(imaging_session, tmp_path, cli):
    target = tmp_path / "a-file"
    target.write_text("")
    result = cli("export", imaging_session, "--csv", "--out", target)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "cannot write exports here" in result.stderr
