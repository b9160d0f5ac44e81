"""What is on disk of a frame stream, shard by shard: which frames are stored, which are damaged.

A frame array (``rig.data.folder.create_frame_array``) keeps one frame per inner chunk and
about 0.5 s of frames per shard file (``STREAM/0/c/K/0/0``), the shard's index of
``(offset, nbytes)`` per frame at its end, followed by the index's crc32c. Frames written
since the frames carry their own crc32c (inner codecs ``bytes, blosc, crc32c``) can be checked
one by one; older ones only as far as their shard's index and each chunk's blosc header say.

This module reads those files itself, bytes only, without zarr: a damaged shard must be
reported, never decoded into altered pixels or a fill value (zarr returns zeros for a missing
shard, and reads a whole file, even ``/dev/zero``, when asked for one chunk). What it finds:

- ``missing``: the shard file is absent, or its index has no entry for the frame;
- ``empty``: the shard file has 0 bytes (a power cut before the OS wrote it back);
- ``corrupt``: the file is not a regular file, is shorter than its index, its index checksum
  does not match, a chunk lies outside the file, or (a full check) the chunk's own checksum or
  blosc header does not match.

Used by ``rig verify`` (a full check: every byte read), ``rig info`` (the structure only: one
read of each shard's index), the exports (which refuse damaged frames unless asked to fill
them) and ``rig recover`` (which frames are on disk, so that nothing on disk is dropped).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import google_crc32c
import numpy as np

from rig.files.inputfile import InputError, read_bounded

EMPTY = 2**64 - 1  # the index entry of an inner chunk not in its shard
CRC_BYTES = 4
BLOSC_HEADER = 16
MAX_METADATA_BYTES = 1_000_000  # an array's zarr.json is a page of JSON
DamageKind = Literal["missing", "empty", "corrupt"]
Depth = Literal["index", "headers", "full"]
"""How much of each shard a check reads: its index; also each frame's blosc header (the
exports: a seek and 16 bytes a frame); every byte (``rig verify``)."""
_FILE_DAMAGE: dict[str, DamageKind] = {"absent": "missing", "empty": "empty", "bad": "corrupt"}


class DamagedFrames(Exception):
    """Frames that cannot be read as they were written (an export refuses them)."""

    def __init__(self, damage: list[FrameDamage]):
        self.damage = damage
        frames = sum(d.frames for d in damage)
        super().__init__(f"{frames} damaged frame(s) in {len(damage)} range(s)")


class LayoutError(ValueError):
    """The frames array is not laid out as a fear-rig frame stream; nothing can be checked."""


@dataclass(frozen=True)
class FrameDamage:
    """Frames ``start`` to ``stop - 1`` of a stream are ``kind``: ``cause`` in shard files
    ``first_shard`` to ``last_shard``."""

    stream: str
    kind: DamageKind
    start: int
    stop: int
    cause: str
    first_shard: int
    last_shard: int

    @property
    def frames(self) -> int:
        return self.stop - self.start

    @property
    def detail(self) -> str:
        a, b = self.first_shard, self.last_shard
        if a < 0:
            return self.cause
        where = f"shard c/{a}" if a == b else f"shards c/{a}-{b}"
        return f"{where}: {self.cause}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "kind": self.kind,
            "first_frame": self.start,
            "last_frame": self.stop - 1,
            "frames": self.frames,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class FrameLayout:
    """What the checks need from a frames array's ``zarr.json``."""

    folder: Path  # the array's folder (STREAM/0)
    n_frames: int
    frame_shape: tuple[int, ...]
    itemsize: int
    frames_per_shard: int
    frame_crc: bool  # each inner chunk ends with its crc32c
    blosc: bool

    @classmethod
    def read(cls, folder: Path) -> FrameLayout:
        """The layout of the array in ``folder``; :class:`LayoutError` if it is not one."""
        meta = _read_metadata(folder / "zarr.json")
        try:
            shape = [int(n) for n in meta["shape"]]
            codecs = meta["codecs"]
            sharding = codecs[0]
            config = sharding["configuration"]
            inner = [c["name"] for c in config["codecs"]]
            index = [c["name"] for c in config["index_codecs"]]
            grid = meta["chunk_grid"]["configuration"]["chunk_shape"]
            keys = meta.get("chunk_key_encoding", {})
            dtype = np.dtype(meta["data_type"])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise LayoutError(f"unexpected frames metadata ({exc!r})") from None
        if len(codecs) != 1 or sharding.get("name") != "sharding_indexed" or len(shape) < 2:
            raise LayoutError("not a sharded frame array")
        if [int(n) for n in config["chunk_shape"]] != [1, *shape[1:]]:
            raise LayoutError(f"inner chunks of {config['chunk_shape']}, not one frame each")
        if index != ["bytes", "crc32c"] or config.get("index_location", "end") != "end":
            raise LayoutError(f"shard index codecs {index}: expected bytes + crc32c at the end")
        if keys.get("name") != "default" or keys.get("configuration", {}).get("separator") != "/":
            raise LayoutError(f"chunk keys {keys}: expected the default encoding")
        if not inner or inner[0] != "bytes" or any(c not in ("blosc", "crc32c") for c in inner[1:]):
            raise LayoutError(f"inner codecs {inner}: expected bytes, blosc, crc32c")
        return cls(
            folder=folder,
            n_frames=shape[0],
            frame_shape=tuple(shape[1:]),
            itemsize=dtype.itemsize,
            frames_per_shard=int(grid[0]),
            frame_crc=inner[-1] == "crc32c",
            blosc="blosc" in inner,
        )

    @property
    def frame_bytes(self) -> int:
        return int(np.prod(self.frame_shape)) * self.itemsize

    @property
    def index_bytes(self) -> int:
        return self.frames_per_shard * 16 + CRC_BYTES

    def shard_path(self, shard: int) -> Path:
        return self.folder.joinpath("c", str(shard), *["0"] * len(self.frame_shape))

    def shards_on_disk(self) -> list[int]:
        """Numbers of the shards that have a file (or anything else) at their key."""
        root = self.folder / "c"
        if not root.is_dir():
            return []
        found = []
        for entry in root.iterdir():
            if entry.name.isdigit() and self.shard_path(int(entry.name)).exists():
                found.append(int(entry.name))
            elif entry.name.isdigit() and os.path.lexists(self.shard_path(int(entry.name))):
                found.append(int(entry.name))  # a dangling symlink: there, and damaged
        return sorted(found)


@dataclass(frozen=True)
class ShardState:
    """One shard file, as read: per slot, its chunk's ``(offset, nbytes)`` or None."""

    number: int
    file_kind: Literal["absent", "empty", "bad", "ok"]
    cause: str = ""
    entries: tuple[tuple[int, int] | None, ...] = ()
    bad_slots: tuple[tuple[int, str], ...] = ()  # slots whose chunk is damaged, and why

    def stored(self, slot: int) -> bool:
        """Whether the shard holds (or, damaged, may hold) the frame at ``slot``."""
        if self.file_kind == "bad":
            return True  # its index cannot be read: assume every slot holds a frame
        ok = self.file_kind == "ok" and slot < len(self.entries)
        return ok and self.entries[slot] is not None


def read_shard(layout: FrameLayout, number: int, depth: Depth = "index") -> ShardState:
    """Read shard ``number``'s index (and, by ``depth``, its frames) and say what it holds."""
    path = layout.shard_path(number)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            return ShardState(number, "bad", "a dangling link")
        return ShardState(number, "absent", "absent")
    except OSError as exc:
        return ShardState(number, "bad", f"cannot be read: {exc.strerror}")
    if not stat.S_ISREG(st.st_mode):
        return ShardState(number, "bad", "not a regular file")
    if st.st_size == 0:
        return ShardState(number, "empty", "0 bytes")
    if st.st_size < layout.index_bytes:
        return ShardState(number, "bad", f"{st.st_size} bytes, shorter than its index")
    try:
        with open(path, "rb") as f:
            return _read_open_shard(layout, number, f, st.st_size, depth)
    except OSError as exc:
        return ShardState(number, "bad", f"cannot be read: {exc.strerror}")


def _read_open_shard(
    layout: FrameLayout, number: int, f: Any, size: int, depth: Depth
) -> ShardState:
    f.seek(size - layout.index_bytes)
    raw = f.read(layout.index_bytes)
    body, crc = raw[:-CRC_BYTES], raw[-CRC_BYTES:]
    if _crc32c(body) != crc:
        return ShardState(number, "bad", "its index checksum does not match")
    index = np.frombuffer(body, "<u8").reshape(-1, 2)
    data_end = size - layout.index_bytes
    entries: list[tuple[int, int] | None] = []
    bad: list[tuple[int, str]] = []
    for slot, (offset, nbytes) in enumerate(index.tolist()):
        if offset == EMPTY and nbytes == EMPTY:
            entries.append(None)
            continue
        entries.append((offset, nbytes))
        if nbytes == 0 or offset + nbytes > data_end:
            bad.append((slot, "the frame's bytes lie outside the file"))
        elif depth != "index":
            f.seek(offset)
            if depth == "full":
                problem = _chunk_problem(layout, f.read(nbytes))
            else:
                problem = _header_problem(layout, f.read(BLOSC_HEADER), nbytes)
            if problem:
                bad.append((slot, problem))
    return ShardState(number, "ok", "", tuple(entries), tuple(bad))


def _chunk_problem(layout: FrameLayout, chunk: bytes) -> str:
    """Why one frame's stored bytes are damaged ('' if they check out)."""
    if layout.frame_crc:
        if len(chunk) < CRC_BYTES or _crc32c(chunk[:-CRC_BYTES]) != chunk[-CRC_BYTES:]:
            return "the frame's checksum does not match"
        chunk = chunk[:-CRC_BYTES]
    if layout.blosc:
        return _header_problem(layout, chunk[:BLOSC_HEADER], len(chunk), crc=False)
    if len(chunk) != layout.frame_bytes:
        return "the frame's data has the wrong size"
    return ""


def _header_problem(layout: FrameLayout, head: bytes, nbytes: int, crc: bool = True) -> str:
    """Why a frame's blosc header does not describe a frame stored in ``nbytes`` bytes."""
    if not layout.blosc:
        return ""
    stored = nbytes - (CRC_BYTES if crc and layout.frame_crc else 0)
    if len(head) < BLOSC_HEADER or stored < BLOSC_HEADER:
        return "the frame's compressed data is truncated"
    size, _, cbytes = np.frombuffer(head[4:BLOSC_HEADER], "<u4").tolist()
    if size != layout.frame_bytes or cbytes != stored:
        return "the frame's compressed data does not match its header"
    return ""


def _crc32c(data: bytes) -> bytes:
    return np.uint32(google_crc32c.value(data)).astype("<u4").tobytes()


def _read_metadata(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(read_bounded(path, MAX_METADATA_BYTES) or b"")
    except InputError as exc:
        raise LayoutError(exc.problems[0].message) from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise LayoutError(f"cannot read {path.name}: {exc}") from None
    if not isinstance(meta, dict):
        raise LayoutError(f"{path.name} is not a JSON object")
    return meta


def check_frames(
    stream: str, layout: FrameLayout, n_frames: int | None = None, depth: Depth = "index"
) -> list[FrameDamage]:
    """Every damaged range among the first ``n_frames`` (default: all) frames of a stream."""
    n = layout.n_frames if n_frames is None else n_frames
    per = layout.frames_per_shard
    damage: list[FrameDamage] = []
    for number in range(-(-n // per)):
        shard = read_shard(layout, number, depth)
        first, last = number * per, min(n, (number + 1) * per)
        if shard.file_kind != "ok":
            kind: DamageKind = _FILE_DAMAGE[shard.file_kind]
            damage.append(FrameDamage(stream, kind, first, last, shard.cause, number, number))
            continue
        bad = dict(shard.bad_slots)
        for frame in range(first, last):
            slot = frame - first
            if not shard.stored(slot):
                cause, kind = "not in its shard", "missing"
            elif slot in bad:
                cause, kind = bad[slot], "corrupt"
            else:
                continue
            damage.append(FrameDamage(stream, kind, frame, frame + 1, cause, number, number))
    return merge_ranges(damage)


def merge_ranges(damage: list[FrameDamage]) -> list[FrameDamage]:
    """Neighbouring ranges of one kind and cause become one (a shard's 15 frames, one line)."""
    merged: list[FrameDamage] = []
    for d in damage:
        last = merged[-1] if merged else None
        if last is not None and (last.kind, last.stop, last.cause) == (d.kind, d.start, d.cause):
            merged[-1] = replace(last, stop=d.stop, last_shard=d.last_shard)
        else:
            merged.append(d)
    return merged


def stored_frames(layout: FrameLayout) -> int:
    """One past the last frame any shard file holds (or, damaged, may hold): what recover
    keeps at least, so that no frame on disk is left outside the array."""
    per = layout.frames_per_shard
    end = 0
    for number in layout.shards_on_disk():
        shard = read_shard(layout, number)
        if shard.file_kind == "empty":
            continue
        slots = [s for s in range(per) if shard.stored(s)]
        if slots:
            end = max(end, number * per + slots[-1] + 1)
    return end


def frame_ranges(damage: list[FrameDamage]) -> Iterator[int]:
    """Every damaged frame number."""
    for d in damage:
        yield from range(d.start, d.stop)
