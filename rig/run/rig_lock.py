"""One user of a rig at a time: a session, or a manual output test, holds the rig's lock.

A session and a tone or shock test must never drive the same outputs at once (a test pulse in
the middle of a session is a shock the protocol did not give). Whoever uses a rig's devices
holds an exclusive lock on ``RIG_LOCK_DIR/<rig name>.lock`` (:class:`WriterLock`: ``flock`` on
POSIX, dropped by the operating system however the holder ends, so a crashed session never
blocks the rig). A second user is refused with :class:`RigBusy`, naming the holder's process.

``RIG_LOCK_DIR`` defaults to ``fear-rig-locks`` in the system's temporary folder; the tests
point it at a folder of their own, so parallel tests on the simulated rigs do not meet.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rig.data.folder import safe_name
from rig.data.writer_lock import WriterLock
from rig.files.rigfile import RigFile
from rig.ports import DeviceBusy, DeviceError

LOCK_DIR_ENV = "RIG_LOCK_DIR"


class RigBusy(DeviceBusy):
    """The rig's devices are in use by a session or an output test."""


def rig_lock_path(rig: RigFile) -> Path:
    # not tempfile.gettempdir(): it probes by writing a file, and raises on a full disk
    temp = os.environ.get("TMPDIR") or ("/tmp" if os.name == "posix" else tempfile.gettempdir())
    folder = Path(os.environ.get(LOCK_DIR_ENV) or Path(temp) / "fear-rig-locks")
    return folder / f"{safe_name(rig.name, 'rig')}.lock"


@contextlib.contextmanager
def holding_rig(rig: RigFile) -> Iterator[None]:
    """Hold ``rig``'s lock for the block; :class:`RigBusy` if another user holds it, and
    :class:`DeviceError` when the lock file cannot be made (a full or read-only disk)."""
    path = rig_lock_path(rig)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = WriterLock.acquire(path)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, errno.EDEADLK):
            raise DeviceError(f"cannot take the lock of rig {rig.name} at {path}: {exc}") from None
        holder = ""
        with contextlib.suppress(OSError):
            holder = path.read_text(encoding="utf-8").strip()
        who = f" (process {holder})" if holder.isdigit() else ""
        raise RigBusy(
            f"rig {rig.name} is in use{who}: a session or an output test is running on it"
        ) from None
    try:
        yield
    finally:
        lock.release()
