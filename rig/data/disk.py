"""The local file system as the session store's :class:`~rig.ports.FrameDisk`."""

from __future__ import annotations

from pathlib import Path

from rig.data.atomic import write_bytes_atomic


class LocalDisk:
    """Writes each file to a temporary name in its folder, then renames it into place.

    A process killed mid-write leaves the old file (or none) and a stray ``.tmp``, never a torn
    shard. There is no fsync per shard: a killed process loses nothing the OS has accepted, and
    fsync'ing 7 MB shards would stall a slow disk; power loss is covered by the OS's own
    write-back and by the journal (``rig recover``).
    """

    def write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data, durable=False)
