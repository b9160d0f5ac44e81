"""The cohort's work as a graph of tasks, each keyed by a hash of its inputs and settings.

Three kinds of task:

- ``score``: one session's freezing scored again with the parameters of the rig file stored
  in the session (``Settings.scoring`` overrides them as ``rig score``'s options do), stored in
  the session folder as ``rig score`` does;
- ``analyze``: ``rig analyze`` of one animal's imaging sessions, after their scoring (the CR
  ensemble decodes the scored freezing);
- ``export``: ``rig export`` of one session (``--export csv|tiff|nwb``), after its scoring and,
  for NWB, its animal's analysis (which NWB export adds).

A task's key is the sha256 of what determines its result: its kind and the version of its
step, the software version, its sessions' fingerprints (their root attributes, which change
when a session is recovered or gets frames attached), the settings it uses, and the keys of
the tasks it depends on. Paths are not part of it: a cohort folder copied elsewhere keeps its
finished work. :mod:`rig.cohort.cache` keeps each finished task's result under its key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rig import __version__
from rig.analysis.connectivity import SHUFFLES
from rig.cohort.sessions import Cohort, CohortSession
from rig.data.folder import safe_name

SCORE, ANALYZE, EXPORT = "score", "analyze", "export"
KINDS = (SCORE, ANALYZE, EXPORT)
EXPORT_KINDS = ("csv", "tiff", "nwb")
STEP_VERSIONS = {SCORE: 1, ANALYZE: 1, EXPORT: 1}
"""Bumped when what a step computes changes, so finished work of the old step is redone."""


@dataclass(frozen=True)
class Settings:
    """What the user chose that changes the results (all of it enters the task keys)."""

    traces: str = "suite2p"  # rig analyze --traces
    seed: int = 0
    shuffles: int = SHUFFLES  # rig analyze's default
    analyze: bool = True
    exports: tuple[str, ...] = ()
    scoring: dict[str, Any] = field(default_factory=dict)  # score_session's overrides


@dataclass(frozen=True)
class TaskSpec:
    """Everything a worker needs to run one task (small and picklable: paths, not data)."""

    kind: str
    subject: str  # the session folder's name, or the animal
    key: str
    sessions: tuple[str, ...]  # session folders, absolute
    options: dict[str, Any]
    out: str  # the folder the step writes into ("" for a step that writes into the session)
    cache: str  # the cache folder (rig.cohort.cache)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.subject}"

    @property
    def dask_key(self) -> str:
        return f"{self.kind}-{safe_name(self.subject)}-{self.key[:12]}"


@dataclass(frozen=True)
class Task:
    spec: TaskSpec
    deps: tuple[str, ...] = ()  # keys of the tasks that must finish first

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def kind(self) -> str:
        return self.spec.kind


def task_key(kind: str, inputs: Any, options: Any, deps: tuple[str, ...]) -> str:
    """The sha256 of a task's kind, step version, software version, inputs, options and deps."""
    document = {
        "kind": kind,
        "step_version": STEP_VERSIONS[kind],
        "software_version": __version__,
        "inputs": inputs,
        "options": options,
        "deps": list(deps),
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def analysis_folder(out: Path, animal: str) -> Path:
    """Where an animal's ``rig analyze`` outputs go inside the cohort's output folder."""
    return out / "animals" / safe_name(animal, "animal")


def plan_tasks(cohort: Cohort, settings: Settings, out: Path, cache: Path) -> list[Task]:
    """Every task the cohort needs, each after the tasks it depends on."""
    tasks: list[Task] = []

    def add(
        kind: str,
        subject: str,
        sessions: list[CohortSession],
        options: dict[str, Any],
        deps: tuple[str, ...],
        folder: Path | None,
        extra_inputs: Any = None,
    ) -> Task:
        inputs = {"sessions": [[s.name, s.fingerprint] for s in sessions], "extra": extra_inputs}
        key = task_key(kind, inputs, options, deps)
        spec = TaskSpec(
            kind,
            subject,
            key,
            tuple(str(s.path) for s in sessions),
            options,
            str(folder) if folder else "",
            str(cache),
        )
        task = Task(spec, deps)
        tasks.append(task)
        return task

    scored = {
        s.path: add(SCORE, s.name, [s], {"scoring": settings.scoring}, (), None)
        for s in cohort.sessions
    }
    analysed: dict[str, Task] = {}
    if settings.analyze:
        options = {"traces": settings.traces, "seed": settings.seed, "shuffles": settings.shuffles}
        for animal, sessions in cohort.animals.items():
            imaged = [s for s in sessions if s.imaging]
            if imaged:
                deps = tuple(scored[s.path].key for s in imaged)
                traces = traces_stamp(settings.traces, imaged)
                folder = analysis_folder(out, animal)
                analysed[animal] = add(ANALYZE, animal, imaged, options, deps, folder, traces)
    for kind in settings.exports:
        for s in cohort.sessions:
            deps = (scored[s.path].key,)
            if kind == "nwb" and s.animal in analysed and s.imaging:
                deps += (analysed[s.animal].key,)
            add(EXPORT, s.name, [s], {"export": kind}, deps, None)
    return tasks


def traces_stamp(traces: str, sessions: list[CohortSession]) -> Any:
    """For suite2p traces, the size and modification time of every file of each session's
    suite2p output (an extraction run again changes the analysis's key); None otherwise."""
    kind, _, folder = traces.partition(":")
    if kind != "suite2p":
        return None
    stamp = {}
    for s in sessions:
        root = Path(folder) / s.name if folder else s.path / "suite2p"
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        stamp[s.name] = [[str(p.relative_to(root)), *file_stamp(p)] for p in files]
    return stamp


def file_stamp(path: Path) -> list[int]:
    """A file's size and modification time (ns): what tells a file rewritten since."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]
