"""The main window's everyday use (issue 20): what a run records, what is kept between
animals and between launches, shortcuts, and the layout at the default size and at 1366x768."""

from __future__ import annotations

import hashlib

import pytest
from PyQt5.QtCore import Qt
from PyQt5.QtTest import QTest
from PyQt5.QtWidgets import QApplication, QMessageBox, QSplitter

from gui.main_window import MainWindow, rig_description
from rig.data.folder import SessionFolder
from rig.files.rigfile import load_rig
from tests.conftest import PROTOCOLS, SMALL_RIG

RUN_TIMEOUT_MS = 240_000
# a hand-written file: comments, odd spacing and key order the designer would not write
HAND_WRITTEN = """\
# gui-exact: the text a run must record byte for byte
protocol:   gui-exact
version: 1
seed: 3
stimuli:
  cs_plus: {type: tone, frequency_hz: 7500, level_db: 75, duration_s: 4}   # CS+
  shock:   {duration_s: 0.5, type: shock, current_ma: 0.5}
phases:
  - name: baseline
    duration_s: 4
  - name: conditioning
    trials: [{cs: cs_plus, us: shock, repeat: 2}]
    iti_s: 3
    post_s: 1
"""


def _fast(console) -> None:
    console.speed_box.setCurrentIndex(console.speed_box.findData(None))


def _run(qtbot, console) -> SessionFolder:
    with qtbot.waitSignal(console.session_finished, timeout=RUN_TIMEOUT_MS):
        console.start()
    return SessionFolder.open(console.folder)


@pytest.fixture
def hand_written(tmp_path):
    path = tmp_path / "gui-exact.yaml"
    path.write_bytes(HAND_WRITTEN.encode("utf-8"))
    return path


def test_a_gui_run_records_the_protocol_file_byte_for_byte(make_window, qtbot, hand_written):
    window = make_window(hand_written)
    _fast(window.console)
    attrs = _run(qtbot, window.console).attrs
    assert attrs.protocol_text.encode("utf-8") == hand_written.read_bytes()
    assert attrs.protocol_sha256 == hashlib.sha256(hand_written.read_bytes()).hexdigest()
    assert attrs.protocol_file == str(hand_written)


def test_a_file_opens_unchanged_even_without_a_recording_section(make_window, hand_written):
    window = make_window(hand_written)
    assert "recording" not in window.document.data and not window.document.dirty
    assert window.save_action.isEnabled()


def test_an_edited_protocol_is_saved_before_it_runs(make_window, qtbot, hand_written, monkeypatch):
    window = make_window(hand_written)
    asked = []

    def question(parent, title, *args, **kwargs):
        asked.append(title)
        return answers.pop(0)

    monkeypatch.setattr(QMessageBox, "question", question)
    window.document.data["seed"] = 4
    window.designer._edited()
    assert window.document.dirty
    _fast(window.console)
    answers = [QMessageBox.Cancel]
    window.console.start()  # not saved: nothing runs
    assert asked == ["Save before running"] and not window.console.running
    answers = [QMessageBox.Save]
    attrs = _run(qtbot, window.console).attrs
    saved = hand_written.read_bytes()
    assert "seed: 4" in saved.decode() and not window.document.dirty
    assert attrs.protocol_text.encode("utf-8") == saved
    assert attrs.protocol_sha256 == hashlib.sha256(saved).hexdigest()


def test_a_file_changed_on_disk_is_not_run_as_the_designer_shows_it(
    make_window, hand_written, monkeypatch
):
    window = make_window(hand_written)
    warned = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: warned.append(title))
    hand_written.write_text(HAND_WRITTEN.replace("seed: 3", "seed: 9"), encoding="utf-8")
    assert window.plan_for_run() is None
    assert warned == ["The file changed"]


def test_subject_and_notes_are_stored_and_not_carried_to_the_next_animal(
    make_window, qtbot, hand_written
):
    window = make_window(hand_written)
    c = window.console
    _fast(c)
    c.animal_edit.setText("m042")
    c.sex_box.setCurrentIndex(c.sex_box.findData("F"))
    c.age_edit.setText("P90D")
    c.weight_box.setValue(23.5)
    c.strain_edit.setText("C57BL/6J")
    c.genotype_edit.setText("wild type")
    c.experimenter_edit.setText("J. Doe")
    c.institution_edit.setText("RIKEN CBS")
    c.notes_edit.setPlainText("left ear notch")
    c.lab_edit.setText("Fear Lab")
    attrs = _run(qtbot, c).attrs
    assert (attrs.animal, attrs.experimenter, attrs.notes) == ("m042", ["J. Doe"], "left ear notch")
    assert (attrs.institution, attrs.lab) == ("RIKEN CBS", "Fear Lab")
    assert attrs.subject == {
        "subject_id": "m042",
        "species": "Mus musculus",
        "sex": "F",
        "date_of_birth": None,
        "age": "P90D",
        "genotype": "wild type",
        "strain": "C57BL/6J",
        "weight_g": 23.5,
        "description": None,
    }
    for edit in (c.animal_edit, c.experimenter_edit, c.institution_edit, c.lab_edit, c.age_edit):
        assert edit.text() == ""
    assert c.notes_edit.toPlainText() == "" and c.weight_box.value() == 0
    assert c.sex_box.currentData() == "U"


def test_a_date_of_birth_is_stored_as_one(make_window):
    c = make_window(PROTOCOLS / "demo.yaml").console
    c.age_edit.setText("2026-08-01")
    subject, _ = c.subject_and_metadata("m1")
    assert subject.subject.date_of_birth.isoformat() == "2026-08-01"
    assert subject.subject.age is None


def test_a_bad_subject_field_is_shown_and_nothing_starts(make_window):
    c = make_window(PROTOCOLS / "demo.yaml").console
    c.animal_edit.setText("m1")
    c.age_edit.setText("90 days")
    c.start()
    assert not c.running and c.runner is None
    rows = [c.preflight_list.item(i).text() for i in range(c.preflight_list.count())]
    assert any("age" in r and "ISO 8601 duration" in r for r in rows), rows


def test_a_subject_file_fills_the_form(make_window, tmp_path):
    c = make_window(PROTOCOLS / "demo.yaml").console
    path = tmp_path / "m0123.yaml"
    path.write_text(
        "subject_id: M0123\nstrain: C57BL/6J\nsex: M\ndate_of_birth: 2026-06-01\n"
        "weight_g: 24.5\ndescription: microprism, dmPFC\n"
        "session: {experimenter: ['Doe, Jane'], institution: Example University}\n",
        encoding="utf-8",
    )
    c.load_subject_file(path)
    assert (c.animal_edit.text(), c.sex_box.currentData(), c.age_edit.text()) == (
        "M0123",
        "M",
        "2026-06-01",
    )
    assert c.experimenter_edit.text() == "Doe, Jane"
    subject, metadata = c.subject_and_metadata("M0123")
    assert subject.subject.description == "microprism, dmPFC" and subject.subject.weight_g == 24.5
    assert metadata.institution == "Example University"


def test_after_abort_the_countdowns_stop(make_window, qtbot, short_protocol):
    window = make_window(short_protocol)
    c = window.console
    c.speed_box.setCurrentIndex(c.speed_box.findData(10.0))
    c.start()
    qtbot.waitUntil(
        lambda: c.last_progress is not None and c.last_progress.t_s >= 3, timeout=RUN_TIMEOUT_MS
    )
    assert c.next_cs_label.text() not in ("—", "-")
    with qtbot.waitSignal(c.session_finished, timeout=RUN_TIMEOUT_MS):
        c.abort("test")
    assert c.next_cs_label.text() == "—" and c.next_shock_label.text() == "—"


def test_an_edit_after_a_run_clears_the_old_trace(make_window, qtbot, hand_written):
    window = make_window(hand_written)
    c = window.console
    _fast(c)
    folder = _run(qtbot, c).path
    assert len(c.motion_curve.getData()[0]) > 10
    window.document.data["phases"][0]["duration_s"] = 8  # the bands move
    window.designer._edited()
    assert c.motion_curve.getData()[0] is None or len(c.motion_curve.getData()[0]) == 0
    assert c.trial_plot.getPlotItem().listDataItems() == []
    assert str(folder) in c.result_label.text() and c.state_label.text() == "idle"


def test_start_and_abort_have_keyboard_shortcuts(make_window, qtbot, short_protocol):
    window = make_window(short_protocol)
    c = window.console
    c.speed_box.setCurrentIndex(c.speed_box.findData(10.0))
    window.tabs.setCurrentWidget(window.designer)
    QApplication.setActiveWindow(window)  # offscreen there is no window manager to do it
    focus = window.designer.scroll  # a key pressed anywhere in the window
    QTest.keyClick(focus, Qt.Key_F5)
    assert c.running and window.tabs.currentWidget() is c
    with qtbot.waitSignal(c.session_finished, timeout=RUN_TIMEOUT_MS):
        QTest.keyClick(focus, Qt.Key_F5, Qt.ShiftModifier)
    assert c.result.status == "aborted"
    assert "F5" in c.start_button.text() and "Shift+F5" in c.abort_button.text()


def test_the_window_remembers_its_size_splitters_and_recent_files(make_window, qtbot):
    window = make_window(PROTOCOLS / "demo.yaml")
    window.resize(1300, 760)
    splitter = window.console.findChild(QSplitter, "consoleBody")
    splitter.setSizes([300, 600, 380])
    wanted = splitter.sizes()
    window.open_file(PROTOCOLS / "conditioning.yaml")
    window.confirm_discard = lambda: True
    window.close()

    again = MainWindow(None, load_rig(SMALL_RIG))
    again.show()
    qtbot.waitExposed(again)
    assert (again.width(), again.height()) == (1300, 760)
    assert again.console.findChild(QSplitter, "consoleBody").sizes() == wanted
    again._fill_recent()
    names = [a.text() for a in again.recent_menu.actions()]
    assert names[:2] == ["conditioning.yaml", "demo.yaml"]
    again.confirm_discard = lambda: True
    again.close()


@pytest.mark.parametrize("size", [(1600, 1000), (1366, 768)])
def test_the_designer_fits_without_a_sideways_scrollbar(make_window, qtbot, size):
    window = make_window(PROTOCOLS / "conditioning.yaml")
    window.resize(*size)
    qtbot.waitUntil(lambda: window.width() == size[0])
    QTest.qWait(0)
    scroll = window.designer.scroll
    # everything in the form is reachable without scrolling sideways
    assert scroll.horizontalScrollBar().maximum() == 0
    assert scroll.viewport().width() >= window.designer.form_host.minimumSizeHint().width()


def test_the_banner_names_the_built_in_rig_without_a_dangling_dot(make_window):
    assert rig_description(load_rig(None)) == "rig <b>simulated</b> (built in, no rig file)"
    assert rig_description(load_rig(SMALL_RIG)).endswith(f" · {SMALL_RIG}")


def test_a_bad_protocol_name_is_explained_in_words(make_window):
    window = make_window(PROTOCOLS / "demo.yaml")
    window.document.data["protocol"] = "my demo!"
    check = window.designer.run_check()
    message = next(p.message for p in check.problems if p.path == "protocol")
    assert message == "use only letters, digits, '-', '_' and '.' (no spaces) (got 'my demo!')"
    assert "^" not in message and "[" not in message


def test_the_placeholders_wrap_instead_of_being_cut(make_window):
    window = make_window(PROTOCOLS / "demo.yaml")
    label = window.console.imaging.placeholder
    assert label.wordWrap() and label.text() == "no two-photon frames yet"
    label.parent().resize(120, 200)
    assert label.heightForWidth(label.width()) > label.fontMetrics().height()  # wrapped


def test_rig_tools_are_off_while_a_session_runs(make_window, qtbot, short_protocol):
    window = make_window(short_protocol)
    c = window.console
    c.speed_box.setCurrentIndex(c.speed_box.findData(10.0))
    assert all(a.isEnabled() for a in window.rig_tools)
    c.start()
    assert not any(a.isEnabled() for a in window.rig_tools)
    with qtbot.waitSignal(c.session_finished, timeout=RUN_TIMEOUT_MS):
        c.abort("test")
    assert all(a.isEnabled() for a in window.rig_tools)
