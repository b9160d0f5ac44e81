"""One identity per neuron across an animal's days: register the mean images, match the ROIs.

The earliest session is the reference frame. Each other session's mean image is registered to
it by cross-correlation (a rigid shift: the microscope is never put back on exactly the same
spot), its ROIs are moved into the reference frame, and matched one-to-one to the neurons seen
so far by the Hungarian algorithm on their overlap (intersection over union); an ROI without a
partner overlapping by at least :data:`MIN_IOU` is a new neuron.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from skimage.registration import phase_cross_correlation

from rig.analysis.traces import Traces

MIN_IOU = 0.3


@dataclass(frozen=True)
class Identity:
    """Where each session sits relative to the reference, and which neuron each ROI is."""

    shifts_px: list[np.ndarray]  # per session: (dy, dx) that moves its frame onto the reference
    neuron_ids: list[np.ndarray]  # per session: the neuron id of each of its ROIs
    n_neurons: int
    match_iou: list[np.ndarray]  # per session: the IoU of each ROI with its match (1 = new)


def register(reference: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """The (dy, dx) that moves ``moving`` onto ``reference`` (a feature at p in ``moving`` is
    at p + shift in ``reference``), to a tenth of a pixel."""
    h = min(reference.shape[0], moving.shape[0])
    w = min(reference.shape[1], moving.shape[1])
    ref, mov = _normalise(reference[:h, :w]), _normalise(moving[:h, :w])
    # plain cross-correlation: the phase-normalised kind chases the shot noise of a mean image
    shift, _error, _phase = phase_cross_correlation(
        ref, mov, upsample_factor=10, normalization=None
    )
    return np.asarray(shift, float)


def _normalise(image: np.ndarray) -> np.ndarray:
    """High-pass and clip: cells and vessels, not the slow shading, decide the shift."""
    from scipy.ndimage import gaussian_filter

    img = image.astype(np.float64)
    img = img - gaussian_filter(img, max(2.0, min(img.shape) / 16))
    lo, hi = np.percentile(img, [1, 99])
    return np.clip(img, lo, hi)


def match_sessions(traces: list[Traces]) -> Identity:
    """Register every session to the first and give each ROI its neuron id."""
    if not traces:
        return Identity([], [], 0, [])
    reference = traces[0].mean_image
    shape = reference.shape
    shifts = [np.zeros(2)]
    for t in traces[1:]:
        shifts.append(register(reference, t.mean_image))
    # the neurons seen so far, as masks in the reference frame (their first appearance)
    known: list[np.ndarray] = [
        traces[0].mask_image(k, shape, shifts[0]) for k in range(len(traces[0]))
    ]
    ids = [np.arange(len(traces[0]))]
    ious = [np.ones(len(traces[0]))]
    for t, shift in zip(traces[1:], shifts[1:], strict=True):
        masks = [t.mask_image(k, shape, shift) for k in range(len(t))]
        iou = _iou_matrix(masks, known)
        session_ids = np.full(len(masks), -1, int)
        session_iou = np.ones(len(masks))
        if iou.size:
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols, strict=True):
                if iou[r, c] >= MIN_IOU:
                    session_ids[r] = c
                    session_iou[r] = iou[r, c]
        for r in np.flatnonzero(session_ids < 0):
            session_ids[r] = len(known)
            known.append(masks[r])
        ids.append(session_ids)
        ious.append(session_iou)
    return Identity(shifts, ids, len(known), ious)


def _iou_matrix(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    if not a or not b:
        return np.zeros((len(a), len(b)))
    A = np.stack([m.ravel() for m in a]).astype(np.float32)
    B = np.stack([m.ravel() for m in b]).astype(np.float32)
    inter = A @ B.T
    union = A.sum(1)[:, None] + B.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)
