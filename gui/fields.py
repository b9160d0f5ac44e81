"""Input widgets for protocol fields: ranges and units come from the core's pydantic models.

Each widget knows the field path it edits (``phases[1].iti_s``), so a validation problem can be
shown on the widget it belongs to (:class:`FieldMarks`).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import annotated_types as at
from pydantic import BaseModel
from PyQt5.QtWidgets import QAbstractSpinBox, QDoubleSpinBox, QSpinBox, QWidget

from rig.files.inputfile import Problem

UNITS = {"_hz": " Hz", "_db": " dB", "_s": " s", "_ms": " ms", "_ma": " mA"}
DECIMALS = {"_ma": 2, "_s": 2, "_hz": 1, "_db": 1, "_ms": 1}


def unit_suffix(name: str) -> str:
    """The unit a key names (``frequency_hz`` -> `` Hz``)."""
    for ending, unit in UNITS.items():
        if name.endswith(ending):
            return unit
    return ""


def field_bounds(model: type[BaseModel], name: str) -> tuple[float, float]:
    """The closed range a spin box allows for ``model.name``.

    An exclusive lower bound (``gt=0``) is allowed in the box, so typing it shows the model's
    own message instead of silently refusing the key press.
    """
    lo, hi = -math.inf, math.inf
    for meta in model.model_fields[name].metadata:
        if isinstance(meta, at.Ge | at.Gt):
            lo = float(meta.ge if isinstance(meta, at.Ge) else meta.gt)
        if isinstance(meta, at.Le | at.Lt):
            hi = float(meta.le if isinstance(meta, at.Le) else meta.lt)
    return lo, hi


def number_box(
    model: type[BaseModel], name: str, value: float | None, decimals: int | None = None
) -> QDoubleSpinBox:
    """A spin box with the field's unit, range and sensible precision."""
    box = QDoubleSpinBox()
    lo, hi = field_bounds(model, name)
    if decimals is None:
        decimals = next((d for end, d in DECIMALS.items() if name.endswith(end)), 2)
    box.setDecimals(decimals)
    box.setRange(max(lo, -1e9), min(hi, 1e9))
    box.setSuffix(unit_suffix(name))
    box.setKeyboardTracking(True)
    box.setAccelerated(True)
    box.setCorrectionMode(QAbstractSpinBox.CorrectToNearestValue)
    box.setMinimumWidth(92)
    if value is not None:
        box.setValue(float(value))
    return box


def int_box(model: type[BaseModel], name: str, value: int | None) -> QSpinBox:
    box = QSpinBox()
    lo, hi = field_bounds(model, name)
    box.setRange(int(max(lo, -(2**31))), int(min(hi, 2**31 - 1)))
    box.setMinimumWidth(80)
    if value is not None:
        box.setValue(int(value))
    return box


def plain_number(value: float) -> float | int:
    """``7500.0`` -> ``7500``: the YAML reads like a hand-written file (ints pass float fields)."""
    return int(value) if float(value).is_integer() else round(float(value), 6)


def parent_path(path: str) -> str:
    """``phases[1].trials[0].cs`` -> ``phases[1].trials[0]`` -> ``phases[1]`` -> ``phases``."""
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


class FieldMarks:
    """Field path -> widget; marks the widgets problems point at (red border + tooltip)."""

    def __init__(self) -> None:
        self.widgets: dict[str, QWidget] = {}
        self.marked: dict[QWidget, str] = {}

    def clear_registry(self) -> None:
        self.widgets.clear()
        self.marked.clear()

    def register(self, path: str, widget: QWidget) -> QWidget:
        self.widgets[path] = widget
        widget.setProperty("fieldPath", path)
        widget.setProperty("plainToolTip", widget.toolTip())
        return widget

    def widget_for(self, path: str) -> QWidget | None:
        """The widget of ``path`` or of its nearest enclosing field."""
        while path:
            if path in self.widgets:
                return self.widgets[path]
            path = parent_path(path)
        return self.widgets.get("")

    def show(self, problems: list[Problem]) -> None:
        wanted: dict[QWidget, list[str]] = {}
        for p in problems:
            w = self.widget_for(p.path)
            if w is not None:
                wanted.setdefault(w, []).append(p.message)
        for w in list(self.marked):
            if w not in wanted:
                _set_invalid(w, None)
                del self.marked[w]
        for w, messages in wanted.items():
            text = "\n".join(messages)
            if self.marked.get(w) != text:
                _set_invalid(w, text)
                self.marked[w] = text


def _set_invalid(widget: QWidget, message: str | None) -> None:
    with contextlib.suppress(RuntimeError):  # the widget was deleted by a rebuild
        widget.setProperty("invalid", message is not None)
        widget.setToolTip(message if message is not None else widget.property("plainToolTip") or "")
        style = widget.style()
        style.unpolish(widget)
        style.polish(widget)
        widget.update()


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
