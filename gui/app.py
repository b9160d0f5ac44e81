"""Start the Qt application for ``rig gui``."""

from __future__ import annotations

from pathlib import Path

from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QApplication, QMessageBox

from gui.document import ProtocolDocument
from gui.main_window import MainWindow
from gui.style import apply_style
from rig.files.inputfile import InputError
from rig.files.rigfile import RigFile


def make_window(protocol: Path | None, rig: RigFile) -> tuple[MainWindow, str | None]:
    """The main window for a protocol file (or a blank protocol) and a rig, and why the file
    could not be opened in the designer (not YAML, not a mapping), if it could not.

    A protocol that parses but does not validate opens as it is: the designer marks each
    problem on its field, which is how it is fixed."""
    if protocol is None:
        return MainWindow(None, rig), None
    try:
        return MainWindow(ProtocolDocument.from_file(protocol), rig), None
    except InputError as exc:
        return MainWindow(None, rig), exc.report()


def run_app(protocol: Path | None, rig: RigFile) -> int:
    """Show the main window and run the event loop; returns the exit code."""
    app = QApplication.instance() or QApplication(["rig gui"])
    apply_style(app)
    window, problem = make_window(protocol, rig)
    window.show()
    if problem is not None:
        QTimer.singleShot(
            0,
            lambda: QMessageBox.warning(
                window,
                "Cannot open the protocol",
                f"{problem}\n\nA blank protocol is open instead.",
            ),
        )
    return app.exec_()
