"""The network's building blocks on data whose wiring is known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from rig.analysis import connectivity
from rig.analysis.connectivity import _shuffled_structure, and_rule, fit_structure


def _planted(seed: int = 0, t_len: int = 4000, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Binary activity of ``n`` independent neurons, except that neuron 1 copies neuron 0 most
    of the time; one random covariate."""
    rng = np.random.default_rng(seed)
    X = (rng.random((t_len, n)) < 0.08).astype(np.uint8)
    X[:, 1] = np.maximum(X[:, 1], X[:, 0] * (rng.random(t_len) < 0.7))
    return X, (rng.random((t_len, 1)) < 0.1).astype(float)


def test_neighbourhood_selection_finds_the_planted_pair_only():
    X, cov = _planted()
    W = fit_structure(X, cov, c=0.3)
    assert W[0, 1] == W[1, 0] > 1.0  # a strong, symmetric co-activation edge
    others = W.copy()
    others[0, 1] = others[1, 0] = 0
    assert others.max() < 0.25 * W[0, 1]


def test_the_shuffle_null_destroys_coincidences_and_keeps_rates():
    X, cov = _planted()
    null = _shuffled_structure(X, cov, 0.3, seed=5)
    assert null[0, 1] < 0.25 * fit_structure(X, cov, 0.3)[0, 1]


def test_and_rule_needs_both_ends_and_keeps_co_activation():
    B = np.array([[0, 0.8, 0.5], [0.4, 0, 0], [-0.6, 0, 0]])
    W = and_rule(B)
    assert W[0, 1] == W[1, 0] == pytest.approx(0.6)  # mean of the two coefficients
    assert W[0, 2] == 0  # only one end selected the other
    assert and_rule(np.array([[0, -1.0], [-1.0, 0]])).max() == 0  # negative: not kept


def test_the_penalty_is_chosen_on_both_folds(monkeypatch):
    """Each fold is scored by the fit on the other and the two are summed: a penalty one
    direction prefers by a little and the other rejects by a lot is not chosen."""
    X, cov = _planted(t_len=400)
    seen = []

    def held_out(X, cov, c, train, test):
        first = bool(train[0] == 0)  # fitted on the first fold (the blocks from time 0)
        seen.append((c, first))
        assert not set(train) & set(test) and len(train) + len(test) == len(X)
        # fitted on the first fold, 0.1 wins by 10; on the second, 0.3 by 100
        scores = {(0.1, True): -100.0, (0.3, True): -110.0, (0.1, False): -200.0}
        return scores.get((c, first), -100.0 if c == 0.3 else -1000.0)

    monkeypatch.setattr(connectivity, "_log_likelihood", held_out)
    assert connectivity.choose_penalty(X, cov, rate_bins_hz=4.0) == 0.3
    assert sorted(seen) == sorted(
        (c, first) for c in connectivity.C_GRID for first in (True, False)
    )
