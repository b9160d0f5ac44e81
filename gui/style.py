"""The application's look: Fusion with a light palette and a few named widgets styled."""

from __future__ import annotations

import pyqtgraph as pg
from PyQt5.QtGui import QColor, QFont, QPalette
from PyQt5.QtWidgets import QApplication, QGroupBox, QVBoxLayout, QWidget

STYLESHEET = """
QWidget { font-size: 10pt; }
QGroupBox { font-weight: 600; border: 1px solid #cfd6de; border-radius: 6px;
            margin-top: 12px; padding-top: 6px; background: #ffffff; }
QGroupBox::title { subcontrol-origin: margin; left: 10px; padding: 0 4px; color: #2b3440; }
QGroupBox#phaseCard { background: #f7f9fb; }
QFrame#card { background: #f7f9fb; border: 1px solid #e1e6ec; border-radius: 5px; }
*[invalid="true"] { border: 2px solid #d32f2f; border-radius: 3px; background: #fff3f3; }
QGroupBox[invalid="true"] { border: 2px solid #d32f2f; }
QLabel#hint { color: #5d6875; }
QLabel#columnHeader { color: #5d6875; font-size: 9pt; }
QLabel#totalName, QLabel#statName { color: #5d6875; font-size: 9pt; }
QLabel#totalValue { font-size: 13pt; font-weight: 600; color: #1f2933; }
QLabel#statValue { font-size: 15pt; font-weight: 600; color: #1f2933; }
QLabel#stateValue { font-size: 15pt; font-weight: 700; color: #1f5f99; }
QLabel#stateValue[status="complete"] { color: #1b7f3b; }
QLabel#stateValue[status="aborted"] { color: #c62828; }
QLabel#checkStatus { font-size: 11pt; font-weight: 600; padding: 4px; }
QLabel#checkStatus[ok="true"] { color: #1b7f3b; }
QLabel#checkStatus[ok="false"] { color: #c62828; }
QLabel#checkWarning { font-size: 11pt; font-weight: 700; padding: 6px; border-radius: 4px;
                      background: #ffb300; color: #2b2100; }
QListWidget#problems { color: #b71c1c; }
QPushButton#startButton { background: #2e7d32; color: white; font-size: 13pt; font-weight: 700;
                          padding: 10px 22px; border-radius: 6px; }
QPushButton#startButton:disabled { background: #a5b5a6; color: #eef2ee; }
QPushButton#abortButton { background: #c62828; color: white; font-size: 13pt; font-weight: 800;
                          padding: 10px 28px; border-radius: 6px; }
QPushButton#abortButton:disabled { background: #d9a7a7; color: #fbeeee; }
QLabel#rigBanner { font-size: 13pt; font-weight: 800; padding: 6px 16px; border-radius: 4px; }
QLabel#rigBanner[mode="SIMULATED"] { background: #ffb300; color: #2b2100; }
QLabel#rigBanner[mode="LIVE"] { background: #c62828; color: white; }
QLabel#rigName { font-size: 11pt; color: #2b3440; }
QPlainTextEdit#eventLog { background: #fbfcfd; }
QTabBar::tab { padding: 7px 20px; }
QTabBar::tab:selected { color: #1f5f99; }
"""


def apply_style(app: QApplication) -> None:
    """Fusion, a light palette, the stylesheet, and pyqtgraph's row-major images."""
    app.setStyle("Fusion")
    palette = QPalette()
    palette.setColor(QPalette.Window, QColor("#eef1f4"))
    palette.setColor(QPalette.Base, QColor("#ffffff"))
    palette.setColor(QPalette.AlternateBase, QColor("#f5f7f9"))
    palette.setColor(QPalette.Button, QColor("#f4f6f8"))
    palette.setColor(QPalette.Highlight, QColor("#1f6fb2"))
    palette.setColor(QPalette.ToolTipBase, QColor("#ffffe8"))
    app.setPalette(palette)
    font = QFont("DejaVu Sans")
    font.setPointSize(10)
    app.setFont(font)
    app.setStyleSheet(STYLESHEET)
    pg.setConfigOptions(antialias=True, imageAxisOrder="row-major", foreground="#333333")


def group_box(title: str, widget: QWidget) -> QGroupBox:
    """A titled box around one widget (the video, the two-photon view, a plot)."""
    box = QGroupBox(title)
    QVBoxLayout(box).addWidget(widget)
    return box
