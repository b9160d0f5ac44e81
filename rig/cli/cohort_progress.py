"""The progress bars ``rig cohort`` shows on stderr (rich): one per kind of task.

Each bar counts the tasks of its kind that are finished, cached (done by an earlier run) or
failed; a failed task, or one that cannot run because a task it needs failed, is printed above
the bars as it happens, naming its session or animal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rig.cli.terminal import QuietConsole
from rig.cohort.execute import TaskEvents
from rig.cohort.graph import KINDS, Task


class TaskProgress(TaskEvents):
    """Bars for the tasks of one run; a context manager around the run."""

    def __init__(self, enabled: bool = True):
        self.console = QuietConsole(stderr=True)
        self.bar = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not enabled,
        )
        self.enabled = enabled
        self.counts: dict[str, Counter[str]] = {}
        self.rows: dict[str, Any] = {}

    def start(self, tasks: Sequence[Task]) -> None:
        totals = Counter(t.kind for t in tasks)
        for kind in KINDS:
            if totals[kind]:
                self.counts[kind] = Counter()
                self.rows[kind] = self.bar.add_task(kind, total=totals[kind], note="")

    def __enter__(self) -> TaskProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def cached(self, task: Task) -> None:
        self._count(task, "cached")

    def finished(self, task: Task) -> None:
        self._count(task, "done")

    def failed(self, task: Task, message: str) -> None:
        self._count(task, "failed")
        self.say(f"FAILED {task.spec.label}: {message}")

    def blocked(self, task: Task, message: str) -> None:
        self._count(task, "not run")
        self.say(f"NOT RUN {task.spec.label}: {message}")

    def say(self, text: str) -> None:
        """A line above the bars (plain text: no rich markup is read from it)."""
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _count(self, task: Task, outcome: str) -> None:
        counts = self.counts[task.kind]
        counts[outcome] += 1
        note = ", ".join(f"{counts[k]} {k}" for k in ("cached", "failed", "not run") if counts[k])
        self.bar.update(self.rows[task.kind], advance=1, note=note)
