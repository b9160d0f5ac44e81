"""Hubs: neurons whose node strength stands above what shuffled data give.

Node strength is the sum of a neuron's retained edge weights (the CRF's sum of edge
potentials), degree the number of its edges. The null is the node strengths of the shuffled
networks (:mod:`rig.analysis.connectivity`), pooled over neurons and shuffles: a hub's strength
exceeds their mean by more than one standard deviation (and it has at least two edges).
Cross-population degree counts a neuron's edges to the other population of the pair the study
is about: a US-responsive neuron's edges to CS+-responsive ones, and the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rig.analysis.connectivity import Network

HUB_SD = 1.0
MIN_HUB_DEGREE = 2


@dataclass(frozen=True)
class Hubs:
    strength: np.ndarray  # (n,)
    degree: np.ndarray  # (n,)
    hub: np.ndarray  # (n,) bool
    threshold: float
    cross_degree: np.ndarray  # (n,)


def find_hubs(network: Network, us_responsive: np.ndarray, cs_plus_responsive: np.ndarray) -> Hubs:
    """Hubs of ``network`` against its shuffle null (module docstring)."""
    null = network.null_strength.ravel()
    threshold = float(null.mean() + HUB_SD * null.std()) if len(null) else 0.0
    strength, degree = network.strength, network.degree
    edges = network.weights > 0
    us = np.asarray(us_responsive, bool)
    cs = np.asarray(cs_plus_responsive, bool)
    to_cs = edges[:, cs].sum(axis=1)
    to_us = edges[:, us].sum(axis=1)
    cross = np.where(us, to_cs, 0) + np.where(cs & ~us, to_us, 0)
    hub = (strength > threshold) & (degree >= MIN_HUB_DEGREE)
    return Hubs(strength, degree, hub, threshold, cross)
