"""A live frame display: the latest frame of a stream, aspect locked, y down."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import QRectF, Qt
from PyQt5.QtGui import QResizeEvent
from PyQt5.QtWidgets import QLabel


class FrameView(pg.GraphicsLayoutWidget):
    """Shows the latest frame of one stream; a placeholder until the first arrives.

    8-bit frames are shown as they are; deeper ones (two-photon uint16) are stretched between
    their 1st and 99.7th percentiles, so dim cells stay visible next to bright ones.
    """

    def __init__(self, placeholder: str = "no frames yet", parent=None):
        super().__init__(parent)
        self.setBackground("#1d2127")
        self.view = self.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self.size_px: tuple[int, int] | None = None  # (width, height)
        # a label over the view, wrapped to its width: a text item in the scene was cut off
        # ("...oton frames yet") when the view was narrower than the text
        self.placeholder = QLabel(placeholder, self)
        self.placeholder.setAlignment(Qt.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet("color: #9aa4b1; background: transparent;")

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if hasattr(self, "placeholder"):  # pyqtgraph resizes once while it is being built
            self.placeholder.setGeometry(8, 0, max(1, self.width() - 16), self.height())

    def show_frame(self, image: np.ndarray) -> None:
        height, width = image.shape[:2]
        first = self.size_px != (width, height)
        self.image.setImage(image, autoLevels=False, levels=display_levels(image))
        if first:
            self.size_px = (width, height)
            self.placeholder.hide()
            self.view.setRange(QRectF(0, 0, width, height), padding=0.02)
            self.first_frame()

    def first_frame(self) -> None:
        """Called once the frame size is known (subclasses draw on top of the frame)."""


def display_levels(image: np.ndarray) -> tuple[float, float]:
    """Black and white levels for ``image``: full range for 8 bits, else robust percentiles."""
    if image.dtype == np.uint8:
        return 0.0, 255.0
    step = max(1, min(image.shape[:2]) // 128)  # a sample is enough for the levels
    lo, hi = np.percentile(image[::step, ::step], (1.0, 99.7))
    return float(lo), float(max(hi, lo + 1))
