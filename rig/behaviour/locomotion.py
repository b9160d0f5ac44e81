"""Locomotion: the running wheel's speed from its rotary encoder, and freezing scored from it.

A head-fixed mouse runs on a wheel whose encoder's counts reach a DAQ counter input as edges on
the session clock. The counts are binned at :data:`WHEEL_RATE_HZ` (:class:`WheelBins`, the one
binning, used live and offline), turned into surface speed (one count is ``pi * diameter /
counts_per_rev`` cm) and averaged over ``speed_window_s``: a trailing window while the session
runs (it cannot see ahead), a centred one when the session is re-scored. Freezing is the same
rule as for the video (:func:`rig.behaviour.freezing.score_freezing`) with no comparison gap.
The wheel only sees running: grooming or head movements on a still wheel are not motion for it.
"""

from __future__ import annotations

import math

import numpy as np

from rig.behaviour.freezing import score_freezing
from rig.files.freezing import FreezingParams

WHEEL_RATE_HZ = 30.0  # wheel speed is scored in bins of about 1/30 s


class WheelBins:
    """Encoder edges counted per bin of ``bin_samples`` DAQ samples, for a session of
    ``duration_s`` (edges past its end land in the last bin)."""

    def __init__(self, sample_rate_hz: float, duration_s: float) -> None:
        self.bin_samples = max(1, round(sample_rate_hz / WHEEL_RATE_HZ))
        self.rate_hz = sample_rate_hz / self.bin_samples
        n = max(1, math.ceil(duration_s * sample_rate_hz / self.bin_samples))
        self.counts = np.zeros(n, np.int64)

    def __len__(self) -> int:
        return len(self.counts)

    def add(self, samples: np.ndarray) -> None:
        """Count edges given by the DAQ sample at which each arrived."""
        if len(samples):
            bins = np.minimum(np.asarray(samples, np.int64) // self.bin_samples, len(self) - 1)
            np.add.at(self.counts, bins, 1)

    def times_s(self) -> np.ndarray:
        """The centre of every bin, seconds on the session clock."""
        return (np.arange(len(self)) + 0.5) / self.rate_hz


def counts_to_steps(counts: np.ndarray, bits: int = 32) -> np.ndarray:
    """Counts per sample from a cumulative counter reading, undoing ``bits``-bit wrap-around.

    The first sample's step is 0. Steps are signed (the wheel can turn backwards).
    """
    c = np.asarray(counts, dtype=np.int64)
    steps = np.diff(c, prepend=c[:1])
    span = 1 << bits
    return (steps + span // 2) % span - span // 2


def encoder_speed(
    counts_per_sample: np.ndarray,
    sample_rate_hz: float,
    counts_per_rev: int = 4096,
    wheel_diameter_cm: float = 15.0,
    window_s: float = 0.25,
    centred: bool = True,
) -> np.ndarray:
    """Wheel surface speed in cm/s (absolute) from encoder counts per sample.

    ``counts_per_sample`` are the counter increments per sample (signed; use
    :func:`counts_to_steps` on cumulative readings). The speed is averaged over ``window_s``
    (at least one sample) to smooth the encoder's quantisation: a window centred on each
    sample, or with ``centred=False`` the window ending at it (what a live reading can do).
    """
    steps = np.asarray(counts_per_sample, dtype=float)
    cm_per_count = math.pi * wheel_diameter_cm / counts_per_rev
    n = max(1, round(window_s * sample_rate_hz))
    speed = np.abs(steps) * cm_per_count * sample_rate_hz
    if n == 1 or speed.size == 0:
        return speed
    csum = np.concatenate(([0.0], np.cumsum(speed)))
    index = np.arange(speed.size)
    if centred:
        lo = np.clip(index - n // 2, 0, speed.size)
        hi = np.clip(lo + n, 0, speed.size)
        lo = np.maximum(hi - n, 0)
    else:
        hi = index + 1
        lo = np.maximum(hi - n, 0)
    return (csum[hi] - csum[lo]) / (hi - lo)


def wheel_speed(bins: WheelBins, params: FreezingParams, centred: bool = True) -> np.ndarray:
    """Speed per bin of the counts in ``bins``, with the rig file's encoder constants."""
    return encoder_speed(
        bins.counts,
        bins.rate_hz,
        params.encoder_counts_per_rev,
        params.wheel_diameter_cm,
        params.speed_window_s,
        centred,
    )


def score_locomotion_freezing(
    speed_cm_s: np.ndarray,
    sample_rate_hz: float,
    speed_threshold_cm_s: float = 1.0,
    min_freeze_s: float = 1.0,
) -> np.ndarray:
    """Samples where wheel speed stays below ``speed_threshold_cm_s`` for ``min_freeze_s``."""
    return score_freezing(
        np.abs(np.asarray(speed_cm_s, dtype=float)),
        sample_rate_hz,
        speed_threshold_cm_s,
        min_freeze_s,
    )


__all__ = [
    "WHEEL_RATE_HZ",
    "WheelBins",
    "counts_to_steps",
    "encoder_speed",
    "score_locomotion_freezing",
    "wheel_speed",
]
