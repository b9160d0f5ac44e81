"""Motion indices of a behaviour video: how much of the picture changed.

Each frame gets two indices, both the fraction of the region of interest whose brightness
changed by more than the noise cutoff:

- the **motion index** compares frame ``t`` with frame ``t - gap``, ``gap = max(1, round(gap_s *
  fps))`` (0.25 s): slow movements add up over the gap and rise above the noise, while a
  breathing animal, whose flanks return to the same place once a breath (about 4 Hz while it
  freezes), changes little;
- the **step index** compares frame ``t`` with frame ``t - 1``: it says in which frame the last
  movement before a still period ended, to place a bout's onset to the frame.

How a frame is compared:

1. *Binning.* The frame is cut into ``bin_px x bin_px`` blocks, each summed exactly in
   integers (columns and rows past the last whole block are dropped). Averaging 16 pixels
   divides sensor noise by 4 and shrinks the work 16-fold.
2. *Illumination.* Lamps flicker and illuminators drift: a uniform change of brightness would
   tip every bright block over the cutoff at once. The older frame is scaled by the two
   frames' brightness ratio before the comparison (``compensate_illumination``): the median of
   the ratios of 8 x 8 tiles of the frame, which a moving animal or cable does not move.
3. *Cutoff.* A block has changed when its mean moved by more than ``noise_cutoff_grey`` grey
   levels. ``auto`` measures the camera's noise in the session's first ``noise_calibration_s``:
   the robust spread of the frame-to-frame block differences (most blocks show the empty
   arena, so their differences are noise), times :data:`NOISE_SIGMAS`.
4. *Region.* Only blocks entirely inside the ROI (the whole frame if none) and entirely outside
   every exclusion count; an index is changed blocks / counted blocks, in ``[0, 1]`` whatever
   the camera's resolution.

:class:`MotionScorer` computes both indices as frames arrive (one binning and two small
comparisons per frame; O(1) memory once calibrated). With an automatic cutoff the first
``noise_calibration_s`` of frames get NaN when pushed, and :meth:`MotionScorer.early_values`
gives their indices once the cutoff is known. :func:`motion_indices` does a whole stack and gives
bit-identical values. Only numpy is used.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from rig.files.freezing import MotionParams, RectRegion, Region

# A block changed when its mean moved by more than this many standard deviations of the
# camera's frame-to-frame noise (at 6 sigma a Gaussian noise block tips over once in ~5e8).
NOISE_SIGMAS = 6.0
MIN_CUTOFF_GREY = 2.0  # compressed video can quantise the noise away: never cut below this
MAD_TO_SIGMA = 1.4826  # median absolute deviation of a Gaussian, in standard deviations


class ArrayLike3D(Protocol):
    """A stack of frames that slices like a numpy array (numpy, Zarr)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __getitem__(self, key: Any) -> Any: ...


def gap_frames(gap_s: float, fps: float) -> int:
    """Number of frames between compared frames: ``max(1, round(gap_s * fps))``."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return max(1, round(gap_s * fps))


def calibration_frames(params: MotionParams, fps: float) -> int:
    """Frames the automatic cutoff is measured on (0 with a fixed cutoff): at least 10."""
    if params.noise_cutoff_grey != "auto":
        return 0
    return max(10, round(params.noise_calibration_s * fps))


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


def block_mask(width: int, height: int, params: MotionParams) -> np.ndarray:
    """Blocks that count: every pixel of the block is inside the ROI and outside exclusions."""
    b = params.bin_px
    mask = pixel_mask(width, height, params.roi, params.exclude)
    h, w = height // b, width // b
    return mask[: h * b, : w * b].reshape(h, b, w, b).all(axis=(1, 3))


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


TILES = 8  # the frame's brightness is compared in TILES x TILES tiles (see _gains)


def _tiles(sums: np.ndarray) -> np.ndarray:
    """The total of each of TILES x TILES tiles of binned frames ``(..., h, w)``: ``(..., T)``."""
    lead = sums.shape[:-2]
    h, w = sums.shape[-2:]
    th, tw = min(TILES, h), min(TILES, w)
    hh, ww = h // th, w // tw  # rows and columns past the last whole tile are left out
    rows = sums[..., : th * hh, : tw * ww].reshape(*lead, th, hh, tw * ww)
    rows = rows.sum(axis=-2, dtype=np.int64)  # two contiguous sums: 2x one over two axes
    return rows.reshape(*lead, th, tw, ww).sum(axis=-1).reshape(*lead, th * tw)


def _gains(new_tiles: np.ndarray, old_tiles: np.ndarray) -> np.ndarray:
    """How much brighter each new frame is than its old one: the median over tiles of their
    brightness ratio (a black tile counts as unchanged), so that a local change, the animal
    or a cable, does not count as a change of light. ``(..., T)`` -> ``(...)``."""
    ratio = np.divide(new_tiles, old_tiles, out=np.ones(new_tiles.shape), where=old_tiles > 0)
    k = ratio.shape[-1] // 2
    if ratio.shape[-1] % 2:
        return np.partition(ratio, k, axis=-1)[..., k]
    middle = np.partition(ratio, (k - 1, k), axis=-1)  # np.median's answer, 5x cheaper
    return (middle[..., k - 1] + middle[..., k]) / 2


def _changed_fraction(
    new: np.ndarray,
    old: np.ndarray,
    gains: np.ndarray | None,
    cutoff: float,
    mask: np.ndarray,
    n_blocks: int,
) -> np.ndarray:
    """Fraction of counted blocks with ``|new - old * gain| > cutoff``, for one frame pair
    ``(h, w)`` or a stack ``(n, h, w)``; the same arithmetic either way, so identical values."""
    if gains is None:
        d = new - old
    else:
        d = old * np.asarray(gains, np.float32)[..., np.newaxis, np.newaxis]
        np.subtract(new, d, out=d)
    np.abs(d, out=d)
    over = d > cutoff
    over &= mask
    return np.count_nonzero(over, axis=(-2, -1)) / n_blocks


def noise_cutoff(
    blocks: np.ndarray, tiles: np.ndarray, mask: np.ndarray, compensate: bool, b: int
) -> float:
    """The automatic cutoff in block-sum units, from consecutive binned frames ``(n, h, w)``:
    NOISE_SIGMAS times the robust spread of the blocks' frame-to-frame differences."""
    if len(blocks) < 2:
        raise ValueError("the noise calibration needs at least two frames")
    gains = _gains(tiles[1:], tiles[:-1]) if compensate else np.ones(len(blocks) - 1)
    d = blocks[:-1] * gains.astype(np.float32)[:, np.newaxis, np.newaxis]
    np.subtract(blocks[1:], d, out=d)
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(d)[:, mask]))
    return max(NOISE_SIGMAS * sigma, MIN_CUTOFF_GREY * b * b)


STACK = 64  # frames compared together at most (the ring holds gap + 1 + STACK frames)
GATHER_MAX_BLOCKS = 4096  # frames with more blocks are compared one by one, from the ring


class MotionScorer:
    """Incremental motion and step indices: push frames as they come, get their indices back.

    Cost per frame is one binning (about 40 us at 640x480 uint8 with ``bin_px=4``) and two
    comparisons of the small binned images; memory is a ring of ``gap + 1 + STACK`` binned
    frames, plus the calibration frames until the automatic cutoff is known. A stack
    (:meth:`push_many`) is binned and compared in a few whole-stack operations: a frame
    pushed alone and the same frame in a stack give identical indices.
    """

    def __init__(self, width: int, height: int, fps: float, params: MotionParams) -> None:
        self.width = int(width)
        self.height = int(height)
        self.fps = float(fps)
        self.params = params
        self.gap = gap_frames(params.gap_s, fps)
        self.bin_px = params.bin_px
        self.block_mask = block_mask(width, height, params)
        self.n_blocks = int(self.block_mask.sum())
        if self.n_blocks == 0:
            raise ValueError("the ROI minus the exclusions covers no whole block of pixels")
        self.calibration_frames = calibration_frames(params, fps)
        fixed = params.noise_cutoff_grey
        self._cutoff: float | None = None if fixed == "auto" else fixed * self.bin_px**2
        self._capacity = self.gap + 1 + STACK  # frame i lives in slot i % capacity
        shape = self.block_mask.shape
        self._ring = np.zeros((self._capacity, *shape), np.float32)
        self._ring_tiles = np.zeros((self._capacity, len(_tiles(self._ring[0]))), np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []  # until the cutoff is known
        self._early: tuple[np.ndarray, np.ndarray] | None = None
        self._count = 0  # frames pushed
        self._compared = 0  # frames compared (all but the pending ones)

    @property
    def frames_seen(self) -> int:
        """How many frames have been pushed."""
        return self._count

    @property
    def cutoff_grey(self) -> float | None:
        """The noise cutoff in grey levels (None until the automatic one is measured)."""
        return None if self._cutoff is None else self._cutoff / self.bin_px**2

    def push(self, frame: np.ndarray) -> tuple[float, float]:
        """Add the next frame; return its (motion, step) indices, NaN where not known yet."""
        if frame.shape != (self.height, self.width):
            raise ValueError(
                f"frame shape {frame.shape} != (height, width) {(self.height, self.width)}"
            )
        if self._cutoff is None:  # still measuring the noise
            motion, step = self.push_many(frame[np.newaxis])
            return float(motion[0]), float(step[0])
        sums = _bin_sum(frame, self.bin_px, _accumulator(frame.dtype, self.bin_px))
        self._count += 1
        return self._compare_one(sums.astype(np.float32), _tiles(sums))

    def push_many(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add the next frames, an ``(n, height, width)`` stack; return their motion and step
        indices, identical to pushing them one by one."""
        if frames.ndim != 3 or frames.shape[1:] != (self.height, self.width):
            raise ValueError(
                f"frames shape {frames.shape} != (n, height, width) "
                f"(n, {self.height}, {self.width})"
            )
        sums = _bin_sum(frames, self.bin_px, _accumulator(frames.dtype, self.bin_px))
        blocks, tiles = sums.astype(np.float32), _tiles(sums)
        n = len(frames)
        self._count += n
        motion, step = np.full(n, np.nan), np.full(n, np.nan)
        start = 0
        if self._cutoff is None:
            start = min(n, self.calibration_frames - len(self._pending))
            self._wait(blocks[:start], tiles[:start])
        for k in range(start, n, STACK):
            motion[k : k + STACK], step[k : k + STACK] = self._compare(
                blocks[k : k + STACK], tiles[k : k + STACK]
            )
        return motion, step

    def early_values(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Motion and step indices of the calibration frames (pushed while the cutoff was
        being measured), once it is known; None before, or with a fixed cutoff."""
        return self._early

    def finish_calibration(self) -> None:
        """Measure the automatic cutoff on the frames pushed so far (a video shorter than the
        calibration); raises ``ValueError`` with fewer than two."""
        if self._cutoff is None:
            self._calibrate()

    # ---- inside

    def _wait(self, blocks: np.ndarray, tiles: np.ndarray) -> None:
        self._pending.extend(zip(blocks, tiles, strict=True))
        if len(self._pending) >= self.calibration_frames:
            self._calibrate()

    def _calibrate(self) -> None:
        pending, self._pending = self._pending, []
        blocks = np.stack([b for b, _ in pending])
        tiles = np.stack([t for _, t in pending])
        compensate = self.params.compensate_illumination
        self._cutoff = noise_cutoff(blocks, tiles, self.block_mask, compensate, self.bin_px)
        early = [self._compare(blocks[k : k + STACK], tiles[k : k + STACK])
                 for k in range(0, len(blocks), STACK)]  # fmt: skip
        self._early = (
            np.concatenate([m for m, _ in early]),
            np.concatenate([s for _, s in early]),
        )

    def _compare(self, blocks: np.ndarray, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Compare up to STACK frames, each with the frames ``gap`` and 1 back: all the pairs
        in one gather and one comparison."""
        assert self._cutoff is not None
        if len(blocks) == 1 or blocks[0].size > GATHER_MAX_BLOCKS:
            # a large frame costs more to gather than its comparison's per-call overhead
            pairs = np.array([self._compare_one(b, t) for b, t in zip(blocks, tiles, strict=True)])
            return pairs[:, 0], pairs[:, 1]
        cap = self._capacity
        index = np.arange(self._compared, self._compared + len(blocks))
        self._ring[index % cap] = blocks
        self._ring_tiles[index % cap] = tiles
        self._compared += len(blocks)
        has_back, has_prev = index >= self.gap, index >= 1
        now = np.concatenate([index[has_back], index[has_prev]]) % cap
        old = np.concatenate([index[has_back] - self.gap, index[has_prev] - 1]) % cap
        motion, step = np.full(len(blocks), np.nan), np.full(len(blocks), np.nan)
        if len(now):
            gains = None
            if self.params.compensate_illumination:
                gains = _gains(self._ring_tiles[now], self._ring_tiles[old])
            values = _changed_fraction(
                self._ring[now], self._ring[old], gains, self._cutoff, self.block_mask,
                self.n_blocks,
            )  # fmt: skip
            split = int(has_back.sum())
            motion[has_back], step[has_prev] = values[:split], values[split:]
        return motion, step

    def _compare_one(self, blocks: np.ndarray, tiles: np.ndarray) -> tuple[float, float]:
        """One frame (a live camera's pace): the same arithmetic on views of the ring, no
        gathering."""
        assert self._cutoff is not None
        i, cap = self._compared, self._capacity
        self._ring[i % cap] = blocks
        self._ring_tiles[i % cap] = tiles
        self._compared += 1
        values = []
        for lag in (self.gap, 1):
            if i < lag:
                values.append(np.nan)
                continue
            old = (i - lag) % cap
            gains = None
            if self.params.compensate_illumination:
                gains = _gains(tiles, self._ring_tiles[old])
            values.append(
                float(
                    _changed_fraction(
                        blocks, self._ring[old], gains, self._cutoff, self.block_mask, self.n_blocks
                    )
                )
            )
        return values[0], values[1]


@dataclass(frozen=True)
class MotionIndices:
    """Both indices of every frame of a video, and what they were computed with."""

    motion: np.ndarray
    step: np.ndarray
    cutoff_grey: float
    n_blocks: int


def motion_indices(frames: ArrayLike3D, fps: float, params: MotionParams) -> MotionIndices:
    """Both indices of every frame of an ``(n, height, width)`` stack (a numpy or Zarr array,
    read 256 frames at a time), identical to pushing them into a :class:`MotionScorer`, the
    calibration frames included."""
    if len(frames.shape) != 3:
        raise ValueError(f"frames must be (n, height, width), got shape {frames.shape}")
    n, height, width = frames.shape
    scorer = MotionScorer(width, height, fps, params)
    motion, step = np.full(n, np.nan), np.full(n, np.nan)
    for start in range(0, n, 256):  # bounded memory, whatever the video's length
        m, s = scorer.push_many(np.asarray(frames[start : start + 256]))
        motion[start : start + len(m)], step[start : start + len(s)] = m, s
    if scorer.cutoff_grey is None:  # fewer frames than the calibration: measure on them all
        scorer.finish_calibration()
    early = scorer.early_values()
    if early is not None:
        k = len(early[0])
        motion[:k], step[:k] = early
    assert scorer.cutoff_grey is not None
    return MotionIndices(motion, step, scorer.cutoff_grey, scorer.n_blocks)


__all__ = [
    "MotionIndices",
    "MotionScorer",
    "block_mask",
    "calibration_frames",
    "gap_frames",
    "motion_indices",
    "noise_cutoff",
    "pixel_mask",
    "region_mask",
]
