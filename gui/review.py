"""Review a finished session: video and two-photon frames in step with the freezing trace.

Everything shown is placed by the session's own clock: each frame at its recorded timestamp
(``timestamps_s``, from the DAQ's edges), the freezing score at its times, the stimulus bands
from the timeline that ran. Playing advances the session time; the frame shown for a time is
the last frame taken at or before it, in both streams, so they stay in step however fast it
plays or wherever the slider, the trace or the keyboard puts it.

An observer can mark stretches of freezing by hand (``M`` at the start, ``M`` again at the
end, or drag a marked stretch's edges; Space plays, the arrows step a frame); saving (Ctrl+H)
stores them as a named hand scoring
(:mod:`rig.behaviour.hand`) and shows how the automatic score agrees within the span reviewed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QColor, QKeySequence
from PyQt5.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QShortcut,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from gui.frame_view import FrameView
from gui.style import group_box
from gui.timeline_plot import add_stimulus_shading
from rig.behaviour.hand import HandScoring, hand_agreement, hand_scorings, save_hand_scoring
from rig.data.folder import FrameStream, SessionFolder
from rig.program.timeline import Timeline
from rig.run.plan import fmt_duration

PLAY_SPEEDS = [("1×", 1.0), ("2×", 2.0), ("5×", 5.0), ("10×", 10.0), ("½×", 0.5)]
TICK_MS = 33  # the playback timer: about the video's rate
SLIDER_STEPS_PER_S = 100
HAND_FILL = QColor(46, 125, 50, 70)
OPEN_MARK_FILL = QColor(255, 179, 0, 90)


@dataclass
class _Stream:
    """A stored frame stream and its frames' times, for looking frames up by time."""

    stream: FrameStream
    times_s: np.ndarray  # recorded timestamps (finite ones only, in order)
    frame_of: np.ndarray  # the frame number of each of them

    def frame_at(self, t_s: float) -> int | None:
        """The last frame taken at or before ``t_s`` (None before the first)."""
        k = int(np.searchsorted(self.times_s, t_s, side="right")) - 1
        return int(self.frame_of[k]) if k >= 0 else None


def _timed_stream(folder: SessionFolder, name: str) -> _Stream | None:
    stream = folder.stream(name)
    stamps = stream.timestamps_s() if stream is not None else None
    if stream is None or stamps is None:
        return None
    n = min(len(stamps), stream.n_frames)
    index = np.arange(n)
    ok = np.isfinite(stamps[:n])
    order = np.argsort(stamps[:n][ok], kind="stable")
    return _Stream(stream, stamps[:n][ok][order], index[ok][order])


class ReviewWidget(QWidget):
    """The Review tab."""

    position_changed = pyqtSignal(float)  # session seconds
    scoring_saved = pyqtSignal(str)  # the name it was stored under

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.folder: SessionFolder | None = None
        self.timeline: Timeline | None = None
        self.duration_s = 0.0
        self.position_s = 0.0
        self.streams: dict[str, _Stream] = {}
        self.shown_frames: dict[str, int | None] = {}
        self.stretches: list[tuple[float, float]] = []
        self.mark_start_s: float | None = None
        self.agreement = None
        self._regions: list[pg.LinearRegionItem] = []
        self._shading: list = []
        self._play_ref: tuple[float, float] | None = None  # (monotonic, position) at play
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._build()
        self._enable(False)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.title = QLabel("No session open: File ▸ Review a session… (Ctrl+Shift+O)")
        self.title.setObjectName("reviewTitle")
        self.title.setWordWrap(True)
        self.video = FrameView("no behaviour video in this session")
        self.imaging = FrameView("no two-photon frames in this session")
        views = QSplitter(Qt.Horizontal)
        views.setObjectName("reviewViews")
        views.addWidget(group_box("Behaviour video", self.video))
        views.addWidget(group_box("Two-photon", self.imaging))
        views.setSizes([600, 400])

        self.play_button = QPushButton("▶ Play")
        self.play_button.setToolTip("Play or pause (Space)")
        self.play_button.clicked.connect(self.toggle_play)
        self.speed_box = QComboBox()
        for text, speed in PLAY_SPEEDS:
            self.speed_box.addItem(text, speed)
        self.speed_box.currentIndexChanged.connect(self._speed_changed)
        self.slider = QSlider(Qt.Horizontal)
        self.slider.valueChanged.connect(self._slider_moved)
        self.time_label = QLabel("-")
        self.time_label.setObjectName("statValue")
        self.time_label.setMinimumWidth(150)
        transport = QHBoxLayout()
        transport.addWidget(self.play_button)
        transport.addWidget(self.speed_box)
        transport.addWidget(self.slider, 1)
        transport.addWidget(self.time_label)

        self.trace = pg.PlotWidget(background="w")
        plot = self.trace.getPlotItem()
        plot.setLabel("left", "motion")
        plot.getAxis("left").enableAutoSIPrefix(False)
        plot.setLabel("bottom", "session time", units="s")
        plot.setMenuEnabled(False)
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.addLegend(offset=(-10, 8), labelTextColor="#333333")
        self.motion_curve = plot.plot([], [], pen=pg.mkPen("#1f3b57", width=1.2), name="motion")
        self.auto_curve = plot.plot(
            [], [], pen=pg.mkPen("#2ca25f", width=6), name="freezing (automatic)", connect="finite"
        )
        self.hand_legend = plot.plot(
            [], [], pen=pg.mkPen(HAND_FILL.darker(150), width=6), name="freezing (hand)"
        )
        self.threshold_line = pg.InfiniteLine(
            angle=0, pen=pg.mkPen("#d62728", width=1.2, style=Qt.DashLine)
        )
        plot.addItem(self.threshold_line, ignoreBounds=True)
        self.cursor = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen("#111111", width=2))
        self.cursor.sigPositionChanged.connect(lambda line: self.seek(float(line.value())))
        plot.addItem(self.cursor, ignoreBounds=True)
        self.trace.scene().sigMouseClicked.connect(self._trace_clicked)
        self.trace.setMinimumHeight(180)
        trace_box = group_box(
            "Motion and freezing (click or drag the black line to move)", self.trace
        )

        # hand scoring
        self.scorer_edit = QLineEdit()
        self.scorer_edit.setPlaceholderText("your initials")
        self.mark_button = QPushButton("Mark freezing from here (M)")
        self.mark_button.clicked.connect(self.toggle_mark)
        self.unmark_button = QPushButton("Remove stretch here")
        self.unmark_button.clicked.connect(self.remove_stretch_here)
        self.from_box = _seconds_box()
        self.to_box = _seconds_box()
        self.save_button = QPushButton("Save hand scoring (Ctrl+H)")
        self.save_button.clicked.connect(self.save_scoring)
        self.agreement_label = QLabel("-")
        self.agreement_label.setWordWrap(True)
        self.agreement_label.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        self.agreement_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        hand_box = QGroupBox("Hand scoring")
        hl = QVBoxLayout(hand_box)
        row = QHBoxLayout()
        row.addWidget(QLabel("Scorer"))
        row.addWidget(self.scorer_edit)
        hl.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Reviewed from"))
        row.addWidget(self.from_box)
        row.addWidget(QLabel("to"))
        row.addWidget(self.to_box)
        hl.addLayout(row)
        hl.addWidget(self.mark_button)
        hl.addWidget(self.unmark_button)
        hl.addWidget(self.save_button)
        hl.addWidget(self.agreement_label, 1)

        top = QSplitter(Qt.Horizontal)
        top.setObjectName("reviewTop")
        top.addWidget(views)
        top.addWidget(hand_box)
        top.setStretchFactor(0, 4)
        top.setStretchFactor(1, 1)
        top.setSizes([1200, 330])
        upper = QWidget()
        ul = QVBoxLayout(upper)
        ul.setContentsMargins(0, 0, 0, 0)
        ul.addWidget(top, 1)
        ul.addLayout(transport)
        body = QSplitter(Qt.Vertical)
        body.setObjectName("reviewBody")
        body.addWidget(upper)
        body.addWidget(trace_box)
        body.setSizes([560, 300])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.title)
        layout.addWidget(body, 1)

        for key, slot in (
            (Qt.Key_Space, self.toggle_play),
            (Qt.Key_M, self.toggle_mark),
            (Qt.Key_Left, lambda: self.step(-1)),
            (Qt.Key_Right, lambda: self.step(1)),
            (Qt.CTRL | Qt.Key_H, self.save_scoring),
        ):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    def _enable(self, on: bool) -> None:
        for w in (
            self.play_button,
            self.speed_box,
            self.slider,
            self.mark_button,
            self.unmark_button,
            self.save_button,
            self.from_box,
            self.to_box,
            self.scorer_edit,
        ):
            w.setEnabled(on)

    # ------------------------------------------------------------------ open
    def open_session(self, path: str | Path) -> None:
        """Show a finished session (:class:`InputError` for one that is not, or is still being
        written: run ``rig recover`` on an interrupted one first)."""
        folder = SessionFolder.open(path)
        attrs = folder.require_finalized()
        self.pause()
        self.folder = folder
        self.timeline = attrs.timeline
        self.duration_s = float(attrs.timeline.duration_s)
        self.streams = {
            name: s for name in ("video", "imaging") if (s := _timed_stream(folder, name))
        }
        mode = attrs.mode or ("SIMULATED" if attrs.simulated else "LIVE")
        self.title.setText(
            f"<b>{escape(attrs.animal or '?')}</b> · {escape(attrs.protocol_name or '?')} · "
            f"{escape(attrs.status)} · {mode} · {fmt_duration(self.duration_s)} · "
            f"{escape(folder.name)}"
        )
        for view, name in ((self.video, "video"), (self.imaging, "imaging")):
            view.image.clear()
            view.size_px = None
            view.placeholder.setVisible(name not in self.streams)
        self.shown_frames = {}
        self._show_scores()
        self.stretches, self.mark_start_s = [], None
        self.from_box.setRange(0, self.duration_s)
        self.to_box.setRange(0, self.duration_s)
        self.from_box.setValue(0)
        self.to_box.setValue(self.duration_s)
        self.slider.setRange(0, int(self.duration_s * SLIDER_STEPS_PER_S))
        self._load_hand_scoring()
        self._enable(True)
        self.seek(0.0)

    def _show_scores(self) -> None:
        plot = self.trace.getPlotItem()
        for item in self._shading:
            plot.removeItem(item)
        assert self.folder is not None and self.timeline is not None
        self._shading = add_stimulus_shading(plot, self.timeline)
        scores = self.folder.scores()
        motion = scores.timed(scores.motion_index) if scores is not None else None
        auto = scores.timed(scores.freezing) if scores is not None else None
        if motion is not None:
            self.motion_curve.setData(motion[0], motion[1].astype(float), connect="finite")
            top = float(np.nanmax(motion[1])) * 1.08 if np.isfinite(motion[1]).any() else 1.0
        else:
            self.motion_curve.setData([], [])
            top = 1.0
        self._top = top
        if auto is not None:
            frozen = np.where(auto[1], top, np.nan)
            self.auto_curve.setData(auto[0], frozen, connect="finite")
        else:
            self.auto_curve.setData([], [])
        record = self.folder.freezing_record() or {}
        threshold = record.get("threshold")
        self.threshold_line.setVisible(record.get("measure") == "motion" and threshold is not None)
        if threshold is not None:
            self.threshold_line.setValue(float(threshold))
        plot.setXRange(0, self.duration_s, padding=0.01)

    def _load_hand_scoring(self) -> None:
        """Show the last hand scoring saved (the scorer goes on from where they were)."""
        assert self.folder is not None
        scorings = hand_scorings(self.folder)
        if scorings:
            last = max(scorings.values(), key=lambda s: s.created_utc)
            self.scorer_edit.setText(last.scorer)
            self.from_box.setValue(last.reviewed_s[0])
            self.to_box.setValue(last.reviewed_s[1])
            self.stretches = list(last.freezing_s)
        self._draw_stretches()
        self._show_agreement()

    # ------------------------------------------------------------------ time
    def seek(self, t_s: float) -> None:
        """Show session time ``t_s``: frames, cursor, slider and clock."""
        t_s = min(max(0.0, float(t_s)), self.duration_s)
        self.position_s = t_s
        for name, view in (("video", self.video), ("imaging", self.imaging)):
            timed = self.streams.get(name)
            if timed is None:
                continue
            k = timed.frame_at(t_s)
            if k is not None and k != self.shown_frames.get(name):
                view.show_frame(np.asarray(timed.stream.frames[k]))
            self.shown_frames[name] = k
        for widget, value in (
            (self.cursor, t_s),
            (self.slider, round(t_s * SLIDER_STEPS_PER_S)),
        ):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        self.time_label.setText(f"{fmt_duration(t_s)} / {fmt_duration(self.duration_s)}")
        if self.mark_start_s is not None:
            self._draw_stretches()
        self.position_changed.emit(t_s)

    def step(self, frames: int) -> None:
        """One video frame back or forward (the arrow keys)."""
        timed = self.streams.get("video") or self.streams.get("imaging")
        if timed is None:
            return
        k = int(np.searchsorted(timed.times_s, self.position_s, side="right")) - 1 + frames
        k = min(max(k, 0), len(timed.times_s) - 1)
        self.pause()
        self.seek(float(timed.times_s[k]))

    def _slider_moved(self, value: int) -> None:
        self.seek(value / SLIDER_STEPS_PER_S)
        if self._timer.isActive():
            self._play_ref = (time.monotonic(), self.position_s)

    def _trace_clicked(self, event: Any) -> None:
        if self.folder is None:
            return
        point = self.trace.getPlotItem().vb.mapSceneToView(event.scenePos())
        self.seek(float(point.x()))

    # ------------------------------------------------------------------ playback
    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    def toggle_play(self) -> None:
        if self.playing:
            self.pause()
        elif self.folder is not None:
            if self.position_s >= self.duration_s:
                self.seek(0.0)
            self._play_ref = (time.monotonic(), self.position_s)
            self._timer.start()
            self.play_button.setText("❚❚ Pause")

    def pause(self) -> None:
        self._timer.stop()
        self.play_button.setText("▶ Play")

    def _speed_changed(self) -> None:
        if self.playing:
            self._play_ref = (time.monotonic(), self.position_s)

    def _tick(self) -> None:
        if self._play_ref is None:
            return
        started, at = self._play_ref
        # the display's pace only: where the session is comes from the recorded timestamps
        t = at + (time.monotonic() - started) * float(self.speed_box.currentData())
        if t >= self.duration_s:
            self.seek(self.duration_s)
            self.pause()
            return
        self.seek(t)

    # ------------------------------------------------------------------ hand scoring
    def toggle_mark(self) -> None:
        """Start a freezing stretch at the current time, or end the one started."""
        if self.folder is None:
            return
        if self.mark_start_s is None:
            self.mark_start_s = self.position_s
            self.mark_button.setText("End freezing stretch here (M)")
        else:
            self.add_stretch(self.mark_start_s, self.position_s)
            self.mark_start_s = None
            self.mark_button.setText("Mark freezing from here (M)")
        self._draw_stretches()

    def add_stretch(self, start_s: float, end_s: float) -> None:
        from rig.behaviour.hand import merge_stretches

        self.stretches = merge_stretches([*self.stretches, (start_s, end_s)])
        self._draw_stretches()

    def remove_stretch_here(self) -> None:
        t = self.position_s
        self.stretches = [(a, b) for a, b in self.stretches if not a <= t <= b]
        self._draw_stretches()

    def _draw_stretches(self) -> None:
        plot = self.trace.getPlotItem()
        for region in self._regions:
            plot.removeItem(region)
        self._regions = []
        spans = [(a, b, HAND_FILL, True) for a, b in self.stretches]
        if self.mark_start_s is not None:
            a, b = sorted((self.mark_start_s, self.position_s))
            spans.append((a, b, OPEN_MARK_FILL, False))
        for k, (a, b, fill, movable) in enumerate(spans):
            region = pg.LinearRegionItem(
                (a, b), movable=movable, brush=pg.mkBrush(fill), pen=pg.mkPen(fill.darker(160))
            )
            region.setZValue(-5)
            if movable:
                region.sigRegionChangeFinished.connect(
                    lambda r, i=k: self._stretch_dragged(i, r.getRegion())
                )
            plot.addItem(region)
            self._regions.append(region)

    def _stretch_dragged(self, index: int, span: tuple[float, float]) -> None:
        from rig.behaviour.hand import merge_stretches

        stretches = list(self.stretches)
        if index < len(stretches):
            stretches[index] = (float(span[0]), float(span[1]))
        self.stretches = merge_stretches(stretches)
        QTimer.singleShot(0, self._draw_stretches)  # not from inside the item's own signal

    def hand_scoring(self) -> HandScoring:
        end = self.to_box.value()
        if end >= self.to_box.maximum():  # "to the end": not the end rounded to the box's 0.1 s
            end = self.duration_s
        return HandScoring(
            scorer=self.scorer_edit.text().strip() or "anonymous",
            reviewed_s=(self.from_box.value(), end),
            freezing_s=self.stretches,
        )

    def save_scoring(self) -> str | None:
        """Store the stretches as this scorer's hand scoring; show the agreement."""
        if self.folder is None:
            return None
        try:
            scoring = self.hand_scoring()
        except ValueError as exc:
            self.agreement_label.setText(f"<span style='color:#c62828'>{escape(str(exc))}</span>")
            return None
        name = save_hand_scoring(self.folder, scoring)
        self._show_agreement(scoring)
        self.scoring_saved.emit(name)
        return name

    def _show_agreement(self, scoring: HandScoring | None = None) -> None:
        assert self.folder is not None
        if scoring is None:
            scorings = hand_scorings(self.folder)
            if not scorings:
                self.agreement = None
                self.agreement_label.setText(
                    "Mark the stretches you see the animal freeze, then save: the agreement "
                    "with the automatic score is shown here."
                )
                return
            scoring = max(scorings.values(), key=lambda s: s.created_utc)
        self.agreement = agreement = hand_agreement(self.folder, scoring)
        if agreement is None:
            self.agreement_label.setText(
                f"saved as <b>{escape(scoring.name)}</b>; this session has no automatic "
                "freezing score to compare with (run <code>rig score</code>)"
            )
            return
        a0, a1 = scoring.reviewed_s
        worst = agreement.epoch_error_pp_max
        self.agreement_label.setText(
            f"<b>{escape(scoring.name)}</b> vs automatic, {fmt_duration(a0)}–{fmt_duration(a1)}"
            f" ({agreement.frames:,} frames):<br>"
            f"frames agree <b>{100 * agreement.frame_agreement:.1f}%</b> · "
            f"Cohen's κ <b>{agreement.kappa:.2f}</b><br>"
            f"freezing by hand {100 * agreement.reference_freezing:.1f}% · "
            f"bouts {agreement.bouts}, onsets within 2 frames "
            f"{100 * agreement.onsets_within_tolerance:.0f}%<br>"
            + (
                f"worst CS: {worst:.1f} points apart ({len(agreement.epoch_error_pp)} CS)"
                if agreement.epoch_error_pp
                else "no CS in the reviewed span"
            )
        )

    def shutdown(self) -> None:
        self.pause()


def _seconds_box() -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setDecimals(1)
    box.setSuffix(" s")
    box.setMaximum(1e6)
    return box


__all__ = ["ReviewWidget"]
