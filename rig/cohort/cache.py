"""Finished tasks, kept under their keys, so a rerun skips them and a killed run resumes.

``CACHE/KIND/KEY.json`` is written by the worker when its task has finished, atomically (a
run killed at any moment leaves each entry whole or absent). It holds the task's result (what
the cohort's tables are made from) and a *stamp* of what the task left behind: the scoring's
time in the session folder, the sizes and times of the files it wrote. An entry counts only
while its stamp still matches the world (:func:`rig.cohort.steps.stamp`), so a session scored
again by hand, or an analysis folder overwritten, sends its task to be done again.

``CACHE/KIND/KEY.started`` is written when a task starts and removed when it finishes: one
still there, without an entry, is a task a killed run left unfinished.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from rig.cohort.graph import TaskSpec
from rig.data.atomic import write_json_atomic
from rig.data.folder import utc_now


class ResultCache:
    """The cache folder of one cohort output folder."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def entry_path(self, spec: TaskSpec) -> Path:
        return self.folder / spec.kind / f"{spec.key}.json"

    def started_path(self, spec: TaskSpec) -> Path:
        return self.folder / spec.kind / f"{spec.key}.started"

    def read(self, spec: TaskSpec) -> dict[str, Any] | None:
        """The stored entry of ``spec``'s key (whether it still holds is :meth:`lookup`'s)."""
        try:
            entry = json.loads(self.entry_path(spec).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) and entry.get("key") == spec.key else None

    def was_interrupted(self, spec: TaskSpec) -> bool:
        """The task started in an earlier run and never finished."""
        return self.started_path(spec).exists() and not self.entry_path(spec).exists()

    def mark_started(self, spec: TaskSpec) -> None:
        path = self.started_path(spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(
            path,
            {"host": socket.gethostname(), "pid": os.getpid(), "started_utc": utc_now()},
            durable=False,
        )

    def store(self, spec: TaskSpec, entry: dict[str, Any]) -> None:
        """Keep a finished task's entry (durably: it is what a resumed run trusts)."""
        path = self.entry_path(spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {"key": spec.key, **entry})
        with contextlib.suppress(FileNotFoundError):
            self.started_path(spec).unlink()
