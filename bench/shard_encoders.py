"""The library shard encoders ``bench_store.py`` puts behind the session's StreamWriter, to
compare with the one sessions use (``rig.data.shards.ShardEncoder``, hand-written).

* :class:`ZarrPythonShardEncoder`: zarr-python's sharding codec, one whole shard per
  ``twin[a:b] = frames`` (aligned to the shard) into an in-memory twin of the array made from
  its public properties; the bytes are taken out of the twin's store.
* :class:`TensorstoreShardEncoder`: tensorstore's zarr3 driver writing the whole shard into an
  in-memory key-value store; the bytes are taken out of it.

Both implement ``rig.data.shards.ShardEncoding`` for an array made by
``rig.data.folder.create_frame_array`` and give the same bytes as ``rig.data.shards.ShardEncoder``
(the benchmark reads every frame back). The disk write stays the writer's (through
``FrameDisk``), so only the encoding differs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import zarr
from zarr.storage import MemoryStore

from rig.data.folder import array_metadata


class ZarrPythonShardEncoder:
    """Encodes whole shards through zarr-python's sharding codec, in memory."""

    def __init__(self, array: zarr.Array):
        self._store: dict[str, Any] = {}  # key -> zarr Buffer
        self._twin = zarr.create_array(
            MemoryStore(self._store),
            shape=array.shape,
            chunks=array.chunks,
            shards=array.shards,
            dtype=array.dtype,
            filters=array.filters,
            serializer=array.serializer,
            compressors=array.compressors,
            fill_value=array.fill_value,
            config={"write_empty_chunks": True},  # a frame of zeros is still a frame
        )
        self.frames_per_shard = int(array.shards[0])  # type: ignore[index]

    def encode(self, start: int, frames: np.ndarray) -> tuple[str, bytes]:
        end = start + len(frames)
        if end > self._twin.shape[0]:  # the array grew: grow the twin (metadata only)
            self._twin.resize((start + self.frames_per_shard, *self._twin.shape[1:]))
        self._twin[start:end] = frames
        (key,) = [k for k in self._store if k != "zarr.json"]
        return key, self._store.pop(key).to_bytes()


class TensorstoreShardEncoder:
    """Encodes whole shards through tensorstore's zarr3 driver, in memory."""

    def __init__(self, array: zarr.Array):
        import tensorstore as ts

        meta = array_metadata(array)
        for key in ("zarr_format", "node_type", "attributes", "storage_transformers"):
            meta.pop(key, None)
        self._store = ts.open(
            {
                "driver": "zarr3",
                "kvstore": {"driver": "memory"},
                "metadata": meta,
                "store_data_equal_to_fill_value": True,  # a frame of zeros is still a frame
                "create": True,
            }
        ).result()
        self._kv = self._store.kvstore
        self.frames_per_shard = int(meta["chunk_grid"]["configuration"]["chunk_shape"][0])
        self.zeros = "/0" * (len(meta["shape"]) - 1)

    def encode(self, start: int, frames: np.ndarray) -> tuple[str, bytes]:
        import tensorstore as ts

        end = start + len(frames)
        if end > self._store.shape[0]:
            shape = [end, *self._store.shape[1:]]
            self._store = self._store.resize(exclusive_max=shape, expand_only=True).result()
        # no copy of the frames: the write is committed (and the store has no cache) before
        # the writer reuses the block
        self._store[start:end].write(frames, can_reference_source_data_indefinitely=True).result()
        key = f"c/{start // self.frames_per_shard}{self.zeros}".encode()
        data = self._kv.read(key).result().value
        self._kv.delete_range(ts.KvStore.KeyRange(key, key + b"\0"))
        return key.decode(), data
