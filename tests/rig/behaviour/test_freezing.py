"""Freezing from the indices: the still-span rule with its onset to the frame, live equal to
offline, the automatic threshold and the per-epoch percentages."""

from __future__ import annotations

import numpy as np
import pytest

from rig.behaviour.freezing import (
    MOVING_LEVEL_FRACTION,
    LiveFreezing,
    auto_threshold,
    freezing_by_epoch,
    score_freezing,
    score_motion,
    step_threshold,
)
from rig.files.freezing import FreezingParams

# --- the rule ------------------------------------------------------------------------------


def test_freezing_needs_min_duration_and_then_counts_whole_bout():
    m = np.array([5, 0, 0, 5, 0, 0, 0, 0, 5, 0, 0, 0], float)
    frozen = score_freezing(m, fps=4.0, threshold=1.0, min_freeze_s=1.0)  # 4 frames
    expected = [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0]
    assert frozen.tolist() == [bool(x) for x in expected]


def test_gap_extends_still_runs_backwards():
    m = np.array([5, 5, 5, 0, 0, 5, 5], float)
    # Two low frames alone are too short; with a 2-frame gap the animal was still since frame 1.
    assert not score_freezing(m, 1.0, 1.0, min_freeze_s=4.0).any()
    frozen = score_freezing(m, 1.0, 1.0, min_freeze_s=4.0, gap_s=2.0)
    assert frozen.tolist() == [False, True, True, True, True, False, False]


def test_the_step_index_places_the_onset_at_the_last_frame_that_changed():
    # The animal slowed down: frame 3 still changed from frame 2 (step), but too little for
    # the gap comparison of frame 5 with frame 3 to notice. The still span starts at frame 3,
    # not at 5 - gap = 2.
    motion = np.array([9, 9, 9, 9, 9, 0, 0, 0, 0, 9], float)
    step = np.array([9, 9, 9, 2, 0, 0, 0, 0, 0, 9], float)
    gap_only = score_freezing(motion, 1.0, 1.0, 3.0, gap_s=3.0)
    assert gap_only.tolist() == [False, False, True, True, True, True, True, True, True, False]
    refined = score_freezing(motion, 1.0, 1.0, 3.0, gap_s=3.0, step=step, step_threshold=1.0)
    assert refined.tolist() == [False] * 3 + [True] * 6 + [False]


def test_a_change_between_two_frames_breaks_a_still_run():
    motion = np.zeros(12)
    step = np.zeros(12)
    step[6] = 5.0  # a twitch between frames 5 and 6 that the gap comparison missed
    without = score_freezing(
        motion, 1.0, 1.0, 7.0, gap_s=1.0, step=np.zeros(12), step_threshold=1.0
    )
    assert without.all()
    # two still spans of 6 frames, [0, 6) and [6, 12): each too short for a 7-frame minimum
    assert not score_freezing(motion, 1.0, 1.0, 7.0, gap_s=1.0, step=step, step_threshold=1.0).any()
    frozen = score_freezing(motion, 1.0, 1.0, 6.0, gap_s=1.0, step=step, step_threshold=1.0)
    assert frozen.all()


def test_nan_counts_as_motion():
    m = np.array([0, 0, np.nan, 0, 0], float)
    assert not score_freezing(m, 1.0, 1.0, min_freeze_s=3.0).any()
    step = np.array([np.nan, 0, np.nan, 0, 0], float)
    assert not score_freezing(np.zeros(5), 1.0, 1.0, 3.0, step=step, step_threshold=1.0).any()


def test_a_step_index_needs_a_step_threshold():
    with pytest.raises(ValueError, match="step threshold"):
        score_freezing(np.zeros(5), 1.0, 1.0, 1.0, step=np.zeros(5))


def test_live_state_equals_offline_on_each_prefix():
    rng = np.random.default_rng(5)
    m = (rng.random(400) < 0.15).astype(float) + rng.random(400) * 0.1
    s = (rng.random(400) < 0.1).astype(float) * 0.5 + rng.random(400) * 0.05
    s[0] = np.nan
    live = LiveFreezing(fps=10.0, threshold=0.5, min_freeze_s=0.8, gap_s=0.3, step_threshold=0.2)
    states = [live.push(x, y) for x, y in zip(m, s, strict=True)]
    for t in range(len(m)):
        want = score_freezing(m[: t + 1], 10.0, 0.5, 0.8, 0.3, s[: t + 1], 0.2)[t]
        assert states[t] == want, t
    offline = score_freezing(m, 10.0, 0.5, 0.8, 0.3, s, 0.2)
    assert np.all(offline[np.array(states)])  # live never claims more than offline
    assert offline.any() and not offline.all()


def test_live_reports_bout_start():
    live = LiveFreezing(fps=1.0, threshold=1.0, min_freeze_s=3.0, gap_s=1.0)
    for x in [5, 5, 0]:
        assert not live.push(x)
    assert live.bout_start is None
    assert live.push(0)
    assert live.bout_start == 1
    assert not live.push(9)


# --- the automatic threshold ----------------------------------------------------------------


def _session_like(rng, n=6000, blocks=20_000):
    """Indices as fractions of 20,000 blocks, as on the simulated rig's video: still (0-2
    blocks changed), sniffing or grooming in place (20-60 blocks), walking (150-350)."""
    kind = rng.choice(3, n, p=[0.3, 0.1, 0.6])
    counts = np.select(
        [kind == 0, kind == 1],
        [rng.integers(0, 3, n), rng.integers(20, 60, n)],
        rng.integers(150, 350, n),
    )
    return kind, counts / blocks


def test_auto_threshold_sits_between_breathing_and_head_movements():
    rng = np.random.default_rng(2)
    kind, m = _session_like(rng)
    thr = auto_threshold(m, fps=30.0)
    assert thr == pytest.approx(MOVING_LEVEL_FRACTION * np.percentile(m, 90))
    assert m[kind == 0].max() < thr < m[kind == 1].min()


def test_auto_threshold_needs_no_still_mode_in_the_window():
    # A naive animal that never freezes in the baseline: still no cut through the sniffing.
    rng = np.random.default_rng(4)
    kind, m = _session_like(rng)
    moving = m[kind > 0]
    thr = auto_threshold(moving, fps=30.0)
    assert thr < m[kind == 1].min()


def test_auto_threshold_uses_only_the_calibration_window():
    m = np.concatenate([np.tile([0.0, 0.05], 50), np.full(100, 0.5)])
    assert auto_threshold(m, fps=10.0, window=(0.0, 10.0)) == pytest.approx(0.002)
    assert auto_threshold(m, fps=10.0) == pytest.approx(0.02)
    times = np.arange(200) / 10.0 + 100.0  # on the session clock
    assert auto_threshold(m, 10.0, (100.0, 110.0), times) == pytest.approx(0.002)


def test_a_single_changed_block_is_motion_when_the_moving_level_is_small():
    m = np.tile([0.0, 0.0, 0.0, 1e-4, 1e-4], 40)  # one block of 10,000 changed, or none
    thr = auto_threshold(m, fps=10.0)
    assert 0.0 < thr < 1e-4


def test_auto_threshold_refuses_an_animal_that_never_moved():
    with pytest.raises(ValueError, match="hardly moved"):
        auto_threshold(np.zeros(100), fps=10.0)
    with pytest.raises(ValueError, match=">= 10"):
        auto_threshold(np.full(5, 0.1), fps=10.0)


def test_step_threshold_is_the_same_fraction_of_its_moving_level():
    rng = np.random.default_rng(8)
    _, m = _session_like(rng)
    s = m * 0.4
    thr = auto_threshold(m, 30.0)
    assert step_threshold(thr, m, s, 30.0) == pytest.approx(0.4 * thr)
    assert step_threshold(thr, m, np.zeros_like(m), 30.0) == thr  # nothing to scale by


# --- one call ---------------------------------------------------------------------------------


def test_score_motion_resolves_the_threshold_and_the_step_threshold():
    rng = np.random.default_rng(9)
    _, m = _session_like(rng, n=3000)
    params = FreezingParams(min_freeze_s=0.1, calibration_s=[0.0, 50.0])
    auto = score_motion(m, 30.0, params, step=m / 2)
    assert auto.auto and auto.threshold == auto_threshold(m, 30.0, (0.0, 50.0))
    assert auto.step_threshold == pytest.approx(auto.threshold / 2)
    fixed = score_motion(m, 30.0, params.model_copy(update={"threshold": 0.01}))
    assert not fixed.auto and fixed.threshold == 0.01 and fixed.step_threshold is None
    override = score_motion(m, 30.0, params, threshold=0.0)
    assert not override.frozen.any()


def test_rescoring_an_hour_at_100_fps():
    rng = np.random.default_rng(0)
    n = 360_000
    bouts = np.repeat(rng.random(n // 500) < 0.4, 500)
    m = np.where(bouts, rng.random(n) * 0.002, 0.02 + rng.random(n) * 0.05)
    params = FreezingParams(threshold=0.005, min_freeze_s=1.0, gap_s=0.25)
    score = score_motion(m, 100.0, params)
    assert score.frozen.shape == (n,)
    # Each bout is found whole, extended back by the 25-frame comparison gap.
    starts = np.flatnonzero(np.diff(bouts.astype(int)) == 1) + 1
    extended = bouts.copy()
    for s in starts:
        extended[s - 25 : s] = True
    assert np.array_equal(score.frozen, extended)


# --- epochs ---------------------------------------------------------------------------------


def test_epoch_percentages_on_a_hand_made_case():
    times = np.arange(0, 60, 1.0)  # one sample per second
    frozen = np.zeros(60, bool)
    frozen[5:10] = True  # half of the baseline phase [0, 10)
    frozen[15:20] = True  # pre of trial 0: [10, 20) -> 50 %
    frozen[20:30] = True  # CS of trial 0: [20, 30) -> 100 %
    frozen[35:40] = True  # ITI [30, 40) -> 50 %; trial 1 pre [35, 40) -> 100 %
    frozen[50:55] = True  # post [45, 60) -> 5/15
    trials = [
        dict(index=0, phase="cond", cs="cs_plus", us="shock", cs_onset_s=20, cs_offset_s=30,
             us_onset_s=29, us_offset_s=30),
        dict(index=1, phase="cond", cs="cs_minus", us=None, cs_onset_s=40, cs_offset_s=45,
             us_onset_s=None, us_offset_s=None),
    ]  # fmt: skip
    phases = [
        {"name": "base", "start_s": 0, "end_s": 10},
        {"name": "cond", "start_s": 10, "end_s": 60},
    ]
    res = freezing_by_epoch(times, frozen, trials, phases)
    t0, t1 = (t["epochs"] for t in res["trials"])
    assert t0["pre"] == {"start_s": 10.0, "end_s": 20.0, "percent": 50.0}
    assert t0["cs"]["percent"] == 100.0 and t0["us"]["percent"] == 100.0
    assert t0["iti"] == {"start_s": 30.0, "end_s": 40.0, "percent": 50.0}
    assert t1["pre"]["percent"] == 100.0 and t1["pre"]["start_s"] == 35.0
    assert t1["us"] is None and t1["iti"] is None
    base, cond = (p["epochs"] for p in res["phases"])
    assert base["baseline"]["percent"] == 50.0 and base["post"] is None
    assert cond["baseline"] is None
    assert cond["post"]["percent"] == pytest.approx(100 * 5 / 15)
    assert cond["all"]["percent"] == pytest.approx(100 * 25 / 50)
    with_pre = freezing_by_epoch(times, frozen, trials, phases, pre_s=2.0)
    assert with_pre["trials"][0]["epochs"]["pre"]["start_s"] == 18.0
