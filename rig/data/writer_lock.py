"""Who is writing a session: a lock the writing process holds, and its start time; and an
exclusive lock for one read-modify-write of a shared file at a time.

A session is ``running`` only while the process that writes it lives. A recorded pid is not
enough to tell: after a reboot, or simply later, the same pid can belong to another program,
and the session would read as running forever. So the writer holds an exclusive lock on
``journal/writer.lock`` (``flock`` on POSIX, ``msvcrt.locking`` on Windows) from the moment the
folder exists until its status is final. The operating system drops the lock when the process
ends, however it ends (``kill -9``, a power cut), so a reader that can take the lock knows the
writer is gone. A reader in the writing process itself (the GUI) cannot take it either: the
lock belongs to an open file, not to the process.

Sessions written before the lock existed, and file systems without locks, fall back to the
pid: alive, on this host, and started before the session (its start time, where the OS tells
it: ``/proc`` on Linux).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

LOCK_FILE = "writer.lock"  # in the journal folder


class WriterLock:
    """The lock a session's writing process holds on its session (see the module docstring)."""

    def __init__(self, file: IO[bytes]):
        self._file: IO[bytes] | None = file

    @classmethod
    def acquire(cls, path: Path) -> WriterLock:
        """Take the lock on ``path`` (created) for this process; :class:`OSError` if another
        process holds it."""
        file = open(path, "a+b")  # noqa: SIM115 - held until release()
        try:
            _lock(file)
            file.seek(0)
            file.truncate()
            file.write(f"{os.getpid()}\n".encode())
            file.flush()
        except BaseException:
            file.close()
            raise
        return cls(file)

    @property
    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        """Let go of the session (its status is final, or it is left for ``rig recover``)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                _unlock(self._file)
            self._file.close()
            self._file = None


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created) for the block, waiting for it: one
    read-modify-write at a time across processes (the simulated animals' learned state)."""
    with open(path, "a+b") as file:
        _lock(file, wait=True)
        try:
            yield
        finally:
            _unlock(file)


def writer_alive(path: Path) -> bool | None:
    """Whether a process holds the lock at ``path``: True, False, or None when there is no
    lock file or the file system cannot say (then the pid decides)."""
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError:
        return None
    with file:
        try:
            _lock(file)
        except BlockingIOError:
            return True
        except PermissionError:  # Windows: a region locked by another process
            return True
        except OSError:
            return None  # e.g. ENOLCK: no locks on this file system
        _unlock(file)
        return False


def process_alive(pid: int | None, session_started: datetime | None) -> bool:
    """Whether ``pid`` (on this host) can be the process that started writing a session at
    ``session_started``: it exists and, where the OS tells its start time, started before."""
    if pid is None or pid <= 0:  # no writer recorded (0 and -1 would name a process group)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        pass  # someone else's process, or a pid this OS cannot have: check its start time
    started = process_start(pid)
    if started is None or session_started is None:
        return True  # cannot tell: do not guess dead
    # /proc gives the boot time in whole seconds: allow for it
    return (started - session_started).total_seconds() < 2.0


def process_start(pid: int) -> datetime | None:
    """When process ``pid`` started (UTC), where the OS says (Linux); None otherwise."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime, in clock ticks
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return datetime.fromtimestamp(boot + ticks / hz, tz=timezone.utc)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows rigs only
    import msvcrt

    def _lock(file: IO[bytes], wait: bool = False) -> None:
        file.seek(0)
        msvcrt.locking(file.fileno(), msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK, 1)

    def _unlock(file: IO[bytes]) -> None:
        file.seek(0)
        msvcrt.locking(file.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(file: IO[bytes], wait: bool = False) -> None:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))

    def _unlock(file: IO[bytes]) -> None:
        fcntl.flock(file.fileno(), fcntl.LOCK_UN)
