"""``rig attach``: the microscope's own TIFFs become the session's two-photon stream.

With a frame-clock-only microscope (``imaging: {driver: frame-clock}``) the frames stay in the
microscope software's files (e.g. ScanImage's multi-page TIFFs, possibly split over several
files) and the session holds only the recorded frame-clock edges. Attaching imports the pages
of the given files, in the order given, as ``imaging/`` (an OME-NGFF 0.5 image like the other
streams) with frame ``i`` timed at rising edge ``i`` of the frame clock.

When the page count differs from the edge count nothing is changed (:class:`CountMismatch`),
unless ``allow_mismatch``: then frame ``i`` still gets edge ``i`` (the microscope and the
DAQ start together, so the start is the anchor), frames past the last edge get a NaN time, and
the mismatch is recorded in the root attributes.

The stream is written to a hidden group next to its final place and renamed into place when
complete, so an interrupted attach leaves the session as it was.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import zarr

from rig.export import FRAME_BLOCK_BYTES
from rig.frame_table import require_finalized
from rig.inputfile import InputError, Problem
from rig.schedule import FRAME_CLOCK, expected_frames
from rig.session import schedule_from_attrs
from rig.store import create_frame_array, frames_per_shard, ome_attrs, update_root_attrs, utc_now
from rig.sync import FrameAccounting, frame_timestamps

STREAM = "imaging"


class CountMismatch(Exception):
    """The TIFFs hold a different number of frames than frame-clock edges were recorded."""


@dataclass(frozen=True)
class TiffSource:
    """One microscope file: its pages are frames of one shape and dtype."""

    path: Path
    frames: int
    shape: tuple[int, int]
    dtype: np.dtype
    size_bytes: int

    def record(self) -> dict[str, Any]:
        return {
            "name": self.path.name,
            "path": str(self.path.resolve()),
            "frames": self.frames,
            "size_bytes": self.size_bytes,
            "sha256": _sha256(self.path),
        }


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def inspect_tiff(path: Path) -> TiffSource:
    """Count a TIFF's pages and check they are 2-D frames of one shape; InputError if not."""
    if not path.is_file():
        raise InputError(str(path), [Problem("", "no such file")])
    try:
        with tifffile.TiffFile(path) as tif:
            pages = tif.pages
            first = pages.first
            shapes = {(p.shape, p.dtype) for p in pages}  # type: ignore[union-attr]
            count = len(pages)
    except (tifffile.TiffFileError, ValueError, OSError) as exc:
        raise InputError(str(path), [Problem("", f"not a readable TIFF: {exc}")]) from None
    if len(first.shape) != 2:
        raise InputError(
            str(path),
            [Problem("", f"pages of shape {first.shape}: expected single-channel 2-D frames")],
        )
    if len(shapes) != 1:
        raise InputError(str(path), [Problem("", "pages differ in shape or dtype")])
    return TiffSource(path, count, tuple(first.shape), np.dtype(first.dtype), path.stat().st_size)


def _frame_clock_edges(root: zarr.Group, folder: Path) -> np.ndarray:
    if "edges" not in root or FRAME_CLOCK not in root["edges"]:
        raise InputError(str(folder), [Problem("edges", "no frame clock was recorded")])
    clock = root["edges"][FRAME_CLOCK]
    return clock["samples"][:][clock["rising"][:]]


def _write_stream(
    target: Path, sources: list[TiffSource], stamps: np.ndarray, rate_hz: float
) -> None:
    height, width = sources[0].shape
    dtype = sources[0].dtype
    n = sum(s.frames for s in sources)
    chunk_t = frames_per_shard(rate_hz)
    image = zarr.open_group(str(target), mode="w", zarr_format=3)
    image.attrs.put(ome_attrs(STREAM, rate_hz))
    frames = create_frame_array(image, n, height, width, dtype, rate_hz)
    image.create_array("device_index", data=np.arange(n, dtype=np.int64), chunks=(chunk_t,))
    image.create_array("timestamps_s", data=stamps)
    frame_bytes = height * width * dtype.itemsize
    block_t = max(chunk_t, FRAME_BLOCK_BYTES // frame_bytes // chunk_t * chunk_t)
    block = np.empty((block_t, height, width), dtype)
    start = filled = 0
    for source in sources:
        with tifffile.TiffFile(source.path) as tif:
            for page in tif.pages:
                block[filled] = page.asarray()  # type: ignore[union-attr]
                filled += 1
                if filled == block_t:
                    frames[start : start + filled] = block
                    start, filled = start + filled, 0
    if filled:
        frames[start : start + filled] = block[:filled]


def attach_tiffs(folder: Path, files: list[Path], allow_mismatch: bool = False) -> dict[str, Any]:
    """Import ``files`` (in order) as the two-photon stream; returns the stored record.

    Raises :class:`CountMismatch` (session unchanged) when the frame and edge counts differ
    and ``allow_mismatch`` is False, :class:`InputError` for anything else wrong.
    """
    attrs = require_finalized(folder)
    zpath = folder / "session.zarr"
    root = zarr.open_group(str(zpath), mode="r")
    if STREAM in root:
        raise InputError(
            str(folder), [Problem(STREAM, "the session already has a two-photon stream")]
        )
    edges = _frame_clock_edges(root, folder)
    sources = [inspect_tiff(Path(f)) for f in files]
    kinds = {(s.shape, s.dtype) for s in sources}
    if len(kinds) != 1:
        detail = ", ".join(f"{s.path.name}: {s.shape} {s.dtype}" for s in sources)
        raise InputError(str(folder), [Problem("", f"the files' frames differ ({detail})")])
    n, m = sum(s.frames for s in sources), len(edges)
    mismatch = None
    if n != m:
        message = f"{n} frames in the TIFF files, {m} frame-clock edges recorded"
        if not allow_mismatch:
            raise CountMismatch(
                f"{message}; session unchanged (--allow-mismatch attaches them anyway)"
            )
        mismatch = {
            "frames": n,
            "edges": m,
            "frames_without_edge": max(0, n - m),
            "edges_without_frame": max(0, m - n),
            "message": message + "; frame i is timed at edge i",
        }
    fs = float(attrs["sample_rate_hz"])
    stamps = frame_timestamps(np.arange(n), edges, fs)
    rate = (attrs["protocol"].get("recording", {}).get("imaging") or {}).get("frame_rate_hz")
    if not rate:
        rate = fs / float(np.median(np.diff(edges))) if m > 1 else 30.0
    files_record = [s.record() for s in sources]
    tmp = zpath / f".{STREAM}-attaching"
    shutil.rmtree(tmp, ignore_errors=True)  # left by an attach that was killed
    try:
        _write_stream(tmp, sources, stamps, float(rate))
        tmp.rename(zpath / STREAM)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    record = {
        "kind": "attached",
        "attached_utc": utc_now(),
        "files": files_record,
        "frames": n,
        "edges": m,
        "mismatch": mismatch,
    }
    accounting = FrameAccounting(
        STREAM, expected_frames(schedule_from_attrs(attrs), STREAM), edges=m, received=n, written=n
    )
    accounting.without_edge = int(np.isnan(stamps).sum())
    accounting.edges_without_frame = max(0, m - n)
    streams = dict(attrs.get("streams") or {})
    streams[STREAM] = accounting.to_dict()
    update_root_attrs(zpath, imaging_source=record, streams=streams)
    return record
