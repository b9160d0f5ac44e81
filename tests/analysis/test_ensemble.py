"""The CR decoder on data whose answer is known: which neuron predicts freezing."""

from __future__ import annotations

import numpy as np

from rig.analysis.ensemble import fit_decoder


def _freezing_follows_neuron_0(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(160, 12))
    frozen = (X[:, 0] + 0.5 * rng.normal(size=160) > 0.3).astype(float)
    return X, frozen, np.repeat(np.arange(8), 20)  # 8 trials of 20 bins


def test_the_stably_selected_neuron_is_the_one_freezing_follows():
    X, frozen, groups = _freezing_follows_neuron_0()
    model = fit_decoder("cr", X, frozen, groups, np.random.default_rng(1))
    assert model.fitted and model.cv_auc > 0.8
    assert model.positive[0] and model.selection[0] == 1.0
    assert model.mean_coef[0] > 5 * np.abs(model.mean_coef[1:]).max()


def test_the_same_model_on_any_number_of_processes():
    X, frozen, groups = _freezing_follows_neuron_0()
    one = fit_decoder("cr", X, frozen, groups, np.random.default_rng(1), n_jobs=1)
    two = fit_decoder("cr", X, frozen, groups, np.random.default_rng(1), n_jobs=2)
    assert one.c == two.c and one.cv_auc == two.cv_auc
    np.testing.assert_array_equal(one.selection, two.selection)
    np.testing.assert_array_equal(one.mean_coef, two.mean_coef)
