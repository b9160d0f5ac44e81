"""The session timeline as pyqtgraph items: phases, CS and US blocks, hover read-out.

Used by the designer's live preview and, as shading behind the freezing trace, by the console.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import QPointF, Qt, pyqtSignal
from PyQt5.QtGui import QColor

from rig.program.timeline import PlannedTrial, Timeline
from rig.run.plan import fmt_duration

CS_PLUS = "#f28e2b"  # a CS paired with a shock
CS_MINUS = "#4e79a7"  # a CS never paired with a shock
EXTRA_CS = ("#76b7b2", "#59a14f", "#b07aa1", "#9c755f", "#edc948")
US = "#e15759"
PHASE_FILLS = ("#f4f6f8", "#e8edf2")


def stimulus_colors(timeline: Timeline) -> dict[str, str]:
    """A colour per stimulus: orange for CS+ (paired), blue for CS-, red for every shock."""
    paired = {t.cs for t in timeline.trials if t.us is not None}
    colors: dict[str, str] = {}
    extra = iter(EXTRA_CS)
    plus_used = minus_used = False
    for t in timeline.trials:
        if t.cs in colors:
            continue
        if t.cs in paired and not plus_used:
            colors[t.cs], plus_used = CS_PLUS, True
        elif t.cs not in paired and not minus_used:
            colors[t.cs], minus_used = CS_MINUS, True
        else:
            colors[t.cs] = next(extra, "#888888")
        if t.us is not None:
            colors.setdefault(t.us, US)
    for t in timeline.trials:
        if t.us is not None:
            colors.setdefault(t.us, US)
    return colors


def lanes(timeline: Timeline) -> list[str]:
    """Stimulus names top to bottom: CSs in order of first use, then the shocks."""
    cs = list(dict.fromkeys(t.cs for t in timeline.trials))
    us = list(dict.fromkeys(t.us for t in timeline.trials if t.us is not None))
    return cs + us


def describe_trial(t: PlannedTrial, n_trials: int) -> str:
    text = (
        f"trial {t.index + 1}/{n_trials} ({t.phase}): {t.cs} "
        f"{t.cs_onset_s:.1f}-{t.cs_offset_s:.1f} s"
    )
    if t.us is not None and t.us_onset_s is not None and t.us_offset_s is not None:
        text += f", {t.us} {t.us_onset_s:.1f}-{t.us_offset_s:.1f} s"
    if t.iti_after_s is not None:
        text += f", then ITI {t.iti_after_s:.1f} s"
    return text


def add_stimulus_shading(plot: pg.PlotItem, timeline: Timeline, alpha: int = 60) -> list:
    """Translucent CS and US bands behind a time-series plot; returns the items."""
    colors = stimulus_colors(timeline)
    items = []
    for t in timeline.trials:
        spans = [(t.cs_onset_s, t.cs_offset_s, colors.get(t.cs, CS_MINUS), alpha)]
        if t.us_onset_s is not None and t.us_offset_s is not None:
            spans.append((t.us_onset_s, t.us_offset_s, US, min(255, alpha * 3)))
        for start, stop, color, a in spans:
            c = QColor(color)
            c.setAlpha(a)
            region = pg.LinearRegionItem(
                (start, stop), movable=False, brush=pg.mkBrush(c), pen=pg.mkPen(None)
            )
            region.setZValue(-10)
            plot.addItem(region)
            items.append(region)
    return items


class TimeAxis(pg.AxisItem):
    """Session time ticks as ``m:ss`` (or ``h:mm:ss``): how experimenters read a schedule."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.enableAutoSIPrefix(False)

    def tickStrings(self, values, scale, spacing):
        if spacing >= 1:
            return [fmt_duration(v) if v >= 0 else "" for v in values]
        return [f"{v:.1f}" for v in values]


class TimelinePlot(pg.PlotWidget):
    """Phases as bands, one lane per stimulus, blocks per trial; zoom in x, hover read-out."""

    hovered = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent, background="w", axisItems={"bottom": TimeAxis("bottom")})
        self.timeline: Timeline | None = None
        plot = self.getPlotItem()
        plot.setMouseEnabled(x=True, y=False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.showGrid(x=True, y=False, alpha=0.25)
        plot.setLabel("bottom", "session time (m:ss)")
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setTextPen("#333333")
            plot.getAxis(axis).setPen("#777777")
        self._items: list = []
        self._cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#555555", style=Qt.DashLine))
        self._cursor.setZValue(20)
        self._cursor.hide()
        plot.addItem(self._cursor, ignoreBounds=True)
        self.scene().sigMouseMoved.connect(self._mouse_moved)

    def show_timeline(self, timeline: Timeline | None) -> None:
        """Redraw for ``timeline`` (``None``: an invalid protocol, shown greyed out)."""
        plot = self.getPlotItem()
        if timeline is None:
            for item in self._items:
                item.setOpacity(0.25)
            return
        keep_range = self.timeline is not None and self.timeline.duration_s == timeline.duration_s
        view = plot.viewRange()[0]
        for item in self._items:
            plot.removeItem(item)
        self._items = []
        self.timeline = timeline
        names = lanes(timeline)
        colors = stimulus_colors(timeline)
        y_of = {name: len(names) - i for i, name in enumerate(names)}
        top = len(names) + 0.9
        for k, span in enumerate(timeline.phases):
            band = pg.LinearRegionItem(
                (span.start_s, span.end_s),
                movable=False,
                brush=pg.mkBrush(PHASE_FILLS[k % 2]),
                pen=pg.mkPen("#c7ced6"),
            )
            band.setZValue(-20)
            label = pg.TextItem(
                f"{span.name}  {fmt_duration(span.end_s - span.start_s)}",
                color="#2b3440",
                anchor=(0, 0),
            )
            # neighbouring labels alternate in height so a short phase's label stays readable
            label.setPos(span.start_s, top + (0.45 if k % 2 else 0.0))
            self._add(band, label)
        for name in names:
            starts, widths = [], []
            for t in timeline.trials:
                if t.cs == name:
                    starts.append(t.cs_onset_s)
                    widths.append(t.cs_offset_s - t.cs_onset_s)
                elif t.us == name and t.us_onset_s is not None and t.us_offset_s is not None:
                    starts.append(t.us_onset_s)
                    # a 1-s shock in a 2-hour session must stay visible when zoomed out
                    widths.append(t.us_offset_s - t.us_onset_s)
            if not starts:
                continue
            color = colors.get(name, "#888888")
            bars = pg.BarGraphItem(
                x0=np.array(starts),
                width=np.array(widths),
                y0=y_of[name] - 0.35,
                height=0.7,
                brush=pg.mkBrush(color),
                pen=pg.mkPen(QColor(color).darker(140), width=1.5),
            )
            self._add(bars)
        axis = plot.getAxis("left")
        axis.setTicks([[(y_of[n], n) for n in names]])
        axis.setWidth(90)
        plot.setYRange(0.4, top + 0.95, padding=0)
        plot.setLimits(xMin=-0.02 * timeline.duration_s, xMax=timeline.duration_s * 1.02)
        if keep_range:
            plot.setXRange(*view, padding=0)
        else:
            plot.setXRange(0, timeline.duration_s, padding=0.01)

    def _add(self, *items) -> None:
        for item in items:
            self.getPlotItem().addItem(item)
            self._items.append(item)

    def describe(self, t_s: float) -> str:
        """What happens at session time ``t_s`` (the hover read-out)."""
        tl = self.timeline
        if tl is None:
            return ""
        span = tl.phase_at(t_s)
        where = f"t = {t_s:.1f} s ({fmt_duration(t_s)})"
        if span is None:
            return where
        text = f"{where} · {span.name}"
        for t in tl.trials:
            if t.cs_onset_s <= t_s <= t.end_s:
                return f"{text} · {describe_trial(t, len(tl.trials))}"
        later = [t for t in tl.trials if t.cs_onset_s > t_s]
        if later:
            text += f" · next CS ({later[0].cs}) in {later[0].cs_onset_s - t_s:.1f} s"
        return text

    def _mouse_moved(self, pos: QPointF) -> None:
        plot = self.getPlotItem()
        if self.timeline is None or not plot.sceneBoundingRect().contains(pos):
            self._cursor.hide()
            return
        x = plot.vb.mapSceneToView(pos).x()
        self._cursor.setValue(x)
        self._cursor.show()
        text = self.describe(x)
        self.setToolTip(text)
        self.hovered.emit(text)
