"""The main window: rig banner, file actions with an unsaved-changes guard, Designer and Console.

The banner says SIMULATED or LIVE at all times; the rig it names is the one the designer checks
the protocol against and the console runs on.
"""

from __future__ import annotations

import sys
from html import escape
from pathlib import Path

from PyQt5.QtCore import QSettings, Qt
from PyQt5.QtGui import QCloseEvent, QKeySequence, QShowEvent
from PyQt5.QtWidgets import (
    QAction,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui.console import ABORT_KEY, START_KEY, ConsoleWidget
from gui.designer import DesignerWidget
from gui.document import Check, ProtocolDocument
from gui.review import ReviewWidget
from gui.rig_tools import OutputTestDialog, SpeakerCalibrationDialog
from gui.settings import (
    RecentFiles,
    default_size,
    gui_settings,
    restore_window,
    save_window,
)
from rig.files.inputfile import InputError
from rig.files.protocol import load_protocol
from rig.files.rigfile import DEFAULT_RIG_NAME, RigFile, load_rig
from rig.run.session import SessionPlan, plan_from_loaded

YAML_FILTER = "Protocol files (*.yaml *.yml);;All files (*)"


def protocol_library() -> list[Path]:
    """The protocol library: ``protocols/*.yaml`` of the source tree or the installed copy."""
    candidates = [
        Path(__file__).resolve().parent.parent / "protocols",
        Path(sys.prefix) / "share" / "fear-rig" / "protocols",
    ]
    for folder in candidates:
        files = sorted(folder.glob("*.yaml"))
        if files:
            return files
    return []


BLANK = {
    "protocol": "new-protocol",
    "version": 1,
    "description": "",
    "seed": 1,
    "stimuli": {
        "cs_plus": {
            "type": "tone",
            "frequency_hz": 7500,
            "level_db": 75,
            "duration_s": 30,
            "ramp_ms": 5,
        },
        "shock": {"type": "shock", "current_ma": 0.5, "duration_s": 1.0},
    },
    "phases": [
        {"name": "baseline", "duration_s": 180},
        {
            "name": "conditioning",
            "trials": [{"cs": "cs_plus", "us": "shock", "repeat": 5}],
            "iti_s": {"uniform": [60, 120]},
            "post_s": 60,
        },
    ],
    "recording": {"video": {"fps": 30}},
}


class MainWindow(QMainWindow):
    """Designer and run console under one rig banner."""

    def __init__(
        self,
        document: ProtocolDocument | None,
        rig: RigFile,
        settings: QSettings | None = None,
    ):
        super().__init__()
        self.rig = rig
        self.settings = settings if settings is not None else gui_settings()
        self.recent_protocols = RecentFiles(self.settings, "recent/protocols")
        self.recent_sessions = RecentFiles(self.settings, "recent/sessions")
        self.document = document or ProtocolDocument.from_template_data(BLANK)
        if self.document.path is not None:
            self.recent_protocols.add(self.document.path)
        self.designer = DesignerWidget(self.document, rig)
        self.console = ConsoleWidget(rig)
        self.console.prepare_run = self.plan_for_run
        self.review = ReviewWidget()
        self._close_after_run = False
        self._placed = False

        self.banner = QLabel()
        self.banner.setObjectName("rigBanner")
        self.rig_label = QLabel()
        self.rig_label.setObjectName("rigName")
        rig_button = QPushButton("Rig file…")
        rig_button.clicked.connect(self.choose_rig)
        self.rig_button = rig_button
        top = QHBoxLayout()
        top.setContentsMargins(10, 6, 10, 0)
        top.addWidget(self.banner)
        top.addWidget(self.rig_label, 1)
        top.addWidget(rig_button)

        self.tabs = QTabWidget()
        self.tabs.addTab(self.designer, "Protocol designer")
        self.tabs.addTab(self.console, "Run console")
        self.tabs.addTab(self.review, "Review")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self._make_actions()

        self.designer.checked.connect(self._checked)
        self.designer.changed.connect(self._update_title)
        self.console.running_changed.connect(self._running_changed)
        self.console.session_finished.connect(self._session_finished)
        self._show_rig()
        self._checked(self.designer.check)
        self.resize(default_size(self))
        self._placed = restore_window(self.settings, self)

    def showEvent(self, event: QShowEvent) -> None:
        if not self._placed:  # first run: fit the screen it opens on
            self._placed = True
            self.resize(default_size(self))
        super().showEvent(event)

    # ------------------------------------------------------------------ actions
    def _make_actions(self) -> None:
        bar = QToolBar("File")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonTextOnly)
        self.addToolBar(bar)
        menu = self.menuBar().addMenu("&File")
        self.new_menu = QMenu("New from library", self)
        blank = self.new_menu.addAction("Blank protocol")
        blank.triggered.connect(lambda: self.new_document(None))
        self.new_menu.addSeparator()
        for path in protocol_library():
            action = self.new_menu.addAction(path.stem)
            action.triggered.connect(lambda _=False, p=path: self.new_document(p))
        new_button = QToolButton()
        new_button.setText("New")
        new_button.setMenu(self.new_menu)
        new_button.setPopupMode(QToolButton.InstantPopup)
        bar.addWidget(new_button)
        menu.addMenu(self.new_menu)
        self.open_action = QAction(
            "Open…", self, shortcut=QKeySequence.Open, triggered=self.open_file
        )
        self.save_action = QAction("Save", self, shortcut=QKeySequence.Save, triggered=self.save)
        self.save_as_action = QAction(
            "Save As…", self, shortcut=QKeySequence.SaveAs, triggered=self.save_as
        )
        self.run_action = QAction("Run ▶", self, triggered=self.go_run)
        self.run_action.setToolTip("Open the run console for this protocol")
        quit_action = QAction("Quit", self, shortcut=QKeySequence.Quit, triggered=self.close)
        self.recent_menu = QMenu("Open recent", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.review_action = QAction(
            "Review a session…", self, shortcut="Ctrl+Shift+O", triggered=self.open_session
        )
        for action in (self.open_action, self.save_action, self.save_as_action):
            menu.addAction(action)
            bar.addAction(action)
        menu.insertMenu(self.save_action, self.recent_menu)
        menu.addSeparator()
        menu.addAction(self.review_action)
        menu.addSeparator()
        menu.addAction(quit_action)
        bar.addSeparator()
        bar.addAction(self.run_action)
        bar.addAction(self.review_action)

        session = self.menuBar().addMenu("&Session")
        # window-wide: Start and Abort work from any tab, with focus in any field
        self.start_action = QAction(
            "Start session", self, shortcut=START_KEY, triggered=self.start_session
        )
        self.abort_action = QAction(
            "Abort session", self, shortcut=ABORT_KEY, triggered=self.abort_session
        )
        for action in (self.start_action, self.abort_action):
            action.setShortcutContext(Qt.ApplicationShortcut)
            session.addAction(action)
            self.addAction(action)
        self.abort_action.setEnabled(False)

        tools = self.menuBar().addMenu("&Rig")
        self.calibrate_action = QAction(
            "Speaker calibration…", self, triggered=self.calibrate_speaker
        )
        self.tone_test_action = QAction(
            "Tone test…", self, triggered=lambda: self.output_test("tone")
        )
        self.shock_test_action = QAction(
            "Shock test into a load…", self, triggered=lambda: self.output_test("shock")
        )
        self.rig_tools = (self.calibrate_action, self.tone_test_action, self.shock_test_action)
        for action in self.rig_tools:
            tools.addAction(action)

    def _checked(self, check: Check) -> None:
        ok = check.ok and not self.console.running
        self.save_action.setEnabled(ok)
        self.save_as_action.setEnabled(ok)
        self.run_action.setEnabled(ok)
        self.console.set_check(check)
        self._update_title()

    def _update_title(self) -> None:
        star = "*" if self.document.dirty else ""
        self.setWindowTitle(
            f"fear-rig · {self.document.title}{star} · {self.rig.name} [{self.rig.mode}]"
        )

    def _show_rig(self) -> None:
        self.banner.setText(self.rig.mode)
        self.banner.setProperty("mode", self.rig.mode)
        self.banner.style().unpolish(self.banner)
        self.banner.style().polish(self.banner)
        self.rig_label.setText(rig_description(self.rig))
        self._update_title()

    # ------------------------------------------------------------------ documents
    def confirm_discard(self) -> bool:
        """Ask before losing unsaved changes; ``True`` when it is fine to go on."""
        if not self.document.dirty:
            return True
        buttons = QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel
        answer = QMessageBox.question(
            self,
            "Unsaved changes",
            f"{self.document.title} has unsaved changes. Save them?",
            buttons,
            QMessageBox.Save,
        )
        if answer == QMessageBox.Save:
            return self.save()
        return answer == QMessageBox.Discard

    def set_document(self, document: ProtocolDocument) -> None:
        self.document = document
        self.designer.set_document(document)
        self._update_title()

    def new_document(self, template: Path | None) -> None:
        if not self.confirm_discard():
            return
        doc = (
            ProtocolDocument.from_template(template)
            if template
            else ProtocolDocument.from_template_data(BLANK)
        )
        self.set_document(doc)

    def open_file(self, path: str | Path | None = None) -> None:
        if not self.confirm_discard():
            return
        if not path:
            path, _ = QFileDialog.getOpenFileName(self, "Open protocol", "", YAML_FILTER)
            if not path:
                return
        try:
            doc = ProtocolDocument.from_file(path)
        except InputError as exc:
            QMessageBox.warning(self, "Cannot open", exc.report())
            return
        except OSError as exc:
            QMessageBox.warning(self, "Cannot open", str(exc))
            return
        self.recent_protocols.add(path)
        self.set_document(doc)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.recent_protocols.paths():
            action = self.recent_menu.addAction(path.name)
            action.setToolTip(str(path))
            action.triggered.connect(lambda _=False, p=path: self.open_file(p))
        sessions = self.recent_sessions.paths()
        if sessions:
            self.recent_menu.addSection("Sessions (review)")
        for path in sessions:
            action = self.recent_menu.addAction(path.name)
            action.triggered.connect(lambda _=False, p=path: self.open_session(p))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    def open_session(self, path: str | Path | None = None) -> bool:
        """Open a finished session in the Review tab."""
        if not path:
            start = (
                str(self.recent_sessions.paths()[0].parent) if self.recent_sessions.paths() else ""
            )
            path = QFileDialog.getExistingDirectory(self, "Review a session", start)
            if not path:
                return False
        try:
            self.review.open_session(path)
        except InputError as exc:
            QMessageBox.warning(self, "Cannot review", exc.report())
            return False
        self.recent_sessions.add(path)
        self.tabs.setCurrentWidget(self.review)
        return True

    def save(self) -> bool:
        if not self.designer.check.ok:
            return False
        if self.document.path is None:
            return self.save_as()
        self.document.save()
        self._update_title()
        return True

    def save_as(self, path: str | Path | None = None) -> bool:
        if not self.designer.check.ok:
            return False
        if not path:
            path, _ = QFileDialog.getSaveFileName(
                self, "Save protocol as", self.document.title, YAML_FILTER
            )
            if not path:
                return False
        self.document.save(path)
        self.recent_protocols.add(self.document.path)
        self._update_title()
        return True

    # ------------------------------------------------------------------ the file that runs
    def plan_for_run(self) -> SessionPlan | None:
        """The plan a session runs: compiled from the protocol file's exact bytes, which the
        session stores with their sha256 (an edited or new protocol is saved first). None when
        the user does not save, or the file on disk is not what the designer shows."""
        if self.document.path is None or self.document.dirty:
            answer = QMessageBox.question(
                self,
                "Save before running",
                f"A session records its protocol file exactly as saved.\n\n"
                f"Save {self.document.title} and start?",
                QMessageBox.Save | QMessageBox.Cancel,
                QMessageBox.Save,
            )
            if answer != QMessageBox.Save or not self.save():
                return None
        try:
            plan = plan_from_loaded(load_protocol(self.document.path), self.rig)
        except InputError as exc:
            QMessageBox.warning(self, "Cannot run", exc.report())
            return None
        shown = self.designer.check.plan
        if shown is None or plan.protocol != shown.protocol:
            QMessageBox.warning(
                self,
                "The file changed",
                f"{self.document.path} no longer holds the protocol shown in the designer "
                "(changed on disk?). Open it again, or save over it, before running.",
            )
            return None
        return plan

    def start_session(self) -> None:
        if self.console.running or not self.console.start_button.isEnabled():
            return
        self.tabs.setCurrentWidget(self.console)
        self.console.start()

    def abort_session(self) -> None:
        self.console.abort("aborted by the user")

    # ------------------------------------------------------------------ rig and run
    def choose_rig(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Rig file", "", YAML_FILTER)
        if path:
            self.set_rig_file(path)

    def set_rig_file(self, path: str | Path) -> bool:
        try:
            rig = load_rig(path)
        except InputError as exc:
            QMessageBox.warning(self, "Invalid rig file", exc.report())
            return False
        self.rig = rig
        self.designer.set_rig(rig)
        self.console.set_rig(rig)
        self._show_rig()
        return True

    def go_run(self) -> None:
        self.tabs.setCurrentWidget(self.console)

    def _running_changed(self, running: bool) -> None:
        self.designer.setEnabled(not running)
        self.rig_button.setEnabled(not running)
        self.new_menu.setEnabled(not running)
        self.open_action.setEnabled(not running)
        self.recent_menu.setEnabled(not running)
        self.start_action.setEnabled(not running)
        self.abort_action.setEnabled(running)
        for action in self.rig_tools:  # no manual output while a session owns the rig
            action.setEnabled(not running)
        self._checked(self.designer.check)

    def _session_finished(self, folder, result) -> None:
        if folder is not None and result is not None:
            self.recent_sessions.add(folder)
        if self._close_after_run:
            self.close()

    # ------------------------------------------------------------------ rig set-up
    def calibrate_speaker(self) -> None:
        if self.console.running:
            return
        dialog = SpeakerCalibrationDialog(self.rig, self)
        if dialog.exec_() and dialog.written is not None:
            self.set_rig_file(dialog.written)

    def output_test(self, kind: str) -> None:
        if self.console.running:
            return
        OutputTestDialog(kind, self.rig, self).exec_()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.console.running:
            answer = QMessageBox.question(
                self,
                "A session is running",
                "A session is running. Abort it and close?\n\n"
                "The outputs go low and the shock generator is disarmed; the data so far is kept.",
                QMessageBox.Abort | QMessageBox.Cancel,
                QMessageBox.Cancel,
            )
            if answer == QMessageBox.Abort:
                self._close_after_run = True
                self.console.abort("aborted: the window was closed")
            event.ignore()
            return
        if not self.confirm_discard():
            event.ignore()
            return
        save_window(self.settings, self)
        self.console.shutdown()
        self.review.shutdown()
        event.accept()


def rig_description(rig: RigFile) -> str:
    """The banner's text: the rig's name and the file it came from (rich text, escaped)."""
    name = escape(rig.name)
    if rig.file == DEFAULT_RIG_NAME or not rig.file:
        return f"rig <b>{name}</b> (built in, no rig file)"
    return f"rig <b>{name}</b> · {escape(rig.file)}"
