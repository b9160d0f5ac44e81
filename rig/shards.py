"""Encoding whole Zarr v3 shards of frames, so a frame stream is written one file per shard.

The array and its metadata are made by zarr (``create_array(..., chunks=(1, H, W),
shards=(n, H, W))``: one frame per inner chunk, blosc-compressed, the shard index at the end
with a crc32c checksum, as zarr's sharding codec writes by default). Writing through
zarr-python re-enters its async codec pipeline for every inner chunk; a session writes every
shard exactly once, whole, so :class:`ShardEncoder` builds the same bytes directly: one blosc
call per frame (spread over a thread pool: blosc releases the GIL) plus the index. The layout
is checked against the array's own metadata, and the tests read the result back through zarr
(and the benchmark through tensorstore).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import google_crc32c
import numpy as np
import zarr
from numcodecs import Blosc

EMPTY = 2**64 - 1  # an inner chunk not in the shard
_SHUFFLE = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}
_POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="blosc")


class ShardLayoutError(ValueError):
    """The array is not laid out as one frame per inner chunk, blosc, index at the end."""


class ShardEncoder:
    """Builds the bytes of one shard of a ``(t, y, x)`` array made as described above."""

    def __init__(self, array: zarr.Array):
        codecs = array.metadata.to_dict()["codecs"]
        if len(codecs) != 1 or codecs[0]["name"] != "sharding_indexed":
            raise ShardLayoutError("expected one sharding codec")
        config = codecs[0]["configuration"]
        shape = tuple(array.shape[1:])
        if tuple(config["chunk_shape"]) != (1, *shape):
            raise ShardLayoutError(f"inner chunks must be one frame, got {config['chunk_shape']}")
        inner = [c["name"] for c in config["codecs"]]
        index = [c["name"] for c in config["index_codecs"]]
        endian = config["codecs"][0].get("configuration", {}).get("endian", "little")
        if inner != ["bytes", "blosc"] or index != ["bytes", "crc32c"] or endian != "little":
            raise ShardLayoutError(f"unsupported codecs {inner} / index {index}")
        if config.get("index_location", "end") != "end":
            raise ShardLayoutError("the shard index must be at the end")
        blosc = config["codecs"][1]["configuration"]
        self.blosc = Blosc(
            cname=blosc["cname"],
            clevel=blosc["clevel"],
            shuffle=_SHUFFLE[blosc["shuffle"]],
            blocksize=blosc.get("blocksize", 0),
            typesize=blosc.get("typesize"),
        )
        self.frames_per_shard = int(array.shards[0])  # type: ignore[index]
        self.dtype = np.dtype(array.dtype).newbyteorder("<")
        self.frame_shape = shape
        self._array = array

    def key(self, shard: int) -> str:
        """The store key of shard number ``shard`` (e.g. ``c/3/0/0``)."""
        return self._array.metadata.encode_chunk_key((shard, *([0] * len(self.frame_shape))))

    def encode(self, frames: np.ndarray) -> bytes:
        """The shard holding ``frames`` (at most ``frames_per_shard``; the rest stay empty)."""
        n = len(frames)
        if n > self.frames_per_shard or frames.shape[1:] != self.frame_shape:
            raise ValueError(f"{frames.shape} does not fit a shard of {self.frames_per_shard}")
        block = np.ascontiguousarray(frames, dtype=self.dtype)
        chunks = list(_POOL.map(self.blosc.encode, block))
        index = np.full((self.frames_per_shard, 2), EMPTY, "<u8")
        sizes = np.array([len(c) for c in chunks], np.uint64)
        index[:n, 1] = sizes
        index[:n, 0] = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.uint64)
        raw = index.tobytes()
        checksum = np.uint32(google_crc32c.value(raw)).astype("<u4").tobytes()
        return b"".join([*chunks, raw, checksum])
