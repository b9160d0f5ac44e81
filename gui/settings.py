"""What the GUI remembers between runs: window size, splitter positions, recent files.

Kept in :class:`QSettings` (``~/.config/fear-rig/rig-gui.conf`` on Linux). Nothing a session
depends on is read from here: the protocol, the rig file and the animal are always chosen
again, so a stale setting can never change what is run.
"""

from __future__ import annotations

from pathlib import Path

from PyQt5.QtCore import QByteArray, QSettings, QSize
from PyQt5.QtWidgets import QApplication, QMainWindow, QSplitter, QWidget

ORGANISATION, APPLICATION = "fear-rig", "rig-gui"
RECENT_MAX = 8
DEFAULT_SIZE = QSize(1600, 1000)


def gui_settings() -> QSettings:
    """The GUI's settings store (tests move it with ``QSettings.setPath``)."""
    return QSettings(QSettings.IniFormat, QSettings.UserScope, ORGANISATION, APPLICATION)


def default_size(widget: QWidget) -> QSize:
    """1600x1000, or the screen's free area when it is smaller (a 1366x768 laptop)."""
    screen = widget.screen() if hasattr(widget, "screen") else None
    screen = screen or QApplication.primaryScreen()
    if screen is None:
        return DEFAULT_SIZE
    free = screen.availableGeometry()
    return QSize(min(DEFAULT_SIZE.width(), free.width()), min(DEFAULT_SIZE.height(), free.height()))


class RecentFiles:
    """A most-recent-first list of existing files under one settings key."""

    def __init__(self, settings: QSettings, key: str):
        self.settings, self.key = settings, key

    def paths(self) -> list[Path]:
        raw = self.settings.value(self.key, [], type=list) or []
        return [Path(p) for p in raw if p and Path(p).exists()][:RECENT_MAX]

    def add(self, path: str | Path) -> None:
        text = str(Path(path).resolve())
        rest = [str(p) for p in self.paths() if str(p) != text]
        self.settings.setValue(self.key, [text, *rest][:RECENT_MAX])
        self.settings.sync()


def save_window(settings: QSettings, window: QMainWindow) -> None:
    """The window's geometry and every named splitter's state."""
    settings.setValue("window/geometry", window.saveGeometry())
    for splitter in window.findChildren(QSplitter):
        if splitter.objectName():
            settings.setValue(f"splitters/{splitter.objectName()}", splitter.saveState())
    settings.sync()


def restore_window(settings: QSettings, window: QMainWindow) -> bool:
    """Put back what :func:`save_window` saved; ``False`` when nothing was saved yet."""
    for splitter in window.findChildren(QSplitter):
        state = settings.value(f"splitters/{splitter.objectName()}")
        if splitter.objectName() and isinstance(state, QByteArray):
            splitter.restoreState(state)
    geometry = settings.value("window/geometry")
    return isinstance(geometry, QByteArray) and window.restoreGeometry(geometry)
