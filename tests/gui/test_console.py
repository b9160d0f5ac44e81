"""The run console on the small simulated rig: a whole session, Abort, and closing mid-run."""

from __future__ import annotations

from PyQt5.QtWidgets import QMessageBox

from rig.data.folder import SessionFolder
from tests.conftest import PROTOCOLS

RUN_TIMEOUT_MS = 240_000


def _speed(console, speed):
    console.speed_box.setCurrentIndex(console.speed_box.findData(speed))


def _assert_rig_safe(console) -> None:
    daq = console.runner.runner.engine.devices.daq
    assert daq.stopped_at is not None
    assert daq.outputs_low_after(daq.stopped_at)
    emulator = daq.session.shocker_emulator
    assert not emulator.armed
    assert emulator.commands()[-1] == "disarm"


def test_a_simulated_session_runs_from_the_console_to_its_summary(make_window, qtbot):
    window = make_window(PROTOCOLS / "demo.yaml")
    console = window.console
    window.go_run()
    console.animal_edit.setText("m7")
    console.experimenter_edit.setText("A. Researcher")
    console.notes_edit.setPlainText("GUI test")
    _speed(console, None)

    qtbot.mouseClick(console.start_button, 1)
    assert console.running and console.abort_button.isEnabled()
    assert not window.designer.isEnabled()  # the plan cannot change under a running session
    qtbot.waitUntil(lambda: console.ended, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: console.last_record is not None, timeout=60_000)

    assert console.result.status == "complete"
    assert console.state_label.text() == "complete"
    assert str(console.folder) in console.result_label.text()
    attrs = SessionFolder.open(console.folder).attrs
    assert (attrs.animal, attrs.experimenter, attrs.notes) == (
        "m7",
        ["A. Researcher"],
        "GUI test",
    )
    # the live views were fed: video, trace, progress, log, stream counts
    assert console.video.size_px == (160, 120)
    assert console.imaging.size_px == (64, 64)  # the two-photon stream, uint16
    lo, hi = console.imaging.image.levels
    assert 0 < lo < hi < 65535
    assert len(console._trace_t) > 1000
    assert console.trial_label.text() == "4 / 4"
    log = console.log.toPlainText()
    assert "SHOCK on" in log and "session ended" in log
    assert console.stream_table.rowCount() == 2
    checks = [console.preflight_list.item(i).text() for i in range(console.preflight_list.count())]
    assert any(c.startswith("✔  shocker identity") for c in checks), checks
    assert not any(c.startswith("✘") for c in checks), checks
    # the per-trial freezing plot shows the stored score, one bar per trial
    bars = [i for i in console.trial_plot.getPlotItem().items if type(i).__name__ == "BarGraphItem"]
    assert len(bars) == 1 and len(bars[0].opts["x"]) == 4
    assert SessionFolder.open(console.folder).freezing_record() is not None
    assert window.designer.isEnabled() and console.start_button.isEnabled()


def test_abort_mid_run_ends_it_aborted_with_the_outputs_low(make_window, qtbot, short_protocol):
    window = make_window(short_protocol)
    console = window.console
    _speed(console, 10.0)
    console.start()
    qtbot.waitUntil(
        lambda: console.last_progress is not None and console.last_progress.t_s >= 12,
        timeout=RUN_TIMEOUT_MS,
    )
    qtbot.mouseClick(console.abort_button, 1)
    assert console.state_label.text() == "aborting…"
    qtbot.waitUntil(lambda: console.ended, timeout=RUN_TIMEOUT_MS)

    assert console.result.status == "aborted"
    assert console.result.reason == "aborted by the user"
    assert console.result.duration_s < 30  # well before the 44-s end
    _assert_rig_safe(console)
    assert SessionFolder.open(console.folder).attrs.status == "aborted"


def test_closing_the_window_during_a_run_asks_then_aborts(
    make_window, qtbot, short_protocol, monkeypatch
):
    window = make_window(short_protocol)
    console = window.console
    _speed(console, 10.0)
    asked: list[str] = []
    answers = iter([QMessageBox.Cancel, QMessageBox.Abort])

    def question(parent, title, text, *args, **kwargs):
        asked.append(title)
        return next(answers)

    monkeypatch.setattr(QMessageBox, "question", question)
    console.start()
    qtbot.waitUntil(
        lambda: console.last_progress is not None and console.last_progress.t_s >= 5,
        timeout=RUN_TIMEOUT_MS,
    )
    window.close()  # answered Cancel: the session goes on
    assert asked == ["A session is running"] and console.running and window.isVisible()
    window.close()  # answered Abort
    qtbot.waitUntil(lambda: console.ended, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)

    assert asked == ["A session is running"] * 2
    assert console.result.status == "aborted"
    assert console.result.reason == "aborted: the window was closed"
    _assert_rig_safe(console)
