"""``rig export``: a session as the files analysis tools read (CSV tables, a suite2p TIFF).

Every file is written to a temporary name in the export folder and renamed when complete, so
an interrupted export never leaves a half file under the final name. The NWB export is in
:mod:`rig.exports.nwb`. The columns are documented in ``docs/format.md``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import tifffile
import zarr

from rig.behaviour.freezing import freezing_by_epoch
from rig.behaviour.rescore import freezing_summary
from rig.data.atomic import open_atomic
from rig.data.folder import FRAME_BLOCK_BYTES, FrameStream, SessionFolder
from rig.data.integrity import DamagedFrames, FrameDamage, merge_ranges
from rig.data.trials import TIME_EVENTS, measured_trials, trials_table
from rig.exports.frame_table import COLUMNS, CS_OTHER, FrameTable, build_frame_table, cs_roles
from rig.files.inputfile import InputError, Problem
from rig.program.schedule import FRAME_CLOCK, IMAGING

EVENT_COLUMNS = ("kind", "t_s", "scheduled_s", "trial", "phase", "stimulus", "role", "detail")
TRIAL_EPOCHS = ("pre", "cs", "us", "iti", "trace")  # trace: trace conditioning's gap
PHASE_EPOCHS = ("all", "baseline", "post")
BIGTIFF_ABOVE_BYTES = 2**32 - 2**25  # classic TIFF offsets are 32-bit; keep a margin for tags


def export_folder(folder: SessionFolder, out: Path | None) -> Path:
    """Where a session's exports go: ``out`` if given, else ``SESSION/export``."""
    target = Path(out) if out is not None else folder.path / "export"
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(str(target), [Problem("", f"cannot write exports here: {exc}")]) from None
    return target


def _cell(value: Any) -> Any:
    """CSV text for one value: empty for None/NaN, integers without a decimal point."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        return repr(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def _write_rows(f: TextIO, header: tuple[str, ...] | list[str], rows: Iterator[list]) -> None:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])


def write_frames_csv(table: FrameTable, path: Path) -> Path:
    """The frame table, one row per frame (columns: :data:`rig.exports.frame_table.COLUMNS`)."""
    cols = [table.columns[c] for c in COLUMNS]
    with open_atomic(path) as f:
        _write_rows(f, COLUMNS, (list(row) for row in zip(*cols, strict=True)))
    return path


def event_rows(events: list[dict[str, Any]], roles: dict[str, str]) -> list[list[Any]]:
    """Rows of ``events.csv``: the fixed columns, then any other keys as JSON in ``extra``."""
    rows = []
    for e in events:
        kind = e.get("kind", "")
        role = ""
        if kind in ("cs_on", "cs_off"):
            role = roles.get(e.get("stimulus") or "", CS_OTHER)
        elif kind in ("us_on", "us_off"):
            role = "us"
        extra = {k: v for k, v in e.items() if k not in EVENT_COLUMNS}
        rows.append(
            [e.get(c) if c != "role" else role for c in EVENT_COLUMNS]
            + [json.dumps(extra, sort_keys=True) if extra else ""]
        )
    return rows


def freezing_tables(folder: SessionFolder) -> dict[str, dict[str, Any]]:
    """Percent freezing per trial and per phase epoch, scored and (simulated) true.

    Returns ``{"trials": {index: {"percent_cs": .., "true_percent_cs": .., ...}}, "phases":
    {name: {...}}}``; a value is None when the epoch has no sample or nothing was scored.
    """
    trials: dict[int, dict[str, Any]] = {}
    phases: dict[str, dict[str, Any]] = {}
    record = folder.freezing_record()
    if record is not None:
        for row in freezing_summary(record):
            trials[row["index"]] = {f"percent_{e}": row.get(f"percent_{e}") for e in TRIAL_EPOCHS}
        for p in record["results"]["phases"]:
            phases[p["name"]] = {
                f"percent_{e}": (v["percent"] if v else None) for e, v in p["epochs"].items()
            }
    truth = folder.true_freezing()
    if truth is not None:
        times, frozen = truth
        ok = np.isfinite(times)
        phase_spans = [
            {"name": p.name, "start_s": p.start_s, "end_s": p.end_s}
            for p in folder.attrs.timeline.phases
        ]
        results = freezing_by_epoch(times[ok], frozen[ok], trials_table(folder), phase_spans)
        for t in results["trials"]:
            row = trials.setdefault(t["index"], {})
            for e, v in t["epochs"].items():
                row[f"true_percent_{e}"] = v["percent"] if v else None
        for p in results["phases"]:
            row = phases.setdefault(p["name"], {})
            for e, v in p["epochs"].items():
                row[f"true_percent_{e}"] = v["percent"] if v else None
    return {"trials": trials, "phases": phases}


def trial_records(folder: SessionFolder) -> list[dict[str, Any]]:
    """One record per planned trial: roles, measured times (None if not delivered), freezing."""
    timeline = folder.attrs.timeline
    roles = cs_roles(folder.protocol())
    freezing = freezing_tables(folder)["trials"]
    out = []
    for t, measured in zip(
        timeline.trials, measured_trials(timeline, folder.events()), strict=True
    ):
        i = t.index
        row: dict[str, Any] = {
            "trial": i,
            "phase": t.phase,
            "phase_trial": t.phase_trial,
            "cs": t.cs,
            "cs_role": roles.get(t.cs, CS_OTHER),
            "us": t.us or "",
            "delivered": measured["cs_onset_s"] is not None,
        }
        row.update({k: measured[k] for k in TIME_EVENTS})
        row.update({f"planned_{k}": planned for k, planned in measured["planned"].items()})
        for prefix in ("percent_", "true_percent_"):
            for e in TRIAL_EPOCHS:
                row[prefix + e] = freezing.get(i, {}).get(prefix + e)
        row["mode"] = mode(folder)
        out.append(row)
    return out


def phase_records(folder: SessionFolder) -> list[dict[str, Any]]:
    """One record per phase: its span and percent freezing per phase epoch."""
    freezing = freezing_tables(folder)["phases"]
    out = []
    for p in folder.attrs.timeline.phases:
        row: dict[str, Any] = {
            "name": p.name,
            "start_s": p.start_s,
            "end_s": p.end_s,
            "n_trials": p.n_trials,
        }
        for prefix in ("percent_", "true_percent_"):
            for e in PHASE_EPOCHS:
                row[prefix + e] = freezing.get(p.name, {}).get(prefix + e)
        row["mode"] = mode(folder)
        out.append(row)
    return out


def mode(folder: SessionFolder) -> str:
    """``SIMULATED`` or ``LIVE``: what every export of the session says it is."""
    return "SIMULATED" if folder.attrs.simulated else "LIVE"


def _write_records(records: list[dict[str, Any]], path: Path) -> Path:
    header = list(records[0]) if records else []
    with open_atomic(path) as f:
        _write_rows(f, header, ([r[k] for k in header] for r in records))
    return path


def export_csv(folder: SessionFolder, out: Path | None = None) -> list[Path]:
    """Write frames.csv, events.csv, trials.csv and phases.csv; returns their paths."""
    folder.require_finalized()
    target = export_folder(folder, out)
    table = build_frame_table(folder)
    paths = [write_frames_csv(table, target / "frames.csv")]
    events_path = target / "events.csv"
    with open_atomic(events_path) as f:
        rows = event_rows(folder.events(), table.roles)
        _write_rows(f, [*EVENT_COLUMNS, "extra"], iter(rows))
    paths.append(events_path)
    paths.append(_write_records(trial_records(folder), target / "trials.csv"))
    paths.append(_write_records(phase_records(folder), target / "phases.csv"))
    return paths


def imaging_stream(folder: SessionFolder) -> FrameStream:
    """The stored two-photon frames; :class:`InputError` when the session has none."""
    imaging = folder.stream(IMAGING)
    if imaging is None or imaging.n_frames == 0:
        hint = (
            "frame clock recorded but no frames: import the microscope's files with `rig attach`"
            if folder.edges(FRAME_CLOCK) is not None
            else "no imaging in this session"
        )
        raise InputError(str(folder), [Problem("imaging", f"no two-photon frames ({hint})")])
    return imaging


def iter_frame_blocks(frames: zarr.Array, block_bytes: int = FRAME_BLOCK_BYTES) -> Iterator:
    """``(start, block)`` over a (t, y, x) array, each block at most ``block_bytes``."""
    frame_bytes = int(np.prod(frames.shape[1:])) * frames.dtype.itemsize
    step = max(1, block_bytes // max(frame_bytes, 1))
    chunk_t = frames.chunks[0]
    step = max(chunk_t, step // chunk_t * chunk_t)  # whole chunks: each is decoded once
    for start in range(0, frames.shape[0], step):
        yield start, frames[start : start + step]


DAMAGE_COLUMNS = ("stream", "first_frame", "last_frame", "frames", "kind", "detail")


def damage_list_path(export: Path) -> Path:
    """Where the list of damaged frames of an export goes: ``imaging.tif`` ->
    ``imaging.damaged.csv`` beside it."""
    return export.with_name(f"{export.stem}.damaged.csv")


def checked_streams(
    folder: SessionFolder, streams: list[FrameStream], allow_damaged: bool
) -> list[FrameDamage]:
    """The damaged frames of ``streams`` as far as their shard files and frame headers tell
    (missing, empty, unreadable index or header); :class:`DamagedFrames` when there are any
    and ``allow_damaged`` is False, before anything is written. Frames that do not decode
    (their checksum does not match) are found while reading."""
    damage = [d for stream in streams for d in stream.check("headers")]
    if damage and not allow_damaged:
        raise DamagedFrames(damage)
    return damage


def write_damage_list(export: Path, damage: list[FrameDamage]) -> Path | None:
    """Write (or, for an undamaged export, remove a stale) ``damage_list_path(export)``."""
    path = damage_list_path(export)
    if not damage:
        path.unlink(missing_ok=True)
        return None
    with open_atomic(path) as f:
        rows = ([d.to_dict()[c] for c in DAMAGE_COLUMNS] for d in merge_ranges(damage))
        _write_rows(f, DAMAGE_COLUMNS, rows)
    return path


@dataclass
class FrameExport:
    """What one frame export wrote: its file and, with ``--allow-damaged``, the damaged
    frames it filled with zeros and the list of them written beside it."""

    path: Path
    damage: list[FrameDamage]
    damage_list: Path | None


def export_tiff(
    folder: SessionFolder,
    out: Path | None = None,
    bigtiff: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    allow_damaged: bool = False,
) -> FrameExport:
    """Write the two-photon frames as one multi-page TIFF (suite2p reads it), block by block.

    BigTIFF when ``bigtiff`` or when the data would not fit a classic TIFF. Damaged frames
    raise :class:`DamagedFrames` (nothing is written) unless ``allow_damaged``: then they are
    zeros and listed in ``imaging.damaged.csv`` beside the TIFF.
    """
    folder.require_finalized()
    imaging = imaging_stream(folder)
    damage = checked_streams(folder, [imaging], allow_damaged)
    frames = imaging.frames
    target = export_folder(folder, out)
    path = target / "imaging.tif"
    n = frames.shape[0]
    size = n * int(np.prod(frames.shape[1:])) * frames.dtype.itemsize
    big = bigtiff or size > BIGTIFF_ABOVE_BYTES

    def pages() -> Iterator[np.ndarray]:
        for start, block in imaging.blocks(FRAME_BLOCK_BYTES, damage, allow_damaged):
            yield from block
            if on_progress is not None:
                on_progress(start + len(block), n)

    with open_atomic(path, "wb") as f, tifffile.TiffWriter(f, bigtiff=big) as tif:
        tif.write(
            pages(),
            shape=frames.shape,
            dtype=frames.dtype,
            photometric="minisblack",
            metadata=_tiff_metadata(imaging.um_per_px, imaging.rate_hz, mode(folder)),
            **_tiff_resolution(imaging.um_per_px),
        )
    return FrameExport(path, damage, write_damage_list(path, damage))


def _tiff_metadata(um_per_px: float | None, rate_hz: float, kind: str) -> dict[str, Any]:
    """The shaped-series description: axes, the pixel size and frame interval known, and
    whether the frames are SIMULATED or LIVE."""
    meta: dict[str, Any] = {"axes": "TYX", "frame_interval_s": 1.0 / rate_hz, "mode": kind}
    if um_per_px is not None:
        meta.update(PhysicalSizeX=um_per_px, PhysicalSizeY=um_per_px, PhysicalSizeUnit="um")
    return meta


def _tiff_resolution(um_per_px: float | None) -> dict[str, Any]:
    """The TIFF XResolution/YResolution tags: pixels per centimetre (ImageJ and Fiji read
    them as the pixel size); none when the rig file gave no pixel size."""
    if um_per_px is None:
        return {}
    per_cm = 1e4 / um_per_px
    return {"resolution": (per_cm, per_cm), "resolutionunit": "CENTIMETER"}
