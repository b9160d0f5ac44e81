"""A damaged frame is always reported, never exported silently (issue 17, part 2).

A copy of a real session (the short protocol on the small simulated rig) is damaged the ways a
disk, a power cut or a hand can damage it; ``rig verify``, ``rig info`` and ``rig export`` must
name each damaged frame range, exports must refuse them (exit 1, nothing written) unless
``--allow-damaged`` (zeros, and the list beside the export).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile

from rig.data.folder import STREAM_IMAGE, SessionFolder


@pytest.fixture
def session(imaging_session, tmp_path) -> Path:
    copy = tmp_path / imaging_session.name
    shutil.copytree(imaging_session, copy)
    return copy


@dataclass(frozen=True)
class Shards:
    """Where a stream's shard files are, from the format itself (``docs/format.md``)."""

    folder: Path
    per_shard: int
    frame_crc: bool

    def shard_path(self, shard: int) -> Path:
        return self.folder / "c" / str(shard) / "0" / "0"

    @property
    def index_bytes(self) -> int:
        return self.per_shard * 16 + 4


def _layout(session: Path, stream: str) -> Shards:
    folder = session / "session.zarr" / STREAM_IMAGE[stream] / "0"
    meta = json.loads((folder / "zarr.json").read_text())
    inner = [c["name"] for c in meta["codecs"][0]["configuration"]["codecs"]]
    per = meta["chunk_grid"]["configuration"]["chunk_shape"][0]
    return Shards(folder, per, inner[-1] == "crc32c")


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def _chunk_of(layout: Shards, shard: int, slot: int) -> tuple[int, int]:
    raw = layout.shard_path(shard).read_bytes()
    index = np.frombuffer(raw[-layout.index_bytes : -4], "<u8").reshape(-1, 2)
    return int(index[slot, 0]), int(index[slot, 1])


def test_an_intact_session_verifies(cli, session):
    result = cli("verify", session)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("intact")
    assert "video    300 frames checked (each frame's crc32c): intact" in result.stdout


DAMAGES = {
    # how: (damage it, stream, expected line)
    "deleted shard": (
        lambda lay: lay.shard_path(3).unlink(),
        "imaging",
        "imaging frames 24-31: missing (shard c/3: absent)",
    ),
    "zero-length shard": (
        lambda lay: lay.shard_path(2).write_bytes(b""),
        "imaging",
        "imaging frames 16-23: empty (shard c/2: 0 bytes)",
    ),
    "flipped index byte": (
        lambda lay: _flip(lay.shard_path(5), -20),
        "imaging",
        "imaging frames 40-47: corrupt (shard c/5: its index checksum does not match)",
    ),
    "truncated shard": (
        lambda lay: lay.shard_path(1).write_bytes(lay.shard_path(1).read_bytes()[:50]),
        "imaging",
        "imaging frames 8-15: corrupt (shard c/1: 50 bytes, shorter than its index)",
    ),
    "shard linked to /dev/zero": (
        lambda lay: (lay.shard_path(4).unlink(), os.symlink("/dev/zero", lay.shard_path(4))),
        "imaging",
        "imaging frames 32-39: corrupt (shard c/4: not a regular file)",
    ),
    "flipped blosc header": (
        lambda lay: _flip(lay.shard_path(6), _chunk_of(lay, 6, 2)[0] + 13),
        "imaging",
        "imaging frame 50: corrupt (shard c/6: the frame's compressed data does not match "
        "its header)",
    ),
}


@pytest.mark.parametrize("how", list(DAMAGES))
def test_damage_is_reported_and_never_exported_silently(cli, session, how):
    damage, stream, line = DAMAGES[how]
    damage(_layout(session, stream))

    verify = cli("verify", session)
    assert verify.exit_code == 1, verify.output
    if "blosc" in how and _layout(session, stream).frame_crc:  # the frame's own crc, first
        line_verify = line.replace(
            "the frame's compressed data does not match its header",
            "the frame's checksum does not match",
        )
    else:
        line_verify = line
    assert f"  {line_verify}" in verify.stdout.splitlines()
    assert verify.stdout.strip().endswith("DAMAGED")

    info = cli("info", session)
    assert info.exit_code == 0, info.output
    if "blosc" not in how:  # rig info reads the shard indexes only, not every frame
        assert f"  {line}" in info.stdout.splitlines()

    out = session / "export"
    refused = cli("export", session, "--tiff")
    assert refused.exit_code == 1, refused.output  # on main: exit 0, zeros or altered pixels
    assert f"{session}: {line}" in refused.stderr.splitlines()
    assert "refusing to export damaged frames" in refused.stderr
    assert not (out / "imaging.tif").exists() and not list(out.glob(".*tmp*"))

    allowed = cli("export", session, "--tiff", "--allow-damaged")
    assert allowed.exit_code == 0, allowed.output
    assert "WARNING: damaged frames written as zeros" in allowed.stderr
    with open(out / "imaging.damaged.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    first, last = int(row["first_frame"]), int(row["last_frame"])
    assert line.startswith(f"imaging frame{'s' if last > first else ''} {first}")
    pages = tifffile.imread(out / "imaging.tif")
    assert pages.shape[0] == SessionFolder.open(session).stream("imaging").n_frames  # all kept
    assert not pages[first : last + 1].any()  # the damaged frames are zeros, and listed
    good = SessionFolder.open(session).stream("imaging").frames
    np.testing.assert_array_equal(pages[: max(first, 1) - 1], good[: max(first, 1) - 1])


def test_a_flipped_pixel_byte_is_caught_by_the_frames_checksum(cli, session):
    layout = _layout(session, "imaging")
    if not layout.frame_crc:
        pytest.skip("this session's frames carry no checksum of their own (written before crc32c)")
    offset, _ = _chunk_of(layout, 7, 3)
    _flip(layout.shard_path(7), offset + 40)  # inside the compressed pixels
    verify = cli("verify", session)
    assert verify.exit_code == 1
    assert "  imaging frame 59: corrupt (shard c/7: the frame's checksum does not match)" in (
        verify.stdout.splitlines()
    )
    refused = cli("export", session, "--nwb")
    assert refused.exit_code == 1 and "imaging frame 59: corrupt" in refused.stderr


def test_the_nwb_export_lists_damage_in_both_streams(cli, session):
    _layout(session, "video").shard_path(0).unlink()
    _layout(session, "imaging").shard_path(18).write_bytes(b"")
    result = cli("export", session, "--nwb", "--allow-damaged")
    assert result.exit_code == 0, result.output
    with open(session / "export" / "session.damaged.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["stream"], r["first_frame"], r["last_frame"], r["kind"]) for r in rows] == [
        ("imaging", "144", "150", "empty"),  # the last shard: 151 frames at 30.03 Hz
        ("video", "0", "14", "missing"),
    ]
    again = cli("export", session, "--csv")  # the frame table does not read pixels
    assert again.exit_code == 0


def test_verify_json_lists_every_range(cli, session):
    layout = _layout(session, "video")
    for shard in (1, 2, 7):
        layout.shard_path(shard).unlink()
    result = cli("verify", session, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert not report["intact"]
    ranges = [(d["first_frame"], d["last_frame"]) for d in report["streams"]["video"]["damage"]]
    assert ranges == [(15, 44), (105, 119)]  # neighbouring shards in one range
    assert report["streams"]["video"]["damaged_frames"] == 45
