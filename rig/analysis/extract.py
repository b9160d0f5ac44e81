"""``rig extract``: run suite2p on a session's two-photon frames (the optional extra
``fear-rig[suite2p]``).

The frames are exported as one TIFF (``rig export --tiff``), then suite2p (CPU) registers them,
detects the cells and extracts their traces into ``SESSION/suite2p/plane0`` (``stat.npy``,
``F.npy``, ``Fneu.npy``, ``iscell.npy``, ``ops.npy``), where ``rig analyze --traces suite2p``
looks. Reading those files back needs numpy only (:mod:`rig.analysis.traces`).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np

from rig.analysis.session_data import load_session
from rig.files.inputfile import InputError, Problem

EXTRA = "pip install 'fear-rig[suite2p]'"
TAU_S = 0.75  # the simulated and GCaMP6f-like indicator decay suite2p deconvolves with


class Suite2pMissing(RuntimeError):
    """suite2p is not installed (it is an optional extra)."""


def suite2p_available() -> bool:
    return importlib.util.find_spec("suite2p") is not None


def suite2p_settings(rate_hz: float, diameter_px: float, shape: tuple[int, int]) -> dict:
    """suite2p's settings for a session: CPU, the frame rate, the cell size, rigid
    registration for a field smaller than suite2p's non-rigid blocks."""
    from suite2p import default_settings

    settings = default_settings()
    settings["torch_device"] = "cpu"
    settings["fs"] = float(rate_hz)
    settings["tau"] = TAU_S
    settings["diameter"] = [float(diameter_px), float(diameter_px)]
    small = min(shape) < 2 * settings["registration"]["block_size"][0]
    settings["registration"]["nonrigid"] = not small
    block = int(2 ** np.floor(np.log2(max(16, min(shape) // 2))))
    settings["detection"]["block_size"] = (block, block)
    return settings


def extract_session(
    folder: str | Path, diameter_px: float | None = None, keep_tiff: bool = False
) -> Path:
    """Run suite2p on the session's frames; returns the ``plane0`` folder it wrote."""
    if not suite2p_available():
        raise Suite2pMissing(f"suite2p is not installed: {EXTRA}")
    from suite2p import run_s2p

    from rig.exports.csv_tiff import export_tiff

    session = load_session(folder)
    if session.image_shape is None:
        raise InputError(
            str(session.folder), [Problem("imaging", "no stored two-photon frames to extract")]
        )
    h, w = session.image_shape
    diameter = diameter_px if diameter_px is not None else max(4.0, round(0.028 * min(h, w)))
    work = session.folder / "suite2p-input"
    tiff = export_tiff(session.session_folder, work).path  # damaged frames: DamagedFrames
    out = session.folder / "suite2p"
    if out.exists():
        shutil.rmtree(out)  # suite2p's own output, remade: never the session's frames
    db = {
        "data_path": [str(work)],
        "tiff_list": [tiff.name],
        "save_path0": str(session.folder),
        "save_folder": "suite2p",
        "nplanes": 1,
        "nchannels": 1,
        "fast_disk": str(work),
    }
    run_s2p(db=db, settings=suite2p_settings(session.frame_rate_hz, diameter, (h, w)))
    if not keep_tiff:
        shutil.rmtree(work, ignore_errors=True)
    plane = out / "plane0"
    if not (plane / "stat.npy").is_file():
        raise RuntimeError(f"suite2p wrote no stat.npy in {plane}")
    return plane
