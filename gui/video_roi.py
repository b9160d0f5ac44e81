"""The live behaviour video with an ROI and exclusion-mask editor (pyqtgraph ROIs).

Regions are in image pixels (``x`` right, ``y`` down), the same as the rig file's ``freezing:``
``roi`` and ``exclude`` (:mod:`rig.behaviour.motion`), so what is drawn re-scores the session
unchanged.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PyQt5.QtCore import QRectF, pyqtSignal
from PyQt5.QtGui import QColor

from gui.frame_view import FrameView
from rig.files.freezing import FreezingParams

ROI_PEN = pg.mkPen("#35c46a", width=2)
EXCLUDE_PEN = pg.mkPen("#ff5a5a", width=2)


class VideoView(FrameView):
    """The behaviour video with editable freezing regions."""

    regions_changed = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__("no video yet", parent)
        self.roi: pg.ROI | None = None
        self.exclusions: list[pg.ROI] = []
        self._initial: FreezingParams | None = None

    def first_frame(self) -> None:
        if self._initial is not None:
            self.set_regions(self._initial)

    # ------------------------------------------------------------------ regions
    def set_regions(self, params: FreezingParams) -> None:
        """Show ``params.roi`` (the whole frame if none) and ``params.exclude``."""
        self._initial = params
        if self.size_px is None:
            return  # drawn when the first frame gives the image size
        width, height = self.size_px
        for item in [self.roi, *self.exclusions]:
            if item is not None:
                self.view.removeItem(item)
        self.exclusions = []
        roi = params.roi.model_dump() if params.roi is not None else None
        self.roi = self._make(
            roi or {"x_px": 0, "y_px": 0, "width_px": width, "height_px": height}, ROI_PEN
        )
        for region in params.exclude:
            self.exclusions.append(self._make(region.model_dump(), EXCLUDE_PEN))
        self.regions_changed.emit()

    def add_exclusion(self) -> None:
        if self.size_px is None:
            return
        width, height = self.size_px
        self.exclusions.append(
            self._make(
                {
                    "x_px": width * 0.4,
                    "y_px": height * 0.4,
                    "width_px": width * 0.2,
                    "height_px": height * 0.2,
                },
                EXCLUDE_PEN,
            )
        )
        self.regions_changed.emit()

    def remove_exclusion(self) -> None:
        if self.exclusions:
            self.view.removeItem(self.exclusions.pop())
            self.regions_changed.emit()

    def reset_regions(self) -> None:
        if self._initial is not None:
            self.set_regions(self._initial)

    def _make(self, region: dict[str, Any], pen) -> pg.ROI:
        assert self.size_px is not None
        bounds = QRectF(0, 0, *self.size_px)
        if "points_px" in region:
            item = pg.PolyLineROI(region["points_px"], closed=True, pen=pen, movable=True)
        else:
            item = pg.RectROI(
                (region["x_px"], region["y_px"]),
                (region["width_px"], region["height_px"]),
                pen=pen,
                maxBounds=bounds,
                snapSize=1,
                scaleSnap=True,
                translateSnap=True,
            )
        item.setZValue(10)
        fill = QColor(pen.color())
        fill.setAlpha(40)
        item.hoverPen = pg.mkPen(pen.color().lighter(130), width=3)
        item.sigRegionChangeFinished.connect(lambda *_: self.regions_changed.emit())
        self.view.addItem(item)
        return item

    def regions(self) -> dict[str, Any]:
        """The drawn ROI and exclusions, as ``rig.behaviour.motion`` regions (pixels, rounded)."""
        return {
            "roi": _region(self.roi) if self.roi is not None else None,
            "exclude": [_region(e) for e in self.exclusions],
        }

    def regions_differ_from_rig(self) -> bool:
        if self._initial is None or self.roi is None:
            return False
        drawn = self.regions()
        width, height = self.size_px or (0, 0)
        rig_roi = (
            self._initial.roi.model_dump()
            if self._initial.roi is not None
            else {"x_px": 0.0, "y_px": 0.0, "width_px": float(width), "height_px": float(height)}
        )
        rig_exclude = [e.model_dump() for e in self._initial.exclude]
        return drawn["roi"] != _rounded(rig_roi) or drawn["exclude"] != [
            _rounded(e) for e in rig_exclude
        ]


def _region(item: pg.ROI) -> dict[str, Any]:
    if isinstance(item, pg.PolyLineROI):
        pts = [item.mapToParent(h["item"].pos()) for h in item.handles]
        return {"points_px": [[round(p.x(), 1), round(p.y(), 1)] for p in pts]}
    pos, size = item.pos(), item.size()
    return _rounded(
        {
            "x_px": max(0.0, pos.x()),
            "y_px": max(0.0, pos.y()),
            "width_px": size.x(),
            "height_px": size.y(),
        }
    )


def _rounded(region: dict[str, Any]) -> dict[str, Any]:
    if "points_px" in region:
        return {
            "points_px": [[round(float(x), 1), round(float(y), 1)] for x, y in region["points_px"]]
        }
    return {k: round(float(v), 1) for k, v in region.items()}
