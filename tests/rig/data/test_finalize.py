"""The fold of the journal into ``session.zarr`` and ``rig recover``, on a session written by
the real store and frame writer whose process died before finalising."""

from __future__ import annotations

import numpy as np
import pytest

from rig.data.finalize import SessionStillRunning, recover_session
from rig.data.folder import SessionFolder
from tests.rig.data.conftest import FS


def test_recover_folds_the_journal_into_the_store(killed_session):
    folder, written = killed_session
    assert folder.status == "interrupted" and folder.stream("video").timestamps_s() is None
    assert folder.events() == written["events"]  # from the journal before the fold
    recovery = recover_session(folder)
    assert recovery.status == "interrupted"
    attrs = SessionFolder.open(folder.path).attrs
    assert attrs.status == "recovered" and attrs.ended_utc is not None
    video = folder.stream("video")
    n = len(written["device_index"])
    assert video.n_frames == n == 45
    np.testing.assert_array_equal(video.frames[:], written["frames"])
    np.testing.assert_array_equal(video.device_index(), written["device_index"])
    # each frame is timed at the rising edge of its own exposure, the dropped one skipped
    expected = written["exposures"][written["device_index"]] / FS
    np.testing.assert_array_equal(video.timestamps_s(), expected)
    assert video.sync["edges_recorded"] == 60 and video.sync["frames"] == n
    acc = attrs.streams["video"]
    assert (acc["written"], acc["edges"], acc["frames_expected"]) == (n, 60, 60)
    assert acc["dropped_by_device"] == 1 and acc["sync"] == video.sync
    assert folder.events() == written["events"]  # from events/ now
    edges = folder.edges("camera_exposure")
    assert edges.samples[edges.rising].tolist() == written["exposures"].tolist()
    assert recover_session(folder).attrs is None  # recovered: nothing more to do


def test_a_stream_set_up_but_never_written_is_removed(killed_session):
    folder, _ = killed_session
    folder.zarr_group().create_group("imaging")  # killed between the group and its array
    assert folder.stream_groups() == ["video", "imaging"]
    recover_session(folder)
    assert folder.stream_groups() == ["video"]
    assert list(folder.attrs.streams) == ["video"]


def test_a_session_still_written_is_not_recovered(new_session):
    with pytest.raises(SessionStillRunning):
        recover_session(new_session)


def test_rig_recover_prints_what_it_kept(killed_session, cli):
    folder, written = killed_session
    result = cli("recover", folder.path)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"  video: {len(written['device_index'])} frames kept, 60 edges",
        f"{folder}: recovered",
    ]
    again = cli("recover", folder.path)
    assert again.stdout.strip() == f"{folder}: status is recovered; nothing to recover"
