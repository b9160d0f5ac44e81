"""One user of a rig at a time: a session, or a manual output test, holds the rig's lock.

A session and a tone or shock test must never drive the same outputs at once (a test pulse in
the middle of a session is a shock the protocol did not give). Whoever uses a rig's devices
holds a lock on ``RIG_LOCK_DIR/<rig name>.lock`` (``flock`` on POSIX, ``msvcrt.locking`` on
Windows), dropped by the operating system however the holder ends, so a crashed session never
blocks the rig. A second user is refused with :class:`RigBusy`. Sessions on a simulated rig
share the lock (each has devices of its own); a LIVE session and every output test hold it
alone.

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
from typing import IO

from rig.data.folder import safe_name
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
def holding_rig(rig: RigFile, shared: bool = False) -> Iterator[None]:
    """Hold ``rig``'s lock for the block: :class:`RigBusy` if another user holds it, and
    :class:`DeviceError` when the lock file cannot be made (a full or read-only disk).

    ``shared``: a session on a simulated rig, whose devices are its own, so several may run at
    once (rehearsals, the reliability tests); an output test still waits for none of them
    (it takes the lock exclusively, and a shared holder refuses it). A LIVE session takes it
    exclusively: one session or test at a time."""
    path = rig_lock_path(rig)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file = open(path, "a+b")  # noqa: SIM115 - held until the block ends
    except OSError as exc:
        raise DeviceError(f"cannot take the lock of rig {rig.name} at {path}: {exc}") from None
    try:
        _lock(file, shared)
    except OSError as exc:
        file.close()
        if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, errno.EDEADLK):
            raise DeviceError(f"cannot take the lock of rig {rig.name} at {path}: {exc}") from None
        raise RigBusy(
            f"rig {rig.name} is in use: a session or an output test is running on it"
        ) from None
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            _unlock(file)
        file.close()


if os.name == "posix":
    import fcntl

    def _lock(file: IO[bytes], shared: bool) -> None:
        fcntl.flock(file.fileno(), (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)

    def _unlock(file: IO[bytes]) -> None:
        fcntl.flock(file.fileno(), fcntl.LOCK_UN)

else:  # Windows has no shared file locks: every holder is exclusive there
    import msvcrt

    def _lock(file: IO[bytes], shared: bool) -> None:
        file.seek(0)
        msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(file: IO[bytes]) -> None:
        file.seek(0)
        msvcrt.locking(file.fileno(), msvcrt.LK_UNLCK, 1)
