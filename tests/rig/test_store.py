"""The session store: shards zarr reads back, a writer that never blocks, OME-NGFF streams."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaozarrs
import zarr

from rig.data.folder import frame_compressor, trim_frames
from rig.data.journal import Journal
from rig.ports import Frame, StreamInfo
from rig.shards import ShardEncoder, ShardLayoutError
from rig.store import StreamWriter


def calcium_like(n: int, shape=(64, 48), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 150.0, shape)
    return rng.poisson(base + rng.uniform(0, 100, (n, 1, 1))).astype(np.uint16)


@pytest.mark.parametrize("dtype", ["uint16", "uint8"])
def test_encoded_shards_read_back_through_zarr(tmp_path, dtype):
    frames = (calcium_like(23) // (1 if dtype == "uint16" else 8)).astype(dtype)
    array = zarr.create_array(
        str(tmp_path / "a.zarr"),
        shape=(30, 64, 48),
        chunks=(1, 64, 48),
        shards=(10, 64, 48),
        dtype=dtype,
        compressors=frame_compressor(np.dtype(dtype)),
        fill_value=0,
    )
    enc = ShardEncoder(array)
    for shard, start in enumerate(range(0, 23, 10)):
        (tmp_path / "a.zarr" / enc.key(shard)).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "a.zarr" / enc.key(shard)).write_bytes(enc.encode(frames[start : start + 10]))
    back = zarr.open_array(str(tmp_path / "a.zarr"), mode="r")
    np.testing.assert_array_equal(back[:23], frames)
    assert not back[23:].any()  # the last shard's missing frames read as the fill value
    if dtype == "uint16":  # bit-shuffled shot noise compresses; noisy 8-bit bytes need not
        assert len((tmp_path / "a.zarr" / enc.key(0)).read_bytes()) < frames[:10].nbytes


def test_encoder_refuses_a_layout_it_does_not_write(tmp_path):
    array = zarr.create_array(
        str(tmp_path / "b.zarr"), shape=(10, 8, 8), chunks=(2, 8, 8), shards=(10, 8, 8), dtype="u2"
    )
    with pytest.raises(ShardLayoutError):
        ShardEncoder(array)


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
    np.testing.assert_array_equal(root["imaging"]["0"][: acc.written], frames[kept])
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
    np.testing.assert_array_equal(root["imaging"]["0"][:200], frames)


def test_trimming_keeps_the_frames_and_removes_the_shards_past_them(tmp_path):
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
    array = root["imaging"]["0"]
    shard_dir = tmp_path / "s.zarr" / "imaging" / "0" / "c"
    stray = shard_dir / "19"  # a shard past the end (written, then not counted by a crash)
    (stray / "0").mkdir(parents=True)
    (stray / "0" / "0").write_bytes(b"stale")
    trim_frames(array, 90)
    back = zarr.open_array(str(tmp_path / "s.zarr" / "imaging" / "0"), mode="r")
    assert back.shape == (90, 64, 48)
    np.testing.assert_array_equal(back[:], frames[:90])
    kept = sorted(int(p.name) for p in shard_dir.iterdir())
    assert kept == list(range(-(-90 // writer.chunk_t)))


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
        group = yaozarrs.validate_zarr_store(str(demo_session / "session.zarr" / stream))
        assert group.ome_version() == "0.5"
        assert root[stream].attrs["ome"]["version"] == "0.5"
        frames, stamps = root[stream]["0"], root[stream]["timestamps_s"][:]
        assert frames.shards is not None and frames.chunks[0] == 1  # sharded, a frame a chunk
        assert frames.shape[0] == len(stamps) == len(root[stream]["device_index"][:]) > 100
        assert np.isfinite(stamps).all() and (np.diff(stamps) > 0).all()
        # per-frame times come from the recorded edges on the DAQ clock
        edges = root["edges"]["camera_exposure" if stream == "video" else "frame_clock"]
        rising = edges["samples"][:][edges["rising"][:]]
        np.testing.assert_array_equal(stamps, rising[: len(stamps)] / root.attrs["sample_rate_hz"])
