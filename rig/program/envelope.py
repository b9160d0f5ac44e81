"""The sound as played, measured: on/off edges from a recorded analog loopback of the sound.

A DAQ that records its own sound output on an analog input (``lines.sound_loopback``) turns the
samples into edges of the ``tone`` line with an :class:`EnvelopeDetector`, chunk by chunk as
they are read. The sound is "on" from the first sample whose magnitude passes the threshold
and "off" after the last one, once the magnitude has stayed below the threshold for
``hold_s`` (so a carrier's zero crossings and a ramp's first cycles are no edges; a gap between
pips longer than ``hold_s`` is). With a raised-cosine ramp the measured onset lies inside the
ramp: where the envelope passes ``threshold / peak`` (a tenth of the peak by default, about a
fifth of the way into the ramp), and the offset as far inside the ramp at the end.
"""

from __future__ import annotations

import numpy as np

from rig.ports import Edges

THRESHOLD_OF_PEAK = 0.1  # of the quietest sound's peak
MIN_THRESHOLD_V = 0.002  # never below this: ten times the noise of a typical AI channel
HOLD_S = 0.002  # below the threshold this long ends a sound (>= a 500 Hz carrier's period)


def envelope_threshold_v(quietest_peak_v: float | None) -> float:
    """The threshold for a session whose quietest sound peaks at ``quietest_peak_v`` volts."""
    if quietest_peak_v is None:
        return MIN_THRESHOLD_V
    return max(MIN_THRESHOLD_V, THRESHOLD_OF_PEAK * quietest_peak_v)


class EnvelopeDetector:
    """Streams analog samples in, gives the sound's on/off edges out (see module docstring)."""

    def __init__(self, threshold_v: float, sample_rate_hz: float, hold_s: float = HOLD_S) -> None:
        if threshold_v <= 0:
            raise ValueError("threshold_v must be positive")
        self.threshold_v = float(threshold_v)
        self.hold = max(1, round(hold_s * sample_rate_hz))
        self.high = False
        self.last_above = -1  # absolute sample of the last sample above the threshold
        self.position = 0  # samples fed so far

    def feed(self, samples: np.ndarray, start: int) -> Edges:
        """Edges found in ``samples`` (the first at sample ``start``), in order. An offset is
        given once ``hold`` samples below the threshold have been fed after it."""
        above = np.flatnonzero(np.abs(samples) > self.threshold_v).astype(np.int64) + start
        rises: list[np.ndarray] = []
        falls: list[np.ndarray] = []
        if above.size:
            if not self.high:
                rises.append(above[:1])
            elif above[0] - self.last_above - 1 >= self.hold:
                falls.append(np.array([self.last_above + 1]))
                rises.append(above[:1])
            gaps = np.flatnonzero(np.diff(above) - 1 >= self.hold)
            falls.append(above[gaps] + 1)
            rises.append(above[gaps + 1])
            self.high = True
            self.last_above = int(above[-1])
        end = start + len(samples)
        self.position = end
        if self.high and end - 1 - self.last_above >= self.hold:
            falls.append(np.array([self.last_above + 1]))
            self.high = False
        return _merge(rises, falls)

    def stop(self, sample: int) -> Edges:
        """The output stopped at ``sample``: a sound still on ends there."""
        if not self.high:
            return Edges.empty()
        self.high = False
        return Edges(np.array([min(self.last_above + 1, sample)], np.int64), np.zeros(1, bool))


def _merge(rises: list[np.ndarray], falls: list[np.ndarray]) -> Edges:
    r = np.concatenate(rises) if rises else np.empty(0, np.int64)
    f = np.concatenate(falls) if falls else np.empty(0, np.int64)
    if not r.size and not f.size:
        return Edges.empty()
    samples = np.concatenate((r, f)).astype(np.int64)
    rising = np.concatenate((np.ones(r.size, bool), np.zeros(f.size, bool)))
    # A fall and the next rise are never on one sample (a gap of >= hold lies between), so
    # a stable sort by sample keeps on/off alternating.
    order = np.argsort(samples, kind="stable")
    return Edges(samples[order], rising[order])
