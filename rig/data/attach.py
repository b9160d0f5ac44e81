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
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import zarr

from rig.data.folder import FRAME_BLOCK_BYTES, SessionFolder, utc_now
from rig.data.sync import FrameAccounting, frame_timestamps
from rig.files.inputfile import InputError, Problem, error_line
from rig.program.schedule import FRAME_CLOCK, IMAGING

STREAM = IMAGING


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


MAX_FRAME_BYTES = 16 * 2**20  # one page: 4096 x 2048 at 16 bit; a microscope frame is far less


def inspect_tiff(path: Path) -> TiffSource:
    """Count a TIFF's pages and check they are 2-D frames of one shape and dtype whose data
    lies inside the file (and, uncompressed, fills its shape); InputError if not. Nothing
    is decoded here, and a page that declares more than :data:`MAX_FRAME_BYTES` is refused
    before any allocation."""
    file = str(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise InputError(file, [Problem("", "not a regular file")])
        size = path.stat().st_size
        with tifffile.TiffFile(path) as tif:
            pages = tif.pages
            first = pages.first
            kinds = set()
            count = 0
            for page in pages:
                kinds.add((page.shape, page.dtype))  # type: ignore[union-attr]
                _check_page(file, count, page, size)
                count += 1
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(file, [Problem("", "no such file")]) from None
    except Exception as exc:  # tifffile raises many kinds on a damaged file
        raise InputError(file, [Problem("", f"not a readable TIFF: {error_line(exc)}")]) from None
    if len(first.shape) != 2:
        raise InputError(
            file,
            [Problem("", f"pages of shape {first.shape}: expected single-channel 2-D frames")],
        )
    if len(kinds) != 1:
        raise InputError(file, [Problem("", "pages differ in shape or dtype")])
    return TiffSource(path, count, tuple(first.shape), np.dtype(first.dtype), size)


def _check_page(file: str, number: int, page: Any, file_size: int) -> None:
    """A page's declared frame fits the limits and its data lies inside the file."""
    shape, dtype = tuple(page.shape), np.dtype(page.dtype)
    frame_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    where = f"page {number}"
    if frame_bytes > MAX_FRAME_BYTES:
        dims = " x ".join(str(n) for n in shape)
        raise InputError(
            file,
            [
                Problem(
                    where,
                    f"a {dims} {dtype} frame is {frame_bytes} bytes; at most "
                    f"{MAX_FRAME_BYTES} bytes per frame",
                )
            ],
        )
    offsets, counts = page.dataoffsets, page.databytecounts
    if len(offsets) != len(counts) or any(
        o < 0 or c < 0 or o + c > file_size for o, c in zip(offsets, counts, strict=False)
    ):
        raise InputError(file, [Problem(where, "its data lies outside the file (truncated?)")])
    if page.compression == 1 and sum(counts) < frame_bytes:
        raise InputError(
            file,
            [Problem(where, f"{sum(counts)} bytes of data for a frame of {frame_bytes} bytes")],
        )


def _frame_clock_edges(folder: SessionFolder) -> np.ndarray:
    edges = folder.rising_edges(FRAME_CLOCK)
    if edges is None:
        raise InputError(str(folder), [Problem("edges", "no frame clock was recorded")])
    return edges


def _copy_pages(sources: list[TiffSource], frames: zarr.Array) -> None:
    """Copy the files' pages, in order, into ``frames``, whole shards at a time; a page that
    does not decode is :class:`InputError` (the session is left as it was)."""
    _, height, width = frames.shape
    dtype = sources[0].dtype
    chunk_t = frames.shards[0] if frames.shards else frames.chunks[0]
    frame_bytes = height * width * dtype.itemsize
    block_t = max(chunk_t, FRAME_BLOCK_BYTES // frame_bytes // chunk_t * chunk_t)
    block = np.empty((block_t, height, width), dtype)
    start = filled = 0
    for source in sources:
        with tifffile.TiffFile(source.path) as tif:
            for number, page in enumerate(tif.pages):
                try:
                    block[filled] = page.asarray()  # type: ignore[union-attr]
                except Exception as exc:
                    problem = Problem(f"page {number}", f"cannot be read: {error_line(exc)}")
                    raise InputError(str(source.path), [problem]) from None
                filled += 1
                if filled == block_t:
                    frames[start : start + filled] = block
                    start, filled = start + filled, 0
    if filled:
        frames[start : start + filled] = block[:filled]


def attach_tiffs(
    folder: SessionFolder, files: list[Path], allow_mismatch: bool = False
) -> dict[str, Any]:
    """Import ``files`` (in order) as the two-photon stream; returns the stored record.

    Raises :class:`CountMismatch` (session unchanged) when the frame and edge counts differ
    and ``allow_mismatch`` is False, :class:`InputError` for anything else wrong.
    """
    attrs = folder.require_finalized()
    if STREAM in folder.stream_groups():
        raise InputError(
            str(folder), [Problem(STREAM, "the session already has a two-photon stream")]
        )
    edges = _frame_clock_edges(folder)
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
    fs = attrs.sample_rate_hz
    stamps = frame_timestamps(np.arange(n), edges, fs)
    rate = attrs.imaging_rate_hz
    if not rate:
        rate = fs / float(np.median(np.diff(edges))) if m > 1 else 30.0
    files_record = [s.record() for s in sources]
    shape = (n, *sources[0].shape)
    with folder.adding_stream(STREAM, shape, sources[0].dtype, float(rate), stamps) as frames:
        _copy_pages(sources, frames)
    record = {
        "kind": "attached",
        "attached_utc": utc_now(),
        "files": files_record,
        "frames": n,
        "edges": m,
        "mismatch": mismatch,
    }
    # the microscope scans on its own clock: its frames answer to the edges it put out
    accounting = FrameAccounting(
        STREAM, folder.frames_expected(STREAM), edges=m, received=n, written=n, frames_on_clock=m
    )
    accounting.without_edge = int(np.isnan(stamps).sum())
    accounting.edges_without_frame = max(0, m - n)
    streams = dict(attrs.streams or {})
    streams[STREAM] = accounting.to_dict()
    folder.update_attrs(imaging_source=record, streams=streams)
    return record
