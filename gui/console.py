"""The run console: who and where, pre-flight, Start/Abort, and the session as it runs.

The session runs in :class:`gui.session_runner.SessionRunner`'s worker thread; this widget
drains what it published on each ``updated`` signal. Disk reads (free space, the stored
freezing score, re-scoring with a drawn ROI) run in a background executor and come back as
queued signals, so nothing here blocks on hardware or disk.
"""

from __future__ import annotations

import math
import re
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import yaml
from PyQt5.QtCore import QObject, Qt, QTimer, QUrl, pyqtSignal
from PyQt5.QtGui import QDesktopServices, QFont
from PyQt5.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.document import Check
from gui.frame_view import FrameView
from gui.session_runner import RunRequest, SessionRunner
from gui.style import group_box
from gui.timeline_plot import CS_MINUS, add_stimulus_shading, stimulus_colors
from gui.video_roi import VideoView
from rig.behaviour.live import FreezingSample
from rig.behaviour.rescore import freezing_summary, score_session
from rig.data.folder import SessionFolder
from rig.files.inputfile import InputError
from rig.files.rigfile import RigFile
from rig.files.subject import (
    LoadedSubject,
    SessionMetadata,
    load_subject,
    session_metadata,
    subject_from_data,
)
from rig.program.timeline import Timeline
from rig.run.plan import fmt_bytes, fmt_duration
from rig.run.session import SessionPlan
from rig.run.signals import Progress

START_KEY, ABORT_KEY = "F5", "Shift+F5"  # the main window's Session menu binds them
SEX_CHOICES = [("unknown", "U"), ("male", "M"), ("female", "F"), ("other", "O")]
FORM = "session form"  # where a problem with a typed field is reported
SPEEDS = [("real time", 1.0), ("10× real time", 10.0), ("as fast as possible", None)]
TRACE_WINDOW_S = 120.0
EVENT_TEXT = {
    "session_start": "session started",
    "session_end": "session ended",
    "phase_start": "phase",
    "cs_on": "CS on",
    "cs_off": "CS off",
    "us_on": "SHOCK on",
    "us_off": "shock off",
    "shocker_armed": "shock generator armed",
    "shocker_disarmed": "shock generator disarmed",
    "shock_current": "shock current",
    "preflight": "pre-flight",
    "fault": "FAULT",
}


class _Background(QObject):
    """Runs a function off the UI thread; its result comes back as a queued signal."""

    done = pyqtSignal(str, object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gui-io")

    def submit(self, tag: str, fn, *args: Any, **kwargs: Any) -> None:
        future = self._pool.submit(fn, *args, **kwargs)
        future.add_done_callback(lambda f: self.done.emit(tag, _outcome(f)))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _outcome(future: Future) -> Any:
    exc = future.exception()
    return exc if exc is not None else future.result()


def _free_disk(path: Path) -> int:
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def _rescore(path: Path, regions: dict[str, Any] | None) -> dict[str, Any] | None:
    folder = SessionFolder.open(path)
    if regions is None:
        return folder.freezing_record()
    return score_session(folder, roi=regions["roi"], exclude=regions["exclude"])


class ConsoleWidget(QWidget):
    """The run console tab."""

    running_changed = pyqtSignal(bool)
    session_finished = pyqtSignal(object, object)  # (folder, SessionResult | None)

    def __init__(self, rig: RigFile, parent: QWidget | None = None):
        super().__init__(parent)
        self.rig = rig
        self.check: Check = Check(None, [])
        self.runner: SessionRunner | None = None
        self.timeline: Timeline | None = None
        self.folder: Path | None = None
        self.result: Any = None
        self.ended = False  # the last started session has ended (or failed to start)
        self.last_progress: Progress | None = None
        self.last_record: dict[str, Any] | None = None
        self._trace_t: list[float] = []
        self._trace_motion: list[float] = []
        self._trace_frozen: list[bool] = []
        self._threshold = math.nan
        self._frame_bytes: dict[str, int] = {}
        self._rate_ref: tuple[float, int] | None = None
        self._shading: list = []
        self._preflight_device_rows = 0
        self._subject_extra: dict[str, Any] = {}  # species, description from a subject file
        self._trace_timeline: Timeline | None = None  # the plan the trace shown was recorded on
        self.prepare_run: Callable[[], SessionPlan | None] | None = None
        """Returns the plan to run, compiled from the protocol file's exact text (the main
        window saves an edited protocol first); None: do not start."""
        self._background = _Background(self)
        self._background.done.connect(self._background_done)
        self._build()
        self._disk_timer = QTimer(self)
        self._disk_timer.setInterval(2000)
        self._disk_timer.timeout.connect(self._poll_disk)
        self._disk_timer.start()
        self.set_rig(rig)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        # top strip: Start / Abort and the session state, never scrolled away
        self.start_button = QPushButton(f"▶  Start session  ({START_KEY})")
        self.start_button.setObjectName("startButton")
        self.start_button.clicked.connect(self.start)
        self.abort_button = QPushButton(f"■  ABORT  ({ABORT_KEY})")
        self.abort_button.setObjectName("abortButton")
        self.abort_button.setToolTip(
            f"Stop now ({ABORT_KEY}): outputs low, tone off, shock generator disarmed"
        )
        self.abort_button.setEnabled(False)
        self.abort_button.clicked.connect(lambda: self.abort("aborted by the user"))
        self.state_label = QLabel("idle")
        self.state_label.setObjectName("stateValue")
        self.phase_label = QLabel("-")
        self.trial_label = QLabel("-")
        self.next_cs_label = QLabel("-")
        self.next_shock_label = QLabel("-")
        self.clock_label = QLabel("-")
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setFixedHeight(10)
        strip = QGridLayout()
        strip.addWidget(self.start_button, 0, 0, 2, 1)
        strip.addWidget(self.abort_button, 0, 1, 2, 1)
        for col, (title, label) in enumerate(
            [
                ("State", self.state_label),
                ("Phase", self.phase_label),
                ("Trial", self.trial_label),
                ("Next CS in", self.next_cs_label),
                ("Next shock in", self.next_shock_label),
                ("Session time", self.clock_label),
            ],
            start=2,
        ):
            head = QLabel(title)
            head.setObjectName("statName")
            label.setObjectName("statValue" if label is not self.state_label else "stateValue")
            strip.addWidget(head, 0, col)
            strip.addWidget(label, 1, col)
            strip.setColumnStretch(col, 1)
        strip.addWidget(self.progress_bar, 2, 0, 1, 8)

        # left: session form and pre-flight
        self.protocol_label = QLabel("-")
        self.protocol_label.setWordWrap(True)
        self.animal_edit = QLineEdit()
        self.animal_edit.setPlaceholderText("e.g. m042 (required on a LIVE rig)")
        self.animal_edit.textChanged.connect(self._update_buttons)
        self.sex_box = QComboBox()
        for text, code in SEX_CHOICES:
            self.sex_box.addItem(text, code)
        self.age_edit = QLineEdit()
        self.age_edit.setPlaceholderText("P90D or 2026-09-01")
        self.age_edit.setToolTip(
            "Age as an ISO 8601 duration (P90D: 90 days) or the date of birth (YYYY-MM-DD)"
        )
        self.weight_box = QDoubleSpinBox()
        self.weight_box.setRange(0, 200)
        self.weight_box.setDecimals(1)
        self.weight_box.setSuffix(" g")
        self.weight_box.setSpecialValueText("-")  # 0: not given
        self.strain_edit = QLineEdit()
        self.strain_edit.setPlaceholderText("e.g. C57BL/6J")
        self.genotype_edit = QLineEdit()
        self.genotype_edit.setPlaceholderText("e.g. wild type")
        self.subject_button = QPushButton("File…")
        self.subject_button.setToolTip("Fill the subject from the animal's subject file (YAML)")
        self.subject_button.clicked.connect(self._choose_subject)
        animal_row = QHBoxLayout()
        animal_row.addWidget(self.animal_edit)
        animal_row.addWidget(self.subject_button)
        self.experimenter_edit = QLineEdit()
        self.experimenter_edit.setPlaceholderText("Last, First (several: separate with ;)")
        self.institution_edit = QLineEdit()
        self.lab_edit = QLineEdit()
        self.notes_edit = QPlainTextEdit()
        self.notes_edit.setFixedHeight(44)
        self.notes_edit.setPlaceholderText("this animal, this session (not kept for the next)")
        self.out_edit = QLineEdit(str(Path("sessions").resolve()))
        browse = QPushButton("…")
        browse.setFixedWidth(32)
        browse.clicked.connect(self._choose_out)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit)
        out_row.addWidget(browse)
        self.speed_box = QComboBox()
        for text, speed in SPEEDS:
            self.speed_box.addItem(text, speed)
        self.speed_label = QLabel("Speed")
        form_box = QGroupBox("Session")
        form = QGridLayout(form_box)
        form.setVerticalSpacing(4)
        # one field a row (the column is narrow at 1366x768), but sex and weight, which are short
        rows: list[tuple[str, QWidget, str, QWidget] | tuple[str, Any]] = [
            ("Protocol", self.protocol_label),
            ("Animal ID", animal_row),
            ("Sex", self.sex_box, "Weight", self.weight_box),
            ("Age / born", self.age_edit),
            ("Strain", self.strain_edit),
            ("Genotype", self.genotype_edit),
            ("Experimenter", self.experimenter_edit),
            ("Institution", self.institution_edit),
            ("Lab", self.lab_edit),
            ("Notes", self.notes_edit),
            ("Save to", out_row),
        ]
        for r, row in enumerate(rows):
            form.addWidget(_form_label(row[0]), r, 0)
            if len(row) == 4:
                form.addWidget(row[1], r, 1)
                form.addWidget(_form_label(row[2]), r, 2)
                form.addWidget(row[3], r, 3)
            elif isinstance(row[1], QHBoxLayout):
                form.addLayout(row[1], r, 1, 1, 3)
            else:
                form.addWidget(row[1], r, 1, 1, 3)
        self.speed_label.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        form.addWidget(self.speed_label, len(rows), 0)
        form.addWidget(self.speed_box, len(rows), 1, 1, 3)
        form.setColumnStretch(1, 1)
        form.setColumnStretch(3, 1)
        self.preflight_list = QListWidget()
        self.preflight_list.setObjectName("preflight")
        self.preflight_list.setWordWrap(True)
        pre_box = QGroupBox("Pre-flight")
        QVBoxLayout(pre_box).addWidget(self.preflight_list)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(form_box)
        ll.addWidget(pre_box, 1)

        # centre: video with regions, trace
        self.video = VideoView()
        self.video.setMinimumHeight(180)
        self.video.regions_changed.connect(self._regions_changed)
        roi_row = QHBoxLayout()
        self.roi_label = QLabel("Freezing ROI (green) and exclusions (red): drag to edit")
        self.roi_label.setObjectName("hint")
        add_ex = QPushButton("+ Exclusion")
        add_ex.clicked.connect(self.video.add_exclusion)
        rm_ex = QPushButton("− Exclusion")
        rm_ex.clicked.connect(self.video.remove_exclusion)
        reset = QPushButton("Reset to rig file")
        reset.clicked.connect(self.video.reset_regions)
        self.rescore_button = QPushButton("Re-score with drawn ROI")
        self.rescore_button.setEnabled(False)
        self.rescore_button.clicked.connect(self.rescore)
        roi_row.addStretch(1)
        for b in (add_ex, rm_ex, reset):
            roi_row.addWidget(b)
        self.roi_label.setWordWrap(True)
        hint_row = QHBoxLayout()
        hint_row.addWidget(self.roi_label, 1)
        hint_row.addWidget(self.rescore_button)
        video_box = QGroupBox("Behaviour video")
        vl = QVBoxLayout(video_box)
        vl.addWidget(self.video, 1)
        vl.addLayout(hint_row)  # two short rows: the video box stays narrow at 1366x768
        vl.addLayout(roi_row)

        self.trace = pg.PlotWidget(background="w")
        tp = self.trace.getPlotItem()
        tp.setLabel("left", "motion")
        tp.getAxis("left").enableAutoSIPrefix(
            False
        )  # "(x0.001)" made the label longer than the axis
        tp.setLabel("bottom", "session time", units="s")
        tp.showGrid(x=True, y=True, alpha=0.2)
        tp.setMenuEnabled(False)
        tp.addLegend(offset=(-10, 8), labelTextColor="#333333")
        self.motion_curve = tp.plot([], [], pen=pg.mkPen("#1f3b57", width=1.5), name="motion")
        self.frozen_curve = tp.plot(
            [], [], pen=pg.mkPen("#2ca25f", width=6), name="freezing", connect="finite"
        )
        self.threshold_line = pg.InfiniteLine(
            angle=0,
            pen=pg.mkPen("#d62728", width=1.5, style=Qt.DashLine),
            label="threshold",
            labelOpts={"position": 0.03, "color": "#d62728", "anchors": [(0, 1), (0, 1)]},
        )
        self.threshold_line.hide()
        tp.addItem(self.threshold_line, ignoreBounds=True)
        self.trace.setMinimumHeight(150)
        trace_box = group_box("Motion and freezing (CS+ orange, CS− blue, shock red)", self.trace)
        self.imaging = FrameView("no two-photon frames yet")
        imaging_box = group_box("Two-photon", self.imaging)
        views = QSplitter(Qt.Horizontal)
        views.setObjectName("consoleViews")
        views.addWidget(video_box)
        views.addWidget(imaging_box)
        imaging_box.setMinimumWidth(200)
        views.setStretchFactor(0, 3)
        views.setStretchFactor(1, 2)
        views.setSizes([620, 380])
        centre = QSplitter(Qt.Vertical)
        centre.setObjectName("consoleCentre")
        centre.addWidget(views)
        centre.addWidget(trace_box)
        centre.setSizes([520, 330])

        # right: streams, event log, result
        self.stream_table = QTableWidget(0, 4)
        self.stream_table.setHorizontalHeaderLabels(["stream", "received", "written", "dropped"])
        self.stream_table.verticalHeader().hide()
        self.stream_table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.stream_table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.stream_table.setFixedHeight(96)
        self.write_label = QLabel("write rate -")
        self.disk_label = QLabel("free disk -")
        streams_box = QGroupBox("Streams")
        sl = QVBoxLayout(streams_box)
        sl.addWidget(self.stream_table)
        row = QHBoxLayout()
        row.addWidget(self.write_label)
        row.addStretch(1)
        row.addWidget(self.disk_label)
        sl.addLayout(row)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setObjectName("eventLog")
        self.log.setMaximumBlockCount(5000)
        mono = QFont("DejaVu Sans Mono")
        mono.setStyleHint(QFont.Monospace)
        mono.setPointSize(9)
        self.log.setFont(mono)
        log_box = QGroupBox("Event log")
        QVBoxLayout(log_box).addWidget(self.log)
        self.trial_plot = pg.PlotWidget(background="w")
        trp = self.trial_plot.getPlotItem()
        trp.setLabel("left", "freezing %")
        trp.setLabel("bottom", "trial")
        trp.setYRange(0, 100)
        trp.setMenuEnabled(False)
        trp.setMouseEnabled(x=False, y=False)
        self.trial_plot.setMinimumHeight(120)
        self.result_label = QLabel("The per-trial freezing appears here after the session.")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.folder_button = QPushButton("Open session folder")
        self.folder_button.setEnabled(False)
        self.folder_button.clicked.connect(self._open_folder)
        result_box = QGroupBox("Result")
        rl = QVBoxLayout(result_box)
        rl.addWidget(self.trial_plot, 1)
        rl.addWidget(self.result_label)
        rl.addWidget(self.folder_button)
        right = QSplitter(Qt.Vertical)
        right.setObjectName("consoleRight")
        right.addWidget(streams_box)
        right.addWidget(log_box)
        right.addWidget(result_box)
        right.setSizes([170, 420, 330])

        body = QSplitter(Qt.Horizontal)
        body.setObjectName("consoleBody")
        body.addWidget(left)
        body.addWidget(centre)
        body.addWidget(right)
        body.setStretchFactor(0, 3)
        body.setStretchFactor(1, 8)
        body.setStretchFactor(2, 5)
        body.setSizes([400, 900, 560])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(strip)
        layout.addWidget(body, 1)

    # ------------------------------------------------------------------ inputs
    def set_rig(self, rig: RigFile) -> None:
        self.rig = rig
        simulated = rig.simulated
        self.speed_box.setVisible(simulated)
        self.speed_label.setVisible(simulated)
        self.animal_edit.setPlaceholderText(
            "e.g. m042 (default sim-mouse)" if simulated else "e.g. m042 (required on a LIVE rig)"
        )
        self.video.set_regions(rig.freezing)
        self.imaging.placeholder.setText(
            "no two-photon frames yet" if rig.device("imaging") else "no microscope on this rig"
        )
        self._update_buttons()
        self._poll_disk()

    def set_check(self, check: Check) -> None:
        """The designer's latest check: the plan Start would run."""
        if self.running:
            return
        if check is self.check:  # unchanged: keep the last run's pre-flight results
            self._update_buttons()
            return
        self.check = check
        if self._trace_timeline is not None and (
            check.plan is None or check.plan.timeline != self._trace_timeline
        ):
            self._clear_last_session()  # its trace would sit under another protocol's bands
        if check.plan is not None:
            p = check.plan.protocol
            t = check.totals() or {}
            self.protocol_label.setText(
                f"<b>{p.protocol}</b> · {fmt_duration(t.get('duration_s', 0))} · "
                f"{t.get('trials', 0)} trials · {t.get('shocks', 0)} shocks"
            )
            self._show_timeline(check.plan.timeline)
        else:
            n = len(check.problems)
            self.protocol_label.setText(
                f"<span style='color:#c62828'>invalid ({n} problem{'s' if n != 1 else ''}): "
                "fix it in the Designer</span>"
            )
        self._plan_preflight()
        self._update_buttons()

    @property
    def running(self) -> bool:
        """A session was started and its end has not reached the UI yet."""
        return self.runner is not None and not self.ended

    def _update_buttons(self) -> None:
        running = self.running
        can_start = (
            not running
            and self.check.ok
            and (self.rig.simulated or bool(self.animal_edit.text().strip()))
        )
        self.start_button.setEnabled(can_start)
        self.abort_button.setEnabled(running)
        for w in (*self._subject_widgets(), self.out_edit, self.speed_box):
            w.setEnabled(not running)

    def _subject_widgets(self) -> tuple[QWidget, ...]:
        return (
            self.animal_edit,
            self.sex_box,
            self.age_edit,
            self.weight_box,
            self.strain_edit,
            self.genotype_edit,
            self.experimenter_edit,
            self.institution_edit,
            self.lab_edit,
            self.notes_edit,
            self.subject_button,
        )

    def subject_data(self, animal: str) -> dict[str, Any] | None:
        """The subject as typed, with the keys of a subject file (``rig.files.subject``); an
        age that is a date is a date of birth. None when nothing but the ID was given."""
        subject: dict[str, Any] = {"subject_id": animal, "sex": self.sex_box.currentData()}
        age = self.age_edit.text().strip()
        if age:
            subject["date_of_birth" if AGE_IS_DATE.match(age) else "age"] = age
        for key, edit in (("strain", self.strain_edit), ("genotype", self.genotype_edit)):
            if edit.text().strip():
                subject[key] = edit.text().strip()
        if self.weight_box.value() > 0:
            subject["weight_g"] = round(self.weight_box.value(), 1)
        if self._subject_extra:
            subject = {**self._subject_extra, **subject}
        elif subject == {"subject_id": animal, "sex": "U"}:
            return None
        return subject

    def subject_and_metadata(self, animal: str) -> tuple[LoadedSubject | None, SessionMetadata]:
        """The subject and the session metadata as typed, validated by the core's models
        (:class:`InputError` naming each bad field, as a subject file would be)."""
        data = self.subject_data(animal)
        subject = None
        if data is not None:
            subject = subject_from_data(data, yaml.safe_dump(data, sort_keys=False), FORM)
        names = [n.strip() for n in self.experimenter_edit.text().split(";") if n.strip()]
        metadata = session_metadata(
            None,
            FORM,
            experimenter=names,
            institution=self.institution_edit.text().strip(),
            lab=self.lab_edit.text().strip(),
            notes=self.notes_edit.toPlainText().strip(),
        )
        return subject, metadata

    def load_subject_file(self, path: str | Path) -> None:
        """Fill the subject (and empty session fields) from a subject file."""
        loaded = load_subject(path)
        s, defaults = loaded.subject, loaded.session
        self.animal_edit.setText(s.subject_id)
        self.sex_box.setCurrentIndex(max(0, self.sex_box.findData(s.sex)))
        self.age_edit.setText(s.age or (s.date_of_birth.isoformat() if s.date_of_birth else ""))
        self.strain_edit.setText(s.strain or "")
        self.genotype_edit.setText(s.genotype or "")
        self.weight_box.setValue(s.weight_g or 0)
        self._subject_extra = {
            k: v
            for k, v in s.model_dump(mode="json").items()
            if k in ("species", "description") and v is not None
        }
        for edit, value in (
            (self.experimenter_edit, "; ".join(defaults.experimenter)),
            (self.institution_edit, defaults.institution or ""),
            (self.lab_edit, defaults.lab or ""),
        ):
            if not edit.text().strip():
                edit.setText(value)

    def _choose_subject(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Subject file", "", "Subject files (*.yaml *.yml);;All files (*)"
        )
        if not path:
            return
        try:
            self.load_subject_file(path)
        except InputError as exc:
            self._preflight_row(False, exc.report())

    def clear_subject(self) -> None:
        """The next animal starts blank: nothing typed for this one is kept (issue 20)."""
        for edit in (
            self.animal_edit,
            self.age_edit,
            self.strain_edit,
            self.genotype_edit,
            self.experimenter_edit,
            self.institution_edit,
            self.lab_edit,
        ):
            edit.clear()
        self._subject_extra = {}
        self.notes_edit.clear()
        self.weight_box.setValue(0)
        self.sex_box.setCurrentIndex(0)

    def _choose_out(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save sessions to", self.out_edit.text())
        if folder:
            self.out_edit.setText(folder)
            self._poll_disk()

    # ------------------------------------------------------------------ pre-flight
    def _plan_preflight(self) -> None:
        self.preflight_list.clear()
        self._preflight_device_rows = 0
        plan = self.check.plan
        if plan is None:
            for p in self.check.problems[:8]:
                self._preflight_row(False, f"{p.path}: {p.message}" if p.path else p.message)
            return
        limits = self.rig.safety
        t = self.check.totals() or {}
        self._preflight_row(True, f"protocol valid for rig {self.rig.name} [{self.rig.mode}]")
        self._preflight_row(
            True,
            f"{t.get('shocks', 0)} shocks ≤ {limits.max_shocks}; "
            f"current ≤ {limits.max_current_ma:g} mA; shock ≤ {limits.max_shock_s:g} s",
        )
        self._preflight_row(None, "devices are checked when the session starts")

    def _preflight_row(self, ok: bool | None, text: str) -> None:
        mark = {True: "✔", False: "✘", None: "…"}[ok]
        item = QListWidgetItem(f"{mark}  {text}")
        item.setForeground(pg.mkColor({True: "#1b7f3b", False: "#c62828", None: "#6b7480"}[ok]))
        item.setToolTip(text)
        self.preflight_list.addItem(item)

    # ------------------------------------------------------------------ run
    def start(self) -> None:
        """Start a session with the protocol as its file holds it (:attr:`prepare_run`)."""
        if self.check.plan is None or self.running or not self.start_button.isEnabled():
            return
        plan = self.prepare_run() if self.prepare_run is not None else self.check.plan
        if plan is None:  # not saved: nothing runs that is not in a file
            return
        animal = self.animal_edit.text().strip() or "sim-mouse"
        try:
            subject, metadata = self.subject_and_metadata(animal)
        except InputError as exc:  # shown where the checks are; nothing starts
            self._plan_preflight()
            for p in exc.problems:
                self._preflight_row(False, f"{p.path}: {p.message}" if p.path else p.message)
            return
        self._reset_run_view()
        speed = self.speed_box.currentData() if self.rig.simulated else 1.0
        request = RunRequest(
            plan=plan,
            out_dir=Path(self.out_edit.text()).expanduser(),
            animal=animal,
            subject=subject,
            metadata=metadata,
            speed=speed,
        )
        self.runner = SessionRunner(request, self)
        self.runner.updated.connect(self._drain)
        self.runner.failed.connect(self._failed)
        self.runner.finished.connect(self._finished)
        self.timeline = plan.timeline
        self._trace_timeline = plan.timeline
        self._show_timeline(plan.timeline)
        self._log_line(
            0.0, f"[{self.rig.mode}] {plan.protocol.protocol} for {animal} on {self.rig.name}"
        )
        self.runner.start()
        self._update_buttons()
        self.running_changed.emit(True)

    def abort(self, reason: str = "aborted by the user") -> None:
        """Ask the session to stop now; it drives the outputs low and disarms at its next step."""
        if self.runner is not None and self.running:
            self.runner.abort(reason)
            self.state_label.setText("aborting…")
            self.abort_button.setEnabled(False)

    def _clear_last_session(self) -> None:
        """Forget the last session's trace and result (the protocol has changed since)."""
        last = self.folder
        self._reset_run_view()
        self.runner = None
        self._trace_timeline = None
        for label in (self.phase_label, self.trial_label, self.next_cs_label):
            label.setText("-")
        self.next_shock_label.setText("-")
        self.clock_label.setText("-")
        self.progress_bar.setValue(0)
        self.state_label.setText("idle")
        self.state_label.setProperty("status", None)
        self.state_label.style().unpolish(self.state_label)
        self.state_label.style().polish(self.state_label)
        if last is not None:
            self.result_label.setText(
                f"The protocol changed: the last session's trace is no longer shown.<br>"
                f"It is in {escape(str(last))} (File ▸ Review a session)."
            )

    def _reset_run_view(self) -> None:
        self.log.clear()
        self._trace_t.clear()
        self._trace_motion.clear()
        self._trace_frozen.clear()
        self._threshold = math.nan
        self.threshold_line.hide()
        self.motion_curve.setData([], [])
        self.frozen_curve.setData([], [])
        self.trial_plot.getPlotItem().clear()
        self.result_label.setText("The per-trial freezing appears here after the session.")
        self.folder_button.setEnabled(False)
        self.rescore_button.setEnabled(False)
        self.folder = None
        self.result = None
        self.ended = False
        self.last_progress = None
        self.last_record = None
        self._rate_ref = None
        self.stream_table.setRowCount(0)
        self._plan_preflight()

    def _show_timeline(self, timeline: Timeline) -> None:
        plot = self.trace.getPlotItem()
        for item in self._shading:
            plot.removeItem(item)
        self._shading = add_stimulus_shading(plot, timeline)
        n = len(timeline.trials)
        trials = self.trial_plot.getPlotItem()
        trials.setXRange(0.3, max(n, 1) + 0.7, padding=0)
        step = max(1, n // 15)
        trials.getAxis("bottom").setTicks([[(k, str(k)) for k in range(1, n + 1, step)]])
        if not self.running:
            plot.setXRange(0, min(timeline.duration_s, TRACE_WINDOW_S), padding=0.01)

    def _drain(self) -> None:
        if self.runner is None:
            return
        d = self.runner.drain()
        for state in d.states:
            self.state_label.setText(state)
        for event in d.events:
            self._on_event(event)
        if d.freezing:
            self._on_freezing(d.freezing)
        for stream, image in d.frames.items():
            self._frame_bytes[stream] = int(image.nbytes)
            if stream == "video":
                self.video.show_frame(image)
            elif stream == "imaging":
                self.imaging.show_frame(image)
        if d.progress is not None:
            self._on_progress(d.progress)

    def _on_progress(self, p: Progress) -> None:
        self.last_progress = p
        self.phase_label.setText(p.phase or "-")
        self.trial_label.setText(f"{p.trial} / {p.n_trials}")
        self.next_cs_label.setText(_countdown(p.next_cs_in_s))
        self.next_shock_label.setText(_countdown(p.next_shock_in_s))
        self.clock_label.setText(f"{fmt_duration(p.t_s)} / {fmt_duration(p.duration_s)}")
        self.progress_bar.setValue(int(1000 * p.t_s / p.duration_s) if p.duration_s else 0)
        self.stream_table.setRowCount(len(p.frames))
        for row, (name, counts) in enumerate(sorted(p.frames.items())):
            values = [name, counts["received"], counts["written"], counts["dropped"]]
            for col, value in enumerate(values):
                item = QTableWidgetItem(f"{value:,}" if isinstance(value, int) else value)
                if col:
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                if col == 3 and value:
                    item.setForeground(pg.mkColor("#c62828"))
                self.stream_table.setItem(row, col, item)
        written = sum(c["written"] * self._frame_bytes.get(n, 0) for n, c in p.frames.items())
        now = time.monotonic()
        if self._rate_ref is None:
            self._rate_ref = (now, written)
        elif now - self._rate_ref[0] >= 1.0:
            rate = (written - self._rate_ref[1]) / (now - self._rate_ref[0])
            fps = sum(c["written"] for c in p.frames.values())
            self.write_label.setText(f"write rate {fmt_bytes(rate)}/s (raw) · {fps:,} frames")
            self._rate_ref = (now, written)
        if self._trace_t:
            last = self._trace_t[-1]
            self.trace.getPlotItem().setXRange(
                max(0.0, last - TRACE_WINDOW_S), max(last, TRACE_WINDOW_S), padding=0
            )

    def _on_event(self, e: dict) -> None:
        kind = e.get("kind", "")
        if kind == "preflight":
            self._preflight_row(bool(e.get("ok")), e.get("detail", ""))
            return
        text = EVENT_TEXT.get(kind, kind)
        parts = [text]
        if kind == "phase_start":
            parts.append(str(e.get("phase")))
        if e.get("stimulus"):
            trial = e.get("trial")
            parts.append(
                f"{e['stimulus']}" + (f" (trial {trial + 1})" if trial is not None else "")
            )
        if e.get("detail"):
            parts.append(str(e["detail"]))
        if e.get("scheduled_s") is not None and kind in ("cs_on", "us_on"):
            late_ms = (e["t_s"] - e["scheduled_s"]) * 1000
            parts.append(f"[{late_ms:+.2f} ms]")
        self._log_line(e.get("t_s", 0.0), "  ".join(parts), fault=kind == "fault")

    def _log_line(self, t_s: float, text: str, fault: bool = False) -> None:
        line = f"{t_s:9.3f} s  {text}"
        if fault:
            self.log.appendHtml(f"<span style='color:#c62828'><b>{escape(line)}</b></span>")
        else:
            self.log.appendPlainText(line)

    def _on_freezing(self, samples: list[FreezingSample]) -> None:
        for s in samples:
            self._trace_t.append(s.t_s)
            self._trace_motion.append(s.motion)
            self._trace_frozen.append(s.frozen)
        self._threshold = samples[-1].threshold
        t = np.asarray(self._trace_t)
        motion = np.asarray(self._trace_motion, float)
        self.motion_curve.setData(t, motion, connect="finite")
        finite = motion[np.isfinite(motion)]
        top = float(np.nanmax(finite)) * 1.08 if finite.size else 1.0
        frozen = np.where(np.asarray(self._trace_frozen), top, np.nan)
        self.frozen_curve.setData(t, frozen, connect="finite")
        if math.isfinite(self._threshold):
            self.threshold_line.setValue(self._threshold)
            self.threshold_line.show()

    def _failed(self, message: str) -> None:
        self._log_line(0.0, f"could not run: {message}", fault=True)

    def _finished(self, folder: Path | None, result: Any) -> None:
        self._drain()
        self.folder, self.result = folder, result
        self.ended = True
        if result is not None:
            self.state_label.setText(result.status)
            self.state_label.setProperty("status", result.status)
            self.state_label.style().unpolish(self.state_label)
            self.state_label.style().polish(self.state_label)
            self.result_label.setText(
                f"<b>{result.status}</b>: {escape(result.reason)} · {result.duration_s:.1f} s · "
                f"{result.shocks_delivered} shocks<br>{escape(str(folder))}"
            )
        else:
            self.state_label.setText("failed")
            self.result_label.setText(
                "<b>the session could not run</b> (see the event log)"
                + (f"<br>{escape(str(folder))}" if folder is not None else "")
            )
        self.folder_button.setEnabled(folder is not None)
        self.abort_button.setEnabled(False)
        # nothing is coming any more: countdowns that kept their last value would mislead
        self.next_cs_label.setText("—")
        self.next_shock_label.setText("—")
        if folder is not None:
            self.clear_subject()  # notes, experimenter, subject: never carried to the next animal
        if self.timeline is not None and self._trace_t:
            self.trace.getPlotItem().setXRange(0, self.timeline.duration_s, padding=0.01)
        if folder is not None and result is not None:
            regions = self.video.regions() if self.video.regions_differ_from_rig() else None
            self._background.submit("score", _rescore, folder, regions)
            self.result_label.setText(self.result_label.text() + "<br>scoring freezing…")
        self._update_buttons()
        self.running_changed.emit(False)
        self.session_finished.emit(folder, result)

    # ------------------------------------------------------------------ after
    def rescore(self) -> None:
        if self.folder is None or self.running:
            return
        self.rescore_button.setEnabled(False)
        self._background.submit("score", _rescore, self.folder, self.video.regions())

    def _regions_changed(self) -> None:
        self.rescore_button.setEnabled(self.folder is not None and not self.running)

    def _background_done(self, tag: str, outcome: Any) -> None:
        if tag == "disk":
            if not isinstance(outcome, Exception):
                self.disk_label.setText(f"free disk {fmt_bytes(outcome)}")
            return
        if tag == "score":
            self.rescore_button.setEnabled(self.folder is not None)
            if isinstance(outcome, Exception):
                self.result_label.setText(
                    self.result_label.text().replace("<br>scoring freezing…", "")
                    + f"<br>freezing not scored: {escape(str(outcome))}"
                )
                return
            self.last_record = outcome
            self._show_trial_freezing(outcome)

    def _show_trial_freezing(self, record: dict[str, Any] | None) -> None:
        text = self.result_label.text().replace("<br>scoring freezing…", "")
        plot = self.trial_plot.getPlotItem()
        plot.clear()
        if not record:
            self.result_label.setText(text + "<br>no freezing score for this session")
            return
        rows = freezing_summary(record)
        colors = stimulus_colors(self.timeline) if self.timeline is not None else {}
        xs = [r["index"] + 1 for r in rows if r.get("percent_cs") is not None]
        ys = [r["percent_cs"] for r in rows if r.get("percent_cs") is not None]
        brushes = [
            pg.mkBrush(colors.get(r["cs"], CS_MINUS))
            for r in rows
            if r.get("percent_cs") is not None
        ]
        if xs:
            plot.addItem(
                pg.BarGraphItem(
                    x=xs, height=ys, width=0.7, brushes=brushes, pen=pg.mkPen("#333333")
                )
            )
            n = len(self.timeline.trials) if self.timeline is not None else max(xs)
            plot.setXRange(0.3, max(n, max(xs)) + 0.7, padding=0)  # an aborted run: all trials
        plot.setYRange(0, 100, padding=0.02)
        auto = " (auto)" if record.get("threshold_auto") else ""
        self.result_label.setText(
            text + f"<br>threshold {record['threshold']:.4g}{auto}; "
            f"{record.get('percent_frozen') or 0:.1f}% of the session frozen"
        )

    def _open_folder(self) -> None:
        if self.folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.folder)))

    def _poll_disk(self) -> None:
        self._background.submit("disk", _free_disk, Path(self.out_edit.text()).expanduser())

    def shutdown(self) -> None:
        self._disk_timer.stop()
        self._background.shutdown()


AGE_IS_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _form_label(text: str) -> QLabel:
    label = QLabel(text)
    label.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
    return label


def _countdown(seconds: float | None) -> str:
    if seconds is None:
        return "none left"
    return f"{seconds:5.1f} s" if seconds < 60 else fmt_duration(seconds)
