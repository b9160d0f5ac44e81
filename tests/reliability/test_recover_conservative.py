"""``rig recover`` never loses a frame that is on disk (issue 17, part 1).

Each test damages the journal of a session whose writer died (written by the real store and
frame writer: ``tests/rig/data/conftest.py``), as a crash or a power cut can, then recovers
it and checks that every frame the shard files hold is still in the array, pixel for pixel,
that no shard file was deleted, and that what had to be rebuilt is said.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rig.data.finalize import recover_session
from rig.data.folder import SessionFolder
from tests.rig.data.conftest import write_killed_session


def _shard_files(folder: SessionFolder) -> dict[Path, bytes]:
    shards = (folder.zarr_path / "0" / "0" / "c").rglob("*")
    return {p: p.read_bytes() for p in shards if p.is_file()}


def _damage(folder: SessionFolder, how: str) -> None:
    journal = folder.journal_path
    if how == "empty progress":  # a power cut after the rename, before the data reached disk
        (journal / "progress-video.json").write_bytes(b"")
    elif how == "garbage progress":
        (journal / "progress-video.json").write_bytes(b'\x00\x00{"writ')
    elif how == "no progress":
        (journal / "progress-video.json").unlink()
    elif how == "torn index":  # the index lost its last shard's entries (15 frames)
        index = journal / "index-video.i64"
        index.write_bytes(index.read_bytes()[: -15 * 8 - 3])
    elif how == "no index":
        (journal / "index-video.i64").unlink()
    elif how == "no journal":
        for p in journal.iterdir():
            p.unlink()
        journal.rmdir()
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    ["empty progress", "garbage progress", "no progress", "torn index", "no index", "no journal"],
)
def test_recover_keeps_every_frame_on_disk(tmp_path, short_protocol, cli, how):
    folder, written = write_killed_session(tmp_path, short_protocol)
    shards = _shard_files(folder)
    _damage(folder, how)
    index = folder.journal_path / "index-video.i64"
    known = index.stat().st_size // 8 if index.exists() else 0  # frame numbers left
    result = cli("recover", folder.path)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    video = SessionFolder.open(folder.path).stream("video")
    n = len(written["device_index"])
    assert video.n_frames == n == 45  # every frame the shards hold (on main: 0 for most)
    np.testing.assert_array_equal(video.frames[:], written["frames"])
    assert _shard_files(folder) == shards  # nothing deleted, nothing rewritten
    stored = video.device_index()
    np.testing.assert_array_equal(stored[:known], written["device_index"][:known])
    assert np.all(np.diff(stored) > 0)
    if how == "no journal":  # nothing to time them by: kept all the same, and said so
        assert "no edges in the journal: the frames are not timed" in result.stderr
    else:
        assert np.isfinite(video.timestamps_s()).all()
    if known < n:
        assert f"note: video: frames {known}-44 are on disk but not in" in result.stderr
    else:
        assert "progress-video.json" in result.stderr  # the queue-drop count is unknown


def test_a_damaged_journal_line_is_skipped_and_later_lines_kept(tmp_path, short_protocol, cli):
    folder, written = write_killed_session(tmp_path, short_protocol)
    events = folder.journal.events_path
    lines = events.read_bytes().split(b"\n")
    lines.insert(1, b'{"kind": "cs_on", "t_s": 3.0, "tri\x00\xff')  # damaged in the middle
    events.write_bytes(b"\n".join(lines))
    result = cli("recover", folder.path)
    assert result.exit_code == 0, result.output
    assert "events.jsonl: line 2: unreadable; skipped" in result.stderr
    assert SessionFolder.open(folder.path).events() == written["events"]  # all three kept
    recovery = SessionFolder.open(folder.path).attrs.recovery
    assert any("line 2" in note for note in recovery["notes"])


def test_a_torn_last_journal_line_is_reported_not_fatal(tmp_path, short_protocol):
    folder, written = write_killed_session(tmp_path, short_protocol)
    with open(folder.journal.events_path, "ab") as f:
        f.write(b'{"kind": "us_off", "t_s": 5')  # the writer was killed mid-line
    read = folder.journal.read_events()
    assert read.events == written["events"]
    assert len(read.warnings) == 1 and "incomplete last line" in read.warnings[0]


def test_frames_past_the_array_on_disk_are_kept(tmp_path, short_protocol):
    """A shard the writer put on disk just before the crash, before its index entries and
    before the array was grown for it: recover grows the array instead of losing it."""
    folder, _written = write_killed_session(tmp_path, short_protocol)
    video = folder.stream("video")
    per = video.frames.shards[0]
    before = _shard_files(folder)
    (folder.journal_path / "index-video.i64").write_bytes(b"")  # nothing indexed at all
    recovery = recover_session(SessionFolder.open(folder.path))
    assert recovery.attrs.streams["video"]["written"] == 45
    assert any("numbered 0-44" in note for note in recovery.notes)
    assert _shard_files(folder) == before and len(before) * per >= 45


def test_recover_never_deletes_a_shard_file(tmp_path, short_protocol):
    """A shard file past the frames recover keeps (a stray, or a damaged index) stays."""
    folder, _ = write_killed_session(tmp_path, short_protocol)
    stray = folder.zarr_path / "0" / "0" / "c" / "40" / "0" / "0"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not a shard, but not ours to delete")
    recover_session(SessionFolder.open(folder.path))
    assert stray.read_bytes().startswith(b"not a shard")


def test_recover_reads_the_progress_record_only_for_the_queue_count(tmp_path, short_protocol):
    folder, _ = write_killed_session(tmp_path, short_protocol)
    progress = folder.journal_path / "progress-video.json"
    record = json.loads(progress.read_text())
    record["written"] = 0  # a stale record: the frames are on disk all the same
    record["dropped_by_queue"] = 3
    progress.write_text(json.dumps(record))
    attrs = recover_session(SessionFolder.open(folder.path)).attrs
    assert attrs.streams["video"]["written"] == 45
    assert attrs.streams["video"]["dropped_by_queue"] == 3
