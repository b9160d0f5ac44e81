"""How fast does the session store write frames, against the alternatives, on the same disk?

Writes the same frames (512x512 uint16 calcium-like two-photon frames with shot noise at 30 Hz;
640x480 uint8 behaviour video at 100 fps) with:

* ``fear-rig``: :class:`rig.store.StreamWriter` (bounded queue, writer thread, whole Zarr v3
  shards of ~0.5 s, one frame per inner chunk, blosc-lz4);
* ``tensorstore``: zarr3 driver, the same shards and codecs, shard-aligned async writes;
* ``acquire-zarr``: its ZarrStream, the same chunks/shards, blosc-lz4, appended frame by frame;
* ``zarr-python``: ``array[i] = frame``, one frame per chunk, blosc-lz4 (no shards: a frame
  written into a shard rewrites the shard);
* ``tifffile``: uncompressed BigTIFF, frame by frame;
* ``raw``: ``numpy.tofile`` frame by frame into one file (the disk's ceiling).

Each writer runs in its own subprocess (so its peak memory is its own) into a fresh folder
of ``--dir`` (default: a temporary folder; one disk for all), which is deleted afterwards.
Reported per writer and stream: MB/s of raw frame data (append to close, flushed), ratio to
raw and to tensorstore, peak resident memory above the frames already in memory, and the p99.9
time to hand one frame over (the call the acquisition makes). Missing optional writers
(``pip install -e '.[bench]'``) are skipped with the reason. Prints a table (rich) and writes
``bench/results/store.json``.

    python bench/bench_store.py [--frames 600] [--dir /data/scratch]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WRITERS = ("fear-rig", "tensorstore", "acquire-zarr", "zarr-python", "tifffile", "raw")
STREAMS = {  # name: (height, width, dtype, rate_hz)
    "imaging": (512, 512, "uint16", 30.0),
    "video": (480, 640, "uint8", 100.0),
}
POOL = 32  # distinct frames, cycled


# ----------------------------------------------------------------------------- frames
def calcium_frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Two-photon-like frames: cells and neuropil in photons, Poisson shot noise, PMT gain."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    neuropil = 2.0 + 1.5 * np.sin(xx / 37.0) * np.cos(yy / 53.0) ** 2
    cells = np.zeros((h, w))
    centres = rng.uniform(0, [h, w], (150, 2))
    footprints = []
    for cy, cx in centres:
        y0, y1 = int(max(cy - 12, 0)), int(min(cy + 12, h))
        x0, x1 = int(max(cx - 12, 0)), int(min(cx + 12, w))
        blob = np.exp(-((yy[y0:y1, x0:x1] - cy) ** 2 + (xx[y0:y1, x0:x1] - cx) ** 2) / 18.0)
        footprints.append((y0, y1, x0, x1, blob))
        cells[y0:y1, x0:x1] += 3.0 * blob
    out = np.empty((n, h, w), np.uint16)
    for t in range(n):
        lam = neuropil + cells
        for y0, y1, x0, x1, blob in footprints[: rng.integers(5, 25)]:
            lam[y0:y1, x0:x1] += rng.uniform(2, 10) * blob  # active cells
        photons = rng.poisson(lam)
        out[t] = np.clip(100 + 40.0 * photons + rng.normal(0, 6, (h, w)), 0, 65535)
    return out


def video_frames(n: int, h: int, w: int, seed: int = 1) -> np.ndarray:
    """Behaviour-camera-like frames: lit arena, a dark moving mouse, sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    arena = 150 + 40 * np.exp(-((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / (0.3 * w * w))
    out = np.empty((n, h, w), np.uint8)
    for t in range(n):
        cy, cx = h / 2 + 120 * np.sin(t / 9), w / 2 + 200 * np.cos(t / 13)
        mouse = ((yy - cy) / 18) ** 2 + ((xx - cx) / 40) ** 2 < 1
        img = np.where(mouse, 25.0, arena) + rng.normal(0, 3, (h, w))
        out[t] = np.clip(img, 0, 255)
    return out


# ----------------------------------------------------------------------------- writers
def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux)


def write_fear_rig(path: Path, frames, n, rate, lat) -> None:
    import zarr

    from rig.ports import Frame, StreamInfo
    from rig.store import StreamWriter

    root = zarr.open_group(str(path / "s.zarr"), mode="w", zarr_format=3)
    (path / "journal").mkdir()
    h, w = frames.shape[1:]
    info = StreamInfo(w, h, str(frames.dtype), rate)
    writer = StreamWriter(root, "s", info, n, path / "journal", 256_000_000)
    for i in range(n):
        while writer.full:  # feed at the writer's pace: a throughput run drops nothing
            time.sleep(0.0002)
        t0 = time.perf_counter_ns()
        writer.append(Frame(i, frames[i % POOL]))
        lat.append(time.perf_counter_ns() - t0)
    acc = writer.close()
    assert acc.written == n and acc.dropped == 0, acc
    back = zarr.open_array(str(path / "s.zarr" / "s" / "0"), mode="r")
    assert np.array_equal(back[n - 1], frames[(n - 1) % POOL])  # zarr reads our shards


def write_tensorstore(path: Path, frames, n, rate, lat) -> None:
    import tensorstore as ts

    h, w = frames.shape[1:]
    per_shard = max(1, round(rate * 0.5))
    blosc = {
        "cname": "lz4",
        "clevel": 5,
        "shuffle": "bitshuffle",
        "typesize": frames.itemsize,
    }
    spec = {
        "driver": "zarr3",
        "kvstore": {"driver": "file", "path": str(path / "ts.zarr")},
        "metadata": {
            "shape": [n, h, w],
            "data_type": str(frames.dtype),
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [per_shard, h, w]}},
            "codecs": [
                {
                    "name": "sharding_indexed",
                    "configuration": {
                        "chunk_shape": [1, h, w],
                        "codecs": [
                            {"name": "bytes", "configuration": {"endian": "little"}},
                            {"name": "blosc", "configuration": blosc},
                        ],
                        "index_codecs": [
                            {"name": "bytes", "configuration": {"endian": "little"}},
                            {"name": "crc32c"},
                        ],
                    },
                }
            ],
        },
        "create": True,
        "delete_existing": True,
    }
    arr = ts.open(spec).result()
    block = np.empty((per_shard, h, w), frames.dtype)
    pending = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        k = i % per_shard
        block[k] = frames[i % POOL]
        if k == per_shard - 1 or i == n - 1:
            start = i - k
            pending.append(arr[start : i + 1].write(block[: k + 1]))  # copies the block
            if len(pending) > 8:
                pending.pop(0).result()
        lat.append(time.perf_counter_ns() - t0)
    for f in pending:
        f.result()


def write_acquire_zarr(path: Path, frames, n, rate, lat) -> None:
    import acquire_zarr as az

    h, w = frames.shape[1:]
    per_shard = max(1, round(rate * 0.5))
    settings = az.StreamSettings(
        store_path=str(path / "az.zarr"),
        arrays=[
            az.ArraySettings(
                output_key="0",
                data_type=np.dtype(frames.dtype),
                compression=az.CompressionSettings(
                    compressor=az.Compressor.BLOSC1,
                    codec=az.CompressionCodec.BLOSC_LZ4,
                    level=5,
                    shuffle=2,  # bit-shuffle, as the other blosc writers
                ),
                dimensions=[
                    az.Dimension(
                        name="t",
                        kind=az.DimensionType.TIME,
                        array_size_px=0,
                        chunk_size_px=1,
                        shard_size_chunks=per_shard,
                    ),
                    az.Dimension(
                        name="y",
                        kind=az.DimensionType.SPACE,
                        array_size_px=h,
                        chunk_size_px=h,
                        shard_size_chunks=1,
                    ),
                    az.Dimension(
                        name="x",
                        kind=az.DimensionType.SPACE,
                        array_size_px=w,
                        chunk_size_px=w,
                        shard_size_chunks=1,
                    ),
                ],
            )
        ],
        overwrite=True,
    )
    stream = az.ZarrStream(settings)
    for i in range(n):
        t0 = time.perf_counter_ns()
        stream.append(frames[i % POOL])
        lat.append(time.perf_counter_ns() - t0)
    stream.close()


def write_zarr_python(path: Path, frames, n, rate, lat) -> None:
    import zarr

    from rig.data.folder import frame_compressor

    h, w = frames.shape[1:]
    arr = zarr.create_array(
        str(path / "zp.zarr"),
        shape=(n, h, w),
        chunks=(1, h, w),
        dtype=frames.dtype,
        compressors=frame_compressor(frames.dtype),
        fill_value=0,
    )
    for i in range(n):
        t0 = time.perf_counter_ns()
        arr[i] = frames[i % POOL]
        lat.append(time.perf_counter_ns() - t0)


def write_tifffile(path: Path, frames, n, rate, lat) -> None:
    import tifffile

    with tifffile.TiffWriter(path / "frames.tif", bigtiff=True) as tif:
        for i in range(n):
            t0 = time.perf_counter_ns()
            tif.write(frames[i % POOL], contiguous=True)
            lat.append(time.perf_counter_ns() - t0)


def write_raw(path: Path, frames, n, rate, lat) -> None:
    with open(path / "frames.raw", "wb") as f:
        for i in range(n):
            t0 = time.perf_counter_ns()
            frames[i % POOL].tofile(f)
            lat.append(time.perf_counter_ns() - t0)


FUNCS = {
    "fear-rig": write_fear_rig,
    "tensorstore": write_tensorstore,
    "acquire-zarr": write_acquire_zarr,
    "zarr-python": write_zarr_python,
    "tifffile": write_tifffile,
    "raw": write_raw,
}
IMPORTS = {"tensorstore": "tensorstore", "acquire-zarr": "acquire_zarr"}


def run_one(writer: str, stream: str, n: int, folder: Path) -> dict:
    """In the child process: make the frames, then time one writer on them."""
    module = IMPORTS.get(writer)
    if module is not None:
        try:
            __import__(module)
        except ImportError as exc:
            return {"skipped": f"{module} not installed ({exc}); pip install -e '.[bench]'"}
    import tifffile  # noqa: F401 - import outside the timed part
    import zarr  # noqa: F401

    import rig.store  # noqa: F401

    h, w, _, rate = STREAMS[stream]
    make = calcium_frames if stream == "imaging" else video_frames
    frames = make(POOL, h, w)
    folder.mkdir(parents=True)
    lat: list[int] = []
    base_kb = _rss_kb("VmRSS")
    _reset_peak()
    t0 = time.perf_counter()
    FUNCS[writer](folder, frames, n, rate, lat)
    wall = time.perf_counter() - t0
    peak_kb = _rss_kb("VmHWM")
    on_disk = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    nbytes = n * frames[0].nbytes
    return {
        "frames": n,
        "raw_mb": nbytes / 1e6,
        "seconds": wall,
        "mb_per_s": nbytes / 1e6 / wall,
        "compression_ratio": nbytes / max(on_disk, 1),
        "peak_mb_above_frames": max(0, peak_kb - base_kb) / 1e3,
        "handoff_p50_ms": float(np.percentile(lat, 50)) / 1e6,
        "handoff_p999_ms": float(np.percentile(lat, 99.9)) / 1e6,
        "handoff_max_ms": float(np.max(lat)) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=600, help="frames per stream and writer")
    parser.add_argument("--dir", type=Path, default=None, help="folder on the disk to test")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "store.json")
    parser.add_argument("--writers", default=",".join(WRITERS))
    parser.add_argument(
        "--one", nargs=3, metavar=("WRITER", "STREAM", "FOLDER"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        writer, stream, folder = args.one
        print(json.dumps(run_one(writer, stream, args.frames, Path(folder))))
        return
    from rich.console import Console
    from rich.table import Table

    base = Path(tempfile.mkdtemp(prefix="bench-store-", dir=args.dir))
    rows = []
    try:
        for stream in STREAMS:
            for writer in args.writers.split(","):
                folder = base / f"{stream}-{writer}"
                proc = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--frames",
                        str(args.frames),
                        "--one",
                        writer,
                        stream,
                        str(folder),
                    ],
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                )
                shutil.rmtree(folder, ignore_errors=True)
                if proc.returncode != 0:
                    tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
                    result = {"skipped": f"failed: {tail[0]}"}
                else:
                    result = json.loads(proc.stdout.strip().splitlines()[-1])
                rows.append({"stream": stream, "writer": writer, **result})
                print(
                    f"{stream:8} {writer:13} {result.get('mb_per_s', result.get('skipped'))}",
                    file=sys.stderr,
                )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for stream in STREAMS:
        ref = {r["writer"]: r.get("mb_per_s") for r in rows if r["stream"] == stream}
        for r in rows:
            if r["stream"] == stream and "mb_per_s" in r:
                r["ratio_to_raw"] = r["mb_per_s"] / ref["raw"] if ref.get("raw") else None
                ts_rate = ref.get("tensorstore")
                r["ratio_to_tensorstore"] = r["mb_per_s"] / ts_rate if ts_rate else None
    table = Table(title=f"bench_store: {args.frames} frames per stream and writer")
    for col in (
        "stream",
        "writer",
        "MB/s",
        "x raw",
        "x tensorstore",
        "compr.",
        "peak MB",
        "p99.9 hand-off ms",
    ):
        table.add_column(col, justify="left" if col in ("stream", "writer") else "right")
    for r in rows:
        if "mb_per_s" not in r:
            table.add_row(r["stream"], r["writer"], f"skipped: {r['skipped']}", *[""] * 5)
            continue
        fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
        table.add_row(
            r["stream"],
            r["writer"],
            f"{r['mb_per_s']:.0f}",
            fmt(r["ratio_to_raw"], ".2f"),
            fmt(r["ratio_to_tensorstore"], ".2f"),
            f"{r['compression_ratio']:.2f}",
            f"{r['peak_mb_above_frames']:.0f}",
            f"{r['handoff_p999_ms']:.3f}",
        )
    Console().print(table)
    realistic_mb_s = (
        sum(h * w * np.dtype(d).itemsize * rate for h, w, d, rate in STREAMS.values()) / 1e6
    )
    ours = {r["stream"]: r for r in rows if r["writer"] == "fear-rig" and "mb_per_s" in r}
    summary = {
        "realistic_data_rate_mb_s": realistic_mb_s,
        "fear_rig_x_realistic": {s: r["mb_per_s"] / realistic_mb_s for s, r in ours.items()},
    }
    print(json.dumps(summary))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "python": platform.python_version(),
                "command": "python bench/bench_store.py " + " ".join(sys.argv[1:]),
                "frames": args.frames,
                "summary": summary,
                "results": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
