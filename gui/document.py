"""The protocol being edited: plain YAML data, its file, and its check against a rig.

The designer edits :attr:`ProtocolDocument.data` (the same dict a protocol file parses to) and
asks :meth:`ProtocolDocument.check` after every change. The check is the core's own: the strict
models and cross-field rules (:func:`rig.files.protocol.protocol_from_data`), then the compile
and the rig's safety limits (:func:`rig.run.session.plan_from_loaded`), exactly what
``rig validate`` runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rig.data.atomic import write_text_atomic
from rig.files.inputfile import InputError, Problem, parse_yaml_text
from rig.files.protocol import LoadedProtocol, protocol_from_data
from rig.files.rigfile import RigFile
from rig.run.plan import totals, warnings
from rig.run.session import SessionPlan, plan_from_loaded

UNTITLED = "untitled.yaml"


class _Flow(dict):
    """A mapping written on one line (``{type: tone, frequency_hz: 7500, ...}``)."""


class _Dumper(yaml.SafeDumper):
    """A SafeDumper of our own, so the representers added below leave PyYAML's untouched."""


_Dumper.add_representer(
    _Flow, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)
)


def _styled(data: dict[str, Any]) -> dict[str, Any]:
    """The protocol library's layout: one line per stimulus, trial, ITI and recording stream."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "stimuli" and isinstance(value, dict):
            out[key] = {name: _flow(stim) for name, stim in value.items()}
        elif key == "phases" and isinstance(value, list):
            out[key] = [_styled_phase(p) for p in value]
        elif key == "recording" and isinstance(value, dict):
            out[key] = {k: _flow(v) for k, v in value.items()}
        else:
            out[key] = value
    return out


def _styled_phase(phase: Any) -> Any:
    if not isinstance(phase, dict):
        return phase
    out = dict(phase)
    if isinstance(out.get("trials"), list):
        out["trials"] = [_flow(t) for t in out["trials"]]
    if isinstance(out.get("iti_s"), dict):
        out["iti_s"] = _flow(out["iti_s"])
    return out


def _flow(value: Any) -> Any:
    if isinstance(value, dict):
        return _Flow({k: _flow(v) for k, v in value.items()})
    return value


def dump_protocol(data: dict[str, Any]) -> str:
    """YAML text for protocol data, laid out like the files in ``protocols/``."""
    return yaml.dump(_styled(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


@dataclass
class Check:
    """The result of checking a protocol against a rig: a plan, or the problems."""

    plan: SessionPlan | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.plan is not None and not self.problems

    def totals(self) -> dict[str, Any] | None:
        return totals(self.plan) if self.plan is not None else None

    def warnings(self) -> list[str]:
        """What ``rig validate`` would warn about (e.g. no imaging on a microscope rig)."""
        return warnings(self.plan) if self.plan is not None else []


class ProtocolDocument:
    """Protocol data, where it was loaded from, and whether it changed since."""

    def __init__(self, data: dict[str, Any], path: Path | None = None):
        self.data = data
        self.path = path
        self._saved_text = dump_protocol(data) if path is not None else ""

    @classmethod
    def from_file(cls, path: str | Path) -> ProtocolDocument:
        """Open a protocol file (it may be invalid: the designer shows why)."""
        text = Path(path).read_text(encoding="utf-8")
        data = parse_yaml_text(text, str(path))
        return cls(data, Path(path))

    @classmethod
    def from_template(cls, path: str | Path) -> ProtocolDocument:
        """A new, unsaved protocol copied from a library file."""
        doc = cls.from_file(path)
        doc.path = None
        doc._saved_text = ""
        return doc

    @classmethod
    def from_template_data(cls, data: dict[str, Any]) -> ProtocolDocument:
        """A new, unsaved protocol from data."""
        return cls(copy.deepcopy(data), None)

    @property
    def file(self) -> str:
        return str(self.path) if self.path is not None else UNTITLED

    @property
    def title(self) -> str:
        return self.path.name if self.path is not None else UNTITLED

    def text(self) -> str:
        return dump_protocol(self.data)

    @property
    def dirty(self) -> bool:
        return self.text() != self._saved_text

    def check(self, rig: RigFile) -> Check:
        """Validate and compile for ``rig`` with the core's own code."""
        text = self.text()
        try:
            protocol = protocol_from_data(copy.deepcopy(self.data), self.file)
            plan = plan_from_loaded(LoadedProtocol(protocol, text, self.file), rig)
        except InputError as exc:
            return Check(None, exc.problems)
        except ValueError as exc:  # a compile-time rule the models do not state
            return Check(None, [Problem("phases", str(exc))])
        return Check(plan)

    def loaded(self) -> LoadedProtocol:
        """The protocol as a run sees it (its text is what is stored with the session)."""
        text = self.text()
        return LoadedProtocol(
            protocol_from_data(copy.deepcopy(self.data), self.file), text, self.file
        )

    def save(self, path: str | Path | None = None) -> Path:
        """Write the YAML (to ``path``, or where it came from) and mark it saved."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("no file to save to")
        text = self.text()
        write_text_atomic(target, text)
        self.path = target
        self._saved_text = text
        return target
