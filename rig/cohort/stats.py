"""Group statistics: linear mixed-effects models over animals (statsmodels ``MixedLM``).

Each model has one fixed effect per cell (stage x CS role for freezing, stage for a network
metric) and a random intercept per animal, fitted by REML: the animals' repeated measures are
not treated as independent, and an animal with a missing day still counts for its other days.
The questions are contrasts of cell means, each a two-sided Wald z-test, Holm-adjusted over
the model's contrasts. The effect size is Cohen's d for mixed models: the difference over the
total standard deviation, sqrt(animal variance + residual variance) (Westfall, Kenny & Judd,
J Exp Psychol Gen 2014), with the 95% confidence interval scaled from the difference's.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rig.cohort.tables import Table

MIN_ANIMALS = 3
TEST = (
    "linear mixed-effects model (statsmodels MixedLM, REML): a fixed effect per cell, a random "
    "intercept per animal; contrasts of cell means by two-sided Wald z-tests, Holm-adjusted "
    "over the model's contrasts; effect size d = difference / sqrt(animal variance + residual "
    "variance) with its 95% CI"
)
ROLE_LABEL = {"cs_plus": "CS+", "cs_minus": "CS-"}
NETWORK_METRICS = {
    "usr_to_cs_plus_weight": "USR-to-CS+ weight per pair",
    "usr_hub_fraction": "fraction of USR that are hubs",
}


@dataclass(frozen=True)
class Contrast:
    name: str
    estimate: float
    se: float
    z: float
    p: float
    p_holm: float
    ci_low: float
    ci_high: float
    d: float
    d_low: float
    d_high: float

    @property
    def stars(self) -> str:
        p = self.p_holm
        return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "n.s."


@dataclass(frozen=True)
class GroupModel:
    """One fitted model and its contrasts (``skipped`` says why a model could not be fitted)."""

    outcome: str  # what is modelled, in words
    column: str  # the table and column it is fitted on
    formula: str
    animals: int
    observations: int
    test: str = TEST
    var_animal: float | None = None
    var_residual: float | None = None
    converged: bool | None = None
    contrasts: list[Contrast] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Cells = dict[str, float]  # cell name -> coefficient of a contrast


def fit_contrasts(
    rows: Sequence[dict[str, Any]],
    value: str,
    cell_of: Callable[[dict[str, Any]], str],
    contrasts: Sequence[tuple[str, Cells]],
    outcome: str,
    column: str,
    formula: str,
) -> GroupModel:
    """Fit the cell-means mixed model to ``rows`` and test ``contrasts`` (see the module
    docstring); rows whose ``value`` is missing are left out."""
    kept = [r for r in rows if _finite(r.get(value))]
    animals = sorted({r["animal"] for r in kept})
    base = {"outcome": outcome, "column": column, "formula": formula}
    base |= {"animals": len(animals), "observations": len(kept)}
    if len(animals) < MIN_ANIMALS:
        return GroupModel(**base, skipped=f"needs at least {MIN_ANIMALS} animals")
    cells = sorted({cell_of(r) for r in kept})
    testable = [(n, c) for n, c in contrasts if set(c) <= set(cells)]
    if not testable:
        return GroupModel(**base, skipped="no contrast has data in all its cells")
    from statsmodels.regression.mixed_linear_model import MixedLM
    from statsmodels.stats.multitest import multipletests

    y = np.array([float(r[value]) for r in kept])
    X = np.array([[float(cell_of(r) == c) for c in cells] for r in kept])
    groups = np.array([animals.index(r["animal"]) for r in kept])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = MixedLM(y, X, groups=groups, exog_re=np.ones((len(y), 1))).fit(reml=True)
    L = np.array([[c.get(cell, 0.0) for cell in cells] for _, c in testable])
    test = fit.t_test(L)
    estimate = np.atleast_1d(test.effect)
    se = np.atleast_1d(test.sd).ravel()
    z = np.atleast_1d(test.tvalue).ravel()
    p = np.atleast_1d(test.pvalue).ravel()
    ci = np.atleast_2d(test.conf_int())
    p_holm = multipletests(p, method="holm")[1]
    var_animal = float(np.asarray(fit.cov_re)[0, 0])
    var_residual = float(fit.scale)
    sd = math.sqrt(max(var_animal, 0.0) + var_residual)
    notes = _notes([str(w.message) for w in caught], bool(fit.converged))
    out = [
        Contrast(
            name,
            float(estimate[k]),
            float(se[k]),
            float(z[k]),
            float(p[k]),
            float(p_holm[k]),
            float(ci[k, 0]),
            float(ci[k, 1]),
            float(estimate[k] / sd) if sd > 0 else math.nan,
            float(ci[k, 0] / sd) if sd > 0 else math.nan,
            float(ci[k, 1] / sd) if sd > 0 else math.nan,
        )
        for k, (name, _) in enumerate(testable)
    ]
    return GroupModel(
        **base,
        var_animal=var_animal,
        var_residual=var_residual,
        converged=bool(fit.converged),
        contrasts=out,
        notes=notes,
    )


def freezing_model(freezing: Table, stages: Sequence[str]) -> GroupModel:
    """Percent freezing during the CS: CS+ against CS- at every stage; the CS+ at every stage
    against the first, and against the stage before (when that is not the first)."""

    def cell(stage: str, role: str) -> str:
        return f"{ROLE_LABEL[role]} {stage}"

    contrasts = [
        (f"CS+ vs CS- at {s}", {cell(s, "cs_plus"): 1, cell(s, "cs_minus"): -1}) for s in stages
    ]
    contrasts += _stage_steps(stages, lambda s: cell(s, "cs_plus"), "CS+ ")
    return fit_contrasts(
        freezing.rows,
        "cs_percent",
        lambda r: cell(r["stage"], r["role"]),
        contrasts,
        "percent freezing during the CS",
        "freezing.csv: cs_percent",
        "cs_percent ~ 0 + stage:role + (1 | animal)",
    )


def network_models(network: Table, stages: Sequence[str]) -> list[GroupModel]:
    """Each network metric of :data:`NETWORK_METRICS` at every stage against the first and
    against the stage before (when that is not the first)."""
    return [
        fit_contrasts(
            network.rows,
            metric,
            lambda r: r["stage"],
            _stage_steps(stages, lambda s: s, ""),
            words,
            f"network.csv: {metric}",
            f"{metric} ~ 0 + stage + (1 | animal)",
        )
        for metric, words in NETWORK_METRICS.items()
    ]


def _stage_steps(
    stages: Sequence[str], cell: Callable[[str], str], prefix: str
) -> list[tuple[str, Cells]]:
    out = []
    for k, stage in enumerate(stages[1:], start=1):
        out.append((f"{prefix}{stage} vs {stages[0]}", {cell(stage): 1, cell(stages[0]): -1}))
        if k > 1:
            before = stages[k - 1]
            out.append((f"{prefix}{stage} vs {before}", {cell(stage): 1, cell(before): -1}))
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _notes(warned: list[str], converged: bool) -> list[str]:
    """What the fit's warnings mean for its reader (statsmodels retries other optimisers on
    its own and warns on the way; only the final state matters)."""
    notes = []
    if not converged:
        notes.append("the fit did not converge: read these tests with caution")
    if any("boundary" in w for w in warned):
        notes.append(
            "the animal variance is at its boundary (about 0): the animals' levels differ less "
            "than the noise, and the tests are close to those of an ordinary linear model"
        )
    return notes
