"""What ``rig export --nwb`` adds when ``rig analyze`` has analysed the session: an ``ophys``
processing module with the ROIs (``ImageSegmentation``, each with its neuron id across days),
their dF/F (``DfOverF``), and the analysis's rows of ``neurons.csv`` and ``edges.csv``."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from hdmf.common import DynamicTable
from pynwb import NWBFile
from pynwb.ophys import DfOverF, ImageSegmentation, RoiResponseSeries

from rig.data.analysis_pointer import read_pointer


def add_analysis(nwb: NWBFile, folder: Path, make_plane: Callable[[], Any]) -> bool:
    """Add the session's analysis to ``nwb``; False (nothing added) when there is none.
    ``make_plane()`` gives the file's imaging plane (made then, if the file has none yet)."""
    pointer = read_pointer(folder)
    if pointer is None:
        return False
    arrays = np.load(pointer["arrays"])
    plane = make_plane()
    segmentation = ImageSegmentation()
    rois = segmentation.create_plane_segmentation(
        name="PlaneSegmentation",
        description=f"ROIs of `rig analyze` (traces: {pointer['traces']})",
        imaging_plane=plane,
    )
    rois.add_column("neuron", "the neuron's id across the animal's analysed sessions")
    ends = np.cumsum(arrays["roi_lengths"])
    for k, (start, end) in enumerate(zip(np.concatenate([[0], ends[:-1]]), ends, strict=True)):
        mask = [
            (int(x), int(y), float(w))
            for y, x, w in zip(
                arrays["roi_ypix"][start:end],
                arrays["roi_xpix"][start:end],
                arrays["roi_lam"][start:end],
                strict=True,
            )
        ]
        rois.add_roi(pixel_mask=mask, neuron=int(arrays["neuron"][k]))
    module = nwb.create_processing_module("ophys", "rig analyze: ROIs, dF/F, neurons, edges")
    module.add(segmentation)
    if len(arrays["neuron"]):
        region = rois.create_roi_table_region(
            region=list(range(len(arrays["neuron"]))), description="every ROI"
        )
        dff = DfOverF()
        module.add(dff)
        dff.add_roi_response_series(
            RoiResponseSeries(
                name="dff",
                data=arrays["dff"].T,
                rois=region,
                unit="n.a.",
                timestamps=arrays["frame_times_s"],
                description="(F - 0.7 Fneu - running baseline) / running baseline of F",
            )
        )
    analysis_dir = Path(pointer["analysis_dir"])
    for name, file in (("analysis_neurons", "neurons.csv"), ("analysis_edges", "edges.csv")):
        module.add(_table(name, analysis_dir / file, folder.name))
    return True


def _table(name: str, path: Path, session: str) -> DynamicTable:
    """The rows of an analysis CSV that belong to ``session``, numbers as numbers."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = [r for r in reader if r.get("session") == session]
    table = DynamicTable(name=name, description=f"rig analyze: {path.name} of this session")
    for col in header:
        table.add_column(name=col, description=col)
    for r in rows:
        table.add_row(**{c: _value(r[c]) for c in header})
    return table


def _value(text: str) -> object:
    if text == "":
        return float("nan")
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text
