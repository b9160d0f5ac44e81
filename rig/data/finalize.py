"""The fold of a session's journal into its final ``session.zarr`` layout, and ``rig recover``.

At the end of a run (:func:`finalize_session`, with the writers' own frame accounting) and in
``rig recover`` after a crash (:func:`recover_session`, the accounting rebuilt from the journal)
the journal's events and edges are stored in ``session.zarr``, each frame stream is cut to the
frames on disk and given its device frame numbers, timestamps and sync report, and the status
becomes final. The journal stays as it was, so folding again gives the same result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rig.data.attrs import SessionAttrs
from rig.data.folder import FrameStream, SessionFolder, utc_now
from rig.data.journal import StreamProgress
from rig.schedule import STREAM_EDGE_LINE
from rig.sync import FrameAccounting, synchronise


class SessionStillRunning(Exception):
    """The session's writing process is alive: it is not to be recovered."""


@dataclass(frozen=True)
class Recovery:
    """What ``rig recover`` found (``status``) and, if it folded the journal, the result."""

    status: str
    attrs: SessionAttrs | None  # None: nothing to recover


def recover_session(folder: SessionFolder) -> Recovery:
    """Fold the journal of an interrupted session (status ``recovered``); a complete, aborted
    or recovered session is left as it is. :class:`SessionStillRunning` while it is written."""
    status = folder.status
    if status == "running":
        raise SessionStillRunning(f"{folder}: the session is still being written by a live process")
    if status != "interrupted":
        return Recovery(status, None)
    return Recovery(
        status, finalize_session(folder, "recovered", "recovered after an interruption")
    )


def finalize_session(
    folder: SessionFolder,
    status: str,
    reason: str,
    accounting: dict[str, FrameAccounting] | None = None,
) -> SessionAttrs:
    """Fold the journal into ``session.zarr``: edges, events, timestamps, status. Idempotent.

    ``accounting``: the writers' frame accounting at the end of a run; without it (recover)
    it is rebuilt from the journal."""
    attrs = folder.attrs
    fs = attrs.sample_rate_hz
    journal = folder.journal
    edges = {line: journal.edges(line) for line in journal.edge_lines()}
    folder.write_edges(fs, edges)
    folder.write_events(journal.events())
    streams = {}
    for name in folder.stream_groups():
        stream = folder.stream(name)
        if stream is None:  # killed while setting the stream up: no frame was written
            folder.remove_stream(name)
            continue
        line = STREAM_EDGE_LINE[name]
        recorded = edges.get(line)
        rising = recorded.samples[recorded.rising] if recorded is not None else None
        acc = accounting[name] if accounting else None
        streams[name] = _finalize_stream(folder, stream, acc, rising, line, fs)
    return folder.update_attrs(
        status=status, end_reason=reason, ended_utc=utc_now(), streams=streams
    )


def _finalize_stream(
    folder: SessionFolder,
    stream: FrameStream,
    acc: FrameAccounting | None,
    rising: np.ndarray | None,
    line: str,
    fs: float,
) -> dict:
    """Trim a stream to the frames on disk, store their device numbers and timestamps, and
    return its accounting with the sync report under ``sync``."""
    name = stream.name
    index = folder.journal.index(name)
    progress = folder.journal.progress(name) or StreamProgress()
    written = acc.written if acc is not None else min(progress.written, len(index))
    index = index[:written]
    if stream.n_frames != written:
        folder.trim_stream(name, written)
    if acc is None:
        acc = _recovered_accounting(folder, name, index, progress)
    rising = rising if rising is not None else np.empty(0, np.int64)
    sync = synchronise(name, line, index, rising, fs, stream.rate_hz)
    report = sync.report.to_dict()
    folder.write_stream_timing(name, index, sync.timestamps_s, report)
    acc.edges = len(rising)
    acc.without_edge = sync.report.frames_without_edge
    acc.edges_without_frame = sync.report.edges_without_frame
    return {**acc.to_dict(), "sync": report}


def _recovered_accounting(
    folder: SessionFolder, name: str, index: np.ndarray, progress: StreamProgress
) -> FrameAccounting:
    acc = FrameAccounting(name, folder.frames_expected(name))
    # frames received after the last shard written are lost with the process: not counted
    acc.written = len(index)
    acc.dropped_by_queue = progress.dropped_by_queue
    acc.received = acc.written + acc.dropped_by_queue
    if len(index):
        gaps = int(index.max()) + 1 - len(index)  # device drops and queue drops both leave gaps
        acc.dropped_by_device = max(0, gaps - acc.dropped_by_queue)
    return acc
