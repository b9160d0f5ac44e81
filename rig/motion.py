"""Motion index of a behaviour video: how much of the picture changed.

The motion index of frame ``t`` is the fraction of the region of interest whose brightness
changed by more than ``noise_cutoff_grey`` grey levels between frame ``t - gap`` and frame ``t``,
after both frames were smoothed by averaging ``bin_px x bin_px`` blocks of pixels:

1. *Smoothing by binning.* Each frame is cut into ``bin_px x bin_px`` blocks and each block
   summed (an integer, so the result is exact and identical however it is computed). Averaging
   16 pixels (``bin_px = 4``) divides sensor noise by 4 and shrinks the image 16-fold, which is
   what makes the scorer fast. Rows and columns beyond the last whole block are ignored.
2. *Comparison gap.* Frame ``t`` is compared with frame ``t - gap`` where
   ``gap = max(1, round(gap_s * fps))``. At 100 fps consecutive frames differ too little for
   slow movements to rise above the noise; comparing frames ~0.25 s apart does not have that
   problem. At low frame rates the gap becomes one frame.
3. *Cutoff.* A block counts as changed when ``|sum_t - sum_(t-gap)| > noise_cutoff_grey *
   bin_px**2``, i.e. when its mean changed by more than the cutoff.
4. *Region.* Only blocks entirely inside the ROI (the whole frame if none) and entirely outside
   every exclusion (head plate, cables) count. The index is the number of changed blocks
   divided by the number of blocks that count, so it is in ``[0, 1]`` whatever the ROI size or
   binning, and a threshold carries over between rigs with different cameras.

The first ``gap`` frames have no partner and get ``NaN``.

:class:`MotionScorer` computes the index as frames arrive, one by one or a few at a time, in
O(1) time and memory per frame (a ring buffer of ``gap`` binned frames); :func:`motion_index`
computes it for a whole stack at once. All three give bit-identical results. Only numpy is used.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class RectRegion(BaseModel):
    """An axis-aligned rectangle in image pixels (``x`` to the right, ``y`` down)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    x_px: Annotated[float, Field(ge=0)]
    y_px: Annotated[float, Field(ge=0)]
    width_px: Annotated[float, Field(gt=0)]
    height_px: Annotated[float, Field(gt=0)]


class PolygonRegion(BaseModel):
    """A polygon in image pixels, given by its vertices ``[[x, y], ...]`` (even-odd rule)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    points_px: Annotated[
        list[Annotated[list[float], Field(min_length=2, max_length=2)]], Field(min_length=3)
    ]


Region = RectRegion | PolygonRegion


class MotionParams(BaseModel):
    """The parameters of the motion index (:class:`rig.freezing.FreezingParams` extends it)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    gap_s: Annotated[float, Field(gt=0)] = 0.25
    noise_cutoff_grey: Annotated[float, Field(ge=0)] = 10.0
    bin_px: Annotated[int, Field(ge=1, le=16)] = 4
    roi: Region | None = None
    exclude: list[Region] = Field(default_factory=list)


def gap_frames(gap_s: float, fps: float) -> int:
    """Number of frames between compared frames: ``max(1, round(gap_s * fps))``."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return max(1, round(gap_s * fps))


def region_mask(region: Region, width: int, height: int) -> np.ndarray:
    """Boolean ``(height, width)`` mask of the pixels whose centres lie inside ``region``."""
    ys = np.arange(height, dtype=float)[:, None] + 0.5
    xs = np.arange(width, dtype=float)[None, :] + 0.5
    if isinstance(region, RectRegion):
        return (
            (xs >= region.x_px)
            & (xs < region.x_px + region.width_px)
            & (ys >= region.y_px)
            & (ys < region.y_px + region.height_px)
        )
    inside = np.zeros((height, width), dtype=bool)
    pts = region.points_px
    for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1], strict=True):
        if y0 == y1:
            continue
        crosses = (ys >= min(y0, y1)) & (ys < max(y0, y1))  # (h, 1)
        x_at = x0 + (ys - y0) * (x1 - x0) / (y1 - y0)  # (h, 1)
        inside ^= crosses & (xs < x_at)
    return inside


def pixel_mask(
    width: int, height: int, roi: Region | None, exclude: Iterable[Region] = ()
) -> np.ndarray:
    """Pixels that count: inside ``roi`` (everything if None) and outside every exclusion."""
    mask = np.ones((height, width), bool) if roi is None else region_mask(roi, width, height)
    for region in exclude:
        mask &= ~region_mask(region, width, height)
    return mask


def _bin_sum(frames: np.ndarray, b: int, acc: type) -> np.ndarray:
    """Sum ``b x b`` blocks over the last two axes (cropped to whole blocks), exactly."""
    h = frames.shape[-2] // b * b
    w = frames.shape[-1] // b * b
    f = frames[..., :h, :w]
    if b == 1:
        return f.astype(acc)
    rows = np.add(f[..., 0::b, :], f[..., 1::b, :], dtype=acc)
    for k in range(2, b):
        rows += f[..., k::b, :]
    out = rows[..., 0::b] + rows[..., 1::b]
    for k in range(2, b):
        out += rows[..., k::b]
    return out


@functools.cache  # called for every frame of hours of video; answers depend on two values
def _accumulator(dtype: np.dtype, b: int) -> type:
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.float64
    if dtype.kind not in "ui":
        raise ValueError(f"frames must be integer or float images, got dtype {dtype}")
    if dtype == np.uint8 and b * b * 255 <= np.iinfo(np.uint16).max:
        return np.uint16
    return np.int64


def _diff_dtype(acc: type) -> type:
    return np.int32 if acc is np.uint16 else acc


class MotionScorer:
    """Incremental motion index: push frames as they come, get each frame's index back.

    Cost per frame is one binning of the frame (about 40 us at 640x480 uint8 with ``bin_px=4``)
    and one comparison of the small binned images; memory is ``gap`` binned frames.
    """

    def __init__(self, width: int, height: int, fps: float, params: MotionParams) -> None:
        self.width = int(width)
        self.height = int(height)
        self.fps = float(fps)
        self.params = params
        self.gap = gap_frames(self.params.gap_s, fps)
        self.bin_px = self.params.bin_px
        self.block_mask = block_mask(width, height, self.params)
        self.n_blocks = int(self.block_mask.sum())
        if self.n_blocks == 0:
            raise ValueError("the ROI minus the exclusions covers no whole block of pixels")
        self._cutoff = self.params.noise_cutoff_grey * self.bin_px**2
        self._ring: np.ndarray | None = None
        self._count = 0

    @property
    def frames_seen(self) -> int:
        """How many frames have been pushed."""
        return self._count

    def reset(self) -> None:
        """Forget past frames (the next ``gap`` frames get NaN again)."""
        self._ring = None
        self._count = 0

    def push(self, frame: np.ndarray) -> float:
        """Add the next frame; return its motion index (NaN for the first ``gap`` frames)."""
        if frame.shape != (self.height, self.width):
            raise ValueError(
                f"frame shape {frame.shape} != (height, width) {(self.height, self.width)}"
            )
        return self._add(_bin_sum(frame, self.bin_px, _accumulator(frame.dtype, self.bin_px)))

    def push_many(self, frames: np.ndarray) -> np.ndarray:
        """Add the next frames, an ``(n, height, width)`` stack; return their motion indices,
        identical to pushing them one by one. The stack is binned in one go: small frames
        pushed one by one cost mostly per-call overhead."""
        if frames.ndim != 3 or frames.shape[1:] != (self.height, self.width):
            raise ValueError(
                f"frames shape {frames.shape} != (n, height, width) "
                f"(n, {self.height}, {self.width})"
            )
        binned = _bin_sum(frames, self.bin_px, _accumulator(frames.dtype, self.bin_px))
        return np.array([self._add(b) for b in binned], float)

    def _add(self, binned: np.ndarray) -> float:
        """Compare a binned frame with the one ``gap`` frames back, then keep it."""
        if self._ring is None:
            self._ring = np.empty((self.gap, *binned.shape), dtype=binned.dtype)
        slot = self._count % self.gap  # holds the frame gap frames back: the partner
        value = np.nan
        if self._count >= self.gap:
            d = np.subtract(binned, self._ring[slot], dtype=_diff_dtype(self._ring.dtype.type))
            np.abs(d, out=d)
            changed = np.count_nonzero((d > self._cutoff) & self.block_mask)
            value = changed / self.n_blocks
        self._ring[slot] = binned
        self._count += 1
        return value


def block_mask(width: int, height: int, params: MotionParams) -> np.ndarray:
    """Blocks that count: every pixel of the block is inside the ROI and outside exclusions."""
    b = params.bin_px
    mask = pixel_mask(width, height, params.roi, params.exclude)
    h, w = height // b, width // b
    return mask[: h * b, : w * b].reshape(h, b, w, b).all(axis=(1, 3))


def motion_index(
    frames: np.ndarray | Sequence[np.ndarray],
    fps: float,
    params: MotionParams,
    chunk: int = 256,
) -> np.ndarray:
    """Motion index of every frame of a ``(n, height, width)`` stack, identical to pushing them.

    ``chunk`` frames are binned at a time to bound the temporary memory.
    """
    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise ValueError(f"frames must be (n, height, width), got shape {frames.shape}")
    n, height, width = frames.shape
    gap = gap_frames(params.gap_s, fps)
    b = params.bin_px
    mask = block_mask(width, height, params)
    n_blocks = int(mask.sum())
    if n_blocks == 0:
        raise ValueError("the ROI minus the exclusions covers no whole block of pixels")
    acc = _accumulator(frames.dtype, b)
    cutoff = params.noise_cutoff_grey * b**2
    binned = np.concatenate(
        [_bin_sum(frames[i : i + chunk], b, acc) for i in range(0, max(n, 1), chunk)]
    )
    out = np.full(n, np.nan)
    for i in range(gap, n, chunk):
        j = min(n, i + chunk)
        d = np.subtract(binned[i:j], binned[i - gap : j - gap], dtype=_diff_dtype(acc))
        np.abs(d, out=d)
        out[i:j] = np.count_nonzero((d > cutoff) & mask, axis=(1, 2)) / n_blocks
    return out


__all__ = [
    "MotionParams",
    "MotionScorer",
    "PolygonRegion",
    "RectRegion",
    "Region",
    "block_mask",
    "gap_frames",
    "motion_index",
    "pixel_mask",
    "region_mask",
]
