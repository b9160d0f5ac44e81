"""Writing a session during a run (design section 6): the frame writer and the session store.

The store is crash-safe by construction:

- Frames go from a bounded queue to a writer thread that writes whole Zarr shards (about 0.5 s
  of frames each, one frame per inner chunk, blosc-lz4 and a crc32c) into arrays preallocated at the
  expected frame count, each shard atomically (temporary file, then rename), so a crash loses
  at most the shard being filled and the queue; the stream's journal records the device frame
  numbers written and how many frames are on disk.
- Events and recorded edges go to the journal (:class:`rig.data.journal.JournalWriter`): in
  the OS at once, fsync'ed by a background thread at every trial boundary, so the engine never
  waits for the disk.
- Root attributes are rewritten atomically (:meth:`rig.data.folder.SessionFolder.update_attrs`).

At the end of the run (or in ``rig recover`` after a crash) :mod:`rig.data.finalize` folds the
journal into the Zarr store: events, edges, per-frame timestamps and the final status.
``docs/format.md`` documents the layout.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from rig.data.disk import LocalDisk
from rig.data.folder import (
    SessionFolder,
    array_folder,
    create_stream,
    frames_per_shard,
)
from rig.data.journal import JournalWriter, StreamJournal, StreamProgress
from rig.data.shards import ShardEncoder, ShardEncoding
from rig.data.sync import FrameAccounting
from rig.ports import Edges, Frame, FrameDisk, StreamInfo


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
    frames into a block and encodes it as one Zarr shard (``shard_encoder``, by default
    :class:`rig.data.shards.ShardEncoder`; the benchmark passes library encoders); the disk thread
    writes the shard through the :class:`~rig.ports.FrameDisk` (atomically, overlapping the
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
        shard_encoder: Callable[[zarr.Array], ShardEncoding] = ShardEncoder,
        um_per_px: float | None = None,
    ):
        self.name = name
        self.lossless = lossless
        self.info = info
        self.disk: FrameDisk = disk if disk is not None else LocalDisk()
        frame_bytes = info.width * info.height * np.dtype(info.dtype).itemsize
        self.chunk_t = frames_per_shard(info.rate_hz)
        self.capacity = _round_up(max(expected_frames, 1), self.chunk_t)
        self.frames = create_stream(
            group,
            name,
            self.capacity,
            info.height,
            info.width,
            info.dtype,
            info.rate_hz,
            um_per_px,
        )
        self._encoder = shard_encoder(self.frames)
        self._array_dir = array_folder(self.frames)
        self.accounting = FrameAccounting(name, expected_frames)
        self._journal = StreamJournal(journal, name)
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
        self._journal.close()
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
            key, shard = self._encoder.encode(start, block[:n])
        except Exception as exc:
            self.error = exc
            return
        self._encoded = start + n
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
                self._journal.append_index(indices)
                acc = self.accounting
                acc.written += len(indices)
                self._journal.write_progress(
                    StreamProgress(acc.written, self.chunk_t, acc.received, acc.dropped_by_queue)
                )
            except Exception as exc:  # a full or failing disk: keep what is written, report
                self.error = exc


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


class SessionStore:
    """Writes one session during its run. Create with :meth:`create`; the engine closes the
    writers and the journal, then :func:`rig.data.finalize.finalize_session` folds it in."""

    def __init__(
        self,
        folder: SessionFolder,
        queue_bytes: int,
        disk: FrameDisk | None = None,
        lossless: bool = False,
    ):
        self.folder = folder
        self.root = folder.zarr_group()
        self.queue_bytes = queue_bytes
        self.disk = disk
        self.lossless = lossless
        self.writers: dict[str, StreamWriter] = {}
        self._frames_expected: dict[str, int] = {}
        self.journal = JournalWriter(folder.journal_path)

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
        folder = SessionFolder.create(out_dir, animal, protocol_name, attrs)
        return cls(folder, queue_mb * 1_000_000, disk, lossless)

    def add_stream(self, name: str, info: StreamInfo, expected_frames: int) -> StreamWriter:
        writer = StreamWriter(
            self.root,
            name,
            info,
            expected_frames,
            self.folder.journal_path,
            self.queue_bytes,
            self.disk,
            self.lossless,
            um_per_px=self.folder.attrs.pixel_size_um(name),
        )
        self.writers[name] = writer
        self._frames_expected[name] = expected_frames
        self.set_attrs(frames_expected=dict(self._frames_expected))  # for rig recover
        return writer

    def log_event(self, event: dict[str, Any], durable: bool = False) -> None:
        """Append one event to the journal (see :meth:`JournalWriter.log_event`)."""
        self.journal.log_event(event, durable)

    def append_edges(self, line: str, edges: Edges) -> None:
        self.journal.append_edges(line, edges)

    def sync_journal(self) -> None:
        """Flush the journal files now and have them fsync'ed (called at trial boundaries)."""
        self.journal.sync()

    def set_attrs(self, **changes: Any) -> None:
        self.folder.update_attrs(**changes)

    def close_writers(self) -> dict[str, FrameAccounting]:
        return {name: w.close() for name, w in self.writers.items()}

    def close_journal(self) -> None:
        self.journal.close()
