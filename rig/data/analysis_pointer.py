"""Where a session's analysis is: ``rig analyze`` leaves a small pointer file in each session
folder it analysed, and ``rig export --nwb`` follows it (without importing the analysis)."""

from __future__ import annotations

import json
from pathlib import Path

POINTER = Path("analysis") / "rig-analyze.json"


def read_pointer(folder: Path) -> dict | None:
    """The analysis recorded for a session folder, if its files still exist."""
    path = folder / POINTER
    try:
        pointer = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    arrays = Path(pointer.get("arrays", ""))
    return pointer if arrays.is_file() else None
