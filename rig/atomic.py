"""Crash-safe metadata writes: a temporary file in the same folder, fsync, then rename."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_text_atomic(path: str | Path, text: str, durable: bool = True) -> None:
    """Replace ``path`` with ``text`` so a reader sees the old or the new file, never half.

    ``durable=False`` skips the fsync: still whole after a killed process, and cheap enough to
    call twice a second per stream; not guaranteed to survive a power cut."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, data: Any, durable: bool = True) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=_jsonable) + "\n", durable)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
