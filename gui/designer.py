"""The protocol designer: a form for every field of the protocol format, checked as you type.

The form edits :class:`gui.document.ProtocolDocument` data. Every change re-runs the core's own
check (models, cross-field rules, compile, the rig's safety limits); problems mark the field
they name and are listed under the preview; the timeline preview and totals follow the protocol.
Structural edits (adding a stimulus, a phase, a trial; changing a kind) rebuild the form.
What ``rig validate`` warns about (a microscope rig with no imaging recorded) shows in amber
under the check's status.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from PyQt5.QtCore import Qt, QTimer, pyqtSignal
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui.document import Check, ProtocolDocument
from gui.fields import FieldMarks, as_dict, int_box, number_box, plain_number
from gui.timeline_plot import TimelinePlot
from rig.files.inputfile import Problem
from rig.files.protocol import (
    ExponentialParams,
    ImagingRecording,
    Phase,
    Pips,
    Protocol,
    Shock,
    Tone,
    TrialEntry,
    VideoRecording,
    WhiteNoise,
)
from rig.files.rigfile import RigFile
from rig.run.plan import fmt_bytes, fmt_duration

STIMULUS_DEFAULTS: dict[str, dict[str, Any]] = {
    "tone": {"type": "tone", "frequency_hz": 4000, "level_db": 75, "duration_s": 30, "ramp_ms": 5},
    "white_noise": {"type": "white_noise", "level_db": 70, "duration_s": 30},
    "shock": {"type": "shock", "current_ma": 0.5, "duration_s": 1.0},
}
STIMULUS_LABELS = {"tone": "Tone", "white_noise": "White noise", "shock": "Shock"}
ORDERS = ("sequential", "pseudorandom", "shuffled")
ITI_KINDS = ("fixed", "uniform", "exponential")
ITI_LABELS = {"fixed": "fixed", "uniform": "uniform [low, high]", "exponential": "exponential"}


def _label(text: str) -> QLabel:
    label = QLabel(text)
    label.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
    return label


def _small_button(text: str, tip: str) -> QToolButton:
    b = QToolButton()
    b.setText(text)
    b.setToolTip(tip)
    b.setAutoRaise(True)
    return b


class DesignerWidget(QWidget):
    """The designer tab. ``checked`` is emitted after every check with its result."""

    checked = pyqtSignal(object)  # Check
    changed = pyqtSignal()

    def __init__(self, document: ProtocolDocument, rig: RigFile, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.rig = rig
        self.check: Check = Check(None, [])
        self.marks = FieldMarks()
        self._rebuild_pending = False

        self.form_host = QWidget()
        self.form_layout = QVBoxLayout(self.form_host)
        self.form_layout.setContentsMargins(8, 8, 8, 8)
        self.form_layout.setSpacing(10)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form_host)
        scroll.setFrameShape(QFrame.NoFrame)
        self.scroll = scroll

        self.preview = TimelinePlot()
        self.preview.setMinimumHeight(260)
        self.hover_label = QLabel("Hover over the timeline for times; drag or scroll to zoom.")
        self.hover_label.setObjectName("hint")
        self.totals_labels: dict[str, QLabel] = {}
        totals_box = QGroupBox("Totals")
        grid = QGridLayout(totals_box)
        for i, (key, title) in enumerate(
            [
                ("duration", "Duration"),
                ("trials", "Trials"),
                ("shocks", "Shocks"),
                ("video", "Video frames"),
                ("imaging", "Imaging frames"),
                ("disk", "Disk (estimate)"),
            ]
        ):
            name = QLabel(title)
            name.setObjectName("totalName")
            value = QLabel("-")
            value.setObjectName("totalValue")
            value.setTextInteractionFlags(Qt.TextSelectableByMouse)
            # three to a row: the preview pane fits beside the form at 1366x768
            grid.addWidget(name, 2 * (i // 3), i % 3)
            grid.addWidget(value, 2 * (i // 3) + 1, i % 3)
            self.totals_labels[key] = value
        self.status_label = QLabel()
        self.status_label.setObjectName("checkStatus")
        self.status_label.setWordWrap(True)
        self.warning_label = QLabel()  # what rig validate warns about, e.g. no imaging
        self.warning_label.setObjectName("checkWarning")
        self.warning_label.setWordWrap(True)
        self.warning_label.hide()
        self.problem_list = QListWidget()
        self.problem_list.setObjectName("problems")
        self.problem_list.itemActivated.connect(self._focus_problem)
        self.problem_list.itemClicked.connect(self._focus_problem)

        preview_box = QGroupBox("Timeline preview")
        pv = QVBoxLayout(preview_box)
        pv.addWidget(self.preview, 1)
        pv.addWidget(self.hover_label)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(4, 8, 8, 8)
        rl.addWidget(preview_box, 3)
        rl.addWidget(totals_box)
        rl.addWidget(self.status_label)
        rl.addWidget(self.warning_label)
        rl.addWidget(self.problem_list, 1)
        self.preview.hovered.connect(self.hover_label.setText)

        splitter = QSplitter(Qt.Horizontal)
        splitter.setObjectName("designerSplitter")  # its state is saved with the window
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(scroll)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 5)
        splitter.setStretchFactor(1, 6)
        splitter.setSizes([760, 840])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

        self._check_timer = QTimer(self)
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(0)
        self._check_timer.timeout.connect(self.run_check)
        self.rebuild()

    # ------------------------------------------------------------------ public
    def set_document(self, document: ProtocolDocument) -> None:
        self.document = document
        self.rebuild()

    def set_rig(self, rig: RigFile) -> None:
        self.rig = rig
        self.run_check()

    @property
    def data(self) -> dict[str, Any]:
        return self.document.data

    def run_check(self) -> Check:
        """Check the protocol now; marks fields, updates the preview, totals and problems."""
        self.check = self.document.check(self.rig)
        self.marks.show(self.check.problems)
        self._show_problems(self.check.problems)
        warnings = self.check.warnings()
        self.warning_label.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.warning_label.setVisible(bool(warnings))
        if self.check.plan is not None:
            self.preview.show_timeline(self.check.plan.timeline)
        else:
            self.preview.show_timeline(None)
        self._show_totals()
        self.checked.emit(self.check)
        return self.check

    # ------------------------------------------------------------------ editing
    def _edited(self) -> None:
        self.changed.emit()
        self.run_check()

    def _set(self, container: dict[str, Any], key: str, value: Any) -> None:
        if value is None:
            container.pop(key, None)
        else:
            container[key] = value
        self._edited()

    def _structural(self, change: Callable[[], None]) -> None:
        change()
        self.changed.emit()
        # Rebuild after the signal that caused it has returned: the sender is deleted.
        if not self._rebuild_pending:
            self._rebuild_pending = True
            QTimer.singleShot(0, self.rebuild)

    def rebuild(self) -> None:
        """Build the form from the data (after a structural change or a new document)."""
        self._rebuild_pending = False
        scroll_pos = self.scroll.verticalScrollBar().value()
        while self.form_layout.count():
            item = self.form_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.marks.clear_registry()
        self.marks.register("", self.form_host)
        self.form_layout.addWidget(self._protocol_box())
        self.form_layout.addWidget(self._stimuli_box())
        self.form_layout.addWidget(self._phases_box())
        self.form_layout.addStretch(1)
        # the form never scrolls sideways: its pane is at least as wide as the form needs
        bar = self.scroll.verticalScrollBar().sizeHint().width()
        self.scroll.setMinimumWidth(self.form_host.minimumSizeHint().width() + bar + 4)
        self.run_check()
        QTimer.singleShot(0, lambda: self.scroll.verticalScrollBar().setValue(scroll_pos))

    # ------------------------------------------------------------------ protocol
    def _protocol_box(self) -> QGroupBox:
        d = self.data
        box = QGroupBox("Protocol")
        form = QGridLayout(box)
        name = QLineEdit(str(d.get("protocol", "")))
        name.setPlaceholderText("letters, digits, - _ .")
        name.setToolTip("The protocol's name (stored with every session).")
        name.textEdited.connect(lambda t: self._set(d, "protocol", t))
        self.marks.register("protocol", name)
        seed = number_box(Protocol, "seed", d.get("seed") if _is_num(d.get("seed")) else 0, 0)
        seed.setToolTip("ITI draws and the trial order are reproducible from the seed.")
        seed.valueChanged.connect(lambda v: self._set(d, "seed", int(v)))
        self.marks.register("seed", seed)
        version = int_box(Protocol, "version", d.get("version", 1))
        version.valueChanged.connect(lambda v: self._set(d, "version", v))
        self.marks.register("version", version)
        desc = QPlainTextEdit(str(d.get("description", "") or ""))
        desc.setFixedHeight(54)
        desc.textChanged.connect(lambda: self._set(d, "description", desc.toPlainText() or None))
        self.marks.register("description", desc)
        # read without adding a ``recording:`` the file does not have (that would make a file
        # that was just opened unsaved); the section is made when a recording field is edited
        shown = as_dict(d.get("recording"))

        def rec() -> dict[str, Any]:
            if not isinstance(d.get("recording"), dict):
                d["recording"] = {"video": {"fps": 30}}
            return d["recording"]

        video = as_dict(shown.get("video"))
        fps = number_box(VideoRecording, "fps", video.get("fps", 30), 1)
        fps.setSuffix(" fps")
        fps.valueChanged.connect(
            lambda v: self._set(
                rec(), "video", {**as_dict(rec().get("video")), "fps": plain_number(v)}
            )
        )
        self.marks.register("recording.video.fps", fps)
        imaging = as_dict(shown.get("imaging"))
        img_on = QCheckBox("two-photon imaging at")
        img_on.setChecked("imaging" in shown)
        img_rate = number_box(ImagingRecording, "frame_rate_hz", imaging.get("frame_rate_hz", 30))
        img_rate.setEnabled("imaging" in shown)

        def imaging_changed() -> None:
            img_rate.setEnabled(img_on.isChecked())
            value = (
                {"frame_rate_hz": plain_number(img_rate.value())} if img_on.isChecked() else None
            )
            self._set(rec(), "imaging", value)

        img_on.toggled.connect(imaging_changed)
        img_rate.valueChanged.connect(imaging_changed)
        self.marks.register("recording.imaging.frame_rate_hz", img_rate)
        self.marks.register("recording", img_on)
        # three narrow rows: the whole box fits the form pane at 1366x768 without a scrollbar
        form.addWidget(_label("Name"), 0, 0)
        form.addWidget(name, 0, 1, 1, 3)
        form.addWidget(_label("Version"), 1, 0)
        form.addWidget(version, 1, 1)
        form.addWidget(_label("Seed"), 1, 2)
        form.addWidget(seed, 1, 3)
        form.addWidget(_label("Video"), 2, 0)
        form.addWidget(fps, 2, 1)
        row = QHBoxLayout()
        row.addWidget(img_on)
        row.addWidget(img_rate, 1)
        form.addLayout(row, 2, 2, 1, 2)
        form.addWidget(_label("Description"), 3, 0, Qt.AlignTop | Qt.AlignRight)
        form.addWidget(desc, 3, 1, 1, 3)
        form.setColumnStretch(1, 1)
        form.setColumnStretch(3, 1)
        return box

    # ------------------------------------------------------------------ stimuli
    def _stimuli_box(self) -> QGroupBox:
        stimuli = self.data.setdefault("stimuli", {})
        box = QGroupBox("Stimuli")
        self.marks.register("stimuli", box)
        layout = QVBoxLayout(box)
        for name in list(stimuli):
            layout.addWidget(self._stimulus_row(stimuli, name))
        buttons = QHBoxLayout()
        for kind in STIMULUS_DEFAULTS:
            b = QPushButton(f"+ {STIMULUS_LABELS[kind]}")
            b.clicked.connect(
                lambda _=False, k=kind: self._structural(lambda: self._add_stimulus(k))
            )
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        return box

    def _add_stimulus(self, kind: str) -> None:
        stimuli = self.data.setdefault("stimuli", {})
        base = {"tone": "tone", "white_noise": "noise", "shock": "shock"}[kind]
        name, k = base, 2
        while name in stimuli:
            name, k = f"{base}_{k}", k + 1
        stimuli[name] = copy.deepcopy(STIMULUS_DEFAULTS[kind])

    def _stimulus_row(self, stimuli: dict[str, Any], name: str) -> QFrame:
        stim = stimuli[name] if isinstance(stimuli[name], dict) else {}
        kind = stim.get("type", "tone")
        model = {"tone": Tone, "white_noise": WhiteNoise, "shock": Shock}.get(kind, Tone)
        path = f"stimuli.{name}"
        frame = QFrame()
        frame.setObjectName("card")
        grid = QGridLayout(frame)
        grid.setContentsMargins(8, 6, 8, 6)
        name_edit = QLineEdit(name)
        name_edit.setFixedWidth(110)
        name_edit.setToolTip("The name trials refer to. Press Enter to rename.")
        name_edit.editingFinished.connect(
            lambda: self._rename_stimulus(name, name_edit.text().strip())
        )
        self.marks.register(path, name_edit)
        type_box = QComboBox()
        for k, label in STIMULUS_LABELS.items():
            type_box.addItem(label, k)
        type_box.setCurrentIndex(
            list(STIMULUS_LABELS).index(kind) if kind in STIMULUS_LABELS else 0
        )
        type_box.activated.connect(
            lambda i: self._structural(
                lambda: stimuli.__setitem__(
                    name, copy.deepcopy(STIMULUS_DEFAULTS[type_box.itemData(i)])
                )
            )
        )
        self.marks.register(f"{path}.type", type_box)
        remove = _small_button("✕", f"Remove {name}")
        remove.clicked.connect(lambda: self._structural(lambda: stimuli.pop(name, None)))
        grid.addWidget(name_edit, 0, 0, 1, 2)
        grid.addWidget(type_box, 0, 2, 1, 2)
        fields = {
            "tone": ["frequency_hz", "level_db", "duration_s", "ramp_ms"],
            "white_noise": ["level_db", "duration_s", "ramp_ms"],
            "shock": ["current_ma", "duration_s"],
        }.get(kind, [])
        titles = {
            "frequency_hz": "freq",
            "level_db": "level",
            "duration_s": "duration",
            "ramp_ms": "ramp",
            "current_ma": "current",
        }
        # name, kind and remove on the first row, the values two per row below: a card is
        # never wider than the form pane
        for k, field in enumerate(fields):
            default = model.model_fields[field].default
            value = stim.get(field, default if _is_num(default) else None)
            box = number_box(model, field, value if _is_num(value) else None)
            if field == "frequency_hz":
                box.setDecimals(0)
            box.valueChanged.connect(lambda v, f=field: self._set(stim, f, plain_number(v)))
            self.marks.register(f"{path}.{field}", box)
            row, col = 1 + k // 2, 2 * (k % 2)
            grid.addWidget(_label(titles[field]), row, col)
            grid.addWidget(box, row, col + 1)
        grid.addWidget(remove, 0, 4, Qt.AlignRight)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        if kind == "tone":
            pips = as_dict(stim.get("pips"))
            pip_on = QCheckBox("pip train:")
            pip_on.setChecked("pips" in stim)
            rate = number_box(Pips, "rate_hz", pips.get("rate_hz", 1), 2)
            on_s = number_box(Pips, "on_s", pips.get("on_s", 0.25), 3)
            for w in (rate, on_s):
                w.setEnabled("pips" in stim)

            def pips_changed() -> None:
                rate.setEnabled(pip_on.isChecked())
                on_s.setEnabled(pip_on.isChecked())
                value = (
                    {"rate_hz": plain_number(rate.value()), "on_s": plain_number(on_s.value())}
                    if pip_on.isChecked()
                    else None
                )
                self._set(stim, "pips", value)

            pip_on.toggled.connect(pips_changed)
            rate.valueChanged.connect(pips_changed)
            on_s.valueChanged.connect(pips_changed)
            # the model's pip rule (on_s shorter than the period) is reported on ``pips``
            self.marks.register(f"{path}.pips", on_s)
            self.marks.register(f"{path}.pips.rate_hz", rate)
            self.marks.register(f"{path}.pips.on_s", on_s)
            pip_row = QHBoxLayout()
            for w in (pip_on, _label("rate"), rate, _label("on"), on_s):
                pip_row.addWidget(w)
            pip_row.addStretch(1)
            grid.addLayout(pip_row, 3, 0, 1, 5)
        return frame

    def _rename_stimulus(self, old: str, new: str) -> None:
        stimuli = self.data.get("stimuli", {})
        if not new or new == old or old not in stimuli:
            return
        if new in stimuli:
            self.run_check()
            return

        def rename() -> None:
            self.data["stimuli"] = {(new if k == old else k): v for k, v in stimuli.items()}
            for phase in self.data.get("phases", []):
                for entry in as_dict(phase).get("trials", None) or []:
                    for key in ("cs", "us"):
                        if isinstance(entry, dict) and entry.get(key) == old:
                            entry[key] = new

        self._structural(rename)

    # ------------------------------------------------------------------ phases
    def _phases_box(self) -> QGroupBox:
        phases = self.data.setdefault("phases", [])
        box = QGroupBox("Phases (run in this order)")
        self.marks.register("phases", box)
        layout = QVBoxLayout(box)
        for i in range(len(phases)):
            layout.addWidget(self._phase_card(phases, i))
        buttons = QHBoxLayout()
        add_block = QPushButton("+ Block without stimuli")
        add_block.clicked.connect(
            lambda: self._structural(
                lambda: phases.append({"name": self._new_phase_name("baseline"), "duration_s": 180})
            )
        )
        add_trials = QPushButton("+ Phase with trials")
        add_trials.clicked.connect(
            lambda: self._structural(lambda: phases.append(self._new_trials_phase()))
        )
        buttons.addWidget(add_block)
        buttons.addWidget(add_trials)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        return box

    def _new_phase_name(self, base: str) -> str:
        names = {as_dict(p).get("name") for p in self.data.get("phases", [])}
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        return name

    def _new_trials_phase(self) -> dict[str, Any]:
        sounds = [
            n for n, s in self.data.get("stimuli", {}).items() if as_dict(s).get("type") != "shock"
        ]
        entry: dict[str, Any] = {"cs": sounds[0] if sounds else "", "repeat": 5}
        return {
            "name": self._new_phase_name("trials"),
            "trials": [entry],
            "iti_s": {"uniform": [60, 120]},
        }

    def _phase_card(self, phases: list[Any], i: int) -> QGroupBox:
        phase = phases[i] if isinstance(phases[i], dict) else {}
        path = f"phases[{i}]"
        has_trials = "trials" in phase
        card = QGroupBox(f"{i + 1}.")
        card.setObjectName("phaseCard")
        self.marks.register(path, card)
        outer = QVBoxLayout(card)
        head = QHBoxLayout()
        name = QLineEdit(str(phase.get("name", "")))
        name.setMaximumWidth(200)
        name.textEdited.connect(lambda t: self._set(phase, "name", t))
        self.marks.register(f"{path}.name", name)
        kind = QComboBox()
        kind.addItem("trials", True)
        kind.addItem("block without stimuli", False)
        kind.setCurrentIndex(0 if has_trials else 1)
        kind.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        kind.activated.connect(
            lambda idx: self._structural(
                lambda: self._set_phase_kind(phases, i, kind.itemData(idx))
            )
        )
        head.addWidget(_label("name"))
        head.addWidget(name)
        head.addWidget(kind)
        head.addStretch(1)
        for text, tip, delta in (("▲", "Move up", -1), ("▼", "Move down", 1)):
            b = _small_button(text, tip)
            b.setEnabled(0 <= i + delta < len(phases))
            b.clicked.connect(
                lambda _=False, dl=delta: self._structural(lambda: _swap(phases, i, i + dl))
            )
            head.addWidget(b)
        remove = _small_button("✕", "Remove this phase")
        remove.clicked.connect(lambda: self._structural(lambda: phases.pop(i)))
        head.addWidget(remove)
        outer.addLayout(head)
        if not has_trials:
            row = QHBoxLayout()
            duration = number_box(
                Phase,
                "duration_s",
                phase.get("duration_s") if _is_num(phase.get("duration_s")) else 60,
                1,
            )
            duration.valueChanged.connect(lambda v: self._set(phase, "duration_s", plain_number(v)))
            self.marks.register(f"{path}.duration_s", duration)
            row.addWidget(_label("duration"))
            row.addWidget(duration)
            row.addWidget(QLabel("with nothing delivered"))
            row.addStretch(1)
            outer.addLayout(row)
            return card
        outer.addLayout(self._phase_settings(phase, path))
        outer.addWidget(self._trials_table(phase, path))
        return card

    def _set_phase_kind(self, phases: list[Any], i: int, trials: bool) -> None:
        name = as_dict(phases[i]).get("name", self._new_phase_name("phase"))
        if trials:
            new = self._new_trials_phase()
            new["name"] = name
        else:
            new = {"name": name, "duration_s": 180}
        phases[i] = new

    def _phase_settings(self, phase: dict[str, Any], path: str) -> QGridLayout:
        grid = QGridLayout()
        order = QComboBox()
        order.addItems(ORDERS)
        order.setCurrentText(str(phase.get("order", "sequential")))
        self.marks.register(f"{path}.order", order)
        maxc_on = QCheckBox("max in a row")
        maxc_on.setToolTip("pseudorandom only: at most this many trials of one kind in a row")
        maxc = int_box(Phase, "max_consecutive", phase.get("max_consecutive") or 2)
        maxc_on.setChecked(phase.get("max_consecutive") is not None)
        self.marks.register(f"{path}.max_consecutive", maxc)

        def order_changed() -> None:
            pseudo = order.currentText() == "pseudorandom"
            maxc_on.setEnabled(pseudo)
            maxc.setEnabled(pseudo and maxc_on.isChecked())
            phase["order"] = order.currentText()
            if phase["order"] == "sequential":
                phase.pop("order")
            value = maxc.value() if pseudo and maxc_on.isChecked() else None
            self._set(phase, "max_consecutive", value)

        order.currentTextChanged.connect(order_changed)
        maxc_on.toggled.connect(order_changed)
        maxc.valueChanged.connect(order_changed)
        pseudo = order.currentText() == "pseudorandom"
        maxc_on.setEnabled(pseudo)
        maxc.setEnabled(pseudo and maxc_on.isChecked())

        pre = number_box(
            Phase, "pre_s", phase.get("pre_s", 0) if _is_num(phase.get("pre_s", 0)) else 0, 1
        )
        pre.valueChanged.connect(lambda v: self._set(phase, "pre_s", plain_number(v) or None))
        self.marks.register(f"{path}.pre_s", pre)
        post = number_box(
            Phase, "post_s", phase.get("post_s", 0) if _is_num(phase.get("post_s", 0)) else 0, 1
        )
        post.valueChanged.connect(lambda v: self._set(phase, "post_s", plain_number(v) or None))
        self.marks.register(f"{path}.post_s", post)

        grid.addWidget(_label("order"), 0, 0)
        grid.addWidget(order, 0, 1)
        grid.addWidget(maxc_on, 0, 2)
        grid.addWidget(maxc, 0, 3)
        grid.addWidget(_label("before first"), 1, 0)
        grid.addWidget(pre, 1, 1)
        grid.addWidget(_label("after last"), 1, 2)
        grid.addWidget(post, 1, 3)
        grid.addWidget(_label("ITI"), 2, 0)
        grid.addLayout(self._iti_editor(phase, path), 2, 1, 1, 4)
        grid.setColumnStretch(4, 1)
        return grid

    def _iti_editor(self, phase: dict[str, Any], path: str) -> QHBoxLayout:
        row = QHBoxLayout()
        iti = phase.get("iti_s")
        kind = (
            "fixed"
            if _is_num(iti)
            else next(
                (k for k in ("uniform", "exponential") if isinstance(iti, dict) and k in iti),
                "uniform",
            )
        )
        combo = QComboBox()
        for k in ITI_KINDS:
            combo.addItem(ITI_LABELS[k], k)
        combo.setCurrentIndex(ITI_KINDS.index(kind))
        combo.setToolTip("From the end of a trial's last stimulus to the next CS onset")
        self.marks.register(f"{path}.iti_s", combo)
        row.addWidget(combo)
        ex = ExponentialParams
        uniform = (
            iti.get("uniform")
            if isinstance(iti, dict) and isinstance(iti.get("uniform"), list)
            else [60, 120]
        )
        expo = as_dict(iti.get("exponential")) if isinstance(iti, dict) else {}
        boxes = {
            "fixed": [number_box(ex, "mean", iti if _is_num(iti) else 90, 1)],
            "uniform": [
                number_box(ex, "min", _num_at(uniform, 0, 60), 1),
                number_box(ex, "min", _num_at(uniform, 1, 120), 1),
            ],
            "exponential": [
                number_box(ex, "mean", expo.get("mean", 90), 1),
                number_box(ex, "min", expo.get("min", 60), 1),
                number_box(ex, "max", expo.get("max", 180), 1),
            ],
        }
        titles = {"fixed": [""], "uniform": ["low", "high"], "exponential": ["mean", "min", "max"]}
        keys = {
            "fixed": [None],
            "uniform": ["uniform.0", "uniform.1"],
            "exponential": ["exponential.mean", "exponential.min", "exponential.max"],
        }
        labels: dict[str, list[QLabel]] = {}
        for k in ITI_KINDS:
            labels[k] = []
            for title, box, key in zip(titles[k], boxes[k], keys[k], strict=True):
                if title:
                    lab = _label(title)
                    labels[k].append(lab)
                    row.addWidget(lab)
                row.addWidget(box)
                if key is not None:
                    self.marks.register(f"{path}.iti_s.{key}", box)

        def value_for(k: str) -> Any:
            b = boxes[k]
            if k == "fixed":
                return plain_number(b[0].value())
            if k == "uniform":
                return {"uniform": [plain_number(b[0].value()), plain_number(b[1].value())]}
            return {
                "exponential": {
                    "mean": plain_number(b[0].value()),
                    "min": plain_number(b[1].value()),
                    "max": plain_number(b[2].value()),
                }
            }

        def show(k: str) -> None:
            for kk in ITI_KINDS:
                for w in (*boxes[kk], *labels[kk]):
                    w.setVisible(kk == k)

        def changed() -> None:
            k = combo.currentData()
            show(k)
            self._set(phase, "iti_s", value_for(k))

        combo.currentIndexChanged.connect(changed)
        for bs in boxes.values():
            for b in bs:
                b.valueChanged.connect(changed)
        show(kind)
        row.addStretch(1)
        return row

    def _trials_table(self, phase: dict[str, Any], path: str) -> QWidget:
        entries = phase.setdefault("trials", [])
        stimuli = self.data.get("stimuli", {})
        sounds = [n for n, s in stimuli.items() if as_dict(s).get("type") != "shock"]
        shocks = [n for n, s in stimuli.items() if as_dict(s).get("type") == "shock"]
        host = QWidget()
        grid = QGridLayout(host)
        grid.setContentsMargins(0, 4, 0, 0)
        for col, title in enumerate(["CS", "US", "US onset (from CS onset)", "repeat", ""]):
            h = QLabel(title)
            h.setObjectName("columnHeader")
            grid.addWidget(h, 0, col)
        for j, entry in enumerate(entries):
            entry = entry if isinstance(entry, dict) else {}
            epath = f"{path}.trials[{j}]"
            cs = QComboBox()
            cs.addItems(sounds)
            if entry.get("cs") not in sounds:
                cs.addItem(str(entry.get("cs", "")))
            cs.setCurrentText(str(entry.get("cs", "")))
            cs.currentTextChanged.connect(lambda t, e=entry: self._set(e, "cs", t))
            self.marks.register(f"{epath}.cs", cs)
            us = QComboBox()
            us.addItem("(none)", None)
            for s in shocks:
                us.addItem(s, s)
            if entry.get("us") and entry.get("us") not in shocks:
                us.addItem(str(entry["us"]), entry["us"])
            us.setCurrentIndex(max(0, us.findData(entry.get("us"))))
            self.marks.register(f"{epath}.us", us)
            onset_default = QCheckBox("co-terminate")
            onset_default.setToolTip("Default: the US ends with the CS")
            onset_default.setChecked(entry.get("us_onset_s") is None)
            onset = number_box(
                TrialEntry,
                "us_onset_s",
                entry.get("us_onset_s") if _is_num(entry.get("us_onset_s")) else 0,
            )
            self.marks.register(f"{epath}.us_onset_s", onset)
            has_us = entry.get("us") is not None
            onset_default.setEnabled(has_us)
            onset.setEnabled(has_us and entry.get("us_onset_s") is not None)

            def us_changed(_=None, e=entry, u=us, d=onset_default, o=onset) -> None:
                value = u.currentData()
                d.setEnabled(value is not None)
                o.setEnabled(value is not None and not d.isChecked())
                if value is None or d.isChecked():
                    e.pop("us_onset_s", None)
                else:
                    e["us_onset_s"] = plain_number(o.value())
                self._set(e, "us", value)

            us.currentIndexChanged.connect(us_changed)
            onset_default.toggled.connect(us_changed)
            onset.valueChanged.connect(us_changed)
            onset_row = QHBoxLayout()
            onset_row.addWidget(onset_default)
            onset_row.addWidget(onset)
            repeat = int_box(TrialEntry, "repeat", entry.get("repeat", 1))
            repeat.setSuffix(" ×")
            repeat.valueChanged.connect(lambda v, e=entry: self._set(e, "repeat", v))
            self.marks.register(f"{epath}.repeat", repeat)
            remove = _small_button("✕", "Remove this trial kind")
            remove.setEnabled(len(entries) > 1)
            remove.clicked.connect(lambda _=False, jj=j: self._structural(lambda: entries.pop(jj)))
            self.marks.register(epath, cs)
            self.marks.register(f"{epath}.cs", cs)
            grid.addWidget(cs, j + 1, 0)
            grid.addWidget(us, j + 1, 1)
            grid.addLayout(onset_row, j + 1, 2)
            grid.addWidget(repeat, j + 1, 3)
            grid.addWidget(remove, j + 1, 4)
        add = QPushButton("+ Trial kind")
        add.setSizePolicy(QSizePolicy.Maximum, QSizePolicy.Fixed)
        add.clicked.connect(
            lambda: self._structural(
                lambda: entries.append({"cs": sounds[0] if sounds else "", "repeat": 1})
            )
        )
        grid.addWidget(add, len(entries) + 1, 0)
        grid.setColumnStretch(5, 1)
        self.marks.register(f"{path}.trials", host)
        return host

    # ------------------------------------------------------------------ results
    def _show_totals(self) -> None:
        t = self.check.totals()
        labels = self.totals_labels
        if t is None:
            for label in labels.values():
                label.setText("-")
            return
        labels["duration"].setText(f"{fmt_duration(t['duration_s'])}  ({t['duration_s']:.0f} s)")
        labels["trials"].setText(
            f"{t['trials']}  (" + ", ".join(f"{k} {v}" for k, v in t["cs_counts"].items()) + ")"
            if t["cs_counts"]
            else "0"
        )
        currents = ", ".join(f"{c:g}" for c in t["shock_currents_ma"])
        labels["shocks"].setText(f"{t['shocks']}" + (f" at {currents} mA" if t["shocks"] else ""))
        labels["video"].setText(f"{t['video_frames']:,}")
        labels["imaging"].setText(f"{t['imaging_frames']:,}")
        labels["disk"].setText(fmt_bytes(t["disk_estimate_bytes"]))

    def _show_problems(self, problems: list[Problem]) -> None:
        self.problem_list.clear()
        if not problems:
            self.status_label.setText(f"✔ Valid for rig {self.rig.name} [{self.rig.mode}]")
            self.status_label.setProperty("ok", True)
            self.problem_list.hide()
        else:
            n = len(problems)
            self.status_label.setText(
                f"✘ {n} problem{'s' if n > 1 else ''}: "
                f"fix {'them' if n > 1 else 'it'} to save or run"
            )
            self.status_label.setProperty("ok", False)
            for p in problems:
                item = QListWidgetItem(f"{p.path}: {p.message}" if p.path else p.message)
                item.setData(Qt.UserRole, p.path)
                self.problem_list.addItem(item)
            self.problem_list.show()
        self.status_label.style().unpolish(self.status_label)
        self.status_label.style().polish(self.status_label)

    def _focus_problem(self, item: QListWidgetItem) -> None:
        w = self.marks.widget_for(item.data(Qt.UserRole) or "")
        if w is not None:
            self.scroll.ensureWidgetVisible(w)
            w.setFocus()


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _num_at(values: list[Any], i: int, default: float) -> float:
    return values[i] if i < len(values) and _is_num(values[i]) else default


def _swap(items: list[Any], i: int, j: int) -> None:
    items[i], items[j] = items[j], items[i]


__all__ = ["DesignerWidget"]
