"""Matching frames to the DAQ's recorded edges, and accounting for every frame.

Frame timestamps come only from edges recorded on the DAQ clock (design section 9): the frame
a device numbered ``k`` was exposed at its ``k``-th recorded edge. A frame the device dropped
leaves a gap in its numbers, so later frames still find their own edge. A missing edge or an
extra frame is detected and reported, never hidden.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class FrameAccounting:
    """Where every frame of one stream went."""

    stream: str
    frames_expected: int
    edges: int = 0
    received: int = 0
    written: int = 0
    dropped_by_device: int = 0  # gaps in the device's frame numbers
    dropped_by_queue: int = 0  # the writer queue was full
    without_edge: int = 0  # written frames with no recorded edge: timestamp NaN
    edges_without_frame: int = 0

    @property
    def dropped(self) -> int:
        return self.dropped_by_device + self.dropped_by_queue

    @property
    def complete(self) -> bool:
        return (
            self.written == self.received == self.edges == self.frames_expected
            and self.dropped == 0
            and self.without_edge == 0
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "dropped": self.dropped, "complete": self.complete}

    def problems(self) -> list[str]:
        """Human-readable discrepancies (empty when every frame is accounted for)."""
        out = []
        if self.dropped_by_device:
            out.append(f"{self.dropped_by_device} frames dropped by the device")
        if self.dropped_by_queue:
            out.append(f"{self.dropped_by_queue} frames lost: writer queue full")
        if self.received - self.dropped_by_queue != self.written:
            out.append(f"{self.received - self.dropped_by_queue - self.written} frames not written")
        if self.without_edge:
            out.append(f"{self.without_edge} frames have no recorded edge")
        if self.edges != self.frames_expected:
            out.append(f"{self.edges} edges recorded, {self.frames_expected} expected")
        return out


def frame_timestamps(
    device_indices: np.ndarray, edge_samples: np.ndarray, sample_rate_hz: float
) -> np.ndarray:
    """Seconds on the session clock for each frame (NaN where its edge is missing)."""
    idx = np.asarray(device_indices, np.int64)
    out = np.full(idx.shape, np.nan)
    ok = (idx >= 0) & (idx < len(edge_samples))
    out[ok] = np.asarray(edge_samples, np.int64)[idx[ok]] / sample_rate_hz
    return out
