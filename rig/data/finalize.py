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
from rig.data.integrity import LayoutError, stored_frames
from rig.data.journal import StreamProgress
from rig.data.sync import ClockReference, FrameAccounting, synchronise
from rig.ports import Edges
from rig.program.schedule import (
    IMAGING,
    IMAGING_START,
    STREAM_EDGE_LINE,
    VIDEO,
    frame_trigger_samples,
)


class SessionStillRunning(Exception):
    """The session's writing process is alive: it is not to be recovered."""


@dataclass(frozen=True)
class Recovery:
    """What ``rig recover`` found (``status``) and, if it folded the journal, the result and
    what it had to rebuild or could not read (``notes``, one line each)."""

    status: str
    attrs: SessionAttrs | None  # None: nothing to recover
    notes: tuple[str, ...] = ()


def recover_session(folder: SessionFolder, force: bool = False) -> Recovery:
    """Fold the journal of an interrupted session (status ``recovered``); a complete, aborted
    or recovered session is left as it is. :class:`SessionStillRunning` while it is written,
    unless ``force`` and its writer cannot be checked (another host): a writer known to be
    alive is never overridden.

    Conservative: no frame on disk is dropped. The frames kept are every frame the journal's
    index numbers and every frame a shard file holds past it (numbered on from the last one
    the index has); progress files are not needed. What is missing from the journal is
    rebuilt from what an earlier, interrupted fold stored, and every such step is a note."""
    status = folder.status
    if status == "running" and (not force or folder.writer() == "alive"):
        raise SessionStillRunning(f"{folder}: the session is still being written by a live process")
    if status not in ("interrupted", "running"):
        return Recovery(status, None)
    notes: list[str] = []
    attrs = finalize_session(folder, "recovered", "recovered after an interruption", notes=notes)
    return Recovery(status, attrs, tuple(notes))


def finalize_session(
    folder: SessionFolder,
    status: str,
    reason: str,
    accounting: dict[str, FrameAccounting] | None = None,
    notes: list[str] | None = None,
) -> SessionAttrs:
    """Fold the journal into ``session.zarr``: edges, events, timestamps, status. Idempotent.

    ``accounting``: the writers' frame accounting at the end of a run; without it (recover)
    it is rebuilt from the journal and the shard files, and ``notes`` gets a line for each
    thing that had to be rebuilt or skipped."""
    notes = notes if notes is not None else []
    attrs = folder.attrs
    fs = attrs.sample_rate_hz
    journal = folder.journal
    edges = {line: journal.edges(line) for line in journal.edge_lines()}
    if not edges and accounting is None:
        edges = folder.stored_edges()
        notes.append(
            "no edges in the journal: "
            + ("kept the edges an earlier fold stored" if edges else "the frames are not timed")
        )
    read = journal.read_events()
    events = read.events
    notes += read.warnings
    if not journal.events_path.exists() and accounting is None:
        events = folder.events_stored() or []
        notes.append(
            "no journal/events.jsonl: "
            + ("kept the events an earlier fold stored" if events else "the session has no events")
        )
    folder.write_edges(fs, edges)
    folder.write_events(events)
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
        reference = _clock_reference(folder, name, edges)
        streams[name] = _finalize_stream(folder, stream, acc, rising, line, fs, notes, reference)
    changes: dict = {"status": status, "end_reason": reason, "ended_utc": utc_now()}
    if accounting is None:
        changes["recovery"] = {"recovered_utc": utc_now(), "notes": list(notes)}
    return folder.update_attrs(**changes, streams=streams)


def _finalize_stream(
    folder: SessionFolder,
    stream: FrameStream,
    acc: FrameAccounting | None,
    rising: np.ndarray | None,
    line: str,
    fs: float,
    notes: list[str],
    reference: ClockReference | None = None,
) -> dict:
    """Cut a stream to its frames, store their device numbers and timestamps, and return its
    accounting with the sync report under ``sync``."""
    name = stream.name
    progress = folder.journal.progress(name)
    if acc is not None:
        index = folder.journal.index(name)[: acc.written]
    else:
        index = _recovered_index(folder, stream, notes)
        if progress is None:
            notes.append(
                f"{name}: no readable journal/progress-{name}.json: frames lost to a full "
                "writer queue are not counted"
            )
    if stream.n_frames != len(index):
        folder.trim_stream(name, len(index))
    if acc is None:
        acc = _recovered_accounting(folder, name, index, progress or StreamProgress())
    rising = rising if rising is not None else np.empty(0, np.int64)
    sync = synchronise(name, line, index, rising, fs, stream.rate_hz, reference)
    report = sync.report.to_dict()
    folder.write_stream_timing(name, index, sync.timestamps_s, report)
    if sync.report.clock == "device":
        acc.frames_on_clock = sync.report.frames_on_clock
    acc.edges = len(rising)
    acc.without_edge = sync.report.frames_without_edge
    acc.edges_without_frame = sync.report.edges_without_frame
    return {**acc.to_dict(), "sync": report}


def _clock_reference(
    folder: SessionFolder, stream: str, edges: dict[str, Edges]
) -> ClockReference | None:
    """What ``stream``'s edges answer to: the camera's DAQ triggers (a counter's pulse train:
    the schedule's trigger samples), or the microscope's recorded start pulse (the scheduled one,
    sample 0, where the rig does not record it back). From the stored attributes only: the fold
    never depends on the protocol text parsing again."""
    attrs = folder.attrs
    fs = attrs.sample_rate_hz
    if stream == VIDEO:
        n = round(attrs.timeline.duration_s * fs)
        triggers = frame_trigger_samples(n, fs, attrs.video_fps)
        return ClockReference("camera trigger", triggers=triggers)
    if stream == IMAGING:
        start = edges.get(IMAGING_START)
        if start is not None and start.rising.any():
            return ClockReference(
                "imaging start pulse (recorded)",
                start_sample=int(start.samples[start.rising][0]),
            )
        return ClockReference("imaging start pulse (scheduled; not recorded)", start_sample=0)
    return None


def _recovered_index(folder: SessionFolder, stream: FrameStream, notes: list[str]) -> np.ndarray:
    """The device frame number of every frame of ``stream`` on disk (recover).

    The journal's index numbers the frames in order; where it stops short of the frames the
    shard files hold (a torn or lost index file), the rest are numbered on from its last
    entry (as if the device dropped none there) and a note says so. Nothing on disk is
    left out: a shard whose index cannot be read counts as full."""
    name = stream.name
    index = _valid_prefix(folder.journal.index(name))
    if len(index) == 0:
        stored = stream.device_index()  # an earlier, interrupted fold
        if stored is not None and len(stored):
            index = _valid_prefix(stored)
    try:
        on_disk = stored_frames(stream.layout())
    except LayoutError as exc:
        notes.append(f"{name}: cannot read the frames' layout ({exc}): kept them all")
        on_disk = stream.n_frames
    if on_disk > len(index):
        first = int(index[-1]) + 1 if len(index) else 0
        extra = on_disk - len(index)
        notes.append(
            f"{name}: frames {len(index)}-{on_disk - 1} are on disk but not in "
            f"journal/index-{name}.i64: numbered {first}-{first + extra - 1} in order "
            "(a frame the device dropped among them would shift their times)"
        )
        index = np.concatenate([index, np.arange(first, first + extra, dtype=np.int64)])
    return index


def _valid_prefix(index: np.ndarray) -> np.ndarray:
    """The entries of a device frame index up to the first that is not a new, higher frame
    number (damage: the rest cannot be trusted)."""
    if len(index) == 0:
        return index.astype(np.int64)
    ok = np.concatenate([[index[0] >= 0], np.diff(index) > 0])
    bad = np.flatnonzero(~ok)
    return index[: bad[0]] if len(bad) else index


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
