"""The session store (design section 6): one folder per session holding ``session.zarr``.

During a session the store is crash-safe by construction:

- Frames go from a bounded queue to a writer thread that writes whole Zarr shards (about 0.5 s
  of frames each, one frame per inner chunk, blosc-lz4) into arrays preallocated at the
  expected frame count, each shard atomically (temporary file, then rename), so a crash loses
  at most the shard being filled and the queue; ``journal/index-STREAM.i64`` holds the device
  frame numbers written and ``journal/progress-STREAM.json`` (atomic) how many are on disk.
- Events are appended to ``journal/events.jsonl`` (flushed to the OS at once) and fsync'ed by a
  background thread at every trial boundary, so the engine never waits for the disk.
- Recorded edges are appended to ``journal/edges-LINE.i64`` as they arrive.
- Root attributes are rewritten atomically (temporary file, then rename).

:meth:`SessionStore.finish` (or ``rig recover`` after a crash) folds the journal into the Zarr
store: events, edges, per-frame timestamps and the final status. ``docs/format.md`` documents
the layout.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import socket
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec
from zarr.core.sync import sync as zarr_sync

from rig import __version__
from rig.atomic import write_json_atomic
from rig.disk import LocalDisk
from rig.ports import Edges, Frame, FrameDisk, StreamInfo
from rig.shards import ShardEncoder
from rig.sync import FrameAccounting

FORMAT = "fear-rig-session"
FORMAT_VERSION = 1
STATUSES = ("running", "complete", "aborted", "interrupted", "recovered")
CHUNK_SECONDS = 0.5  # the most frames a crash can lose, in seconds of stream
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str, fallback: str = "x") -> str:
    """A file-name-safe version of user text: no separators, no dot-dot, bounded length."""
    cleaned = _SAFE_NAME.sub("-", text).strip(".-")[:64]
    return cleaned or fallback


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def root_attrs_path(zarr_path: Path) -> Path:
    return zarr_path / "zarr.json"


def read_root_attrs(zarr_path: Path) -> dict[str, Any]:
    meta = json.loads(root_attrs_path(zarr_path).read_text(encoding="utf-8"))
    return meta.get("attributes", {})


def update_root_attrs(zarr_path: Path, **changes: Any) -> dict[str, Any]:
    """Atomically rewrite the root group's ``zarr.json`` with updated attributes."""
    path = root_attrs_path(zarr_path)
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta.setdefault("attributes", {}).update(changes)
    write_json_atomic(path, meta)
    return meta["attributes"]


def frame_compressor(dtype: np.dtype) -> BloscCodec:
    # Bit-shuffle for 8-bit video too: camera noise lives in the low bits, so the high bit
    # planes compress (1.5x on noisy 8-bit frames, where byte shuffle of 1-byte items is a no-op).
    return BloscCodec(
        cname="lz4", clevel=5, shuffle="bitshuffle", typesize=np.dtype(dtype).itemsize
    )


def frames_per_shard(rate_hz: float) -> int:
    """Frames in one shard: about :data:`CHUNK_SECONDS` of the stream, 1 to 64."""
    return max(1, min(64, round(rate_hz * CHUNK_SECONDS)))


def create_frame_array(
    image: zarr.Group, n_frames: int, height: int, width: int, dtype: Any, rate_hz: float
) -> zarr.Array:
    """The ``0`` array of a (t, y, x) frame stream: one chunk per frame, one shard per
    :func:`frames_per_shard` frames, blosc-lz4. Every frame stream of a session uses it."""
    shard_t = frames_per_shard(rate_hz)
    return image.create_array(
        "0",
        shape=(n_frames, height, width),
        chunks=(1, height, width),
        shards=(shard_t, height, width),
        dtype=dtype,
        compressors=frame_compressor(np.dtype(dtype)),
        fill_value=0,
        dimension_names=("t", "y", "x"),
    )


def trim_frames(frames: zarr.Array, n_frames: int) -> None:
    """Cut a frame array to its first ``n_frames`` frames, removing the shards past them.

    zarr's own ``resize`` visits every chunk key of the old shape to delete it, one per frame:
    seconds for a session aborted early in a long protocol. The shards past the end are few
    and are found by listing the array's ``c/`` folder instead.
    """
    zarr_sync(frames.async_array.resize((n_frames, *frames.shape[1:]), False))
    shard_t = frames.shards[0] if frames.shards else frames.chunks[0]
    kept = -(-n_frames // shard_t)  # shards holding frames that stay
    shard_dir = Path(str(frames.store_path.store.root)) / frames.path / "c"
    if shard_dir.is_dir():
        for entry in shard_dir.iterdir():
            if entry.name.isdigit() and int(entry.name) >= kept:
                shutil.rmtree(entry, ignore_errors=True)


def ome_attrs(name: str, rate_hz: float) -> dict[str, Any]:
    """OME-NGFF 0.5 multiscales metadata for a (t, y, x) frame stream."""
    return {
        "ome": {
            "version": "0.5",
            "multiscales": [
                {
                    "name": name,
                    "axes": [
                        {"name": "t", "type": "time", "unit": "second"},
                        {"name": "y", "type": "space"},
                        {"name": "x", "type": "space"},
                    ],
                    "datasets": [
                        {
                            "path": "0",
                            "coordinateTransformations": [
                                {"type": "scale", "scale": [1.0 / rate_hz, 1.0, 1.0]}
                            ],
                        }
                    ],
                }
            ],
        }
    }


class StreamWriter:
    """Writes one frame stream on two threads, one shard at a time, from a bounded queue.

    :meth:`append` queues the frame and never blocks: when ``queue_bytes`` of frames are
    waiting the frame is counted as dropped. The exception is a ``lossless`` writer, for a
    ``--fast`` simulated session whose clock only moves when the engine asks: there waiting for
    room costs nothing real, and keeps the data identical from run to run whatever the
    machine's load.

    The writer thread is woken once a shard's worth of frames (``frames_per_shard``, about
    :data:`CHUNK_SECONDS` of the stream) is waiting, not for every frame: a fast stream then
    costs the acquisition thread a queue append per frame and no thread switch. It copies the
    frames into a block and encodes it as one Zarr shard (:class:`rig.shards.ShardEncoder`);
    the disk thread writes the shard through the :class:`~rig.ports.FrameDisk` (overlapping the
    next encode), then appends the frames' device numbers to ``journal/index-STREAM.i64`` and
    rewrites ``journal/progress-STREAM.json``. A crash loses at most the shard being gathered
    and what is queued; ``rig recover`` keeps every frame the progress file counts.
    """

    def __init__(
        self,
        group: zarr.Group,
        name: str,
        info: StreamInfo,
        expected_frames: int,
        journal: Path,
        queue_bytes: int,
        disk: FrameDisk | None = None,
        lossless: bool = False,
    ):
        self.name = name
        self.lossless = lossless
        self.info = info
        self.disk: FrameDisk = disk if disk is not None else LocalDisk()
        frame_bytes = info.width * info.height * np.dtype(info.dtype).itemsize
        self.chunk_t = frames_per_shard(info.rate_hz)
        self.capacity = _round_up(max(expected_frames, 1), self.chunk_t)
        image = group.create_group(name, attributes=ome_attrs(name, info.rate_hz))
        self.frames = create_frame_array(
            image, self.capacity, info.height, info.width, info.dtype, info.rate_hz
        )
        self._encoder = ShardEncoder(self.frames)
        self._array_dir = Path(str(self.frames.store_path.store.root)) / self.frames.path
        self.accounting = FrameAccounting(name, expected_frames)
        self._progress = journal / f"progress-{name}.json"
        self._index = open(journal / f"index-{name}.i64", "ab")  # noqa: SIM115 - held open
        self._limit = max(4, queue_bytes // max(frame_bytes, 1))  # frames that may wait
        self._waiting: deque[Frame] = deque()  # appended here, taken by the writer thread
        self._cond = threading.Condition()  # the writer thread waits on it for a shard's worth
        self._wake_at: int | None = None  # queued frames that wake the waiting writer thread
        self._closing = False
        self._last_index = -1
        self._encoded = 0  # frames encoded (written, or on their way to the disk)
        # encoded shards waiting for the disk: two, so encoding and writing overlap
        self._shards: queue.Queue[tuple[str, bytes, np.ndarray] | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"writer-{name}", daemon=True)
        self._disk_thread = threading.Thread(
            target=self._write_shards, name=f"disk-{name}", daemon=True
        )
        self._thread.start()
        self._disk_thread.start()

    @property
    def queued(self) -> int:
        """Frames waiting in the queue."""
        return len(self._waiting)

    @property
    def full(self) -> bool:
        """True when the next :meth:`append` would be dropped (a benchmark feeds at the
        writer's pace with it; the engine never waits)."""
        return len(self._waiting) >= self._limit

    def append(self, frame: Frame) -> bool:
        """Queue a frame for writing. Returns False (and counts the loss) if the queue is full."""
        acc = self.accounting
        acc.received += 1
        if frame.index > self._last_index + 1:
            acc.dropped_by_device += frame.index - self._last_index - 1
        self._last_index = max(self._last_index, frame.index)
        if len(self._waiting) >= self._limit and not (self.lossless and self._wait_for_room()):
            acc.dropped_by_queue += 1
            return False
        self._waiting.append(frame)
        wake_at = self._wake_at  # None while the writer thread is busy: no need to wake it
        if wake_at is not None and len(self._waiting) >= wake_at:
            with self._cond:
                self._cond.notify_all()
        return True

    def _wait_for_room(self) -> bool:
        """Wait until the queue has room; False if the writer stopped taking frames."""
        with self._cond:
            while self._thread.is_alive() and self.error is None:
                if len(self._waiting) < self._limit:
                    return True
                self._cond.notify_all()  # the writer may be waiting for a shard's worth
                self._cond.wait(0.05)
        return False

    def close(self) -> FrameAccounting:
        """Write everything queued and stop the threads (the arrays are trimmed at finalize)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        self._disk_thread.join()
        self._index.close()
        return self.accounting

    def _run(self) -> None:
        """Gather frames into shards and encode them; the disk thread writes them meanwhile."""
        block = np.empty((self.chunk_t, self.info.height, self.info.width), self.info.dtype)
        indices = np.empty(self.chunk_t, np.int64)
        filled = 0
        try:
            while True:
                with self._cond:
                    # Woken by append once the rest of the shard (or a full queue) is waiting;
                    # the timeout is a safety net only.
                    self._wake_at = min(self.chunk_t - filled, self._limit)
                    while len(self._waiting) < self._wake_at and not self._closing:
                        self._cond.wait(0.5)
                    self._wake_at = None
                    closing = self._closing
                take = min(self.chunk_t - filled, len(self._waiting))
                for _ in range(take):
                    frame = self._waiting.popleft()
                    if self.error is None:  # after an error: keep draining, the frames are lost
                        block[filled] = frame.image
                        indices[filled] = frame.index
                        filled += 1
                if self.lossless:
                    with self._cond:
                        self._cond.notify_all()  # room again for a waiting append
                last = closing and not self._waiting
                if filled == self.chunk_t or (last and filled):
                    if self.error is None:
                        self._encode(block, indices, filled)
                    filled = 0
                if last:
                    break
        finally:
            self._shards.put(None)

    def _encode(self, block: np.ndarray, indices: np.ndarray, n: int) -> None:
        start = self._encoded
        try:
            if start + n > self.capacity:
                self.capacity = _round_up(start + n + 16 * self.chunk_t, self.chunk_t)
                self.frames.resize((self.capacity, self.info.height, self.info.width))
            shard = self._encoder.encode(block[:n])
        except Exception as exc:
            self.error = exc
            return
        self._encoded = start + n
        key = self._encoder.key(start // self.chunk_t)
        self._shards.put((key, shard, indices[:n].copy()))  # waits while the disk is busy

    def _write_shards(self) -> None:
        """The disk thread: write each shard, then record it in the index journal and progress."""
        while True:
            item = self._shards.get()
            if item is None:
                return
            if self.error is not None:
                continue
            key, shard, indices = item
            try:
                self.disk.write(self._array_dir / key, shard)
                self._index.write(indices.astype("<i8").tobytes())
                self._index.flush()
                acc = self.accounting
                acc.written += len(indices)
                write_json_atomic(
                    self._progress,
                    {
                        "written": acc.written,
                        "frames_per_shard": self.chunk_t,
                        "received": acc.received,
                        "dropped_by_queue": acc.dropped_by_queue,
                    },
                    durable=False,
                )
            except Exception as exc:  # a full or failing disk: keep what is written, report
                self.error = exc


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def read_progress(journal: Path, name: str) -> dict[str, Any]:
    """A stream's last progress record (``{}`` if it never wrote a shard)."""
    try:
        return json.loads((journal / f"progress-{name}.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def read_index_journal(journal: Path, name: str) -> np.ndarray:
    """Device frame numbers of the frames written, in order (a torn last entry is dropped)."""
    path = journal / f"index-{name}.i64"
    if not path.exists():
        return np.empty(0, np.int64)
    raw = path.read_bytes()
    return np.frombuffer(raw[: len(raw) // 8 * 8], dtype="<i8").astype(np.int64)


@dataclass
class SessionPaths:
    folder: Path

    @property
    def zarr(self) -> Path:
        return self.folder / "session.zarr"

    @property
    def journal(self) -> Path:
        return self.folder / "journal"

    @property
    def events(self) -> Path:
        return self.journal / "events.jsonl"


def new_session_folder(out_dir: Path, animal: str, protocol_name: str) -> Path:
    """``OUT/YYYYmmdd-HHMMSS_ANIMAL_PROTOCOL`` (made unique), always inside ``out_dir``."""
    out_dir = out_dir.resolve()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}_{safe_name(animal, 'animal')}_{safe_name(protocol_name, 'protocol')}"
    out_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        folder = out_dir / (base if n == 0 else f"{base}-{n}")
        if folder.resolve().parent != out_dir:
            raise ValueError(f"session folder would escape {out_dir}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"too many sessions named {base} in {out_dir}")


class SessionStore:
    """Writes one session. Create with :meth:`create`; end with :meth:`finish`."""

    def __init__(
        self,
        paths: SessionPaths,
        root: zarr.Group,
        queue_bytes: int,
        disk: FrameDisk | None = None,
        lossless: bool = False,
    ):
        self.paths = paths
        self.root = root
        self.queue_bytes = queue_bytes
        self.disk = disk
        self.lossless = lossless
        self.writers: dict[str, StreamWriter] = {}
        self._frames_expected: dict[str, int] = {}
        self._events = open(paths.events, "a", encoding="utf-8")  # noqa: SIM115 - held open
        self._edge_files: dict[str, Any] = {}
        self._lock = threading.Lock()
        # fsync runs on its own thread: on a busy disk it can take seconds, and the engine
        # thread (which keeps the shock generator's heartbeat) must never wait for it.
        self._sync_wanted = threading.Event()
        self._closing = False
        self._syncer = threading.Thread(target=self._sync_loop, name="journal-sync", daemon=True)
        self._syncer.start()

    @classmethod
    def create(
        cls,
        out_dir: Path,
        animal: str,
        protocol_name: str,
        attrs: dict[str, Any],
        queue_mb: int,
        disk: FrameDisk | None = None,
        lossless: bool = False,
    ) -> SessionStore:
        """A new session folder. ``lossless``: writers wait for room instead of dropping
        (only for a simulated clock, which waits with them; see :class:`StreamWriter`)."""
        folder = new_session_folder(Path(out_dir), animal, protocol_name)
        paths = SessionPaths(folder)
        paths.journal.mkdir()
        root = zarr.open_group(str(paths.zarr), mode="w-", zarr_format=3)
        base = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "software_version": __version__,
            "status": "running",
            "started_utc": utc_now(),
            "ended_utc": None,
            "pid": os.getpid(),
            "host": socket.gethostname(),
        }
        update_root_attrs(paths.zarr, **base, **attrs)
        return cls(paths, root, queue_mb * 1_000_000, disk, lossless)

    @property
    def folder(self) -> Path:
        return self.paths.folder

    def add_stream(self, name: str, info: StreamInfo, expected_frames: int) -> StreamWriter:
        writer = StreamWriter(
            self.root,
            name,
            info,
            expected_frames,
            self.paths.journal,
            self.queue_bytes,
            self.disk,
            self.lossless,
        )
        self.writers[name] = writer
        self._frames_expected[name] = expected_frames
        self.set_attrs(frames_expected=dict(self._frames_expected))  # for rig recover
        return writer

    def log_event(self, event: dict[str, Any], durable: bool = False) -> None:
        """Append one event to the journal (at once in the OS: a killed process loses none);
        ``durable`` also has it fsync'ed, soon, off this thread (trial boundaries, faults)."""
        with self._lock:
            self._events.write(json.dumps(event, default=float) + "\n")
            self._events.flush()
        if durable:
            self._sync_wanted.set()

    def append_edges(self, line: str, edges: Edges) -> None:
        if len(edges.samples) == 0:
            return
        f = self._edge_files.get(line)
        if f is None:
            f = self._edge_files[line] = open(self.paths.journal / f"edges-{line}.i64", "ab")  # noqa: SIM115
        packed = edges.samples.astype(np.int64) * 2 + edges.rising.astype(np.int64)
        f.write(packed.tobytes())
        f.flush()

    def sync_journal(self) -> None:
        """Flush the journal files now and have them fsync'ed (called at trial boundaries)."""
        with self._lock:
            for f in [self._events, *self._edge_files.values()]:
                f.flush()
        self._sync_wanted.set()

    def _sync_loop(self) -> None:
        while not self._closing:
            self._sync_wanted.wait()
            self._sync_wanted.clear()
            with self._lock:
                fds = [f.fileno() for f in [self._events, *self._edge_files.values()]]
            for fd in fds:
                # closed meanwhile: close_journal fsyncs it
                with contextlib.suppress(OSError, ValueError):
                    os.fsync(fd)

    def set_attrs(self, **changes: Any) -> None:
        update_root_attrs(self.paths.zarr, **changes)

    def close_writers(self) -> dict[str, FrameAccounting]:
        return {name: w.close() for name, w in self.writers.items()}

    def close_journal(self) -> None:
        self._closing = True
        self._sync_wanted.set()
        self._syncer.join(timeout=5)
        for f in [self._events, *self._edge_files.values()]:
            with contextlib.suppress(OSError, ValueError):  # best effort on the way out
                f.flush()
                os.fsync(f.fileno())
                f.close()
        self._edge_files.clear()


def write_truth(root_path: Path, truth: dict[str, np.ndarray]) -> None:
    """Save a simulated session's ground truth under ``truth/``."""
    root = zarr.open_group(str(root_path), mode="a")
    group = root.require_group("truth")
    for key, value in truth.items():
        arr = np.asarray(value)
        group.create_array(key, data=arr, overwrite=True) if arr.ndim else None
