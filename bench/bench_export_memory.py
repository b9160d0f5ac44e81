"""Does ``rig export --tiff/--nwb`` stream, i.e. does its memory stay flat as sessions grow?

Writes 512x512 uint16 frames into a Zarr array laid out as a session's 30-Hz two-photon stream
(``rig.data.folder.create_frame_array``: a chunk per frame, a shard per 15 frames), then exports it
as the TIFF and the NWB TwoPhotonSeries data would be, each in a fresh process, at two lengths.
Reports the peak resident memory above the process's peak before the export; flat across
lengths means bounded. Prints a table, writes bench/results/export_memory.json.

    python bench/bench_export_memory.py [--frames 1200 3600]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
from datetime import datetime, timezone
import numpy as np, zarr
kind, n, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
from rig.data.folder import create_frame_array, frames_per_shard
image = zarr.open_group(f"{folder}/frames.zarr", mode="w")
z = create_frame_array(image, n, 512, 512, "uint16", 30.0)  # a session's layout, 30 Hz
assert frames_per_shard(30.0) == 15
block = np.random.default_rng(0).integers(200, 400, (15, 512, 512), dtype=np.uint16)
for s in range(0, n, 15):
    z[s:s + 15] = block[: min(15, n - s)]
del block
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if kind == "nwb":
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.image import ImageSeries
    from rig.exports.nwb import _streamed
    nwb = NWBFile(session_description="bench", identifier="bench",
                  session_start_time=datetime.now(timezone.utc))
    nwb.add_acquisition(ImageSeries(name="frames", data=_streamed(z, False), unit="n.a.",
                                    format="raw", timestamps=np.arange(n) / 30.0))
    before, t = peak(), time.perf_counter()
    with NWBHDF5IO(f"{folder}/out.nwb", "w") as io:
        io.write(nwb)
else:
    import tifffile
    from rig.exports.csv_tiff import iter_frame_blocks
    def pages():
        for _, b in iter_frame_blocks(z):
            yield from b
    before, t = peak(), time.perf_counter()
    with tifffile.TiffWriter(f"{folder}/out.tif", bigtiff=True) as tif:
        tif.write(pages(), shape=z.shape, dtype=z.dtype)
seconds = time.perf_counter() - t
print(json.dumps({"export": kind, "frames": n, "data_mb": n * 512 * 512 * 2 / 1e6,
                  "peak_before_mb": before, "peak_after_mb": peak(),
                  "extra_mb": peak() - before, "seconds": seconds,
                  "mb_per_s": n * 512 * 512 * 2 / 1e6 / seconds}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, nargs="+", default=[1200, 3600])
    args = parser.parse_args()
    rows = []
    for kind in ("tiff", "nwb"):
        for n in args.frames:
            with tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, kind, str(n), folder],
                    check=True,
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'export':<6} {'frames':>7} {'data MB':>8} {'extra peak MB':>14} {'MB/s':>7}")
    for r in rows:
        print(
            f"{r['export']:<6} {r['frames']:>7} {r['data_mb']:>8.0f} {r['extra_mb']:>14.0f} "
            f"{r['mb_per_s']:>7.0f}"
        )
    path = ROOT / "bench" / "results" / "export_memory.json"
    path.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
