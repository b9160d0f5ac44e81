"""Functional connectivity: the Python counterpart of the CRF structure learning of
Carrillo-Reid's group, with a shuffle null.

1. Binarise: each neuron's z-scored dF/F is averaged in bins of :data:`BIN_S`; a bin is
   active when it exceeds the neuron's median by :data:`EVENT_SD` robust standard deviations
   (estimated from the bins below the median, which activity does not reach).
2. Neighbourhood selection (Meinshausen & Buehlmann 2006; for binary data Ravikumar et al.
   2010, the node-wise step of the CRF method): every neuron's activity is regressed on every
   other neuron's and on the stimuli (CS+ and CS- on, their first second, US on) and the scored
   freezing by L1-regularised logistic regression.
3. The penalty is chosen by two-fold cross-validation (folds of alternating blocks of
   :data:`HOLDOUT_BLOCK_S`, each scored by the fit on the other), maximising the summed
   node-wise held-out log-likelihood.
4. Symmetrised by the AND rule: an edge needs both neurons to select each other; its weight is
   the mean of the two coefficients (the pairwise log-odds interaction, the edge potential's
   role in the CRF); only positive (co-activation) edges are kept.
5. Shuffle null: the same fit on :data:`SHUFFLES` datasets in which every neuron's binary train
   is circularly shifted by its own random lag (rates and autocorrelation kept, coincidences
   destroyed). An edge is retained when its weight exceeds the 95th percentile of the null's
   edge weights; node strength (sum of retained weights) and degree are computed the same way
   on the null, which gives the hub threshold (:mod:`rig.analysis.hubs`). Both thresholds pool
   every pair (every neuron) of every shuffle: 20 shuffles of 100 neurons give 99,000 null
   pair weights and 2,000 null strengths, and the thresholds move by under 1% from 20 to the
   CRF method's 100 (docs/analysis.md), at a fifth of the fits.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from joblib import delayed
from scipy import sparse
from sklearn import config_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from rig.analysis.budget import processes, rows_per_chunk
from rig.analysis.session_data import SessionData

BIN_S = 0.25
EVENT_SD = 2.0
C_GRID = (0.03, 0.1, 0.3, 1.0)
HOLDOUT_BLOCK_S = 30.0
SHUFFLES = 20  # the CRF method's 100 gives the same pooled thresholds (module docstring)
EDGE_NULL_QUANTILE = 0.95
MIN_EVENTS = 3  # a neuron active in fewer bins is not modelled (no edges)


@dataclass
class Network:
    """One session's functional network (neurons in the order of the traces)."""

    weights: np.ndarray  # (n, n) symmetric, retained edges only (0 elsewhere)
    raw_weights: np.ndarray  # (n, n) AND-rule positive weights before the null threshold
    scores: np.ndarray  # (n, n) symmetrised coefficients (any sign, no AND rule): for ranking
    c: float
    edge_threshold: float
    null_strength: np.ndarray  # (shuffles, n) node strengths of the shuffled networks
    null_degree: np.ndarray
    active_fraction: np.ndarray  # (n,) fraction of active bins
    bins: int
    shuffles: int

    @property
    def strength(self) -> np.ndarray:
        return self.weights.sum(axis=1)

    @property
    def degree(self) -> np.ndarray:
        return (self.weights > 0).sum(axis=1)

    @property
    def density(self) -> float:
        n = len(self.weights)
        return float((self.weights > 0).sum() / max(n * (n - 1), 1))


def binarise(z: np.ndarray, rate_hz: float) -> tuple[np.ndarray, int]:
    """(bins, n) uint8 activity and the frames per bin (module docstring, step 1), a few
    neurons at a time (no copy of the whole of ``z``)."""
    per_bin = max(1, round(BIN_S * rate_hz))
    n, t_len = z.shape
    n_bins = t_len // per_bin
    X = np.empty((n_bins, n), np.uint8)
    step = rows_per_chunk(n_bins * per_bin, copies=2, itemsize=z.itemsize)
    for start in range(0, n, step):
        block = z[start : start + step, : n_bins * per_bin]
        binned = block.reshape(len(block), n_bins, per_bin).mean(axis=2)
        med = np.median(binned, axis=1, keepdims=True)
        # the noise from the bins below the median: activity only adds to the upper side
        lower = np.where(binned <= med, binned - med, np.nan)
        sd = 1.4826 * np.nanmedian(np.abs(lower), axis=1, keepdims=True)  # half-normal median
        sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        X[:, start : start + step] = ((binned - med) > EVENT_SD * sd).T
    return X, per_bin


def covariates(session: SessionData, n_bins: int, per_bin: int) -> np.ndarray:
    """(bins, k) fraction of each bin with a stimulus on (CS+, CS-, their first second, US)
    and with the animal scored as freezing."""
    times = session.frame_times_s[: n_bins * per_bin]
    cols = []
    for role in ("cs_plus", "cs_minus"):
        on = np.zeros(len(times))
        onset = np.zeros(len(times))
        for iv in session.stimuli(role):
            on[(times >= iv.start_s) & (times < iv.stop_s)] = 1
            onset[(times >= iv.start_s) & (times < iv.start_s + 1.0)] = 1
        cols += [on, onset]
    us = np.zeros(len(times))
    for iv in session.stimuli("us"):
        us[(times >= iv.start_s) & (times < iv.stop_s + 1.0)] = 1
    frozen = np.nan_to_num(session.freezing[: n_bins * per_bin], nan=0.0)
    cols += [us, frozen]
    X = np.stack(cols, axis=1).reshape(n_bins, per_bin, -1).mean(axis=1)
    return X[:, X.std(axis=0) > 0]  # a stimulus the session never had says nothing


def _design(X: np.ndarray, cov: np.ndarray) -> sparse.csr_matrix:
    """[activity, covariates] as one sparse matrix (activity is mostly zeros), in the row
    format liblinear takes without a conversion."""
    return sparse.hstack([sparse.csr_matrix(X, dtype=np.float64), sparse.csr_matrix(cov)]).tocsr()


def _model(c: float) -> LogisticRegression:
    return LogisticRegression(
        C=c, l1_ratio=1.0, solver="liblinear", intercept_scaling=10.0, random_state=0, tol=1e-3
    )


def _without(A: sparse.csr_matrix, i: int) -> sparse.csr_matrix:
    """``A`` with column ``i`` zeroed: a neuron does not predict itself."""
    out = A.copy()
    out.data[out.indices == i] = 0.0
    return out


def _fit(A: sparse.csr_matrix, y: np.ndarray, i: int, c: float) -> LogisticRegression | None:
    """Neuron ``i``'s model on design ``A``, or None if it is too rarely (or too often) active
    to model."""
    if y.sum() < MIN_EVENTS or y.sum() > len(y) - MIN_EVENTS:
        return None
    return _model(c).fit(_without(A, i), y)


def quick_fits() -> config_context:
    """Thousands of small fits on designs built here: scikit-learn's checks of parameters and
    of finite values are skipped (the same fits, without a millisecond of checks each)."""
    return config_context(assume_finite=True, skip_parameter_validation=True)


def _log_likelihood(
    X: np.ndarray, cov: np.ndarray, c: float, train: np.ndarray, test: np.ndarray
) -> float:
    """Summed held-out log-likelihood of every neuron's model."""
    A_train, A_test = _design(X[train], cov[train]), _design(X[test], cov[test])
    total = 0.0
    with quick_fits(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i in range(X.shape[1]):
            model = _fit(A_train, X[train, i], i, c)
            if model is None:
                continue
            p = np.clip(model.predict_proba(_without(A_test, i))[:, 1], 1e-6, 1 - 1e-6)
            yt = X[test, i]
            total += float(np.sum(yt * np.log(p) + (1 - yt) * np.log(1 - p)))
    return total


def choose_penalty(X: np.ndarray, cov: np.ndarray, rate_bins_hz: float, n_jobs: int = 1) -> float:
    """The C of :data:`C_GRID` with the best cross-validated log-likelihood (step 3): two
    folds of alternate blocks of :data:`HOLDOUT_BLOCK_S`, each fold scored by the fit on the
    other, the two summed (the eight fits of all neurons on ``n_jobs`` processes). One direction
    alone is a noisy choice: on the tests' recall day one direction preferred C = 0.1 by 110
    log-likelihood units, the other 0.3 by 630."""
    block = max(1, round(HOLDOUT_BLOCK_S * rate_bins_hz))
    fold = (np.arange(len(X)) // block) % 2
    a, b = np.flatnonzero(fold == 0), np.flatnonzero(fold == 1)
    both = processes(n_jobs)(
        delayed(_log_likelihood)(X, cov, c, train, test)
        for c in C_GRID
        for train, test in ((a, b), (b, a))
    )
    scores = [both[2 * k] + both[2 * k + 1] for k in range(len(C_GRID))]
    return C_GRID[int(np.argmax(scores))]


def and_rule(B: np.ndarray) -> np.ndarray:
    """Symmetric positive weights of the edges both ends selected (step 4)."""
    both = (B != 0) & (B.T != 0)
    W = np.where(both, 0.5 * (B + B.T), 0.0)
    np.fill_diagonal(W, 0.0)
    return np.clip(W, 0.0, None)


def node_coefficients(X: np.ndarray, cov: np.ndarray, c: float) -> np.ndarray:
    """(n, n): row i holds the coefficients of the other neurons in neuron i's model."""
    n = X.shape[1]
    B = np.zeros((n, n))
    A = _design(X, cov)
    with quick_fits(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i in range(n):
            model = _fit(A, X[:, i], i, c)
            if model is not None:
                B[i] = model.coef_[0][:n]
                B[i, i] = 0.0
    return B


def fit_structure(X: np.ndarray, cov: np.ndarray, c: float) -> np.ndarray:
    """The AND-rule weights of one dataset at penalty ``c``."""
    return and_rule(node_coefficients(X, cov, c))


def _shuffled_structure(X: np.ndarray, cov: np.ndarray, c: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t_len = len(X)
    lags = rng.integers(t_len // 10, max(t_len // 10 + 1, t_len - t_len // 10), X.shape[1])
    shuffled = np.stack([np.roll(X[:, i], lag) for i, lag in enumerate(lags)], axis=1)
    return fit_structure(shuffled, cov, c)


def functional_network(
    z: np.ndarray,
    session: SessionData,
    seed: int,
    shuffles: int = SHUFFLES,
    n_jobs: int = 1,
    c: float | None = None,
) -> Network:
    """The session's network with its shuffle null (module docstring)."""
    X, per_bin = binarise(z, session.frame_rate_hz)
    n = X.shape[1]
    cov = covariates(session, len(X), per_bin)
    bins_hz = session.frame_rate_hz / per_bin
    if c is None:
        c = choose_penalty(X, cov, bins_hz, n_jobs) if n > 1 else C_GRID[0]
    seeds = np.random.SeedSequence(seed).generate_state(max(shuffles, 1))
    # the data's fits and every shuffle's, as independent tasks on n_jobs processes; each
    # shuffle's lags come from its own seed, so the result does not depend on n_jobs
    B, *nulls = processes(n_jobs)(
        [delayed(node_coefficients)(X, cov, c)]
        + [delayed(_shuffled_structure)(X, cov, c, int(s)) for s in seeds[:shuffles]]
    )
    raw = and_rule(B)
    upper = np.triu_indices(n, 1)
    null_weights = np.concatenate([w[upper] for w in nulls]) if nulls else np.zeros(0)
    # the (1 - alpha) quantile of every null pair's weight (zeros included): an edge must beat
    # what shuffled data give at that rate
    threshold = float(np.quantile(null_weights, EDGE_NULL_QUANTILE)) if len(null_weights) else 0.0
    weights = np.where(raw > threshold, raw, 0.0)
    null_kept = [np.where(w > threshold, w, 0.0) for w in nulls]
    return Network(
        weights=weights,
        raw_weights=raw,
        scores=0.5 * (B + B.T),
        c=float(c),
        edge_threshold=threshold,
        null_strength=np.array([w.sum(axis=1) for w in null_kept]).reshape(-1, n),
        null_degree=np.array([(w > 0).sum(axis=1) for w in null_kept]).reshape(-1, n),
        active_fraction=X.mean(axis=0) if len(X) else np.zeros(n),
        bins=len(X),
        shuffles=shuffles,
    )
