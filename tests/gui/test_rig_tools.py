"""The Rig menu's dialogs on the small simulated rig: shock and tone tests, speaker calibration."""

from __future__ import annotations

import pytest

from gui.rig_tools import OutputTestDialog, SpeakerCalibrationDialog
from rig.files.inputfile import InputError
from rig.files.rigfile import load_rig
from rig.run.output_test import OutputTestResult
from rig.run.rig_lock import RigBusy, holding_rig
from tests.conftest import SMALL_RIG


@pytest.fixture
def rig():
    return load_rig(SMALL_RIG)


def test_a_shock_test_needs_the_load_box_and_delivers_the_shocks(styled_app, qtbot, rig):
    dialog = OutputTestDialog("shock", rig)
    qtbot.addWidget(dialog)
    dialog.speed = None
    assert not dialog.run_button.isEnabled()  # not before "into a load" is ticked
    dialog.load_check.setChecked(True)
    dialog.current.setValue(0.3)
    dialog.count.setValue(2)
    with qtbot.waitSignal(dialog.finished_test, timeout=60_000) as done:
        dialog.run_test()
    result = done.args[0]
    assert isinstance(result, OutputTestResult) and result.ok, result
    assert "2 shock(s) at 0.3 mA" in dialog.result_label.text()


def test_a_shock_over_the_rig_limit_is_refused_before_anything_runs(styled_app, qtbot, rig):
    dialog = OutputTestDialog("shock", rig)
    qtbot.addWidget(dialog)
    dialog.load_check.setChecked(True)
    dialog.current.setValue(rig.safety.max_current_ma + 1)
    dialog.run_test()
    assert isinstance(dialog.outcome, InputError)
    assert "max_current_ma" in dialog.result_label.text()
    assert dialog.abort_request is None  # nothing started


def test_a_tone_test_is_refused_while_the_rig_is_in_use(styled_app, qtbot, rig):
    dialog = OutputTestDialog("tone", rig)
    qtbot.addWidget(dialog)
    dialog.speed = None
    with holding_rig(rig), qtbot.waitSignal(dialog.finished_test, timeout=60_000) as done:
        dialog.run_test()
    assert isinstance(done.args[0], RigBusy)
    assert "is in use" in dialog.result_label.text()


def test_the_calibration_assistant_plays_and_writes_the_table(styled_app, qtbot, tmp_path):
    path = tmp_path / "rig.yaml"
    path.write_text(SMALL_RIG.read_text(encoding="utf-8"), encoding="utf-8")
    dialog = SpeakerCalibrationDialog(load_rig(path))
    qtbot.addWidget(dialog)
    dialog.speed = None
    freqs = [f for f, _ in dialog.rows()]
    assert freqs == [2000, 7500, 12000]  # the rig file's tones
    with qtbot.waitSignal(dialog.played, timeout=60_000) as done:
        dialog.play(7500)
    assert done.args[0].ok
    dialog.volts.setValue(0.2)
    dialog.set_measured(1, 68.5)
    assert dialog.write()
    points = load_rig(path).speaker.points()
    assert (7500, 0.2, 68.5) in points and (2000, 0.5, 75) in points
    assert (tmp_path / "rig.yaml.bak").exists()


def test_the_built_in_rig_cannot_be_written(styled_app, qtbot):
    dialog = SpeakerCalibrationDialog(load_rig(None))
    qtbot.addWidget(dialog)
    assert not dialog.write_button.isEnabled()
