"""Running the task graph on dask.distributed.

:func:`dask_client` gives a client of a ``LocalCluster`` of worker processes (one thread each)
or of a running scheduler at an address (``--cluster``: dask-jobqueue on SLURM, Kubernetes, a
``dask scheduler`` started by hand). :func:`run_graph` skips the tasks whose results are
cached, submits each other task once the tasks it needs have finished, and collects every
outcome: a failed task is reported by its session or animal and does not stop the others;
the tasks that needed it are not run. The workers need the same fear-rig and the same paths
to the sessions and the output folder as this process (``docs/cohort.md``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rig.cohort.cache import ResultCache
from rig.cohort.graph import Task
from rig.cohort.steps import run_task, still_holds
from rig.files.inputfile import error_line

CONNECT_TIMEOUT_S = 20


class TaskEvents:
    """What a run tells as it goes (nothing, here; the command line shows progress bars,
    :class:`rig.cli.cohort_progress.TaskProgress`). A context manager around the run."""

    def start(self, tasks: Sequence[Task]) -> None:
        """The run's tasks, before any is looked up."""

    def cached(self, task: Task) -> None:
        """Done by an earlier run."""

    def finished(self, task: Task) -> None:
        """Done now."""

    def failed(self, task: Task, message: str) -> None:
        """Failed, and why in one line."""

    def blocked(self, task: Task, message: str) -> None:
        """Not run: a task it needs failed."""

    def say(self, text: str) -> None:
        """A line for the user."""

    def __enter__(self) -> TaskEvents:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


class ClusterUnavailable(Exception):
    """The scheduler at ``--cluster`` could not be reached."""


@dataclass
class Outcome:
    """What became of every task of a run."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> cache entry
    cached: set[str] = field(default_factory=set)
    ran: set[str] = field(default_factory=set)
    resumed: set[str] = field(default_factory=set)  # left unfinished by an earlier run
    failed: dict[str, str] = field(default_factory=dict)  # key -> why
    not_run: dict[str, str] = field(default_factory=dict)  # key -> which needed task failed

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_run


@contextlib.contextmanager
def dask_client(cluster: str | None, workers: int) -> Iterator[Any]:
    """A dask.distributed client: of the scheduler at ``cluster``, or of a new local cluster of
    ``workers`` processes with one thread each (closed when the block ends)."""
    from distributed import Client

    if cluster:
        try:
            client = Client(cluster, timeout=f"{CONNECT_TIMEOUT_S}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterUnavailable(f"{cluster}: {error_line(exc)}") from None
        with client:
            yield client
        return
    with local_cluster(workers) as local, Client(local) as client:
        yield client


def local_cluster(workers: int) -> Any:
    """A ``LocalCluster`` of ``workers`` processes with one thread each, no dashboard: each
    task is one process's only work, so its memory is the worker's. The workers' own logs are
    silenced: a failed task is told once, through :class:`TaskEvents`, with its session."""
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.CRITICAL,  # a failed task is reported once, by us
    )


def cached_results(
    tasks: Sequence[Task], cache: ResultCache, progress: TaskEvents
) -> tuple[Outcome, list[Task]]:
    """The outcome so far (the tasks whose cached results still hold) and the tasks to run."""
    outcome = Outcome()
    waiting: list[Task] = []
    for task in tasks:
        entry = cache.read(task.spec)
        if entry is not None and still_holds(task.spec, entry):
            outcome.entries[task.key] = entry
            outcome.cached.add(task.key)
            progress.cached(task)
        else:
            if cache.was_interrupted(task.spec):
                outcome.resumed.add(task.key)
            waiting.append(task)
    return outcome, waiting


def run_graph(
    client: Any,
    tasks: Sequence[Task],
    waiting: list[Task],
    outcome: Outcome,
    progress: TaskEvents,
) -> Outcome:
    """Run the ``waiting`` tasks, each once the tasks it needs are in ``outcome``; see the
    module docstring."""
    from distributed import as_completed

    running: dict[str, Task] = {}
    completed = as_completed()

    def submit_ready() -> None:
        for task in list(waiting):
            stopped = [d for d in task.deps if d in outcome.failed or d in outcome.not_run]
            if stopped:
                waiting.remove(task)
                needed = next(t for t in tasks if t.key == stopped[0]).spec.label
                outcome.not_run[task.key] = f"needs {needed}, which did not finish"
                progress.blocked(task, outcome.not_run[task.key])
            elif all(d in outcome.entries for d in task.deps):
                waiting.remove(task)
                future = client.submit(run_task, task.spec, key=task.spec.dask_key, pure=False)
                running[future.key] = task
                completed.add(future)

    submit_ready()
    for future in completed:
        task = running.pop(future.key)
        if future.status == "finished":
            outcome.entries[task.key] = future.result()
            outcome.ran.add(task.key)
            progress.finished(task)
        else:
            outcome.failed[task.key] = _why(future)
            progress.failed(task, outcome.failed[task.key])
        future.release()
        submit_ready()
    return outcome


def _why(future: Any) -> str:
    """One line on why a task's future did not finish."""
    if future.status == "cancelled":
        return "cancelled (the scheduler or its workers went away)"
    exc = future.exception()
    name = type(exc).__name__
    if name == "KilledWorker":
        return "its worker died each time it ran it (out of memory, or killed)"
    return error_line(exc) if name == "TaskFailed" else f"{name}: {error_line(exc)}"
