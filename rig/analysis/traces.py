"""Fluorescence traces of a session's ROIs: from a suite2p output folder, or (simulated sessions)
from the truth footprints.

Both give a :class:`Traces`: per ROI its pixels in the session's imaging frame, its
fluorescence ``F`` and neuropil ``Fneu`` at every imaging frame, and the session's mean image
(for registration across days). Reading suite2p's files needs numpy only.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.ndimage import binary_dilation

from rig.analysis.session_data import SessionData
from rig.files.inputfile import InputError, Problem

SUITE2P_FILES = ("stat.npy", "F.npy", "Fneu.npy", "iscell.npy")
NEUROPIL_INNER_PX = 2  # the neuropil ring starts this far from any cell...
NEUROPIL_MIN_PIXELS = 20  # ...and grows until it has at least this many pixels


@dataclass
class Roi:
    """One region of interest: pixel coordinates and weights in the session's imaging frame."""

    ypix: np.ndarray
    xpix: np.ndarray
    lam: np.ndarray

    @property
    def centroid(self) -> tuple[float, float]:
        w = self.lam / self.lam.sum() if self.lam.sum() > 0 else None
        return float(np.average(self.ypix, weights=w)), float(np.average(self.xpix, weights=w))


@dataclass
class Traces:
    """A session's ROIs and their traces. ``source`` says where they came from; ``truth_ids``
    is the simulator's neuron index per ROI for the footprints source (else None)."""

    source: str  # "suite2p" | "footprints"
    rois: list[Roi]
    F: np.ndarray  # (n, T) float32
    Fneu: np.ndarray  # (n, T) float32
    mean_image: np.ndarray  # (H, W) float32
    truth_ids: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rois)

    def without_raw(self) -> Traces:
        """The same ROIs with F and Fneu released (shape (n, 0)): what the analysis keeps of a
        session once its dF/F is computed."""
        empty = np.zeros((len(self.rois), 0), np.float32)
        return replace(self, F=empty, Fneu=empty.copy())

    @property
    def centroids(self) -> np.ndarray:
        """(n, 2) y, x in the session's imaging frame."""
        return np.array([r.centroid for r in self.rois], float).reshape(-1, 2)

    def mask_image(self, k: int, shape: tuple[int, int], shift: np.ndarray) -> np.ndarray:
        """ROI ``k`` as a boolean image of ``shape``, moved by ``shift`` (dy, dx)."""
        r = self.rois[k]
        y = np.round(r.ypix + shift[0]).astype(int)
        x = np.round(r.xpix + shift[1]).astype(int)
        ok = (y >= 0) & (y < shape[0]) & (x >= 0) & (x < shape[1])
        out = np.zeros(shape, bool)
        out[y[ok], x[ok]] = True
        return out


# ------------------------------------------------------------------------------- suite2p


def read_suite2p(folder: Path, n_frames: int | None = None) -> Traces:
    """A suite2p ``plane0`` folder (``stat.npy``, ``F.npy``, ``Fneu.npy``, ``iscell.npy``, and
    ``ops.npy`` for the mean image); only the ROIs suite2p classified as cells are kept.

    suite2p pickles ``stat.npy`` and ``ops.npy`` (arrays of dicts): read only folders you trust.
    Every problem is an :class:`InputError` naming the file and what is wrong with it.
    """
    folder = Path(folder)
    if (folder / "plane0").is_dir() and not (folder / "stat.npy").exists():
        folder = folder / "plane0"
    missing = [name for name in SUITE2P_FILES if not (folder / name).is_file()]
    if missing:
        raise InputError(
            str(folder),
            [Problem(name, "missing (not a suite2p output folder)") for name in missing],
        )
    stat = _load(folder / "stat.npy", pickled=True)
    F = _load(folder / "F.npy")
    Fneu = _load(folder / "Fneu.npy")
    iscell = _load(folder / "iscell.npy")
    problems = []
    if F.ndim != 2 or not np.issubdtype(F.dtype, np.number):
        problems.append(Problem("F.npy", f"expected a numeric (ROIs, frames) array, got {F.shape}"))
    elif Fneu.shape != F.shape:
        problems.append(Problem("Fneu.npy", f"shape {Fneu.shape} differs from F.npy {F.shape}"))
    if stat.ndim != 1 or (F.ndim == 2 and len(stat) != F.shape[0]):
        problems.append(Problem("stat.npy", f"{len(stat)} ROIs, F.npy has {F.shape[0]}"))
    if iscell.ndim not in (1, 2) or iscell.shape[0] != len(stat):
        problems.append(Problem("iscell.npy", f"shape {iscell.shape} for {len(stat)} ROIs"))
    if n_frames is not None and F.ndim == 2 and F.shape[1] != n_frames:
        problems.append(
            Problem("F.npy", f"{F.shape[1]} frames, but the session has {n_frames} imaging frames")
        )
    if problems:
        raise InputError(str(folder), problems)
    rois = []
    for i, s in enumerate(stat):
        try:
            rois.append(_roi_from_stat(s))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(str(folder / "stat.npy"), [Problem(f"[{i}]", str(exc))]) from None
    keep = (iscell[:, 0] if iscell.ndim == 2 else iscell).astype(bool)
    mean = _mean_image(folder, rois)
    return Traces(
        source="suite2p",
        rois=[r for r, k in zip(rois, keep, strict=True) if k],
        F=np.asarray(F[keep], np.float32),
        Fneu=np.asarray(Fneu[keep], np.float32),
        mean_image=mean,
    )


def _load(path: Path, pickled: bool = False) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=pickled)
    except (ValueError, OSError, EOFError, pickle.UnpicklingError) as exc:
        raise InputError(str(path), [Problem("", f"not a readable .npy file: {exc}")]) from None
    if not isinstance(data, np.ndarray):
        raise InputError(str(path), [Problem("", "not a .npy array")])
    return data


def _roi_from_stat(s: object) -> Roi:
    if not isinstance(s, dict):
        raise TypeError("an ROI is not a dict")
    ypix = np.asarray(s["ypix"], float).ravel()
    xpix = np.asarray(s["xpix"], float).ravel()
    lam = np.asarray(s.get("lam", np.ones_like(ypix)), float).ravel()
    if not (len(ypix) == len(xpix) == len(lam)) or len(ypix) == 0:
        raise ValueError("ypix, xpix and lam must be non-empty and of one length")
    return Roi(ypix, xpix, np.clip(lam, 0, None))


def _mean_image(folder: Path, rois: list[Roi]) -> np.ndarray:
    """suite2p's registered mean image (``ops.npy`` ``meanImg``); ROI weights if it is absent."""
    ops_path = folder / "ops.npy"
    if ops_path.is_file():
        ops = _load(ops_path, pickled=True)
        ops = ops.item() if ops.dtype == object and ops.ndim == 0 else ops
        if isinstance(ops, dict) and "meanImg" in ops:
            return np.asarray(ops["meanImg"], np.float32)
    h = int(max((r.ypix.max() for r in rois), default=0)) + 1
    w = int(max((r.xpix.max() for r in rois), default=0)) + 1
    img = np.zeros((h, w), np.float32)
    for r in rois:
        img[r.ypix.astype(int), r.xpix.astype(int)] += r.lam.astype(np.float32)
    return img


# ---------------------------------------------------------------------- truth footprints


def footprint_traces(session: SessionData) -> Traces:
    """Traces of the simulated neurons, from the truth footprints on the stored frames.

    Each neuron's pixels (its label in ``truth/neurons_footprints``, in the reference frame)
    are moved to where the day's offset and each frame's motion put them, and averaged; the
    neuropil is a ring around the cell free of other cells. Extraction is then exact in where
    the cells are, so what the analysis finds is the analysis's own doing.
    """
    truth = session.truth
    if truth is None:
        raise InputError(
            str(session.folder),
            [Problem("traces", "footprints are for simulated sessions (this one has no truth)")],
        )
    shape = session.image_shape
    if shape is None:
        session.mean_image()  # raises the no-frames error
        raise AssertionError("unreachable")
    labels = truth.footprints
    offset = np.asarray(truth.fov_offset_px, int)
    ids = np.array(
        [k for k in range(len(truth.neuron_id)) if _in_view(labels == k + 1, offset, shape)], int
    )
    cell_masks = [labels == k + 1 for k in ids]
    neuropil_masks = _neuropil_masks(labels > 0, cell_masks)
    motion = np.asarray(truth.motion_px, int)
    if len(motion) != session.n_frames:
        motion = np.zeros((session.n_frames, 2), int)
    F = np.zeros((len(ids), session.n_frames), np.float32)
    Fneu = np.zeros_like(F)
    cache: dict[tuple[int, int], tuple[sparse.csr_matrix, sparse.csr_matrix]] = {}
    start = 0
    for block in session.frame_blocks():
        n = len(block)
        flat = block.reshape(n, -1).astype(np.float32)
        shifts = motion[start : start + n] + offset
        for key in {tuple(s) for s in shifts.tolist()}:
            rows = np.flatnonzero((shifts == key).all(axis=1))
            if key not in cache:
                cache[key] = (
                    _averaging_matrix(cell_masks, key, shape),
                    _averaging_matrix(neuropil_masks, key, shape),
                )
            cells, neuropil = cache[key]
            F[:, start + rows] = (cells @ flat[rows].T).astype(np.float32)
            Fneu[:, start + rows] = (neuropil @ flat[rows].T).astype(np.float32)
        start += n
    rois = []
    for m in cell_masks:
        y, x = np.nonzero(m)
        rois.append(
            Roi((y - offset[0]).astype(float), (x - offset[1]).astype(float), np.ones(len(y)))
        )
    return Traces(
        source="footprints",
        rois=rois,
        F=F,
        Fneu=Fneu,
        mean_image=session.mean_image(),
        truth_ids=truth.neuron_id[ids],
    )


def _in_view(mask: np.ndarray, offset: np.ndarray, shape: tuple[int, int]) -> bool:
    """At least half of the cell is inside this day's field of view."""
    y, x = np.nonzero(mask)
    if len(y) == 0:
        return False
    y, x = y - offset[0], x - offset[1]
    inside = (y >= 0) & (y < shape[0]) & (x >= 0) & (x < shape[1])
    return bool(inside.mean() >= 0.5)


def _neuropil_masks(any_cell: np.ndarray, cells: list[np.ndarray]) -> list[np.ndarray]:
    exclusion = binary_dilation(any_cell, iterations=NEUROPIL_INNER_PX)
    out = []
    for m in cells:
        ring = np.zeros_like(m)
        grow = NEUROPIL_INNER_PX
        while ring.sum() < NEUROPIL_MIN_PIXELS and grow < 4 * max(m.shape):
            grow += 2
            ring = binary_dilation(m, iterations=grow) & ~exclusion
        out.append(ring)
    return out


def _averaging_matrix(
    masks: list[np.ndarray], shift: tuple[int, int], shape: tuple[int, int]
) -> sparse.csr_matrix:
    """(n, H*W): row k averages mask k moved by ``-shift`` (reference frame -> this frame)."""
    rows, cols = [], []
    for k, m in enumerate(masks):
        y, x = np.nonzero(m)
        y, x = y - shift[0], x - shift[1]
        ok = (y >= 0) & (y < shape[0]) & (x >= 0) & (x < shape[1])
        rows.append(np.full(int(ok.sum()), k))
        cols.append(y[ok] * shape[1] + x[ok])
    r = np.concatenate(rows) if rows else np.empty(0, int)
    c = np.concatenate(cols) if cols else np.empty(0, int)
    counts = np.bincount(r, minlength=len(masks)).astype(np.float32)
    values = 1.0 / np.maximum(counts[r], 1)
    return sparse.csr_matrix((values, (r, c)), shape=(len(masks), shape[0] * shape[1]))


# ------------------------------------------------------------------------- the choice


@dataclass(frozen=True)
class TraceSource:
    """``suite2p`` (each SESSION/suite2p), ``suite2p:DIR`` or ``footprints``."""

    kind: str
    folder: Path | None = None

    @classmethod
    def parse(cls, text: str) -> TraceSource:
        kind, _, rest = text.partition(":")
        if kind == "footprints" and not rest:
            return cls("footprints")
        if kind == "suite2p":
            return cls("suite2p", Path(rest) if rest else None)
        raise InputError(
            "--traces", [Problem("", f"{text!r}: expected suite2p, suite2p:DIR or footprints")]
        )

    @property
    def label(self) -> str:
        return (
            "truth footprints (simulated; extraction bypassed)"
            if self.kind == "footprints"
            else "suite2p"
        )

    def suite2p_folder(self, session: SessionData, sessions: int) -> Path:
        """Where this session's suite2p output is: DIR/NAME[/plane0], or DIR[/plane0] for a
        single session, or SESSION/suite2p[/plane0]."""
        if self.folder is None:
            candidates = [session.folder / "suite2p"]
        else:
            candidates = [self.folder / session.name]
            if sessions == 1:
                candidates.append(self.folder)
        for c in candidates:
            for folder in (c / "plane0", c):
                if (folder / "stat.npy").is_file():
                    return folder
        raise InputError(
            str(candidates[0]),
            [Problem("", "no suite2p output here (run `rig extract` or give --traces)")],
        )
