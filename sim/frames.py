"""Simulated camera and imaging source: frames rendered as the simulated devices expose them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from rig.files.rigfile import Fault
from rig.ports import Frame, PreflightCheck, StreamInfo
from sim.daq import SimDaq

RENDER_STACK_MAX = 16  # frames rendered in one call at most: bounds the temporary arrays


class SimFrameSource:
    """A frame source whose frame ``k`` is the ``k``-th frame its device exposed
    (:meth:`sim.daq.SimDaq.frame_starts`: the camera's exposures after its trigger pulses, the
    microscope's frames on its own clock).

    Implements ``rig.ports.FrameSource``. Faults: ``camera_drop`` (``count`` frames from
    ``at_s`` never arrive), ``camera_stall`` (no frame arrives after ``at_s``).
    ``render(k)`` draws frame ``k``; ``render_many(ks)``, if given, draws the frames of a read
    at once as an ``(n, height, width)`` array, identical to ``render`` frame by frame.
    """

    simulated = True

    def __init__(
        self,
        daq: SimDaq,
        stream: str,
        width: int,
        height: int,
        dtype: str,
        render: Callable[[int], np.ndarray],
        delivers_frames: bool = True,
        faults: list[Fault] | None = None,
        render_many: Callable[[Sequence[int]], np.ndarray] | None = None,
    ):
        self.daq = daq
        self.stream = stream
        self.width, self.height, self.dtype = width, height, dtype
        self.render = render
        self.render_many = render_many
        self.delivers_frames = delivers_frames
        self.faults: list[str] = []
        self._faults = [f for f in faults or [] if f.kind in ("camera_drop", "camera_stall")]
        self._next = 0
        self._running = False

    def preflight(self) -> list[PreflightCheck]:
        return [
            PreflightCheck(
                self.stream, "device", True, f"simulated {self.width}x{self.height} {self.dtype}"
            )
        ]

    def info(self) -> StreamInfo:
        sched = self.daq.schedule
        rate = 30.0
        if sched is not None:
            rate = sched.camera_rate_hz if self.stream == "video" else sched.imaging_rate_hz or 30.0
        return StreamInfo(self.width, self.height, self.dtype, rate)

    def start(self, expected_frames: int) -> None:
        self._next = 0
        self._running = True

    def read_frames(self) -> list[Frame]:
        if not self._running or not self.delivers_frames:
            return []
        triggers = self.daq.frame_starts(self.stream)
        if triggers is None:
            return []
        limit = self.daq.acquired
        available = int(np.searchsorted(triggers, limit, side="right"))
        fs = self.daq.sample_rate_hz
        exposed = [
            k
            for k in range(self._next, available)
            if not self._dropped(k, triggers[k] / fs, triggers, fs)
        ]
        if self.render_many is not None:  # in stacks: a host that fell behind reads many
            images = [
                image
                for i in range(0, len(exposed), RENDER_STACK_MAX)
                for image in self.render_many(exposed[i : i + RENDER_STACK_MAX])
            ]
        else:
            images = [self.render(k) for k in exposed]
        frames = [Frame(k, image) for k, image in zip(exposed, images, strict=True)]
        self._next = max(self._next, available)
        return frames

    def _dropped(self, k: int, t: float, triggers: np.ndarray, fs: float) -> bool:
        for f in self._faults:
            if f.kind == "camera_stall" and t >= f.at_s:
                return True
            if f.kind == "camera_drop":
                first = int(np.searchsorted(triggers, round(f.at_s * fs)))
                if first <= k < first + f.count:
                    return True
        return False

    def stop(self) -> None:
        self._running = False

    def close(self) -> None:
        self._running = False
