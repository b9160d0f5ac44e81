"""What each task does, on a worker: score a session, analyse an animal, export a session.

:func:`run_task` is what the cluster runs. It marks the task started, runs its step through the
same functions the commands use (``rig score``, ``rig analyze``, ``rig export``), keeps the
result in the cache with a stamp of what it left behind, and returns the entry. A failure is
raised as :class:`TaskFailed`, one line naming what went wrong, which the cluster sends back
whole (an exception of the app's own, such as an ``InputError``, may not survive the trip).
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rig.cohort.cache import ResultCache
from rig.cohort.graph import ANALYZE, EXPORT, SCORE, TaskSpec, file_stamp
from rig.data.folder import SessionFolder, utc_now
from rig.files.inputfile import InputError, error_line

ANALYSIS_FILES = ("summary.json", "neurons.csv", "edges.csv")
EPOCHS = ("pre", "cs", "us", "iti")


class TaskFailed(Exception):
    """A task's step failed; the message says why in one line."""


def run_task(spec: TaskSpec) -> dict[str, Any]:
    """Run one task and keep its entry in the cache; returns the entry."""
    cache = ResultCache(spec.cache)
    cache.mark_started(spec)
    reset_peak_memory()
    started = time.perf_counter()
    try:
        result = STEPS[spec.kind](spec)
        entry = {
            "kind": spec.kind,
            "subject": spec.subject,
            "result": result,
            "stamp": stamp(spec, result),
            "seconds": round(time.perf_counter() - started, 3),
            "peak_memory_mb": round(peak_memory_mb(), 1),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "finished_utc": utc_now(),
        }
    except InputError as exc:
        raise TaskFailed("; ".join(exc.report().splitlines())) from None
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        raise TaskFailed(
            f"{type(exc).__name__}: {error_line(exc)} ({Path(where.filename).name}:{where.lineno})"
        ) from None
    cache.store(spec, entry)
    return entry


# ------------------------------------------------------------------------------- the steps


def score_step(spec: TaskSpec) -> dict[str, Any]:
    """Score the session's freezing again (``rig score`` with the parameters of the session's
    rig file, or the task's overrides); per trial, its CS's role and the percent frozen in each
    epoch."""
    from rig.behaviour.rescore import score_session
    from rig.exports.frame_table import cs_roles

    folder = SessionFolder.open(spec.sessions[0])
    record = score_session(folder, **spec.options["scoring"])
    roles = cs_roles(folder.protocol())
    trials = []
    for t in record["results"]["trials"]:
        epochs = t["epochs"]
        trials.append(
            {
                "trial": t["index"],
                "phase": t["phase"],
                "cs": t["cs"],
                "role": roles.get(t["cs"], "cs") if t["cs"] else "",
                "us": t["us"] or "",
                **{f"{e}_percent": epochs[e]["percent"] if epochs.get(e) else None for e in EPOCHS},
            }
        )
    return {
        "scored_utc": record["scored_utc"],
        "measure": record["measure"],
        "threshold": record["threshold"],
        "threshold_auto": record["threshold_auto"],
        "min_freeze_s": record["min_freeze_s"],
        "percent_frozen": record["percent_frozen"],
        "trials": trials,
    }


def analyze_step(spec: TaskSpec) -> dict[str, Any]:
    """``rig analyze`` of the animal's sessions into the task's folder; its summary."""
    from rig.analysis.pipeline import analyze, write_outputs
    from rig.analysis.traces import TraceSource

    options = spec.options
    analysis = analyze(
        spec.sessions,
        TraceSource.parse(options["traces"]),
        seed=options["seed"],
        shuffles=options["shuffles"],
        n_jobs=1,  # the cluster's workers are the parallelism
    )
    write_outputs(analysis, Path(spec.out))
    return {"summary": analysis.summary}


def export_step(spec: TaskSpec) -> dict[str, Any]:
    """``rig export`` of the session (to its ``export`` folder, as the command does)."""
    folder = SessionFolder.open(spec.sessions[0])
    kind = spec.options["export"]
    if kind == "csv":
        from rig.exports.csv_tiff import export_csv

        files = export_csv(folder)
    elif kind == "tiff":
        from rig.exports.csv_tiff import export_tiff

        files = [export_tiff(folder).path]
    else:
        from rig.exports.nwb import export_nwb

        files = [export_nwb(folder).path]
    return {"files": [str(p) for p in files]}


STEPS: dict[str, Callable[[TaskSpec], dict[str, Any]]] = {
    SCORE: score_step,
    ANALYZE: analyze_step,
    EXPORT: export_step,
}


# ------------------------------------------------------------------ what a task left behind


def stamp(spec: TaskSpec, result: dict[str, Any]) -> Any:
    """What ``spec``'s task left behind, as it is now: the session's scoring time for a score,
    the sizes and times of the files written otherwise. An entry whose stamp no longer
    matches is done again. Raises when what it left is gone or unreadable."""
    if spec.kind == SCORE:
        record = SessionFolder.open(spec.sessions[0]).freezing_record() or {}
        return {"scored_utc": record.get("scored_utc")}
    if spec.kind == ANALYZE:
        return {name: file_stamp(Path(spec.out) / name) for name in ANALYSIS_FILES}
    return {Path(f).name: file_stamp(Path(f)) for f in result["files"]}


def still_holds(spec: TaskSpec, entry: dict[str, Any]) -> bool:
    """A cached entry is still true of the world (see :func:`stamp`)."""
    try:
        return stamp(spec, entry["result"]) == entry["stamp"]
    except (OSError, KeyError, TypeError, InputError):
        return False


# -------------------------------------------------------------------- memory of a task


def reset_peak_memory() -> None:
    """Start the process's peak resident memory afresh (Linux: ``clear_refs`` 5), so the peak
    read at the end is this task's, not the worker's whole life's."""
    with contextlib.suppress(OSError), open(f"/proc/{os.getpid()}/clear_refs", "w") as f:
        f.write("5")


def peak_memory_mb() -> float:
    """The process's peak resident memory since :func:`reset_peak_memory` (VmHWM; elsewhere the
    lifetime peak)."""
    with contextlib.suppress(OSError), open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
