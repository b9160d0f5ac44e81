"""The journal: what the writer appends is what the readers get back, torn tails included."""

from __future__ import annotations

import numpy as np

from rig.data.journal import Journal, JournalWriter, StreamJournal, StreamProgress
from rig.ports import Edges


def test_events_and_edges_read_back_in_order(tmp_path):
    writer = JournalWriter(tmp_path / "journal")
    events = [{"kind": "cs_on", "t_s": 1.5, "trial": 0}, {"kind": "fault", "t_s": np.float64(2)}]
    writer.log_event(events[0], durable=True)
    writer.log_event(events[1])
    writer.append_edges("frame_clock", Edges(np.array([10, 20]), np.array([True, False])))
    writer.append_edges("frame_clock", Edges(np.empty(0, np.int64), np.empty(0, bool)))
    writer.append_edges("frame_clock", Edges(np.array([2**40]), np.array([True])))
    writer.append_edges("tone", Edges(np.array([5]), np.array([True])))
    writer.sync()
    journal = Journal(tmp_path / "journal")
    assert journal.events() == [events[0], {"kind": "fault", "t_s": 2.0}]  # read while open
    writer.close()
    assert journal.edge_lines() == ["frame_clock", "tone"]
    edges = journal.edges("frame_clock")
    assert edges.samples.tolist() == [10, 20, 2**40]
    assert edges.rising.tolist() == [True, False, True]
    assert len(journal.edges("wheel").samples) == 0  # never recorded


def test_a_torn_tail_from_a_crash_is_dropped(tmp_path):
    writer = JournalWriter(tmp_path)
    writer.log_event({"kind": "session_start", "t_s": 0.0})
    writer.append_edges("tone", Edges(np.array([7]), np.array([True])))
    writer.close()
    with open(tmp_path / "events.jsonl", "a") as f:
        f.write('{"kind": "cs_o')  # killed mid-line
    with open(tmp_path / "edges-tone.i64", "ab") as f:
        f.write(b"\x01\x02\x03")  # killed mid-entry
    journal = Journal(tmp_path)
    assert journal.events() == [{"kind": "session_start", "t_s": 0.0}]
    assert journal.edges("tone").samples.tolist() == [7]


def test_a_stream_journal_records_frames_and_progress(tmp_path):
    stream = StreamJournal(tmp_path, "video")
    stream.append_index(np.array([0, 1, 3]))
    stream.write_progress(StreamProgress(3, 15, 4, 0))
    stream.append_index(np.array([4]))
    stream.write_progress(StreamProgress(4, 15, 5, 1))
    stream.close()
    journal = Journal(tmp_path)
    assert journal.index("video").tolist() == [0, 1, 3, 4]
    assert journal.progress("video") == StreamProgress(4, 15, 5, 1)
    assert journal.progress_by_stream() == {"video": StreamProgress(4, 15, 5, 1)}
    assert not list(tmp_path.glob(".*"))  # the progress file was replaced, no temporary left


def test_an_unreadable_progress_record_is_none(tmp_path):
    journal = Journal(tmp_path)
    assert journal.progress("video") is None and journal.index("video").tolist() == []
    for text, expected in [
        ("", None),
        ("[1, 2]", None),
        ('{"written": "many"}', None),
        ("{}", StreamProgress()),
        ('{"written": 30, "future_field": 1}', StreamProgress(written=30)),
    ]:
        (tmp_path / "progress-video.json").write_text(text)
        assert journal.progress("video") == expected, text
    (tmp_path / "progress-imaging.json").write_text("{not json")
    assert list(journal.progress_by_stream()) == ["video"]
