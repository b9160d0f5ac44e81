"""The Rig menu's set-up helpers: speaker calibration assistant, tone test, shock test.

They run the core's own programs (:mod:`rig.run.output_test`): compiled and checked like a
session (speaker calibration, ``max_level_db``, the shock safety verifier against the rig
file's limits), run on the session runner in a worker thread, refused while a session holds
the rig. The main window disables the menu while its console runs a session; the rig's lock
refuses them anyway (another process's session included).
"""

from __future__ import annotations

import threading
from html import escape
from pathlib import Path
from typing import Any

from PyQt5.QtCore import QObject, Qt, pyqtSignal
from PyQt5.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from rig.files.inputfile import InputError, error_line
from rig.files.rigfile import DEFAULT_RIG_NAME, CalibrationPoint, RigFile
from rig.run.abort import Abort
from rig.run.output_test import (
    OutputTestResult,
    calibration_tone_plan,
    run_output_test,
    shock_test_plan,
    tone_test_plan,
)
from rig.run.speaker_calibration import write_speaker_calibration

DEFAULT_FREQUENCIES_HZ = (2000.0, 4000.0, 7500.0, 12000.0)


class _Worker(QObject):
    """Runs one output test in a thread; ``done`` carries the result or the exception."""

    done = pyqtSignal(object)

    def start(self, kind: str, plan: Any, speed: float | None, abort: Abort) -> None:
        def work() -> None:
            try:
                outcome: Any = run_output_test(kind, plan, speed, abort)  # type: ignore[arg-type]
            except Exception as exc:  # a device that fails, a busy rig: shown, never raised
                outcome = exc
            self.done.emit(outcome)

        threading.Thread(target=work, name=f"rig-{kind}-test", daemon=True).start()


def _box(lo: float, hi: float, value: float, suffix: str, decimals: int = 2) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(decimals)
    box.setValue(value)
    box.setSuffix(suffix)
    return box


def _outcome_text(outcome: Any) -> str:
    if isinstance(outcome, InputError):
        return f"<span style='color:#c62828'>{escape(outcome.report())}</span>"
    if isinstance(outcome, Exception):
        return f"<span style='color:#c62828'>{escape(error_line(outcome))}</span>"
    assert isinstance(outcome, OutputTestResult)
    color = "#1b7f3b" if outcome.ok else "#c62828"
    return f"<span style='color:{color}'>{escape(outcome.summary)}</span>"


class OutputTestDialog(QDialog):
    """A tone test or a shock test into a load."""

    finished_test = pyqtSignal(object)  # OutputTestResult or the exception

    def __init__(self, kind: str, rig: RigFile, parent: QWidget | None = None):
        super().__init__(parent)
        self.kind, self.rig = kind, rig
        self.speed: float | None = 1.0  # real time; tests set None on a simulated rig
        self.abort_request: Abort | None = None
        self.outcome: Any = None
        limits = rig.safety
        self.setWindowTitle(
            f"{'Tone' if kind == 'tone' else 'Shock'} test · {rig.name} [{rig.mode}]"
        )
        form = QFormLayout()
        if kind == "tone":
            self.frequency = _box(1, 200_000, 7500, " Hz", 0)
            self.level = _box(0, limits.max_level_db, min(75.0, limits.max_level_db), " dB SPL", 1)
            self.duration = _box(0.1, 60, 2.0, " s")
            form.addRow("Frequency", self.frequency)
            form.addRow("Level", self.level)
            form.addRow("Duration", self.duration)
        else:
            self.current = _box(0.01, 100, min(0.5, limits.max_current_ma), " mA")
            self.duration = _box(0.01, 60, min(1.0, limits.max_shock_s), " s")
            self.count = QSpinBox()
            self.count.setRange(1, 1000)
            self.interval = _box(0.1, 600, 5.0, " s")
            form.addRow("Current", self.current)
            form.addRow("Duration", self.duration)
            form.addRow("Shocks", self.count)
            form.addRow("Onset to onset", self.interval)
            self.load_check = QCheckBox("The output is connected to a test load, not an animal")
            self.load_check.toggled.connect(self._update)
            form.addRow(self.load_check)
            form.addRow(
                QLabel(
                    f"Limits of this rig file: ≤ {limits.max_current_ma:g} mA, "
                    f"≤ {limits.max_shock_s:g} s each, ≥ {limits.min_shock_gap_s:g} s apart, "
                    f"≤ {limits.max_shocks} shocks"
                )
            )
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.run_button = QPushButton("Play tone" if kind == "tone" else "Deliver shocks")
        self.run_button.clicked.connect(self.run_test)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.result_label)
        layout.addLayout(buttons)
        self._worker = _Worker(self)
        self._worker.done.connect(self._done)
        self._update()

    def _update(self) -> None:
        running = self.abort_request is not None
        ready = self.kind == "tone" or self.load_check.isChecked()
        self.run_button.setEnabled(ready and not running)
        self.stop_button.setEnabled(running)

    def plan(self) -> Any:
        if self.kind == "tone":
            return tone_test_plan(
                self.rig, self.frequency.value(), self.level.value(), self.duration.value()
            )
        return shock_test_plan(
            self.rig,
            self.current.value(),
            self.duration.value(),
            self.count.value(),
            self.interval.value(),
        )

    def run_test(self) -> None:
        if self.abort_request is not None:
            return
        try:
            plan = self.plan()  # checked here: the limits refuse before anything is built
        except InputError as exc:
            self._show(exc)
            return
        self.abort_request = Abort()
        self.result_label.setText("running…")
        self._update()
        self._worker.start(self.kind, plan, self.speed, self.abort_request)

    def stop(self) -> None:
        if self.abort_request is not None:
            self.abort_request("stopped by the user")

    def _done(self, outcome: Any) -> None:
        self.abort_request = None
        self._show(outcome)
        self._update()
        self.finished_test.emit(outcome)

    def _show(self, outcome: Any) -> None:
        self.outcome = outcome
        self.result_label.setText(_outcome_text(outcome))

    def reject(self) -> None:
        self.stop()  # closing the dialog never leaves an output playing
        super().reject()


class SpeakerCalibrationDialog(QDialog):
    """Play each frequency at a fixed voltage; type what the meter reads; write the table."""

    played = pyqtSignal(object)  # OutputTestResult or the exception

    def __init__(self, rig: RigFile, parent: QWidget | None = None):
        super().__init__(parent)
        self.rig = rig
        self.speed: float | None = 1.0
        self.written: Path | None = None
        self.abort_request: Abort | None = None
        self.setWindowTitle(f"Speaker calibration · {rig.name} [{rig.mode}]")
        self.volts = _box(0.001, 10, 0.1, " V RMS", 3)
        self.duration = _box(0.5, 60, 3.0, " s", 1)
        form = QFormLayout()
        form.addRow("Play each tone at", self.volts)
        form.addRow("for", self.duration)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["frequency (Hz)", "", "measured (dB SPL)"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.table.verticalHeader().hide()
        existing = [p.frequency_hz for p in rig.speaker.calibration if p.frequency_hz > 0]
        for f in existing or DEFAULT_FREQUENCIES_HZ:
            self.add_row(f)
        add = QPushButton("+ Frequency")
        add.clicked.connect(lambda: self.add_row(1000.0))
        self.status = QLabel(
            "Put the meter where the animal's head will be. Play a tone, type the level it reads."
        )
        self.status.setWordWrap(True)
        self.write_button = QPushButton("Write to rig file")
        self.write_button.clicked.connect(self.write)
        can_write = bool(rig.file) and rig.file != DEFAULT_RIG_NAME
        self.write_button.setEnabled(can_write)
        if not can_write:
            self.write_button.setToolTip("The built-in simulated rig has no file: open a rig file")
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.table, 1)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addStretch(1)
        row.addWidget(self.write_button)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self._worker = _Worker(self)
        self._worker.done.connect(self._done)
        self.resize(560, 420)

    def add_row(self, frequency_hz: float) -> None:
        r = self.table.rowCount()
        self.table.insertRow(r)
        freq = _box(20, 100_000, frequency_hz, "", 0)
        play = QPushButton("▶ Play")
        play.clicked.connect(lambda: self.play(freq.value()))
        level = _box(0, 140, 0, "", 1)
        level.setSpecialValueText("-")  # 0: not measured
        for col, w in enumerate((freq, play, level)):
            self.table.setCellWidget(r, col, w)

    def rows(self) -> list[tuple[float, float]]:
        """(frequency_hz, measured dB SPL or 0) per row."""
        out = []
        for r in range(self.table.rowCount()):
            freq, level = self.table.cellWidget(r, 0), self.table.cellWidget(r, 2)
            out.append((freq.value(), level.value()))
        return out

    def set_measured(self, row: int, level_db: float) -> None:
        self.table.cellWidget(row, 2).setValue(level_db)

    def play(self, frequency_hz: float) -> None:
        if self.abort_request is not None:
            return
        try:
            plan = calibration_tone_plan(
                self.rig, frequency_hz, self.volts.value(), self.duration.value()
            )
        except InputError as exc:
            self.status.setText(_outcome_text(exc))
            return
        self.abort_request = Abort()
        self.status.setText(f"playing {frequency_hz:g} Hz at {self.volts.value():g} V RMS…")
        self._worker.start("calibration", plan, self.speed, self.abort_request)

    def _done(self, outcome: Any) -> None:
        self.abort_request = None
        self.status.setText(_outcome_text(outcome))
        self.played.emit(outcome)

    def measured(self) -> list[CalibrationPoint]:
        volts = self.volts.value()
        return [
            CalibrationPoint(frequency_hz=f, volts=volts, level_db=db)
            for f, db in self.rows()
            if db > 0
        ]

    def write(self) -> bool:
        points = self.measured()
        if not points:
            self.status.setText("Type a measured level for at least one frequency first.")
            return False
        try:
            write_speaker_calibration(self.rig.file, points)
        except (InputError, OSError) as exc:
            self.status.setText(_outcome_text(exc))
            return False
        self.written = Path(self.rig.file)
        self.status.setText(
            f"<span style='color:#1b7f3b'>{len(points)} point(s) written to "
            f"{escape(self.rig.file)} (the old file is kept as .bak)</span>"
        )
        self.accept()
        return True

    def reject(self) -> None:
        if self.abort_request is not None:
            self.abort_request("closed")
        super().reject()


__all__ = ["OutputTestDialog", "SpeakerCalibrationDialog"]
