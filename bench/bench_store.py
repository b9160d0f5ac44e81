"""How fast does the session store write frames, against the alternatives, on the same disk?

Writes the same frames (512x512 uint16 calcium-like two-photon frames with shot noise at 30 Hz;
640x480 uint8 behaviour video at 100 fps and at 30 fps) with:

* the session's :class:`rig.data.store.StreamWriter` (bounded queue, writer thread gathering whole
  Zarr v3 shards of ~0.5 s, disk thread writing each shard atomically through the
  ``FrameDisk`` port), with the shard's bytes encoded by each of:

  - ``hand``: the hand-written ``rig.data.shards.ShardEncoder`` (blosc per frame on a thread
    pool, crc32c, index), what sessions use;
  - ``zarr-python``: zarr-python's sharding codec, one whole shard per ``array[a:b] = block``
    into an in-memory twin of the array (``bench/shard_encoders.py``);
  - ``tensorstore``: tensorstore's zarr3 driver writing the whole shard in memory (the same);

  the same codecs for all three (one frame per inner chunk, bytes + blosc lz4 bit-shuffle +
  crc32c; shard index bytes + crc32c at the end), so only the encoder differs;
* ``tensorstore-direct``: tensorstore writing the store itself (file kvstore, the same shards
  and codecs, shard-aligned async writes, no queue of ours);
* ``acquire-zarr``: its ZarrStream, the same chunks/shards, blosc-lz4 (it has no crc32c codec),
  appended frame by frame;
* ``tifffile``: uncompressed BigTIFF, frame by frame;
* ``raw``: ``numpy.tofile`` frame by frame into one file (the disk's ceiling).

Each run is its own subprocess (so its peak memory is its own) writing into a fresh folder of
``--dir`` (default: a temporary folder; one disk for all), deleted afterwards. The machine is
shared and noisy, so the writers take turns: ``--repeats`` rounds, each round every stream and
writer once (the order rotated from round to round), and the ratios are taken within a round
and then summarised (median, min, max). Reported per writer and stream: MB/s of raw frame data
(append to close, flushed), ratio to the hand encoder and to raw, CPU time a frame (all the
process's threads: less sensitive to the machine's load than MB/s), compression, peak resident
memory above the frames already in memory, and the p99.9 time to hand one frame over (the call
the acquisition makes). The summary gives, per stream, how much faster the hand encoder wrote
than each library (issue 15's rule: keep it only if it wins by more than 20%). What the three
encoders behind the StreamWriter wrote is read back through zarr-python, every frame. Missing
optional writers (``pip install -e '.[bench]'``) are skipped with the reason. Prints a table
(rich) and writes ``bench/results/store.json``.

    python bench/bench_store.py [--frames 600] [--repeats 3] [--dir /data/scratch]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import shard_encoders

ROOT = Path(__file__).resolve().parent.parent
ENCODERS = ("zarr-python", "hand", "tensorstore")  # behind the session's StreamWriter
WRITERS = (*ENCODERS, "tensorstore-direct", "acquire-zarr", "tifffile", "raw")
REFERENCE = "hand"  # the ratios' denominator: the encoder a library must come within 20% of
LABELS = {
    "zarr-python": "StreamWriter + zarr-python sharding codec",
    "hand": "StreamWriter + hand-written encoder",
    "tensorstore": "StreamWriter + tensorstore (in memory)",
    "tensorstore-direct": "tensorstore to disk, its own writes",
    "acquire-zarr": "acquire-zarr (no crc32c)",
    "tifffile": "tifffile (uncompressed)",
    "raw": "raw numpy.tofile",
}
STREAMS = {  # name: (height, width, dtype, rate_hz)
    "imaging": (512, 512, "uint16", 30.0),
    "video": (480, 640, "uint8", 100.0),
    "video-30fps": (480, 640, "uint8", 30.0),
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


def _cpu_s() -> float:
    """CPU seconds of this process, all threads: the cost of writing, whatever the load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux)


def _stream_writer(encoder: str) -> Callable:
    """A writer function: the session's StreamWriter with the named shard encoder."""

    def write(path: Path, frames, n, rate, lat) -> None:
        import zarr

        from rig.data.shards import ShardEncoder
        from rig.data.store import StreamWriter
        from rig.ports import Frame, StreamInfo

        factory = {
            "zarr-python": shard_encoders.ZarrPythonShardEncoder,
            "hand": ShardEncoder,
            "tensorstore": shard_encoders.TensorstoreShardEncoder,
        }[encoder]
        root = zarr.open_group(str(path / "s.zarr"), mode="w", zarr_format=3)
        (path / "journal").mkdir()
        h, w = frames.shape[1:]
        info = StreamInfo(w, h, str(frames.dtype), rate)
        writer = StreamWriter(
            root, "s", info, n, path / "journal", 256_000_000, shard_encoder=factory
        )
        for i in range(n):
            while writer.full:  # feed at the writer's pace: a throughput run drops nothing
                time.sleep(0.001)
            t0 = time.perf_counter_ns()
            writer.append(Frame(i, frames[i % POOL]))
            lat.append(time.perf_counter_ns() - t0)
        acc = writer.close()
        assert acc.written == n and acc.dropped == 0, acc

    return write


def check_stream_writer(path: Path, frames: np.ndarray, n: int) -> None:
    """Every frame reads back through zarr-python (outside the timed part)."""
    import zarr

    back = zarr.open_array(str(path / "s.zarr" / "s" / "0"), mode="r")
    for start in range(0, n, POOL):
        stop = min(start + POOL, n)
        assert np.array_equal(back[start:stop], frames[: stop - start]), start


def write_tensorstore_direct(path: Path, frames, n, rate, lat) -> None:
    import tensorstore as ts
    import zarr

    from rig.data.folder import create_frame_array, frames_per_shard

    h, w = frames.shape[1:]
    per_shard = frames_per_shard(rate)
    # the session's array (shards, codecs), made by zarr, then written by tensorstore
    group = zarr.open_group(str(path / "ts.zarr"), mode="w", zarr_format=3)
    create_frame_array(group, n, h, w, frames.dtype, rate)
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path / "ts.zarr/0")}}
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
    **{name: _stream_writer(name) for name in ENCODERS},
    "tensorstore-direct": write_tensorstore_direct,
    "acquire-zarr": write_acquire_zarr,
    "tifffile": write_tifffile,
    "raw": write_raw,
}
IMPORTS = {
    "tensorstore": "tensorstore",
    "tensorstore-direct": "tensorstore",
    "acquire-zarr": "acquire_zarr",
}


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

    import rig.data.store  # noqa: F401

    h, w, _, rate = STREAMS[stream]
    make = calcium_frames if stream == "imaging" else video_frames
    frames = make(POOL, h, w)
    folder.mkdir(parents=True)
    lat: list[int] = []
    base_kb = _rss_kb("VmRSS")
    _reset_peak()
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    FUNCS[writer](folder, frames, n, rate, lat)
    wall = time.perf_counter() - t0
    cpu = _cpu_s() - cpu0
    peak_kb = _rss_kb("VmHWM")
    if writer in ENCODERS:
        check_stream_writer(folder, frames, n)
    on_disk = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    nbytes = n * frames[0].nbytes
    return {
        "frames": n,
        "raw_mb": nbytes / 1e6,
        "seconds": wall,
        "mb_per_s": nbytes / 1e6 / wall,
        "cpu_ms_per_frame": cpu * 1e3 / n,
        "compression_ratio": nbytes / max(on_disk, 1),
        "peak_mb_above_frames": max(0, peak_kb - base_kb) / 1e3,
        "handoff_p50_ms": float(np.percentile(lat, 50)) / 1e6,
        "handoff_p999_ms": float(np.percentile(lat, 99.9)) / 1e6,
        "handoff_max_ms": float(np.max(lat)) / 1e6,
    }


def run_child(writer: str, stream: str, n: int, folder: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--frames", str(n), "--one", writer, stream, str(folder)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    shutil.rmtree(folder, ignore_errors=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
        return {"skipped": f"failed: {tail[0]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": float(np.median(values)),
        "min": float(np.min(values)),
        "max": float(np.max(values)),
    }


def summarise(runs: list[dict], writers: list[str]) -> list[dict]:
    """One row per stream and writer: medians over the rounds, ratios taken within a round."""
    by = {(r["round"], r["stream"], r["writer"]): r for r in runs if "mb_per_s" in r}
    rows = []
    for stream in [s for s in STREAMS if any(r["stream"] == s for r in runs)]:
        for writer in writers:
            mine = [r for r in runs if r["stream"] == stream and r["writer"] == writer]
            done = [r for r in mine if "mb_per_s" in r]
            if not done:
                reason = mine[0]["skipped"] if mine else "not run"
                rows.append({"stream": stream, "writer": writer, "skipped": reason})
                continue
            row: dict = {"stream": stream, "writer": writer, "rounds": len(done)}
            for field in (
                "mb_per_s",
                "cpu_ms_per_frame",
                "compression_ratio",
                "peak_mb_above_frames",
            ):
                row[field] = float(np.median([r[field] for r in done]))
            row["handoff_p999_ms"] = float(np.max([r["handoff_p999_ms"] for r in done]))
            row["mb_per_s_spread"] = spread([r["mb_per_s"] for r in done])
            for ref in (REFERENCE, "raw"):
                ratios = [
                    r["mb_per_s"] / by[(r["round"], stream, ref)]["mb_per_s"]
                    for r in done
                    if (r["round"], stream, ref) in by
                ]
                row[f"x_{ref}"] = spread(ratios) if ratios else None
            rows.append(row)
    return rows


SESSIONS = {  # what a session writes at once: the streams of the default rig, at two video rates
    "imaging+video-30fps": ("imaging", "video-30fps"),
    "imaging+video": ("imaging", "video"),
}


def session_cost(
    by: dict, rnd: int, streams: tuple[str, ...], writer: str
) -> tuple[float, float] | None:
    """Wall and CPU seconds a writer took, in round ``rnd``, to write one second of the
    streams (``by``: the runs keyed by round, stream and writer)."""
    if any((rnd, s, writer) not in by for s in streams):
        return None
    wall = cpu = 0.0
    for s in streams:
        h, w, dtype, rate = STREAMS[s]
        run = by[(rnd, s, writer)]
        wall += h * w * np.dtype(dtype).itemsize * rate / 1e6 / run["mb_per_s"]
        cpu += rate * run["cpu_ms_per_frame"] / 1e3
    return wall, cpu


def decision(rows: list[dict], runs: list[dict]) -> dict:
    """How much the hand encoder wins over each library behind the writer (the issue's rule:
    keep it only if it wins by more than 20%): per stream, throughput (median of the rounds'
    ratios) and CPU a frame; per session mix, the wall and CPU time to write one second of
    both streams, library over hand, taken within each round (median, min, max)."""
    out: dict = {"streams": {}, "sessions": {}}
    for stream in STREAMS:
        got = {r["writer"]: r for r in rows if r["stream"] == stream and "mb_per_s" in r}
        hand = got.get(REFERENCE)
        for library in ("zarr-python", "tensorstore"):
            row = got.get(library)
            if hand is None or row is None:
                continue
            out["streams"].setdefault(stream, {})[library] = {
                "hand_throughput_over_library": 1.0 / row[f"x_{REFERENCE}"]["median"],
                "library_cpu_over_hand": row["cpu_ms_per_frame"] / hand["cpu_ms_per_frame"],
            }
    by = {(r["round"], r["stream"], r["writer"]): r for r in runs if "mb_per_s" in r}
    rounds = sorted({r["round"] for r in runs})
    for name, streams in SESSIONS.items():
        for library in ("zarr-python", "tensorstore"):
            pairs = [
                (session_cost(by, k, streams, library), session_cost(by, k, streams, REFERENCE))
                for k in rounds
            ]
            pairs = [(lib, hand) for lib, hand in pairs if lib and hand]
            if pairs:
                out["sessions"].setdefault(name, {})[library] = {
                    "library_wall_over_hand": spread([lib[0] / hand[0] for lib, hand in pairs]),
                    "library_cpu_over_hand": spread([lib[1] / hand[1] for lib, hand in pairs]),
                }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=600, help="frames per stream and writer")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of every writer")
    parser.add_argument("--dir", type=Path, default=None, help="folder on the disk to test")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "store.json")
    parser.add_argument("--writers", default=",".join(WRITERS))
    parser.add_argument("--streams", default=",".join(STREAMS))
    parser.add_argument(
        "--one", nargs=3, metavar=("WRITER", "STREAM", "FOLDER"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        writer, stream, folder = args.one
        print(json.dumps(run_one(writer, stream, args.frames, Path(folder))))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    writers = args.writers.split(",")
    streams = args.streams.split(",")
    base = Path(tempfile.mkdtemp(prefix="bench-store-", dir=args.dir))
    runs = []
    try:
        for rnd in range(args.repeats):
            for stream in streams:
                turn = rnd % len(writers)
                for writer in writers[turn:] + writers[:turn]:  # each round in another order
                    result = run_child(writer, stream, args.frames, base / f"{stream}-{writer}")
                    runs.append({"round": rnd, "stream": stream, "writer": writer, **result})
                    shown = result.get("mb_per_s", result.get("skipped"))
                    print(f"round {rnd} {stream:11} {writer:18} {shown}", file=sys.stderr)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    rows = summarise(runs, writers)
    title = escape(
        f"bench_store: {args.frames} frames a run, {args.repeats} rounds: median [min-max]"
    )
    table = Table(title=title)
    columns = (
        "stream",
        "writer",
        "MB/s",
        "x hand",
        "x raw",
        "CPU ms/frame",
        "compr.",
        "peak MB",
        "p99.9 ms",
    )
    for col in columns:
        table.add_column(col, justify="left" if col in ("stream", "writer") else "right")

    def ratio(value: dict | None) -> str:
        if value is None:
            return "-"
        return escape(f"{value['median']:.2f} [{value['min']:.2f}-{value['max']:.2f}]")

    for r in rows:
        if "mb_per_s" not in r:
            table.add_row(r["stream"], LABELS[r["writer"]], f"skipped: {r['skipped']}")
            continue
        table.add_row(
            r["stream"],
            LABELS[r["writer"]],
            f"{r['mb_per_s']:.0f}",
            ratio(r[f"x_{REFERENCE}"]),
            ratio(r["x_raw"]),
            f"{r['cpu_ms_per_frame']:.2f}",
            f"{r['compression_ratio']:.2f}",
            f"{r['peak_mb_above_frames']:.0f}",
            f"{r['handoff_p999_ms']:.3f}",
        )
    Console(width=160).print(table)
    summary = {"hand_encoder_advantage": decision(rows, runs)}
    print(json.dumps(summary))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "python": platform.python_version(),
                "command": "python bench/bench_store.py " + " ".join(sys.argv[1:]),
                "frames": args.frames,
                "repeats": args.repeats,
                "summary": summary,
                "results": rows,
                "runs": runs,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
