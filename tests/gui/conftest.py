"""GUI fixtures: the styled application, the main window on the small simulated rig."""

from __future__ import annotations

from pathlib import Path

import pytest
from PyQt5.QtCore import QSettings
from PyQt5.QtWidgets import QMessageBox

from gui.document import ProtocolDocument
from gui.main_window import MainWindow
from gui.style import apply_style
from rig.files.rigfile import load_rig
from tests.conftest import PROTOCOLS, SMALL_RIG

# 44 s: a baseline, three trials (two with a 0.5 mA shock), fixed ITIs: a short, exact run.
SHORT_PROTOCOL = """
protocol: gui-short
version: 1
seed: 3
stimuli:
  cs_plus: {type: tone, frequency_hz: 7500, level_db: 75, duration_s: 6}
  cs_minus: {type: tone, frequency_hz: 2000, level_db: 75, duration_s: 6}
  shock: {type: shock, current_ma: 0.5, duration_s: 1.0}
phases:
  - name: baseline
    duration_s: 10
  - name: conditioning
    trials: [{cs: cs_plus, us: shock, repeat: 2}, {cs: cs_minus}]
    iti_s: 8
    post_s: 2
recording:
  video: {fps: 30}
  imaging: {frame_rate_hz: 30}
"""


@pytest.fixture(autouse=True)
def gui_settings_in_tmp(tmp_path):
    """The GUI's remembered sizes and recent files go to this test's folder, not ~/.config."""
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(tmp_path / "settings"))
    yield


@pytest.fixture(autouse=True)
def no_unexpected_dialogs(monkeypatch):
    """A modal question nobody answers would hang the test: fail it instead, naming the dialog.
    Tests that expect a dialog patch it again with their answers."""

    def unexpected(parent, title, text="", *args, **kwargs):
        raise AssertionError(f"unexpected dialog {title!r}: {text}")

    for name in ("question", "warning", "information", "critical"):
        monkeypatch.setattr(QMessageBox, name, unexpected)


@pytest.fixture
def styled_app(qapp):
    apply_style(qapp)
    return qapp


@pytest.fixture
def make_window(styled_app, qtbot, tmp_path):
    """A main window for a protocol file on the small simulated rig, sessions in tmp_path.

    At teardown a running session is aborted and waited for, and unsaved edits are dropped
    (the unsaved-changes question would otherwise wait for an answer forever).
    """
    windows: list[MainWindow] = []

    def make(protocol: Path = PROTOCOLS / "demo.yaml") -> MainWindow:
        window = MainWindow(ProtocolDocument.from_file(protocol), load_rig(SMALL_RIG))
        windows.append(window)
        window.console.out_edit.setText(str(tmp_path / "sessions"))
        window.resize(1600, 1000)
        window.show()
        return window

    yield make
    for window in windows:
        runner = window.console.runner
        if runner is not None and runner.running:
            runner.abort("test teardown")
            assert runner.wait(60)
        window.confirm_discard = lambda: True
        window.close()
        window.deleteLater()


@pytest.fixture
def short_protocol(tmp_path) -> Path:
    path = tmp_path / "gui-short.yaml"
    path.write_text(SHORT_PROTOCOL, encoding="utf-8")
    return path
