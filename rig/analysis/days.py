"""Across days: what changed for the same neurons, with bootstrap confidence intervals.

Per matched neuron (present on both days) the change of its CS+ and US scores, node strength
and degree from the first analysed session to each later one; per animal the mean change with
a 95% bootstrap interval over neurons. Per day, the network the study is about: the edges
between the neurons that answered the US on the conditioning day (USR) and the neurons that
answered the CS+ on any day, and how many of the USR are hubs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP = 2000
METRICS = ("cs_plus_score", "us_score", "strength", "degree")


@dataclass(frozen=True)
class DayTable:
    """What :func:`across_days` needs of one analysed session, by neuron id."""

    name: str
    label: str
    neuron: np.ndarray  # (n,) ids
    values: dict[str, np.ndarray]  # metric -> (n,)
    cs_plus_responsive: np.ndarray
    us_responsive: np.ndarray
    hub: np.ndarray
    weights: np.ndarray  # (n, n) retained edges
    us_trials: int


def bootstrap_mean(x: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float]:
    """Mean and its 95% percentile-bootstrap interval."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan"), float("nan")
    means = rng.choice(x, (BOOTSTRAP, len(x))).mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(x.mean()), float(lo), float(hi)


def changes(days: Sequence[DayTable], seed: int) -> list[dict]:
    """Per later day: mean change of each metric over the neurons matched to the first day."""
    rng = np.random.default_rng([seed, 0xDA75])
    out = []
    if not days:
        return out
    first = days[0]
    for later in days[1:]:
        common, ia, ib = np.intersect1d(first.neuron, later.neuron, return_indices=True)
        for metric in METRICS:
            delta = later.values[metric][ib] - first.values[metric][ia]
            mean, lo, hi = bootstrap_mean(delta, rng)
            out.append(
                {
                    "from": first.name,
                    "to": later.name,
                    "from_label": first.label,
                    "to_label": later.label,
                    "metric": metric,
                    "neurons": len(common),
                    "mean_change": _round(mean),
                    "ci95": [_round(lo), _round(hi)],
                }
            )
    return out


def usr_network(days: Sequence[DayTable]) -> list[dict]:
    """Per day: edges between the conditioning day's USR and the CS+-responsive neurons."""
    shock_days = [d for d in days if d.us_trials > 0]
    usr = set(shock_days[0].neuron[shock_days[0].us_responsive].tolist()) if shock_days else set()
    cs = set()
    for d in days:
        cs |= set(d.neuron[d.cs_plus_responsive].tolist())
    out = []
    for d in days:
        ids = d.neuron.tolist()
        is_usr = np.array([i in usr for i in ids], bool)
        is_cs = np.array([i in cs for i in ids], bool) & ~is_usr
        edges = d.weights > 0
        cross = int(edges[np.ix_(is_usr, is_cs)].sum())
        pairs = int(is_usr.sum() * is_cs.sum())
        weight = float(d.weights[np.ix_(is_usr, is_cs)].sum())
        out.append(
            {
                "session": d.name,
                "label": d.label,
                "usr": int(is_usr.sum()),
                "usr_to_cs_plus_edges": cross,
                "usr_to_cs_plus_density": _round(cross / pairs) if pairs else None,
                # mean retained weight per (USR, CS+) pair: comparable across days of different
                # lengths (a longer day finds more of the same edges, not stronger ones)
                "usr_to_cs_plus_weight": _round(weight / pairs) if pairs else None,
                "usr_hubs": int((d.hub & is_usr).sum()),
                "hubs": int(d.hub.sum()),
                "mean_usr_strength": _round(float(d.values["strength"][is_usr].mean()))
                if is_usr.any()
                else None,
                "mean_other_strength": _round(float(d.values["strength"][~is_usr].mean()))
                if (~is_usr).any()
                else None,
            }
        )
    return out


def ensemble_connectivity(days: Sequence[DayTable], ensemble_ids: set[int]) -> list[dict]:
    """Per day: mean node strength and within-group edge density of the ensemble neurons
    against the others (the ensemble of one day, followed by neuron id)."""
    out = []
    for d in days:
        member = np.array([i in ensemble_ids for i in d.neuron.tolist()], bool)
        edges = d.weights > 0
        row = {"session": d.name, "label": d.label, "ensemble": int(member.sum())}
        for name, sel in (("ensemble", member), ("other", ~member)):
            k = int(sel.sum())
            within = edges[np.ix_(sel, sel)].sum() / max(k * (k - 1), 1)
            row[f"{name}_strength"] = _round(float(d.values["strength"][sel].mean())) if k else None
            row[f"{name}_density"] = _round(float(within)) if k > 1 else None
        out.append(row)
    return out


def _round(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 5)
