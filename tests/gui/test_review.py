"""The Review tab: a finished session's frames in step with its trace; hand scoring."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PyQt5.QtCore import Qt
from PyQt5.QtTest import QTest

from gui.review import ReviewWidget
from rig.behaviour.hand import hand_scorings
from rig.data.folder import SessionFolder
from rig.files.inputfile import InputError


@pytest.fixture
def session(demo_session) -> Path:
    """The demo session (video and two-photon frames, scored), only read."""
    return Path(demo_session)


@pytest.fixture
def writable_session(demo_session, tmp_path) -> Path:
    """A copy of it to save hand scorings into."""
    copy = tmp_path / Path(demo_session).name
    shutil.copytree(demo_session, copy)
    return copy


@pytest.fixture
def review(styled_app, qtbot):
    widget = ReviewWidget()
    qtbot.addWidget(widget)
    widget.resize(1366, 700)
    widget.show()
    yield widget
    widget.shutdown()


def _expected_frame(folder: SessionFolder, stream: str, t_s: float) -> int:
    stamps = folder.stream(stream).timestamps_s()
    return int(np.flatnonzero(stamps <= t_s)[-1])


def test_seeking_shows_the_frame_of_each_stream_taken_at_that_time(review, session):
    review.open_session(session)
    folder = SessionFolder.open(session)
    assert set(review.streams) == {"video", "imaging"}
    for t in (0.5, 3.2, 7.77):
        review.seek(t)
        for stream in ("video", "imaging"):
            k = _expected_frame(folder, stream, t)
            assert review.shown_frames[stream] == k
        video_k = review.shown_frames["video"]
        np.testing.assert_array_equal(
            review.video.image.image, folder.stream("video").frames[video_k]
        )
        assert review.cursor.value() == pytest.approx(t)
        assert review.slider.value() == round(t * 100)


def test_the_slider_and_the_trace_cursor_scrub(review, session, qtbot):
    review.open_session(session)
    with qtbot.waitSignal(review.position_changed) as moved:
        review.slider.setValue(450)
    assert moved.args == [pytest.approx(4.5)]
    with qtbot.waitSignal(review.position_changed) as moved:
        review.cursor.setValue(6.25)
    assert moved.args == [pytest.approx(6.25)]
    assert review.slider.value() == 625


def test_play_advances_the_session_time_and_stops_at_the_end(review, session, qtbot):
    review.open_session(session)
    review.speed_box.setCurrentIndex(review.speed_box.findData(10.0))
    review.seek(review.duration_s - 2)
    review.toggle_play()
    assert review.playing
    with qtbot.waitSignal(review.position_changed, timeout=5000):
        pass
    qtbot.waitUntil(lambda: not review.playing, timeout=10_000)
    assert review.position_s == pytest.approx(review.duration_s)
    assert review.play_button.text() == "▶ Play"


def test_arrow_keys_step_one_video_frame(review, session):
    review.open_session(session)
    review.seek(2.0)
    before = review.shown_frames["video"]
    review.setFocus()
    QTest.keyClick(review, Qt.Key_Right)
    assert review.shown_frames["video"] == before + 1
    QTest.keyClick(review, Qt.Key_Left)
    assert review.shown_frames["video"] == before


def test_marked_stretches_are_saved_as_a_hand_scoring_with_the_agreement(review, writable_session):
    session = writable_session
    review.open_session(session)
    review.scorer_edit.setText("jd")
    review.seek(1.0)
    review.toggle_mark()
    review.seek(2.5)
    review.toggle_mark()
    review.seek(6.0)
    QTest.keyClick(review, Qt.Key_M)
    review.seek(5.0)  # marked backwards: the same stretch
    QTest.keyClick(review, Qt.Key_M)
    assert review.stretches == [(1.0, 2.5), (5.0, 6.0)]
    review.seek(5.5)
    review.remove_stretch_here()
    review.add_stretch(7.0, 8.0)
    name = review.save_scoring()

    assert name == "hand:jd"
    stored = hand_scorings(SessionFolder.open(session))["hand:jd"]
    assert stored.freezing_s == [(1.0, 2.5), (7.0, 8.0)]
    assert stored.reviewed_s == (0.0, pytest.approx(review.duration_s))
    text = review.agreement_label.text()
    if review.agreement is not None:  # the session has an automatic score to compare with
        assert "frames agree" in text and "Cohen's κ" in text
        assert review.agreement.reference_freezing > 0
    else:
        assert "no automatic freezing score" in text

    again = ReviewWidget()
    again.open_session(session)  # the scorer goes on where they were
    assert again.stretches == [(1.0, 2.5), (7.0, 8.0)] and again.scorer_edit.text() == "jd"
    again.shutdown()


def test_agreement_is_shown_against_the_automatic_score(review, writable_session):
    copy = writable_session
    review.open_session(copy)
    scores = SessionFolder.open(copy).scores()
    times, auto = scores.timed(scores.freezing)
    assert auto.any(), "the demo session's mouse freezes"
    edges = np.diff(np.concatenate(([0], auto.view(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    step = float(np.median(np.diff(times)))
    for a, b in zip(starts, ends, strict=True):
        review.add_stretch(float(times[a]), float(times[b - 1]) + step / 2)
    review.save_scoring()
    assert review.agreement.frame_agreement == 1.0
    assert "frames agree <b>100.0%</b>" in review.agreement_label.text()
    assert "κ <b>1.00</b>" in review.agreement_label.text()


def test_a_running_or_missing_session_is_refused_with_the_reason(review, tmp_path):
    with pytest.raises(InputError, match="not a fear-rig session"):
        review.open_session(tmp_path)
    assert not review.play_button.isEnabled()
