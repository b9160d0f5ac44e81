"""Writing a measured speaker calibration into a rig file, leaving the rest as it was written.

(In ``rig.run``, beside the output tests that play the calibration tones: ``rig.files`` is the
layer below the session folder and writes nothing.)

The speaker calibration assistant (``rig calibrate-speaker``, the GUI's Rig menu) measures
``(frequency_hz, volts, level_db)`` points. They replace the points of the same frequencies
in the rig file's ``speaker.calibration`` (the others are kept); only the ``speaker:`` section's
lines change, so the lab's comments and layout elsewhere survive. The new text is validated as
a whole rig file before it replaces the old one (atomically; the old text is kept beside it as
``FILE.bak``), so a calibration can never leave a rig file that does not load.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from rig.data.atomic import write_text_atomic
from rig.files.inputfile import InputError, Problem, read_text_file
from rig.files.rigfile import CalibrationPoint, RigFile, rig_from_text

_TOP_KEY = re.compile(r"^[A-Za-z_][\w-]*\s*:")
_SPEAKER = re.compile(r"^speaker\s*:")


def merged_points(
    old: Iterable[CalibrationPoint], new: Iterable[CalibrationPoint]
) -> list[CalibrationPoint]:
    """``old`` with each frequency measured anew replaced by its new point, sorted."""
    table = {p.frequency_hz: p for p in old}
    table.update({p.frequency_hz: p for p in new})
    return [table[f] for f in sorted(table)]


def _point_line(p: CalibrationPoint) -> str:
    return (
        f"    - {{frequency_hz: {p.frequency_hz:g}, volts: {p.volts:.6g}, "
        f"level_db: {p.level_db:.4g}}}\n"
    )


def with_calibration(text: str, points: list[CalibrationPoint], file: str = "<rig>") -> str:
    """``text`` (a rig file) with ``speaker.calibration`` set to ``points``."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if _SPEAKER.match(line)), None)
    if start is None:
        end = start = len(lines)
        speaker: dict[str, Any] = {}
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if _TOP_KEY.match(lines[i])), len(lines)
        )
        while end > start + 1 and lines[end - 1].lstrip().startswith("#"):
            end -= 1  # a comment just above the next section belongs to it
        section = yaml.safe_load("".join(lines[start:end])) or {}
        speaker = section.get("speaker") or {}
        if not isinstance(speaker, dict):
            raise InputError(file, [Problem("speaker", "expected a mapping")])
    block = ["speaker:\n", "  calibration:\n", *(_point_line(p) for p in points)]
    for key, value in speaker.items():
        if key != "calibration":
            dumped = yaml.safe_dump({key: value}, default_flow_style=True, width=1000).strip()
            block.append(f"  {dumped.strip('{}')}\n")
    return "".join(lines[:start] + block + lines[end:])


def write_speaker_calibration(path: str | Path, measured: list[CalibrationPoint]) -> RigFile:
    """Merge ``measured`` into the rig file at ``path`` and write it (validated, atomically,
    the old text kept as ``path.bak``); returns the rig as it now reads."""
    path = Path(path)
    text = read_text_file(path)
    old = rig_from_text(text, str(path))
    points = merged_points(old.speaker.calibration, measured)
    new_text = with_calibration(text, points, str(path))
    rig = rig_from_text(new_text, str(path))  # never write a rig file that does not load
    write_text_atomic(path.with_name(path.name + ".bak"), text)
    write_text_atomic(path, new_text)
    return rig


__all__ = ["merged_points", "with_calibration", "write_speaker_calibration"]
