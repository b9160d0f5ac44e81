"""The journal: what a session writes while it runs, so that a crash loses (almost) nothing.

Written and read here only (``docs/format.md`` has the byte layout):

- ``events.jsonl``: one JSON event per line, flushed to the OS at once, fsync'ed by a
  background thread when asked (trial boundaries, faults) so the engine never waits for a disk;
- ``edges-LINE.i64``: every edge recorded on an input line, int64 ``sample * 2 + rising``;
- ``index-STREAM.i64``: the device frame numbers of the frames on disk, appended per shard;
- ``progress-STREAM.json``: how many frames of the stream are on disk, rewritten per shard.

:class:`JournalWriter` writes the first two, :class:`StreamJournal` the last two (one per frame
stream, on its writer's disk thread), :class:`Journal` reads them all back (``rig info`` on a
running session, and the fold into ``session.zarr`` at the end or in ``rig recover``).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from rig.data.atomic import write_json_atomic
from rig.files.inputfile import InputError, error_line, read_bounded
from rig.ports import DeviceError, Edges

EVENTS_FILE = "events.jsonl"
_EDGES, _INDEX, _PROGRESS = ("edges-", ".i64"), ("index-", ".i64"), ("progress-", ".json")


def _name(kind: tuple[str, str], what: str) -> str:
    return f"{kind[0]}{what}{kind[1]}"


def _names(folder: Path, kind: tuple[str, str]) -> list[str]:
    """The lines or streams that have a journal file of ``kind``, sorted."""
    prefix, suffix = kind
    return sorted(f.name[len(prefix) : -len(suffix)] for f in folder.glob(f"{prefix}*{suffix}"))


MAX_EVENTS_BYTES = 1 << 30  # 1 GiB of events.jsonl: millions of events, far past any session
MAX_INT64_BYTES = 1 << 32  # 4 GiB of edges or frame numbers per file (500 M entries)
MAX_PROGRESS_BYTES = 1 << 16  # a progress record is one short JSON object


def _int64s(path: Path) -> np.ndarray:
    """A file of little-endian int64 (a torn last entry, from a crash, is dropped)."""
    raw = read_bounded(path, MAX_INT64_BYTES, missing_ok=True)
    if raw is None:
        return np.empty(0, np.int64)
    return np.frombuffer(raw[: len(raw) // 8 * 8], dtype="<i8").astype(np.int64)


@dataclass(frozen=True)
class JournalEvents:
    """The events of ``events.jsonl`` that could be read, and a warning per line that could
    not (skipped: every later line is still read)."""

    events: list[dict[str, Any]]
    warnings: list[str]


@dataclass(frozen=True)
class StreamProgress:
    """A frame stream's last progress record: the first ``written`` frames are on disk."""

    written: int = 0
    frames_per_shard: int = 0
    received: int = 0  # frames received from the device by then
    dropped_by_queue: int = 0  # lost to a full writer queue by then

    @classmethod
    def from_json(cls, text: str) -> StreamProgress | None:
        """The record in ``text``; None when it is not one (not JSON, wrong types)."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                return None
            values = {k: int(data[k]) for k in cls.__dataclass_fields__ if k in data}
        except (json.JSONDecodeError, TypeError, ValueError):
            return None
        return cls(**values)


class Journal:
    """Reads the journal folder of one session."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    @property
    def events_path(self) -> Path:
        return self.folder / EVENTS_FILE

    def events(self) -> list[dict[str, Any]]:
        """Events in order; a damaged line is skipped (see :meth:`read_events`)."""
        return self.read_events().events

    def read_events(self) -> JournalEvents:
        """Every event that can be read, in order, and one warning per line that cannot.

        A line that is not a JSON object (damaged on disk, or half-written when the process
        was killed: then it is the last line) is skipped; every line after it is kept."""
        raw = read_bounded(self.events_path, MAX_EVENTS_BYTES, missing_ok=True)
        events: list[dict[str, Any]] = []
        warnings: list[str] = []
        if raw is None:
            return JournalEvents(events, warnings)
        lines = raw.split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                event = None
            if isinstance(event, dict):
                events.append(event)
                continue
            torn = number == len(lines)  # no line break after it: written when it stopped
            why = "incomplete last line (the writer stopped mid-line)" if torn else "unreadable"
            warnings.append(f"{self.events_path}: line {number}: {why}; skipped")
        return JournalEvents(events, warnings)

    def edge_lines(self) -> list[str]:
        """The input lines that recorded at least one edge, sorted."""
        return _names(self.folder, _EDGES)

    def edges(self, line: str) -> Edges:
        """Every edge recorded on ``line``, in order (none if it recorded none)."""
        packed = _int64s(self.folder / _name(_EDGES, line))
        return Edges(packed // 2, (packed % 2).astype(bool))

    def index(self, stream: str) -> np.ndarray:
        """Device frame numbers of the frames of ``stream`` on disk, in order."""
        return _int64s(self.folder / _name(_INDEX, stream))

    def progress(self, stream: str) -> StreamProgress | None:
        """The stream's last progress record; None if there is none or it cannot be read."""
        try:
            path = self.folder / _name(_PROGRESS, stream)
            raw = read_bounded(path, MAX_PROGRESS_BYTES, missing_ok=True)
            text = raw.decode("utf-8") if raw is not None else ""
        except (UnicodeDecodeError, InputError):
            return None
        return StreamProgress.from_json(text)

    def progress_by_stream(self) -> dict[str, StreamProgress]:
        """Every readable progress record, by stream."""
        out = {}
        for stream in _names(self.folder, _PROGRESS):
            record = self.progress(stream)
            if record is not None:
                out[stream] = record
        return out


class JournalWriteError(DeviceError):
    """The journal could not be written (a full or failing disk): the session ends safe."""


class JournalWriter:
    """Appends events and recorded edges during a run; fsyncs them off the caller's thread.

    fsync runs on its own thread: on a busy disk it can take seconds, and the engine thread
    (which keeps the shock generator's heartbeat) must never wait for it.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(exist_ok=True)
        self._events = open(self.folder / EVENTS_FILE, "a", encoding="utf-8")  # noqa: SIM115
        self._edge_files: dict[str, IO[bytes]] = {}
        self._lock = threading.Lock()
        self._sync_wanted = threading.Event()
        self._closing = False
        self.error: OSError | None = None
        self._syncer = threading.Thread(target=self._sync_loop, name="journal-sync", daemon=True)
        self._syncer.start()

    def log_event(self, event: dict[str, Any], durable: bool = False) -> None:
        """Append one event (at once in the OS: a killed process loses none); ``durable``
        also has it fsync'ed, soon, off this thread (trial boundaries, faults).

        A disk that fails (full, gone) raises :class:`JournalWriteError` once, so the session
        ends safe; later writes are skipped, so its way out never fails on the same disk."""
        if self.error is not None:  # the disk failed before: the session is ending
            return
        line = json.dumps(event, default=float) + "\n"
        with self._lock, self._writing():
            self._events.write(line)
            self._events.flush()
        if durable:
            self._sync_wanted.set()

    def append_edges(self, line: str, edges: Edges) -> None:
        """Append edges recorded on ``line`` and flush them to the OS (see :meth:`log_event`
        for a failing disk)."""
        if len(edges.samples) == 0 or self.error is not None:
            return
        packed = edges.samples.astype(np.int64) * 2 + edges.rising.astype(np.int64)
        with self._writing():
            f = self._edge_files.get(line)
            if f is None:
                f = self._edge_files[line] = open(self.folder / _name(_EDGES, line), "ab")  # noqa: SIM115
            f.write(packed.astype("<i8").tobytes())
            f.flush()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            self.error = exc
            raise JournalWriteError(f"writing the journal failed: {error_line(exc)}") from exc

    def sync(self) -> None:
        """Flush every journal file now and have them fsync'ed soon, off this thread."""
        with self._lock:
            for f in self._files():
                f.flush()
        self._sync_wanted.set()

    def close(self) -> None:
        """Stop the fsync thread; flush, fsync and close every file (best effort)."""
        self._closing = True
        self._sync_wanted.set()
        self._syncer.join(timeout=5)
        for f in self._files():
            with contextlib.suppress(OSError, ValueError):  # best effort on the way out
                f.flush()
                os.fsync(f.fileno())
                f.close()
        self._edge_files.clear()

    def _files(self) -> list[IO[Any]]:
        return [self._events, *self._edge_files.values()]

    def _sync_loop(self) -> None:
        while not self._closing:
            self._sync_wanted.wait()
            self._sync_wanted.clear()
            with self._lock:
                fds = [f.fileno() for f in self._files()]
            for fd in fds:
                with contextlib.suppress(OSError, ValueError):  # closed meanwhile: close fsyncs
                    os.fsync(fd)
            self._sync_indexes()

    def _sync_indexes(self) -> None:
        """fsync the frame streams' index files (written by their disk threads): after a
        power cut they still number the frames written before the last trial boundary."""
        for path in self.folder.glob(_name(_INDEX, "*")):
            with contextlib.suppress(OSError):
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)


class StreamJournal:
    """The index and progress files of one frame stream, written after each shard is on disk."""

    def __init__(self, folder: Path, stream: str):
        self._progress = Path(folder) / _name(_PROGRESS, stream)
        self._index = open(Path(folder) / _name(_INDEX, stream), "ab")  # noqa: SIM115 - held open

    def append_index(self, device_index: np.ndarray) -> None:
        """Append the device frame numbers of the frames just written."""
        self._index.write(np.asarray(device_index).astype("<i8").tobytes())
        self._index.flush()

    def write_progress(self, progress: StreamProgress) -> None:
        """Replace the progress record (atomically, without fsync: twice a second per stream)."""
        write_json_atomic(self._progress, asdict(progress), durable=False)

    def close(self) -> None:
        self._index.close()
