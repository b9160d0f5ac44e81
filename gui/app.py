"""Start the Qt application for ``rig gui``."""

from __future__ import annotations

from pathlib import Path

from PyQt5.QtWidgets import QApplication

from gui.document import ProtocolDocument
from gui.main_window import MainWindow
from gui.style import apply_style
from rig.files.protocol import LoadedProtocol
from rig.files.rigfile import RigFile


def make_window(loaded: LoadedProtocol | None, rig: RigFile) -> MainWindow:
    """The main window for a protocol file (or a blank protocol) and a rig."""
    doc = ProtocolDocument.from_file(Path(loaded.file)) if loaded is not None else None
    return MainWindow(doc, rig)


def run_app(loaded: LoadedProtocol | None, rig: RigFile) -> int:
    """Show the main window and run the event loop; returns the exit code."""
    app = QApplication.instance() or QApplication(["rig gui"])
    apply_style(app)
    window = make_window(loaded, rig)
    window.show()
    return app.exec_()
