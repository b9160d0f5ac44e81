"""The group statistics find a planted effect, size it, and say when they cannot be fitted."""

from __future__ import annotations

import numpy as np
import pytest

from rig.cohort.stats import MIN_ANIMALS, freezing_model
from rig.cohort.tables import Table

STAGES = ["conditioning", "recall"]
ANIMAL_SD, RESIDUAL_SD = 5.0, 3.0


def planted(animals: int, effect: float, seed: int = 3) -> Table:
    """Freezing rows: each animal its own level; the CS+ at recall ``effect`` points higher."""
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(animals):
        level = 30 + rng.normal(0, ANIMAL_SD)
        for stage in STAGES:
            for role in ("cs_plus", "cs_minus"):
                bump = effect if (stage, role) == ("recall", "cs_plus") else 0.0
                value = level + bump + rng.normal(0, RESIDUAL_SD)
                rows.append({"animal": f"m{a}", "stage": stage, "role": role, "cs_percent": value})
    return Table("freezing.csv", ("animal", "stage", "role", "cs_percent"), rows)


def test_a_planted_difference_is_found_and_sized():
    model = freezing_model(planted(12, effect=12.0), STAGES)
    assert model.skipped is None and model.converged
    assert (model.animals, model.observations) == (12, 48)
    by_name = {c.name: c for c in model.contrasts}
    recall = by_name["CS+ vs CS- at recall"]
    assert recall.estimate == pytest.approx(12.0, abs=3.0)
    assert recall.ci_low < 12.0 < recall.ci_high
    assert recall.p_holm < 0.001
    true_d = 12.0 / np.hypot(ANIMAL_SD, RESIDUAL_SD)
    assert recall.d_low < true_d < recall.d_high
    assert recall.d == pytest.approx(
        recall.estimate / np.sqrt(model.var_animal + model.var_residual)
    )
    assert by_name["CS+ vs CS- at conditioning"].p_holm > 0.05  # nothing planted there
    # the animals' levels are a variance of their own (25 planted), apart from the noise (9)
    assert model.var_animal > 4
    assert RESIDUAL_SD**2 / 2 < model.var_residual < RESIDUAL_SD**2 * 2


def test_no_effect_is_not_significant():
    model = freezing_model(planted(12, effect=0.0), STAGES)
    assert all(c.p_holm > 0.05 for c in model.contrasts)


def test_too_few_animals_is_said_not_fitted():
    model = freezing_model(planted(MIN_ANIMALS - 1, effect=12.0), STAGES)
    assert model.skipped == f"needs at least {MIN_ANIMALS} animals"
    assert model.contrasts == []
