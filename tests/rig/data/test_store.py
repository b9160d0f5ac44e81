"""The session store: shards zarr reads back, checksummed frames, a writer that never blocks,
OME-NGFF streams."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaozarrs
import zarr

from rig.data.disk import LocalDisk
from rig.data.folder import STREAM_IMAGE, array_folder, create_frame_array, trim_frames
from rig.data.journal import Journal
from rig.data.shards import ShardEncoder, ShardLayoutError
from rig.data.store import StreamWriter
from rig.ports import Frame, StreamInfo


def calcium_like(n: int, shape=(64, 48), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 150.0, shape)
    return rng.poisson(base + rng.uniform(0, 100, (n, 1, 1))).astype(np.uint16)


def frame_array(path: Path, dtype: str = "uint16", n: int = 30) -> zarr.Array:
    """A session's frame array (64x48 frames, 15 a shard, blosc + crc32c) at ``path``."""
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    return create_frame_array(group, n, 64, 48, dtype, 30.0)


def write_shards(array: zarr.Array, frames: np.ndarray) -> None:
    encoder = ShardEncoder(array)
    for start in range(0, len(frames), encoder.frames_per_shard):
        key, data = encoder.encode(start, frames[start : start + encoder.frames_per_shard])
        LocalDisk().write(array_folder(array) / key, data)


@pytest.mark.parametrize("dtype", ["uint16", "uint8"])
def test_encoded_shards_are_zarrs_own_bytes_and_read_back_through_zarr_and_tensorstore(
    tmp_path, dtype
):
    frames = (calcium_like(23) // (1 if dtype == "uint16" else 8)).astype(dtype)
    frames[3] = 0  # a dark frame is stored like any other, not left out as "empty"
    array = frame_array(tmp_path / "s.zarr", dtype)
    write_shards(array, frames)
    # zarr-python's sharding codec, writing the same frames into the same layout (keeping
    # the dark frame's chunk, as the encoder does)
    by_zarr = frame_array(tmp_path / "z.zarr", dtype)
    with zarr.config.set({"array.write_empty_chunks": True}):
        zarr.open_array(str(array_folder(by_zarr)), mode="r+")[:23] = frames
    folder = array_folder(array)
    assert sorted(p.name for p in (folder / "c").iterdir()) == ["0", "1"]
    for shard in ("c/0/0/0", "c/1/0/0"):
        assert (folder / shard).read_bytes() == (array_folder(by_zarr) / shard).read_bytes()
    back = zarr.open_array(str(tmp_path / "s.zarr" / "0"), mode="r")
    np.testing.assert_array_equal(back[:23], frames)
    assert not back[23:].any()  # the last shard's missing frames read as the fill value
    if dtype == "uint16":  # bit-shuffled shot noise compresses; noisy 8-bit bytes need not
        assert (folder / "c" / "0" / "0" / "0").stat().st_size < frames[:15].nbytes
    ts = pytest.importorskip("tensorstore")
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(folder)}}
    np.testing.assert_array_equal(ts.open(spec).result()[:23].read().result(), frames)


def test_the_encoder_writes_whole_shards_of_its_own_layout_only(tmp_path):
    encoder = ShardEncoder(frame_array(tmp_path / "s.zarr"))
    frames = calcium_like(16)
    with pytest.raises(ValueError, match="not one shard"):
        encoder.encode(0, frames)  # 16 frames: more than a shard
    with pytest.raises(ValueError, match="not one shard"):
        encoder.encode(3, frames[:5])  # not at a shard's start
    assert encoder.encode(45, frames[:15])[0] == "c/3/0/0"
    unsharded = zarr.create_array(str(tmp_path / "b.zarr"), shape=(10, 8, 8), dtype="u2")
    with pytest.raises(ShardLayoutError, match="sharding codec"):
        ShardEncoder(unsharded)
    two_frames_a_chunk = zarr.create_array(
        str(tmp_path / "c.zarr"), shape=(10, 8, 8), chunks=(2, 8, 8), shards=(10, 8, 8), dtype="u2"
    )
    with pytest.raises(ShardLayoutError, match="one frame"):
        ShardEncoder(two_frames_a_chunk)
    no_checksums = zarr.create_array(
        str(tmp_path / "d.zarr"), shape=(10, 8, 8), chunks=(1, 8, 8), shards=(5, 8, 8), dtype="u2"
    )
    with pytest.raises(ShardLayoutError, match="codecs"):
        ShardEncoder(no_checksums)


def flip_a_byte_in_frame(array: zarr.Array, frame: int) -> None:
    """Flip one byte in the middle of a frame's compressed data, inside its shard on disk."""
    per_shard = array.shards[0]
    path = array_folder(array) / f"c/{frame // per_shard}/0/0"
    data = bytearray(path.read_bytes())
    index = np.frombuffer(data[-4 - 16 * per_shard : -4], "<u8").reshape(per_shard, 2)
    offset, length = index[frame % per_shard]
    data[int(offset + length // 2)] ^= 0x40
    path.write_bytes(bytes(data))


def test_a_damaged_frame_is_an_error_on_read_not_altered_pixels(tmp_path):
    frames = calcium_like(30)
    array = frame_array(tmp_path / "s.zarr")
    write_shards(array, frames)
    flip_a_byte_in_frame(array, 7)
    back = zarr.open_array(str(tmp_path / "s.zarr" / "0"), mode="r")
    with pytest.raises(ValueError, match="checksum"):
        back[7]
    with pytest.raises(ValueError, match="checksum"):
        back[:]
    # the other frames of the shard, and of the stream, still read
    np.testing.assert_array_equal(back[6], frames[6])
    np.testing.assert_array_equal(back[8:], frames[8:])
    ts = pytest.importorskip("tensorstore")
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(array_folder(array))}}
    with pytest.raises(ValueError, match="Digest mismatch"):
        ts.open(spec).result()[7].read().result()


def without_chunk_checksums(array_dir: Path) -> None:
    """Rewrite a frame array as sessions were written before the chunks carried a crc32c."""
    meta_path = array_dir / "zarr.json"
    meta = json.loads(meta_path.read_text())
    frames = zarr.open_array(str(array_dir), mode="r")[:]
    inner = meta["codecs"][0]["configuration"]["codecs"]
    assert inner[-1]["name"] == "crc32c"
    del inner[-1]
    shutil.rmtree(array_dir / "c")
    meta_path.write_text(json.dumps(meta))
    zarr.open_array(str(array_dir), mode="r+")[:] = frames


def test_a_session_written_before_chunk_checksums_still_reads_and_exports(
    imaging_session, tmp_path, cli
):
    old = tmp_path / imaging_session.name
    shutil.copytree(imaging_session, old)
    stored = zarr.open_group(str(imaging_session / "session.zarr"), mode="r")["1"]["0"][:]
    without_chunk_checksums(old / "session.zarr" / "1" / "0")
    result = cli("export", old, "--tiff", "--out", tmp_path / "tiff")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "tiff" / "imaging.tif"), stored)
    assert cli("info", old).exit_code == 0


class GatedDisk:
    """A disk whose writes wait until the test opens the gate (a stalled disk)."""

    def __init__(self):
        self.gate = threading.Event()
        self.writes: list[Path] = []

    def write(self, path: Path, data: bytes) -> None:
        self.gate.wait()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.writes.append(path)


def test_a_full_queue_drops_and_counts_frames_and_never_blocks(tmp_path):
    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="w", zarr_format=3)
    journal = tmp_path / "journal"
    journal.mkdir()
    info = StreamInfo(48, 64, "uint16", 30.0)
    disk = GatedDisk()
    frame_bytes = 48 * 64 * 2
    writer = StreamWriter(root, "imaging", info, 200, journal, 40 * frame_bytes, disk)
    frames = calcium_like(200)
    # The disk is stalled: every append returns at once; what does not fit is counted.
    accepted = [writer.append(Frame(k, frames[k])) for k in range(200)]
    assert writer.accounting.dropped_by_queue == accepted.count(False) > 0
    assert writer.accounting.received == 200
    disk.gate.set()
    acc = writer.close()
    assert acc.written == accepted.count(True)
    assert acc.written + acc.dropped_by_queue == 200
    kept = np.flatnonzero(accepted)
    np.testing.assert_array_equal(Journal(journal).index("imaging"), kept)
    assert Journal(journal).progress("imaging").written == acc.written
    np.testing.assert_array_equal(root["1"]["0"][: acc.written], frames[kept])
    assert any("writer queue full" in p for p in acc.problems())


class SlowDisk:
    """A disk that takes a while per shard (a busy machine), with no gate to open."""

    def write(self, path: Path, data: bytes) -> None:
        time.sleep(0.02)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_a_lossless_writer_waits_for_room_and_keeps_every_frame(tmp_path):
    # --fast on the simulated rig: the clock waits for the writer, so nothing is dropped.
    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="w", zarr_format=3)
    journal = tmp_path / "journal"
    journal.mkdir()
    frame_bytes = 48 * 64 * 2
    info = StreamInfo(48, 64, "uint16", 30.0)
    writer = StreamWriter(root, "imaging", info, 200, journal, 4 * frame_bytes, SlowDisk(), True)
    frames = calcium_like(200)
    assert all(writer.append(Frame(k, frames[k])) for k in range(200))
    acc = writer.close()
    assert acc.written == 200 and acc.dropped_by_queue == 0
    np.testing.assert_array_equal(root["1"]["0"][:200], frames)


def test_trimming_keeps_the_frames_and_deletes_no_shard(tmp_path):
    # A session aborted early in a long protocol: the array was made for 300 frames.
    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="w", zarr_format=3)
    journal = tmp_path / "journal"
    journal.mkdir()
    info = StreamInfo(48, 64, "uint16", 30.0)
    writer = StreamWriter(root, "imaging", info, 300, journal, 10**7)
    frames = calcium_like(100)
    for k in range(100):
        writer.append(Frame(k, frames[k]))
    writer.close()
    array = root["1"]["0"]
    shard_dir = tmp_path / "s.zarr" / "1" / "0" / "c"
    stray = shard_dir / "19"  # a shard past the end (written, then not counted by a crash)
    (stray / "0").mkdir(parents=True)
    (stray / "0" / "0").write_bytes(b"stale")
    trim_frames(array, 90)
    back = zarr.open_array(str(tmp_path / "s.zarr" / "1" / "0"), mode="r")
    assert back.shape == (90, 64, 48)
    np.testing.assert_array_equal(back[:], frames[:90])
    # every shard file stays: frames on disk are never deleted (rig verify, rig recover)
    kept = sorted(int(p.name) for p in shard_dir.iterdir())
    assert kept == [*range(-(-100 // writer.chunk_t)), 19]


def test_a_lossless_writer_whose_disk_fails_drops_instead_of_hanging(tmp_path):
    class FullDisk:
        def write(self, path: Path, data: bytes) -> None:
            raise OSError(28, "No space left on device")

    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="w", zarr_format=3)
    (tmp_path / "j").mkdir()
    info = StreamInfo(48, 64, "uint16", 30.0)
    writer = StreamWriter(
        root, "imaging", info, 200, tmp_path / "j", 4 * 48 * 64 * 2, FullDisk(), True
    )
    for k, image in enumerate(calcium_like(200)):
        writer.append(Frame(k, image))
    acc = writer.close()
    assert acc.written == 0 and isinstance(writer.error, OSError)


def test_a_failing_disk_is_reported_and_the_queue_keeps_draining(tmp_path):
    class FullDisk:
        def write(self, path: Path, data: bytes) -> None:
            raise OSError(28, "No space left on device")

    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="w", zarr_format=3)
    (tmp_path / "j").mkdir()
    writer = StreamWriter(
        root, "video", StreamInfo(48, 64, "uint8", 30.0), 60, tmp_path / "j", 10**6, FullDisk()
    )
    for k, image in enumerate(calcium_like(60).astype(np.uint8)):
        assert writer.append(Frame(k, image))
    acc = writer.close()
    assert isinstance(writer.error, OSError) and acc.written == 0
    assert "60 frames not written" in acc.problems()


def test_both_streams_are_valid_ome_ngff_with_per_frame_timestamps(demo_session):
    root = zarr.open_group(str(demo_session / "session.zarr"), mode="r")
    for stream in ("video", "imaging"):
        group = yaozarrs.validate_zarr_store(
            str(demo_session / "session.zarr" / STREAM_IMAGE[stream])
        )
        assert group.ome_version() == "0.5"
        assert root[STREAM_IMAGE[stream]].attrs["ome"]["version"] == "0.5"
        frames, stamps = root[STREAM_IMAGE[stream]]["0"], root["timing"][stream]["timestamps_s"][:]
        assert frames.shards is not None and frames.chunks[0] == 1  # sharded, a frame a chunk
        assert (
            frames.shape[0] == len(stamps) == len(root["timing"][stream]["device_index"][:]) > 100
        )
        assert np.isfinite(stamps).all() and (np.diff(stamps) > 0).all()
        # per-frame times come from the recorded edges on the DAQ clock
        edges = root["edges"]["camera_exposure" if stream == "video" else "frame_clock"]
        rising = edges["samples"][:][edges["rising"][:]]
        np.testing.assert_array_equal(stamps, rising[: len(stamps)] / root.attrs["sample_rate_hz"])
