"""dF/F, z-scores, and which neurons respond to the CS+, the CS- and the US.

dF/F: neuropil-corrected fluorescence ``F - 0.7 Fneu`` minus its running 8th-percentile
baseline (60-s window), over the running baseline of the raw ``F`` (always positive, unlike
the corrected trace's). z: dF/F minus its mean over its standard deviation (the paper's
z-normalised dF/F).

Responsiveness to a stimulus class: per trial, the mean z in the response window minus the
mean z in the window before the onset; the statistic is its mean over trials. Its null comes
from the same neuron's trace at random onsets (same number of "trials", drawn where no
stimulus was on), so the trace's own autocorrelation is in the null. One-sided p-value (an
increase), Benjamini-Hochberg across neurons at q = 0.05. The continuous score is the
statistic in standard deviations of its null.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import percentile_filter

from rig.analysis.budget import rows_per_chunk
from rig.analysis.session_data import SessionData

NEUROPIL_COEF = 0.7
BASELINE_WINDOW_S = 60.0
BASELINE_PERCENTILE = 8.0
CS_PRE_S = 10.0  # baseline before a CS onset
US_PRE_S = 2.0  # baseline before a US onset (inside the CS+)
US_POST_S = 1.0  # the US window runs to this long after the US offset
NULL_DRAWS = 5000
FDR_Q = 0.05
ROLES = ("cs_plus", "cs_minus", "us")


def dff(F: np.ndarray, Fneu: np.ndarray, rate_hz: float) -> np.ndarray:
    """(n, T) float32 dF/F as the module docstring says, a few neurons at a time (the float64
    temporaries stay within :data:`rig.analysis.budget.WORK_BYTES`)."""
    out = np.empty(F.shape, np.float32)
    for rows in _chunks(F.shape, copies=6):
        out[rows] = _dff_rows(F[rows], Fneu[rows], rate_hz)
    return out


def _chunks(shape: tuple[int, ...], copies: int) -> list[slice]:
    step = rows_per_chunk(shape[1], copies)
    return [slice(start, start + step) for start in range(0, shape[0], step)]


def _dff_rows(F: np.ndarray, Fneu: np.ndarray, rate_hz: float) -> np.ndarray:
    raw = F.astype(np.float64)
    corrected = raw - NEUROPIL_COEF * Fneu
    base_raw = running_baseline(raw, rate_hz)
    # a baseline near zero (a dead ROI) must not blow up: at least 1/1000 of the neuron's largest
    floor = 1e-3 * np.maximum(np.abs(base_raw).max(axis=1, keepdims=True, initial=0.0), 1e-9)
    corrected -= running_baseline(corrected, rate_hz)
    corrected /= np.maximum(base_raw, floor)
    return corrected.astype(np.float32)


def running_baseline(x: np.ndarray, rate_hz: float) -> np.ndarray:
    """The running :data:`BASELINE_PERCENTILE` percentile over :data:`BASELINE_WINDOW_S`,
    computed on 1-s means and interpolated back (memory and time linear in the length)."""
    n, t_len = x.shape
    per_bin = max(1, round(rate_hz))
    n_bins = max(1, t_len // per_bin)
    binned = x[:, : n_bins * per_bin].reshape(n, n_bins, per_bin).mean(axis=2)
    window = max(1, min(n_bins, round(BASELINE_WINDOW_S)))
    base = percentile_filter(binned, BASELINE_PERCENTILE, size=(1, window), mode="nearest")
    centers = (np.arange(n_bins) + 0.5) * per_bin
    frames = np.arange(t_len)
    return np.stack([np.interp(frames, centers, b) for b in base]) if n else np.zeros_like(x)


def zscore(x: np.ndarray) -> np.ndarray:
    """Each row minus its mean over its standard deviation, float32 (rows computed apart, so a
    block of rows gives the same values as the whole array)."""
    mean = x.mean(axis=1, keepdims=True)
    sd = x.std(axis=1, keepdims=True)
    out = np.subtract(x, mean, dtype=np.float32)
    out /= np.where(sd > 0, sd, 1).astype(np.float32)
    return out


@dataclass(frozen=True)
class Responsiveness:
    """Per neuron and stimulus role: the score, the p-value, and the decision."""

    score: dict[str, np.ndarray]  # role -> (n,) statistic in null SDs (NaN: no such trials)
    p_value: dict[str, np.ndarray]
    responsive: dict[str, np.ndarray]  # role -> (n,) bool
    trials: dict[str, int]


def windows(session: SessionData, role: str) -> list[tuple[float, float, float]]:
    """(onset, response end, baseline start) per trial of ``role``, in seconds."""
    out = []
    us_on = [iv.start_s for iv in session.stimuli("us")]
    for iv in session.stimuli(role):
        if role == "us":
            out.append((iv.start_s, iv.stop_s + US_POST_S, iv.start_s - US_PRE_S))
            continue
        # a US during the CS ends its response window: the CS response, not the shock's
        end = min([iv.stop_s, *[t for t in us_on if iv.start_s < t < iv.stop_s]])
        out.append((iv.start_s, end, iv.start_s - CS_PRE_S))
    return out


def responsiveness(z: np.ndarray, session: SessionData, rng: np.random.Generator) -> Responsiveness:
    """Test every neuron against every stimulus role of the session (module docstring)."""
    times = session.frame_times_s
    n = z.shape[0]
    rate = session.frame_rate_hz
    busy = _stimulus_mask(session)
    tests = {}  # role -> (observed onsets (1, m), window spans (m, 2), null onsets (draws, m))
    trials = {}
    for role in ROLES:
        wins = [w for w in windows(session, role) if w[2] >= times[0] and w[1] <= times[-1]]
        trials[role] = len(wins)
        if wins and n:
            spans = np.array([[on - pre, end - on] for on, end, pre in wins])  # baseline, response
            onsets = _null_onsets(times, busy, spans, NULL_DRAWS, rng)
            tests[role] = (np.array([[w[0] for w in wins]]), spans, onsets)
    score = {role: np.full(n, np.nan) for role in ROLES}
    p_value = {role: np.full(n, np.nan) for role in ROLES}
    # a few neurons at a time: their cumulative sums (float64, the length of the session) and
    # their null statistics stay within the working memory
    step = rows_per_chunk(z.shape[1] + 1, copies=2)
    for start in range(0, n, step):
        rows = slice(start, start + step)
        block = z[rows]
        csum = np.zeros((len(block), block.shape[1] + 1))
        np.cumsum(block, axis=1, dtype=np.float64, out=csum[:, 1:])
        for role, (observed, spans, onsets) in tests.items():
            obs = _statistic(csum, times, observed, spans, rate)[:, 0]
            # in chunks of draws: (neurons x draws x trials) at once would grow with the trials
            null = np.concatenate(
                [_statistic(csum, times, c, spans, rate) for c in np.array_split(onsets, 10)],
                axis=1,
            )
            mu, sd = null.mean(axis=1), null.std(axis=1)
            score[role][rows] = (obs - mu) / np.where(sd > 0, sd, np.inf)
            p_value[role][rows] = (1 + (null >= obs[:, None]).sum(axis=1)) / (1 + NULL_DRAWS)
    responsive = {
        role: benjamini_hochberg(p_value[role], FDR_Q) if role in tests else np.zeros(n, bool)
        for role in ROLES
    }
    return Responsiveness(score, p_value, responsive, trials)


def _statistic(
    csum: np.ndarray, times: np.ndarray, onsets: np.ndarray, spans: np.ndarray, rate: float
) -> np.ndarray:
    """(n, draws): per draw (a row of ``onsets``, one onset per trial), the mean over trials of
    mean z in the response window minus mean z in the baseline window (``spans`` per trial:
    baseline and response lengths in seconds)."""
    on = np.searchsorted(times, onsets)  # (draws, m) frame of each onset
    pre = np.maximum(1, np.round(spans[:, 0] * rate).astype(int))[None, :]
    post = np.maximum(1, np.round(spans[:, 1] * rate).astype(int))[None, :]
    last = csum.shape[1] - 1
    a, b, c = np.clip(on - pre, 0, last), np.clip(on, 0, last), np.clip(on + post, 0, last)
    resp = (csum[:, c] - csum[:, b]) / np.maximum(c - b, 1)  # (n, draws, m)
    base = (csum[:, b] - csum[:, a]) / np.maximum(b - a, 1)
    return (resp - base).mean(axis=2)


def _stimulus_mask(session: SessionData) -> np.ndarray:
    """(T,) True where a stimulus is on or just ended (no random onset goes there)."""
    times = session.frame_times_s
    busy = np.zeros(len(times), bool)
    for iv in session.intervals:
        busy |= (times >= iv.start_s - 1.0) & (times < iv.stop_s + 5.0)
    return busy


def _null_onsets(
    times: np.ndarray, busy: np.ndarray, spans: np.ndarray, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """(draws, m) random onsets whose whole windows fall where no stimulus was on; where the
    session has too little such time, anywhere in the session."""
    rate = 1.0 / float(np.median(np.diff(times))) if len(times) > 1 else 30.0
    m = len(spans)
    out = np.empty((draws, m))
    free_csum = np.concatenate([[0], np.cumsum(busy)])
    for j, (pre_s, resp_s) in enumerate(spans):
        pre, resp = round(pre_s * rate), max(1, round(resp_s * rate))
        starts = np.arange(pre, len(times) - resp)
        if len(starts) == 0:
            starts = np.arange(len(times))
            ok = starts
        else:
            clear = free_csum[starts + resp] - free_csum[starts - pre] == 0
            ok = starts[clear] if clear.sum() >= 20 else starts
        out[:, j] = times[rng.choice(ok, draws)]
    return out


def benjamini_hochberg(p: np.ndarray, q: float) -> np.ndarray:
    """Which of ``p`` are discoveries at false discovery rate ``q`` (NaN never is)."""
    p = np.asarray(p, float)
    ok = np.isfinite(p)
    out = np.zeros(len(p), bool)
    if not ok.any():
        return out
    pv = p[ok]
    order = np.argsort(pv)
    ranked = pv[order] * len(pv) / (np.arange(len(pv)) + 1)
    passed = np.flatnonzero(ranked <= q)
    if len(passed):
        keep = np.zeros(len(pv), bool)
        keep[order[: passed.max() + 1]] = True
        out[np.flatnonzero(ok)] = keep
    return out
