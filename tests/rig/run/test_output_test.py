"""Manual output tests and speaker calibration: checked like sessions, one user of a rig."""

from __future__ import annotations

import hashlib
import itertools
import threading

import pytest

from rig.files.inputfile import InputError
from rig.files.rigfile import CalibrationPoint, load_rig, rig_from_text
from rig.ports import DeviceError
from rig.run.abort import Abort
from rig.run.output_test import (
    calibration_tone_plan,
    run_output_test,
    shock_test_plan,
    tone_test_plan,
)
from rig.run.rig_lock import RigBusy, holding_rig
from rig.run.session import prepare_session, run_session
from rig.run.speaker_calibration import with_calibration, write_speaker_calibration
from tests.conftest import PROTOCOLS, SMALL_RIG


@pytest.fixture
def rig():
    return load_rig(SMALL_RIG)


def test_a_tone_test_plays_the_tone_and_nothing_else(rig):
    result = run_output_test("tone", tone_test_plan(rig, 7500, 75, 1.5), speed=None)
    assert result.ok, result.summary
    on = [e for e in result.events if e["kind"] == "cs_on"]
    off = [e for e in result.events if e["kind"] == "cs_off"]
    assert len(on) == len(off) == 1
    # measured on the recorded sound's envelope: each end inside the 5-ms ramp
    assert 1.5 - 0.010 < off[0]["t_s"] - on[0]["t_s"] < 1.5
    assert not [e for e in result.events if e["kind"].startswith("us_")]
    assert result.summary.startswith("[SIMULATED] 7500 Hz tone played (1.50 s)")


def test_a_tone_louder_than_the_rig_allows_is_refused_by_option(rig):
    with pytest.raises(InputError) as err:
        tone_test_plan(rig, 7500, rig.safety.max_level_db + 5)
    assert err.value.problems[0].path == "--level-db"


def test_a_shock_test_delivers_each_shock_at_its_width_and_current(rig):
    plan = shock_test_plan(rig, 0.4, duration_s=0.5, count=3, interval_s=2.0)
    assert plan.schedule.sounds == ()  # the cue the format needs is never played
    result = run_output_test("shock", plan, speed=None)
    assert result.ok, result.summary
    on = [e["t_s"] for e in result.events if e["kind"] == "us_on"]
    off = [e["t_s"] for e in result.events if e["kind"] == "us_off"]
    assert len(on) == len(off) == 3
    assert [round(b - a, 3) for a, b in zip(on, off, strict=True)] == [0.5, 0.5, 0.5]
    assert [round(b - a, 3) for a, b in itertools.pairwise(on)] == [2.0, 2.0]
    assert "3 shock(s) at 0.4 mA" in result.summary and "read back 0.4 mA" in result.summary


@pytest.mark.parametrize(
    ("kwargs", "option", "rule"),
    [
        ({"current_ma": 5.0}, "--current-ma", "max_current_ma"),
        ({"current_ma": 0.5, "duration_s": 5.0}, None, "max_shock_s"),
        ({"current_ma": 0.5, "count": 3, "interval_s": 1.2}, None, "min_shock_gap_s"),
    ],
)
def test_a_shock_test_over_the_rig_limits_never_runs(rig, kwargs, option, rule):
    """The same verifier as every session: the limit is named, nothing is built or played."""
    with pytest.raises(InputError) as err:
        shock_test_plan(rig, **kwargs)
    report = err.value.report()
    assert rule in report
    if option is not None:
        assert f"{option}:" in report


def test_a_test_is_refused_while_a_session_holds_the_rig(rig):
    plan = tone_test_plan(rig, 7500, 70, 1.0)
    with holding_rig(rig), pytest.raises(RigBusy, match=f"rig {rig.name} is in use"):
        run_output_test("tone", plan, speed=None)
    assert run_output_test("tone", plan, speed=None).ok  # free again afterwards


def test_a_lock_that_cannot_be_made_is_a_device_error_not_a_traceback(rig, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("RIG_LOCK_DIR", str(blocker / "locks"))
    with pytest.raises(DeviceError, match=f"cannot take the lock of rig {rig.name}"):
        run_output_test("tone", tone_test_plan(rig, 7500, 70, 0.5), speed=None)


def test_simulated_sessions_share_the_rig_but_shut_out_a_test(rig):
    plan = tone_test_plan(rig, 7500, 70, 0.5)
    # two rehearsals at once, and a test refused meanwhile
    with holding_rig(rig, shared=True), holding_rig(rig, shared=True), pytest.raises(RigBusy):
        run_output_test("tone", plan, speed=None)
    # as a LIVE session holds it: alone
    with holding_rig(rig), pytest.raises(RigBusy), holding_rig(rig, shared=True):
        pass


def test_a_session_is_refused_while_a_test_runs(rig, tmp_path):
    """A shock test at real time holds the rig; a session started meanwhile is refused."""
    plan = shock_test_plan(rig, 0.3, duration_s=0.2, count=1)
    abort = Abort()
    started = threading.Event()
    outcome = {}

    def test() -> None:
        started.set()
        outcome["result"] = run_output_test("shock", plan, speed=1.0, abort=abort)

    thread = threading.Thread(target=test)
    thread.start()
    started.wait(5)
    session = prepare_session(PROTOCOLS / "demo.yaml", SMALL_RIG)
    try:
        for _ in range(200):  # until the test has taken the lock (its devices are built after)
            try:
                with holding_rig(rig):
                    pass
            except RigBusy:
                break
            threading.Event().wait(0.01)
        with pytest.raises(RigBusy):
            run_session(session, tmp_path, "m1", speed=None)
        assert not list(tmp_path.iterdir())  # refused before any folder was made
    finally:
        abort("test over")
        thread.join(30)
    assert outcome["result"].status in ("complete", "aborted")


def test_the_calibration_tone_plays_the_voltage_asked(rig):
    plan = calibration_tone_plan(rig, 5000, 0.2, 1.0)
    block = plan.schedule.sounds[0]
    assert plan.schedule.speaker_calibration == ((5000.0, 0.2, rig.safety.max_level_db),)
    assert block.frequency_hz == 5000
    assert run_output_test("calibration", plan, speed=None).ok


def test_a_calibration_voltage_beyond_the_output_is_refused(rig):
    with pytest.raises(InputError) as err:
        calibration_tone_plan(rig, 5000, 50.0)
    assert err.value.problems[0].path == "--volts"


RIG_WITH_COMMENTS = """\
# room B, rig 2
rig: bench
daq: {driver: sim, sample_rate_hz: 20000}
shocker: {driver: sim}
camera: {driver: sim, width: 64, height: 48}
# calibrated 2026-01-10 with the B&K meter
speaker:
  calibration:
    - {frequency_hz: 2000, volts: 0.5, level_db: 70}
    - {frequency_hz: 7500, volts: 0.8, level_db: 75}
  max_volts: 2.0
# the limits the animal-welfare office approved
safety: {max_current_ma: 1.0, max_shock_s: 2.0, max_shocks: 20, max_session_s: 14400}
"""


def test_writing_a_calibration_keeps_the_rest_of_the_file(tmp_path):
    path = tmp_path / "bench.yaml"
    path.write_text(RIG_WITH_COMMENTS, encoding="utf-8")
    old_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    rig = write_speaker_calibration(
        path,
        [
            CalibrationPoint(frequency_hz=7500, volts=0.1, level_db=63.5),
            CalibrationPoint(frequency_hz=12000, volts=0.1, level_db=58.0),
        ],
    )
    assert [(p.frequency_hz, p.volts, p.level_db) for p in rig.speaker.calibration] == [
        (2000, 0.5, 70),
        (7500, 0.1, 63.5),
        (12000, 0.1, 58.0),
    ]
    text = path.read_text(encoding="utf-8")
    for line in ("# room B, rig 2", "# calibrated 2026-01-10", "# the limits the animal"):
        assert line in text
    assert "max_volts: 2.0" in text and rig.speaker.max_volts == 2.0
    assert hashlib.sha256((tmp_path / "bench.yaml.bak").read_bytes()).hexdigest() == old_sha
    assert load_rig(path).speaker.points() == rig.speaker.points()


def test_a_rig_file_without_a_speaker_section_gets_one():
    text = RIG_WITH_COMMENTS.replace(
        RIG_WITH_COMMENTS[
            RIG_WITH_COMMENTS.index("speaker:") : RIG_WITH_COMMENTS.index("# the limits")
        ],
        "",
    ).rstrip("\n")
    new = with_calibration(text, [CalibrationPoint(frequency_hz=4000, volts=0.3, level_db=66)])
    assert rig_from_text(new).speaker.points() == ((4000, 0.3, 66),)


def test_cli_output_tests(cli, tmp_path):
    ok = cli(
        "output-test",
        "tone",
        "--rig",
        SMALL_RIG,
        "--frequency-hz",
        7500,
        "--level-db",
        70,
        "--fast",
    )
    assert ok.exit_code == 0 and "7500 Hz tone played" in ok.stdout
    refused = cli("output-test", "shock", "--rig", SMALL_RIG, "--current-ma", 0.5, "--fast")
    assert refused.exit_code == 2 and "--into-load" in refused.stderr
    over = cli(
        "output-test", "shock", "--rig", SMALL_RIG, "--current-ma", 3, "--into-load", "--fast"
    )
    assert over.exit_code == 2
    assert over.stderr.startswith("shock test: --current-ma: 3 mA is above this rig's limit")
    rig = load_rig(SMALL_RIG)
    with holding_rig(rig):
        busy = cli(
            "output-test", "shock", "--rig", SMALL_RIG, "--current-ma", 0.5, "--into-load", "--fast"
        )
    assert busy.exit_code == 1
    assert busy.stderr.strip() == (
        f"error: rig {rig.name} is in use: a session or an output test is running on it"
    )


def test_cli_calibrate_speaker_asks_each_level_and_writes_the_table(tmp_path):
    from click.testing import CliRunner

    from rig.cli import main

    path = tmp_path / "bench.yaml"
    path.write_text(RIG_WITH_COMMENTS, encoding="utf-8")
    result = CliRunner().invoke(
        main,
        [
            "calibrate-speaker",
            "--rig",
            str(path),
            "--frequency-hz",
            "2000",
            "--frequency-hz",
            "5000",
            "--volts",
            "0.25",
            "--fast",
        ],
        input="r\n71.5\nnot a number\n66\n",
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("playing 2000 Hz") == 2  # "r" played it again
    assert "not a number: 'not a number'" in result.stderr
    assert load_rig(path).speaker.points() == (
        (2000, 0.25, 71.5),
        (5000, 0.25, 66),
        (7500, 0.8, 75),
    )


def test_a_flow_style_speaker_section_is_rewritten_whole(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_RIG.read_text(encoding="utf-8"), encoding="utf-8")
    rig = write_speaker_calibration(
        path, [CalibrationPoint(frequency_hz=2000, volts=0.3, level_db=71)]
    )
    assert rig.speaker.points()[:2] == ((0, 0.4, 70), (2000, 0.3, 71))
    text = path.read_text(encoding="utf-8")
    assert text.count("frequency_hz: 12000") == 1 and "# the cable" in text
