"""Crash-safe writes, the one way every file of the project is replaced: write a temporary
file (or folder) beside the target, then rename it onto the target.

A reader, or a process started after a crash, sees the old file or the new one, never half of
one. ``durable`` also fsyncs the new file before the rename and its folder after it, so the
new file survives a power cut too; without it the write is still whole after a killed process
(what the OS has accepted is kept) and costs no disk flush, for files rewritten many times a
second (the frame writer's shards and progress records).

Temporary names are ``.STEM.RANDOM.tmp.SUFFIX`` (the suffix kept: pynwb wants ``.nwb``), hidden
and unique, so two writers never share one and a leftover of a killed process is recognisable.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def temporary_sibling(path: Path) -> Path:
    """A fresh hidden name in ``path``'s folder for writing ``path`` before the rename."""
    return path.with_name(f".{path.stem}.{secrets.token_hex(6)}.tmp{path.suffix}")


@contextmanager
def atomic_path(path: str | Path, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for the caller to write (a file or a folder);
    when the block ends without an exception it is renamed onto ``path``, otherwise removed.

    A folder replaces only a missing or empty ``path`` (the OS's rule for renaming folders)."""
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        if durable and tmp.is_file():
            _fsync(tmp, os.O_RDWR)
        os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    if durable and hasattr(os, "O_DIRECTORY"):  # the rename itself, where the OS allows it
        _fsync(path.parent, os.O_RDONLY | os.O_DIRECTORY)


@contextmanager
def open_atomic(path: str | Path, mode: str = "w", durable: bool = True) -> Iterator[IO[Any]]:
    """Open ``path`` for writing through :func:`atomic_path` (text: UTF-8, ``\\n`` as written)."""
    kwargs: dict[str, Any] = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
    with atomic_path(path, durable) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def write_bytes_atomic(path: str | Path, data: bytes, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` (see the module docstring for ``durable``)."""
    with open_atomic(path, "wb", durable) as f:
        f.write(data)


def write_text_atomic(path: str | Path, text: str, durable: bool = True) -> None:
    """Replace ``path`` with ``text`` so a reader sees the old or the new file, never half."""
    with open_atomic(path, "w", durable) as f:
        f.write(text)


def write_json_atomic(path: str | Path, data: Any, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` as indented JSON (numpy scalars and arrays allowed)."""
    write_text_atomic(path, json.dumps(data, indent=2, default=_jsonable) + "\n", durable)


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
