"""What the simulated behaviour camera adds to the scene: light that changes, noise, compression.

- :func:`illumination_gain`: the light reaching the sensor, per frame, as a gain on the scene:
  mains flicker sampled at the frame times (a 100 Hz lamp filmed at 30 fps beats at 10 Hz),
  the slow warm-up drift of LED illuminators and a slow random wander (auto-exposure, ambient
  light). See ``docs/simulation.md`` for where the numbers come from.
- :class:`CameraNoise`: temporal sensor noise, white per pixel plus row (line) noise redrawn
  every frame, read from a bank of pre-drawn noise frames at a pseudo-random frame and offset.
- :func:`mjpeg_roundtrip`: each frame encoded and decoded as a JPEG, as an MJPEG camera or a
  USB webcam delivers it (8x8 block artefacts, detail and noise quantised away).
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from sim.drawing import FRAME_OFFSET

GAIN_MIN, GAIN_MAX = 0.8, 1.2  # the frame composer's integer range holds gains in here


def illumination_gain(
    times_s: np.ndarray,
    rng: np.random.Generator,
    flicker: float,
    mains_hz: float,
    drift: float,
    drift_tau_s: float,
    wander: float,
    wander_tau_s: float,
) -> np.ndarray:
    """Per-frame gain on the scene's brightness (1.0: nominal).

    ``flicker``: residual modulation of lamps on ``mains_hz`` mains (they flicker at twice the
    mains frequency) left after the exposure integrates it; sampled at the frame times, so it
    aliases exactly as a real camera sees it. ``drift``: fraction of light lost as the
    illuminator warms up, ``1 - exp(-t / drift_tau_s)``. ``wander``: standard deviation of a
    slow Ornstein-Uhlenbeck fluctuation with time constant ``wander_tau_s``.
    """
    t = np.asarray(times_s, dtype=float)
    phase = rng.uniform(0, 2 * math.pi)
    gain = 1.0 + flicker * np.sin(2 * math.pi * 2 * mains_hz * t + phase)
    if drift:
        gain *= 1.0 - drift * (1.0 - np.exp(-np.clip(t, 0, None) / drift_tau_s))
    if wander and len(t):
        dt = np.clip(np.diff(t, prepend=t[0]), 0, None)
        k = np.exp(-dt / wander_tau_s)
        z = rng.standard_normal(len(t)) * np.sqrt(1 - k * k)
        w = np.empty(len(t))
        x = rng.standard_normal()
        for i in range(len(t)):  # exact OU update for any frame spacing
            x = k[i] * x + z[i]
            w[i] = x
        gain *= 1.0 + wander * w
    return np.clip(gain, GAIN_MIN, GAIN_MAX)


class CameraNoise:
    """Temporal noise added to composed frames (which hold ``scene * gain - FRAME_OFFSET``).

    A bank of ``banks`` noise frames, each a little larger than the image, holds white noise of
    ``sigma`` grey levels plus a per-row offset of ``row_sigma`` (CMOS line noise); frame ``i``
    reads bank ``k_i`` at offset ``(oy_i, ox_i)``, drawn per frame index, so the row pattern and
    the pixel noise both change every frame. Values are centred on ``FRAME_OFFSET``, so adding
    them in uint8 restores the scene's level without wrapping.
    """

    PAD = 32
    BANKS = 8
    INDEX = 4096  # frame indices repeat their bank choice after this many frames

    def __init__(
        self, width: int, height: int, sigma: float, row_sigma: float, rng: np.random.Generator
    ) -> None:
        self.width, self.height = width, height
        self.enabled = sigma > 0 or row_sigma > 0
        if not self.enabled:
            return
        shape = (self.BANKS, height + self.PAD, width + self.PAD)
        z = sigma * rng.standard_normal(shape)
        z += row_sigma * rng.standard_normal(shape[:2])[:, :, np.newaxis]
        self.bank = np.clip(np.round(FRAME_OFFSET + z), 0, 2 * FRAME_OFFSET).astype(np.uint8)
        self.index = np.stack(
            [
                rng.integers(0, self.BANKS, self.INDEX),
                rng.integers(0, self.PAD + 1, self.INDEX),
                rng.integers(0, self.PAD + 1, self.INDEX),
            ],
            axis=1,
        )

    def add(self, frame: np.ndarray, i: int) -> None:
        """Add frame ``i``'s noise in place (or just the offset back, without noise)."""
        if not self.enabled:
            np.add(frame, FRAME_OFFSET, out=frame)
            return
        k, oy, ox = self.index[i % self.INDEX]
        np.add(frame, self.bank[k, oy : oy + self.height, ox : ox + self.width], out=frame)


def mjpeg_roundtrip(frame: np.ndarray, quality: int) -> np.ndarray:
    """The frame after JPEG encoding at ``quality`` (1-95) and decoding, as MJPEG delivers it."""
    buf = io.BytesIO()
    Image.fromarray(frame, mode="L").save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as img:
        return np.asarray(img, dtype=np.uint8)
