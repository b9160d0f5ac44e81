"""Encoding whole Zarr v3 shards of frames, so a frame stream is written one file per shard.

A frame array (``rig.data.folder.create_frame_array``, made by zarr) holds one frame per inner
chunk and about 0.5 s of frames per shard: each chunk blosc-compressed and followed by its
crc32c, the shard index (with its own crc32c) at the end. A session writes every shard exactly
once, whole, and the bytes reach the disk through the :class:`~rig.ports.FrameDisk` port
(atomically, on the disk thread), so encoding is kept apart from writing: an encoder turns a
shard's frames into the shard file's bytes and its key in the array, and writes nothing.

:class:`ShardEncoder` builds those bytes itself: one blosc call per frame, spread over a thread
pool (blosc releases the GIL), each chunk's crc32c, the index. They are the bytes zarr-python's
own sharding codec writes for the same frames (``tests/rig/data/test_store.py`` checks it byte for
byte, and reads them back through zarr and tensorstore). Behind the same writer thread it
wrote 1.35x to 2.6x faster than zarr-python writing whole shards, at about half its CPU a
frame, and 1.0x to 2.1x faster than tensorstore (``bench/bench_store.py``;
``docs/benchmarks.md`` says why it stays). The layout is read from the array's ``zarr.json``
(the Zarr v3 document), so no private zarr API is involved, and any other layout is refused.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import google_crc32c
import numpy as np
import zarr
from numcodecs import Blosc

from rig.data.folder import array_metadata

EMPTY = 2**64 - 1  # the index entry of an inner chunk not in the shard
_SHUFFLE = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}
_POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="blosc")


class ShardLayoutError(ValueError):
    """The array is not laid out as one frame per inner chunk, blosc + crc32c, index at the end."""


class ShardEncoding(Protocol):
    """Turns a shard's frames into the bytes of the shard's file."""

    def encode(self, start: int, frames: np.ndarray) -> tuple[str, bytes]:
        """The key (relative to the array's folder, e.g. ``c/3/0/0``) and bytes of the shard
        whose first frame is frame ``start``, holding ``frames`` (a whole shard's worth, or
        fewer for the last shard of a stream: the rest stay empty)."""


def _crc32c(data: bytes) -> bytes:
    return np.uint32(google_crc32c.value(data)).astype("<u4").tobytes()


class ShardEncoder:
    """Builds the bytes of the shards of a ``(t, y, x)`` frame array laid out as above."""

    def __init__(self, array: zarr.Array):
        meta = array_metadata(array)
        codecs = meta["codecs"]
        config = codecs[0].get("configuration", {}) if len(codecs) == 1 else {}
        if len(codecs) != 1 or codecs[0]["name"] != "sharding_indexed":
            raise ShardLayoutError(f"expected one sharding codec, got {codecs}")
        inner = [c["name"] for c in config["codecs"]]
        index = [c["name"] for c in config["index_codecs"]]
        endian = config["codecs"][0].get("configuration", {}).get("endian", "little")
        if config["chunk_shape"] != [1, *meta["shape"][1:]]:
            raise ShardLayoutError(f"inner chunks must be one frame, got {config['chunk_shape']}")
        if inner != ["bytes", "blosc", "crc32c"] or index != ["bytes", "crc32c"]:
            raise ShardLayoutError(f"unsupported codecs {inner} / index {index}")
        if endian != "little" or config.get("index_location", "end") != "end":
            raise ShardLayoutError("expected little-endian frames and the index at the end")
        if meta["chunk_key_encoding"] != {"name": "default", "configuration": {"separator": "/"}}:
            raise ShardLayoutError(f"unsupported chunk keys {meta['chunk_key_encoding']}")
        blosc = config["codecs"][1]["configuration"]
        self.blosc = Blosc(
            cname=blosc["cname"],
            clevel=blosc["clevel"],
            shuffle=_SHUFFLE[blosc["shuffle"]],
            blocksize=blosc.get("blocksize", 0),
            typesize=blosc.get("typesize"),
        )
        self.frames_per_shard = int(meta["chunk_grid"]["configuration"]["chunk_shape"][0])
        self.frame_shape = tuple(meta["shape"][1:])
        self.dtype = np.dtype(meta["data_type"]).newbyteorder("<")

    def key(self, shard: int) -> str:
        """The store key of shard number ``shard`` (``c/3/0/0``: default chunk key encoding)."""
        return "/".join(["c", str(shard), *["0"] * len(self.frame_shape)])

    def _chunk(self, frame: np.ndarray) -> bytes:
        data = self.blosc.encode(frame)
        return data + _crc32c(data)

    def encode(self, start: int, frames: np.ndarray) -> tuple[str, bytes]:
        n = len(frames)
        if start % self.frames_per_shard or not 0 < n <= self.frames_per_shard:
            raise ValueError(
                f"{n} frames from frame {start} are not one shard of {self.frames_per_shard}"
            )
        if frames.shape[1:] != self.frame_shape:
            raise ValueError(f"frames of {frames.shape[1:]}, the array's are {self.frame_shape}")
        block = np.ascontiguousarray(frames, dtype=self.dtype)
        chunks = list(_POOL.map(self._chunk, block))
        index = np.full((self.frames_per_shard, 2), EMPTY, "<u8")
        sizes = np.array([len(c) for c in chunks], np.uint64)
        index[:n, 1] = sizes
        index[:n, 0] = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.uint64)
        raw = index.tobytes()
        key = self.key(start // self.frames_per_shard)
        return key, b"".join([*chunks, raw, _crc32c(raw)])


def stored_frame_bytes(frames: np.ndarray, rate_hz: float) -> float:
    """The bytes one frame like ``frames`` (``(n, y, x)``, a sample of a stream) takes on disk
    in a session: its chunk, checksum and index entry as :class:`ShardEncoder` writes them for
    an array made by :func:`rig.data.folder.create_frame_array` (in a temporary folder)."""
    import tempfile

    from rig.data.folder import create_frame_array

    n, height, width = frames.shape
    with tempfile.TemporaryDirectory(prefix="rig-sample-") as tmp:
        group = zarr.open_group(tmp, mode="w", zarr_format=3)
        array = create_frame_array(group, n, height, width, frames.dtype, rate_hz)
        encoder = ShardEncoder(array)
        per = encoder.frames_per_shard
        total = sum(len(encoder.encode(s, frames[s : s + per])[1]) for s in range(0, n, per))
    return total / n
