"""The main window: rig banner, file actions with an unsaved-changes guard, Designer and Console.

The banner says SIMULATED or LIVE at all times; the rig it names is the one the designer checks
the protocol against and the console runs on.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PyQt5.QtCore import Qt
from PyQt5.QtGui import QCloseEvent, QKeySequence
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

from gui.console import ConsoleWidget
from gui.designer import DesignerWidget
from gui.document import Check, ProtocolDocument
from rig.files.inputfile import InputError
from rig.files.rigfile import RigFile, load_rig

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

    def __init__(self, document: ProtocolDocument | None, rig: RigFile):
        super().__init__()
        self.rig = rig
        self.document = document or ProtocolDocument.from_template_data(BLANK)
        self.designer = DesignerWidget(self.document, rig)
        self.console = ConsoleWidget(rig)
        self._close_after_run = False

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
        self.resize(1600, 1000)

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
        for action in (self.open_action, self.save_action, self.save_as_action):
            menu.addAction(action)
            bar.addAction(action)
        menu.addSeparator()
        menu.addAction(quit_action)
        bar.addSeparator()
        bar.addAction(self.run_action)

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
        self.rig_label.setText(f"rig <b>{self.rig.name}</b> · {self.rig.file}")
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
        except (InputError, OSError) as exc:
            QMessageBox.warning(self, "Cannot open", str(exc))
            return
        self.set_document(doc)

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
        self._update_title()
        return True

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
        self._checked(self.designer.check)

    def _session_finished(self, folder, result) -> None:
        if self._close_after_run:
            self.close()

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
        self.console.shutdown()
        event.accept()
