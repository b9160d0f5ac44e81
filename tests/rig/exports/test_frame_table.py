"""The frame table: stimulus and behaviour state at every two-photon frame, on the DAQ clock."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from rig.data.folder import SessionFolder
from rig.exports.frame_table import (
    COLUMNS,
    build_frame_table,
    cs_roles,
    resample_nearest,
    stimulus_intervals,
)
from rig.files.inputfile import InputError
from rig.files.protocol import protocol_from_text
from rig.program.timeline import PlannedTrial, Timeline
from tests.conftest import SHORT_PROTOCOL


def _protocol(stimuli: str, trials: str):
    return protocol_from_text(
        f"""
protocol: p
version: 1
seed: 1
stimuli:
{stimuli}
  shock: {{type: shock, current_ma: 0.5, duration_s: 1}}
phases:
  - name: test
    trials: [{trials}]
    iti_s: 5
"""
    ).protocol


TONES = """\
  {a}: {{type: tone, frequency_hz: 7500, level_db: 70, duration_s: 5}}
  {b}: {{type: tone, frequency_hz: 2000, level_db: 70, duration_s: 5}}"""


@pytest.mark.parametrize(
    ("a", "b", "paired", "expected"),
    [
        ("tone_a", "tone_b", True, {"tone_a": "cs_plus", "tone_b": "cs_minus"}),
        ("high", "low", True, {"high": "cs_plus", "low": "cs_minus"}),
        # the pairing decides, whatever the names say
        ("cs_minus", "cs_plus", True, {"cs_minus": "cs_plus", "cs_plus": "cs_minus"}),
        # no US in the protocol (recall, extinction): the names decide
        ("cs_plus", "cs_minus", False, {"cs_plus": "cs_plus", "cs_minus": "cs_minus"}),
        ("CSPlus", "CS-", False, {"CSPlus": "cs_plus", "CS-": "cs_minus"}),
        ("csplus", "other", False, {"csplus": "cs_plus", "other": "cs_minus"}),
        ("tone-x", "cs-minus", False, {"tone-x": "cs_plus", "cs-minus": "cs_minus"}),
        ("tone_a", "tone_b", False, {"tone_a": "cs", "tone_b": "cs"}),
    ],
)
def test_cs_roles_come_from_pairing_then_names(a, b, paired, expected):
    quote = lambda s: json.dumps(s)  # noqa: E731 - names like CS- read best quoted in YAML
    us = ", us: shock" if paired else ""
    protocol = _protocol(
        TONES.format(a=quote(a), b=quote(b)), f"{{cs: {quote(a)}{us}}}, {{cs: {quote(b)}}}"
    )
    assert cs_roles(protocol) == expected


def test_resample_nearest_within_tolerance_else_nan():
    src = np.array([0.0, 0.1, 0.2, 0.3, 1.0, 1.1])
    vals = np.array([0, 1, 0, 1, 1, 0], float)
    t = np.array([0.04, 0.06, 0.29, 0.5, 1.06, np.nan, -1.0])
    out = resample_nearest(t, src, vals)
    np.testing.assert_array_equal(out[:3], [0, 1, 1])
    assert np.isnan(out[3])  # 0.2 s from any sample, more than 1.5 periods of 0.1 s
    assert out[4] == 0  # nearest is 1.1
    assert np.isnan(out[5]) and np.isnan(out[6])


@pytest.fixture(scope="module")
def session(imaging_session):
    return SessionFolder.open(imaging_session)


@pytest.fixture(scope="module")
def table(session):
    return build_frame_table(session)


def test_one_row_per_two_photon_frame_at_its_recorded_time(table, session):
    assert table.stream == "imaging"
    assert list(table.columns) == list(COLUMNS)
    imaging = session.stream("imaging")
    stamps = imaging.timestamps_s()
    assert len(table) == imaging.n_frames == len(stamps) > 0
    np.testing.assert_array_equal(table.columns["time_s"], stamps)
    edges = session.rising_edges("frame_clock") / session.attrs.sample_rate_hz
    np.testing.assert_array_equal(table.columns["time_s"], edges[: len(stamps)])


def test_stimulus_columns_match_the_plan_within_one_frame(table, session):
    attrs = session.attrs
    period = 1 / attrs.imaging_rate_hz
    t = table.columns["time_s"]
    trials = {tr.cs: tr for tr in attrs.timeline.trials}
    assert table.roles == {"tone_a": "cs_plus", "tone_b": "cs_minus"}
    for column, start, stop in [
        ("cs_plus_on", trials["tone_a"].cs_onset_s, trials["tone_a"].cs_offset_s),
        ("cs_minus_on", trials["tone_b"].cs_onset_s, trials["tone_b"].cs_offset_s),
        ("shock_on", trials["tone_a"].us_onset_s, trials["tone_a"].us_offset_s),
    ]:
        on = np.flatnonzero(table.columns[column])
        assert len(on) and np.all(np.diff(on) == 1), column  # one contiguous run
        assert start <= t[on[0]] < start + period, column
        assert stop - period <= t[on[-1]] < stop, column
        assert np.array_equal(table.columns[column] == 1, (t >= start) & (t < stop)), column
    cs = table.columns["cs"]
    assert set(cs[table.columns["cs_plus_on"] == 1]) == {"tone_a"}
    assert set(cs[table.columns["cs_minus_on"] == 1]) == {"tone_b"}
    silent = (table.columns["cs_plus_on"] == 0) & (table.columns["cs_minus_on"] == 0)
    assert set(cs[silent]) == {""}


def test_phase_and_trial_in_progress(table, session):
    t, phase, trial = table.columns["time_s"], table.columns["phase"], table.columns["trial"]
    base = t < 3.0
    assert set(phase[base]) == {"baseline"} and set(trial[base]) == {-1}
    assert set(phase[~base]) == {"conditioning"}
    second = session.attrs.timeline.trials[1].cs_onset_s
    assert set(trial[(t >= 3.0) & (t < second)]) == {0}
    assert set(trial[t >= second]) == {1}


def test_freezing_is_the_scored_and_true_freezing_at_the_frame_times(table, session):
    scores, (true_times, true_frozen) = session.scores(), session.true_freezing()
    # imaging on the microscope's own clock (15.015 Hz), video at 30 Hz after its triggers:
    # each imaging frame takes the video frame nearest in time (within 1.5 video periods)
    for t, frozen, true in zip(
        table.columns["time_s"],
        table.columns["freezing"],
        table.columns["true_freezing"],
        strict=True,
    ):
        nearest = int(np.argmin(np.abs(scores.times_s - t)))
        assert abs(scores.times_s[nearest] - t) < 1 / 30
        assert frozen == float(scores.freezing[nearest])
        assert true == float(true_frozen[int(np.argmin(np.abs(true_times - t)))])
    assert np.nanmax(table.columns["true_freezing"]) == 1  # the mouse froze at some point
    assert np.all(np.isnan(table.columns["wheel_speed_cm_s"]))  # scored from the video


def test_frame_clock_only_session_has_a_row_per_edge(frame_clock_session):
    session = SessionFolder.open(frame_clock_session)
    table = build_frame_table(session)
    assert session.stream_groups() == ["video"]  # no imaging/ group
    n_edges = len(session.rising_edges("frame_clock"))
    # 5 s of a resonant microscope at 30.03 Hz on its own clock (30 Hz planned)
    assert table.stream == "frame_clock" and len(table) == n_edges == 151


def test_video_rows_when_the_session_has_no_imaging(tmp_path, cli, small_rig):
    protocol = tmp_path / "video-only.yaml"
    protocol.write_text(SHORT_PROTOCOL.replace("  imaging: {frame_rate_hz: 15}\n", ""))
    result = cli("run", protocol, "--fast", "--rig", small_rig, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    session = SessionFolder.open(result.stdout.strip().splitlines()[-1])
    table = build_frame_table(session)
    assert table.stream == "video"
    np.testing.assert_array_equal(table.columns["time_s"], session.stream("video").timestamps_s())


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_an_interrupted_session_must_be_recovered_first(imaging_session, tmp_path):
    copy = tmp_path / imaging_session.name
    shutil.copytree(imaging_session, copy)
    session = SessionFolder(copy)
    session.update_attrs(status="running", pid=_dead_pid())
    with pytest.raises(InputError, match="rig recover"):
        session.require_finalized()


def test_a_stimulus_cut_short_ends_with_the_session():
    trials = (
        PlannedTrial(0, "p", 0, "a", "zap", 5.0, 10.0, 9.0, 10.0, 5.0),
        PlannedTrial(1, "p", 1, "b", None, 25.0, 30.0, None, None, None),
    )
    timeline = Timeline("p", 1, 40.0, (), trials)
    events = [
        {"kind": "cs_on", "t_s": 5.0, "trial": 0, "phase": "p", "stimulus": "a"},
        {"kind": "us_on", "t_s": 9.0, "trial": 0, "phase": "p", "stimulus": "zap"},
        {"kind": "cs_off", "t_s": 10.0, "trial": 0, "phase": "p", "stimulus": "a"},
        {"kind": "cs_on", "t_s": 25.0, "trial": 1, "phase": "p", "stimulus": "b"},
        {"kind": "session_end", "t_s": 27.5, "trial": None},
    ]
    intervals = stimulus_intervals(events, timeline, {"a": "cs_plus", "b": "cs_minus"})
    got = [(iv.kind, iv.role, iv.start_s, iv.stop_s) for iv in intervals]
    # the US's offset was never logged: its planned offset; the last CS: the session's end
    assert got == [
        ("cs", "cs_plus", 5.0, 10.0),
        ("us", "us", 9.0, 10.0),
        ("cs", "cs_minus", 25.0, 27.5),
    ]
