"""The conditioned-response (CR) ensemble: elastic-net decoding of freezing during the CS+.

Population activity (mean z-scored dF/F per neuron in 1-s bins) during the CS+ decodes whether
the animal froze in that bin (the session's own freezing scoring, more than half the bin).
Elastic-net logistic regression (L1 ratio 0.5, features standardised); its inverse penalty is
chosen by cross-validation grouped by trial (no bin of a held-out trial is seen in training),
which also gives the model's decoding AUC. Stability selection (Meinshausen & Buehlmann 2010):
the model is refitted on random halves of the bins (half of each state), at the chosen penalty
and the next weaker one; a neuron is selected when its coefficient is non-zero in at least
:data:`STABLE_FRACTION` of the fits at either. The ensemble is the
stably selected neurons with a positive mean coefficient (activity predicts freezing); those
with a negative one (activity predicts moving) are reported apart. The same model on the bins
between tones (the paper's RS model) is fitted for comparison.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from joblib import delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from rig.analysis.budget import processes
from rig.analysis.session_data import SessionData

BIN_S = 1.0
L1_RATIO = 0.5
C_GRID = (0.03, 0.1, 0.3, 1.0)
SUBSAMPLES = 100
STABLE_FRACTION = 0.6
MIN_BINS_PER_CLASS = 5
ITI_MARGIN_S = 5.0


@dataclass
class Decoder:
    """One elastic-net decoding model and its stability selection."""

    name: str  # "cr" (during the CS+) or "rs" (between tones)
    fitted: bool
    reason: str = ""
    bins: int = 0
    frozen_bins: int = 0
    c: float = float("nan")
    cv_auc: float = float("nan")
    selection: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n,) fraction selected
    mean_coef: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n,)

    @property
    def positive(self) -> np.ndarray:
        """(n,) bool: stably selected, activity predicts freezing (the ensemble)."""
        if not self.fitted:
            return np.zeros(len(self.selection), bool)
        return (self.selection >= STABLE_FRACTION) & (self.mean_coef > 0)

    @property
    def negative(self) -> np.ndarray:
        if not self.fitted:
            return np.zeros(len(self.selection), bool)
        return (self.selection >= STABLE_FRACTION) & (self.mean_coef < 0)

    def summary(self) -> dict:
        return {
            "fitted": self.fitted,
            "reason": self.reason,
            "bins": self.bins,
            "frozen_bins": self.frozen_bins,
            "C": None if np.isnan(self.c) else self.c,
            "cv_auc": None if np.isnan(self.cv_auc) else round(float(self.cv_auc), 4),
            "ensemble_size": int(self.positive.sum()),
            "negative_size": int(self.negative.sum()),
        }


def binned_activity(
    z: np.ndarray, session: SessionData, mask: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X bins x neurons, freezing fraction per bin, group per bin) over the frames in
    ``mask``, binned by :data:`BIN_S` inside each group (a trial, or a gap between tones)."""
    times = session.frame_times_s
    frozen = session.freezing
    X, y, g = [], [], []
    for group in np.unique(groups[mask]):
        frames = np.flatnonzero(mask & (groups == group))
        if len(frames) == 0:
            continue
        edges = times[frames[0]] + BIN_S * np.arange(
            int((times[frames[-1]] - times[frames[0]]) / BIN_S) + 2
        )
        which = np.searchsorted(edges, times[frames], side="right") - 1
        for b in np.unique(which):
            sel = frames[which == b]
            f = frozen[sel]
            if len(sel) < 2 or not np.isfinite(f).any():
                continue
            X.append(z[:, sel].mean(axis=1))
            y.append(float(np.nanmean(f)))
            g.append(group)
    n = z.shape[0]
    return (
        np.array(X, float).reshape(-1, n),
        np.array(y, float),
        np.array(g, int),
    )


def cr_frames(session: SessionData) -> tuple[np.ndarray, np.ndarray]:
    """(mask, group) of the frames during a CS+ (group: the CS+ trial)."""
    times = session.frame_times_s
    mask = np.zeros(len(times), bool)
    groups = np.full(len(times), -1, int)
    for k, iv in enumerate(session.stimuli("cs_plus")):
        inside = (times >= iv.start_s) & (times < iv.stop_s)
        mask |= inside
        groups[inside] = k
    return mask, groups


def rs_frames(session: SessionData) -> tuple[np.ndarray, np.ndarray]:
    """(mask, group) of the frames away from every stimulus (group: the gap between tones)."""
    times = session.frame_times_s
    busy = np.zeros(len(times), bool)
    for iv in session.intervals:
        busy |= (times >= iv.start_s) & (times < iv.stop_s + ITI_MARGIN_S)
    gap = np.cumsum(np.diff(np.concatenate([[0], busy.astype(int)])) == 1)
    return ~busy, gap


def fit_decoder(
    name: str,
    X: np.ndarray,
    frozen: np.ndarray,
    groups: np.ndarray,
    rng: np.random.Generator,
    n_jobs: int = 1,
) -> Decoder:
    """Fit, cross-validate and stability-select one model (module docstring); the fits on
    ``n_jobs`` processes (the subsamples are drawn first, in order, so the result does not
    depend on ``n_jobs``)."""
    n = X.shape[1]
    y = (frozen > 0.5).astype(int)
    empty = Decoder(name, False, selection=np.zeros(n), mean_coef=np.zeros(n), bins=len(y))
    counts = np.bincount(y, minlength=2)
    if counts.min() < MIN_BINS_PER_CLASS:
        empty.reason = f"too few bins of each state (frozen {counts[1]}, moving {counts[0]})"
        empty.frozen_bins = int(counts[1])
        return empty
    if len(np.unique(groups)) < 2:
        empty.reason = "fewer than two trials"
        return empty
    X = StandardScaler().fit_transform(X)
    folds = min(5, len(np.unique(groups)))
    parallel = processes(n_jobs)
    aucs = parallel(delayed(_cv_auc)(X, y, groups, c, folds) for c in C_GRID)
    if np.isfinite(aucs).any():
        best = int(np.nanargmax(aucs))
        best_c, best_auc = C_GRID[best], aucs[best]
    else:  # no fold could be scored (e.g. all freezing in one trial): a middle penalty
        best_c, best_auc = C_GRID[len(C_GRID) // 2], float("nan")
    # stability selection over the chosen penalty and the next weaker one (the region of
    # penalties Meinshausen & Buehlmann take the maximum selection probability over)
    region = [c for c in C_GRID if c >= best_c][:2]
    takes = [[_half_per_class(y, rng) for _ in range(SUBSAMPLES)] for _ in region]
    selection = np.zeros(n)
    coef_sum = np.zeros(n)
    for c, subsamples in zip(region, takes, strict=True):
        selected = np.zeros(n)
        for coef in parallel(delayed(_subsample_coef)(X, y, take, c) for take in subsamples):
            selected += coef != 0
            coef_sum += coef
        selection = np.maximum(selection, selected / SUBSAMPLES)
    return Decoder(
        name,
        True,
        bins=len(y),
        frozen_bins=int(counts[1]),
        c=best_c,
        cv_auc=best_auc,
        selection=selection,
        mean_coef=coef_sum / (SUBSAMPLES * len(region)),
    )


def _subsample_coef(X: np.ndarray, y: np.ndarray, take: np.ndarray, c: float) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _model(c).fit(X[take], y[take]).coef_[0]


def _model(c: float) -> LogisticRegression:
    return LogisticRegression(
        C=c, l1_ratio=L1_RATIO, solver="saga", max_iter=2000, tol=1e-3, random_state=0
    )


def _cv_auc(X: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float, folds: int) -> float:
    scores = np.full(len(y), np.nan)
    for train, test in GroupKFold(n_splits=folds).split(X, y, groups):
        if len(np.unique(y[train])) < 2:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            scores[test] = _model(c).fit(X[train], y[train]).decision_function(X[test])
    ok = np.isfinite(scores)
    if ok.sum() < 2 or len(np.unique(y[ok])) < 2:
        return float("nan")
    return float(roc_auc_score(y[ok], scores[ok]))


def _half_per_class(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    take = []
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        take.append(rng.choice(idx, max(1, len(idx) // 2), replace=False))
    return np.concatenate(take)


def decode(
    z: np.ndarray, session: SessionData, rng: np.random.Generator, n_jobs: int = 1
) -> tuple[Decoder, Decoder]:
    """The CR model (during the CS+) and the RS model (between tones) of one session (the fits
    on ``n_jobs`` processes)."""
    n = z.shape[0]
    models = []
    for name, (mask, groups) in (("cr", cr_frames(session)), ("rs", rs_frames(session))):
        X, frozen, g = binned_activity(z, session, mask, groups)
        if len(frozen) == 0 or n == 0:
            reason = "no freezing scores" if n else "no neurons"
            models.append(
                Decoder(name, False, reason, selection=np.zeros(n), mean_coef=np.zeros(n))
            )
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            models.append(fit_decoder(name, X, frozen, g, rng, n_jobs))
    return models[0], models[1]
