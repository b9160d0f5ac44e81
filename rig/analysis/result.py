"""What an analysis produced: per session, and for the animal (shared by the pipeline that
makes it and the figures that draw it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rig.analysis.connectivity import Network
from rig.analysis.ensemble import Decoder
from rig.analysis.hubs import Hubs
from rig.analysis.identity import Identity
from rig.analysis.responses import Responsiveness
from rig.analysis.session_data import SessionData
from rig.analysis.traces import Traces, TraceSource


@dataclass
class SessionResult:
    session: SessionData
    label: str
    traces: Traces
    neuron: np.ndarray  # (n,) ids across days
    shift_px: np.ndarray  # (2,) this session's frame -> the reference frame
    dff: np.ndarray  # (n, T) float32; its z-score is responses.zscore(dff)
    responses: Responsiveness
    cr: Decoder
    rs: Decoder
    network: Network
    hubs: Hubs

    @property
    def centroids_ref(self) -> np.ndarray:
        """(n, 2) ROI centroids in the reference (unshifted) frame."""
        return self.traces.centroids + self.shift_px[None, :]


@dataclass
class Analysis:
    results: list[SessionResult]
    identity: Identity
    source: TraceSource
    seed: int
    summary: dict
