"""Comparing a score with its reference: agreement, kappa, epochs, onsets, and the base-rate
guard the agreement tests use."""

from __future__ import annotations

import numpy as np
import pytest

from rig.behaviour.agreement import cohen_kappa, compare, onset_errors
from tests.rig.behaviour.conftest import assert_agrees


def _truth() -> tuple[np.ndarray, np.ndarray]:
    truth = np.zeros(300, bool)
    for a, b in ((20, 60), (100, 130), (200, 260)):
        truth[a:b] = True
    return truth, np.arange(300) / 10.0


def test_onsets_are_placed_per_reference_bout():
    truth, _ = _truth()
    scored = np.zeros_like(truth)
    scored[18:60] = True  # 2 frames early
    scored[105:130] = True  # 5 late
    assert onset_errors(scored, truth).tolist()[:2] == [-2, 5]
    assert np.isnan(onset_errors(scored, truth)[2])  # the third bout was missed
    result = compare(scored, truth, np.arange(300) / 10.0)
    assert result.bouts == 3 and result.onsets_within_tolerance == pytest.approx(1 / 3)


def test_kappa_is_zero_for_constant_scorers_and_one_for_a_perfect_one():
    truth, _ = _truth()
    assert cohen_kappa(np.zeros_like(truth), truth) == 0
    assert cohen_kappa(np.ones_like(truth), truth) == 0
    assert cohen_kappa(truth, truth) == 1


def test_epoch_errors_in_percentage_points():
    truth, times = _truth()
    scored = truth.copy()
    scored[0:10] = True  # 10 of the 100 frames of [0, 10) s
    result = compare(scored, truth, times, [(0.0, 10.0), (10.0, 30.0)])
    assert result.epoch_error_pp == pytest.approx([10.0, 0.0])


def test_the_guard_fails_a_scorer_that_always_says_not_freezing_or_always_freezing():
    # 87 % of frames are not freezing: "never freezing" agrees on 87 % of them
    truth = np.zeros(1000, bool)
    truth[100:230] = True
    times = np.arange(1000) / 30.0
    for constant in (np.zeros_like(truth), np.ones_like(truth)):
        with pytest.raises(AssertionError):
            assert_agrees(constant, truth, times, [], min_agreement=0.85)
    assert_agrees(truth, truth, times, [], min_agreement=0.85)
