"""Hand scorings: stored by name beside the automatic score, compared inside their span."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from rig.behaviour.agreement import bout_spans
from rig.behaviour.hand import (
    HandScoring,
    hand_agreement,
    hand_scorings,
    merge_stretches,
    save_hand_scoring,
)
from rig.data.folder import SessionFolder
from rig.files.inputfile import InputError


@pytest.fixture
def session(demo_session, tmp_path) -> SessionFolder:
    """A scored simulated session of our own (the shared one is not written to)."""
    copy = tmp_path / Path(demo_session).name
    shutil.copytree(demo_session, copy)
    return SessionFolder.open(copy)


def _auto(folder: SessionFolder) -> tuple[np.ndarray, np.ndarray]:
    scores = folder.scores()
    assert scores is not None
    timed = scores.timed(scores.freezing)
    assert timed is not None, "the demo session is scored as it ends"
    return timed


def test_stretches_are_sorted_clipped_and_merged():
    assert merge_stretches([(5, 7), (1, 2), (6, 9), (3, 3)], within=(0, 8)) == [(1, 2), (5, 8)]
    assert merge_stretches([(4, 2)]) == [(2, 4)]  # marked backwards: the same stretch


def test_a_reviewed_span_must_run_forwards():
    with pytest.raises(ValidationError, match="start < end"):
        HandScoring(scorer="jd", reviewed_s=(10, 10))


def test_marking_exactly_the_automatic_bouts_agrees_perfectly(session):
    times, auto = _auto(session)
    start, end = bout_spans(auto)
    # each bout from its first frame's time to the next frame's: the frames it covers
    step = float(np.median(np.diff(times)))
    stretches = [(times[a], times[b - 1] + step / 2) for a, b in zip(start, end, strict=True)]
    scoring = HandScoring(scorer="jd", reviewed_s=(0, float(times[-1]) + 1), freezing_s=stretches)
    agreement = hand_agreement(session, scoring)
    assert agreement is not None
    assert agreement.frame_agreement == 1.0 and agreement.kappa == pytest.approx(1.0)
    assert agreement.frames == np.isfinite(times).sum()


def test_only_the_reviewed_span_is_compared(session):
    times, auto = _auto(session)
    # the observer saw no freezing in the first 20 s and reviewed only those
    scoring = HandScoring(scorer="jd", reviewed_s=(0, 20), freezing_s=[])
    agreement = hand_agreement(session, scoring)
    inside = (times >= 0) & (times < 20)
    assert agreement.frames == inside.sum()
    assert agreement.frame_agreement == pytest.approx(1 - auto[inside].mean())
    # a scorer who says "never" where the automatic score found freezing disagrees
    if auto[inside].any():
        assert agreement.kappa <= 0.0 + 1e-9


def test_a_saved_scoring_is_stored_by_scorer_and_touches_nothing_else(session):
    before = session.scores()
    record = session.freezing_record()
    first = HandScoring(scorer="jd", reviewed_s=(0, 30), freezing_s=[(12.0, 14.5)])
    other = HandScoring(scorer="ab", reviewed_s=(10, 40), freezing_s=[(20, 21)])
    assert save_hand_scoring(session, first) == "hand:jd"
    save_hand_scoring(session, other)
    again = SessionFolder.open(session.path)
    stored = hand_scorings(again)
    assert set(stored) == {"hand:jd", "hand:ab"}
    assert stored["hand:jd"].freezing_s == [(12.0, 14.5)]
    after = again.scores()
    assert again.freezing_record() == record
    np.testing.assert_array_equal(after.freezing, before.freezing)
    np.testing.assert_array_equal(after.motion_index, before.motion_index)


def test_a_damaged_hand_scoring_is_reported_by_field(session):
    session.write_hand_scoring("hand:x", {"scorer": "x", "reviewed_s": "all of it"})
    with pytest.raises(InputError) as err:
        hand_scorings(SessionFolder.open(session.path))
    assert "hand_scores.hand:x.reviewed_s" in err.value.report()
