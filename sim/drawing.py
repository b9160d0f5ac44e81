"""Anti-aliased drawing for the simulated cameras: shapes as alpha masks, sprites, textures.

Shapes are drawn as coverage masks (alpha in [0, 1]) on a pixel grid; a :class:`Sprite` is a
premultiplied, cropped patch that is pasted onto an 8-bit frame in integer arithmetic, scaled by
the frame's illumination gain. Shared by the mouse video (:mod:`sim.mouse_video`) and the
two-photon movie (:mod:`sim.brain`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (end exclusive)

# Frames are composed with this offset taken off every pixel, so that camera noise centred on it
# can be added in uint8 without wrapping (sim.camera_model adds it back with the noise).
FRAME_OFFSET = 16
MIN_VALUE = 20  # sprites are never darker: lit by the dimmest gain (0.8) they stay >= FRAME_OFFSET


@dataclass(frozen=True)
class Sprite:
    """A cropped patch with coverage: ``out = img (1 - alpha) + (value * gain - offset) alpha``.

    ``alpha`` is in 1/256 steps (0-256), ``value`` the patch's grey level before illumination.
    The frame it is pasted on already holds ``background * gain - FRAME_OFFSET``. Stored small
    (3 bytes a pixel): a session caches thousands of sprites.
    """

    dy: int  # offset of the patch's top-left from the anchor point
    dx: int
    alpha: np.ndarray  # uint16, 0-256
    value: np.ndarray  # uint8

    @property
    def shape(self) -> tuple[int, int]:
        return self.alpha.shape  # type: ignore[return-value]

    def paste(self, img: np.ndarray, ay: int, ax: int, gain256: int = 256) -> None:
        """Blend onto ``img`` (uint8) with the patch's top-left at ``(ay + dy, ax + dx)``."""
        h, w = self.alpha.shape
        y0, x0 = ay + self.dy, ax + self.dx
        y1, x1 = min(y0 + h, img.shape[0]), min(x0 + w, img.shape[1])
        sy, sx = max(0, -y0), max(0, -x0)
        y0, x0 = max(y0, 0), max(x0, 0)
        if y1 <= y0 or x1 <= x0:
            return
        a = self.alpha[sy : sy + y1 - y0, sx : sx + x1 - x0]
        region = img[y0:y1, x0:x1]
        # region + (lit - region) * alpha / 256, with lit = value * gain - offset (clipped to
        # what the frame can hold): the fewest array operations, on small patches
        lit = np.multiply(self.value[sy : sy + y1 - y0, sx : sx + x1 - x0], gain256, dtype=np.int32)
        lit >>= 8
        lit -= FRAME_OFFSET  # >= 0: values are at least MIN_VALUE, gains at least 0.8
        np.minimum(lit, 255 - 2 * FRAME_OFFSET, out=lit)  # a ufunc: np.clip costs 3x more
        lit -= region
        lit *= a
        lit >>= 8
        lit += region
        region[...] = lit

    def box(self, ay: int, ax: int) -> Rect:
        h, w = self.alpha.shape
        return (ax + self.dx, ay + self.dy, ax + self.dx + w, ay + self.dy + h)


def make_sprite(alpha: np.ndarray, value: np.ndarray, cy: int, cx: int) -> Sprite:
    """Crop ``alpha``/``value`` grids to their covered part; ``(cy, cx)`` is the anchor."""
    a = np.clip(np.round(alpha * 256), 0, 256).astype(np.uint16)
    ys, xs = np.nonzero(a)
    if len(ys) == 0:
        ys, xs = np.array([cy]), np.array([cx])
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    v = np.clip(np.round(value[y0:y1, x0:x1]), MIN_VALUE, 255).astype(np.uint8)
    return Sprite(int(y0 - cy), int(x0 - cx), np.ascontiguousarray(a[y0:y1, x0:x1]), v)


def ellipse_alpha(u: np.ndarray, v: np.ndarray, a: float, b: float, px: float) -> np.ndarray:
    """Anti-aliased filled ellipse, semi-axes ``a``, ``b`` in the units of ``u``, ``v``;
    ``px`` is pixels per unit (the edge ramp is one pixel wide)."""
    r = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return np.clip(0.5 - (r - 1.0) * min(a, b) * px, 0.0, 1.0)


def polyline_alpha(
    gx: np.ndarray, gy: np.ndarray, pts: np.ndarray, radius: np.ndarray | float
) -> np.ndarray:
    """Anti-aliased thick polyline (in pixels); radius per vertex or constant."""
    rad = np.broadcast_to(np.asarray(radius, dtype=float), (len(pts),))
    best = np.full(gx.shape, np.inf)
    for (x0, y0), (x1, y1), r0, r1 in zip(pts[:-1], pts[1:], rad[:-1], rad[1:], strict=True):
        vx, vy = x1 - x0, y1 - y0
        ll = vx * vx + vy * vy or 1e-9
        s = np.clip(((gx - x0) * vx + (gy - y0) * vy) / ll, 0, 1)
        d = np.hypot(gx - (x0 + s * vx), gy - (y0 + s * vy)) - (r0 + (r1 - r0) * s)
        np.minimum(best, d, out=best)
    return np.clip(0.5 - best, 0.0, 1.0)


def smooth_noise(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    """A unit-variance Gaussian random field smoothed with ``sigma`` pixels (wraps around)."""
    field = gaussian_filter(rng.standard_normal((h, w)), sigma, mode="wrap")
    return field / (field.std() or 1.0)
