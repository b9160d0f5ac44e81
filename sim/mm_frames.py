"""The simulated behaviour camera through the real Micro-Manager driver.

:func:`make_sim_mm_camera` builds :class:`drivers.mm_camera.MMCamera` on a ``UniMMCore`` that
holds a :class:`sim.mm_camera.SimCameraDevice` (see :func:`sim.mm_camera.make_sim_camera`) and
wires it to the simulated DAQ: every time the DAQ's clock advances, the exposures the camera's
trigger pulses started since the last advance (``SimDaq.frame_starts("video")``, from the
trigger samples the DAQ played) reach the device as ``device.trigger(n)``; before the driver
reads frames, ``device.flush()`` waits until they are frames in the core's circular buffer. So
a ``--fast`` run is deterministic (the frames of a step are always there when the engine reads
them), and the camera's acquisition thread exposes them while the engine does the rest of its
step (e.g. waits for the shock generator's heartbeat).

Faults from the rig file's ``faults:`` list:

* ``camera_drop``: the ``count`` frames from the first trigger at or after ``at_s`` are never
  delivered (``device.drop``); the driver sees the gap in the frame numbers, counts the frames
  as dropped and queues a fault, as with a real camera's hardware frame counter;
* ``camera_stall``: trigger pulses from ``at_s`` on never reach the camera, so no frame arrives
  after it and the engine's stall check ends the session.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from drivers.mm_camera import MMCamera
from rig.files.rigfile import Fault
from rig.ports import Frame
from sim.daq import SimDaq
from sim.mm_camera import SimCameraDevice, make_sim_camera

STREAM = "video"
MAX_EXPOSURE_MS = 10.0


class _TriggerRelay:
    """Passes the simulated DAQ's camera trigger pulses to the device as its clock moves."""

    def __init__(self, daq: SimDaq, device: SimCameraDevice, faults: list[Fault]):
        self.daq = daq
        self.device = device
        self.faults = [f for f in faults if f.kind in ("camera_drop", "camera_stall")]
        self.sent = 0  # trigger pulses played so far (passed on or not)
        self._configured = 0
        self._stall_at: int | None = None

    def __call__(self, position: int) -> None:
        triggers = self.daq.frame_starts(STREAM)
        if triggers is None:
            return
        if self.daq.configured != self._configured:  # a new schedule: trigger 0 again
            self._arm()
        limit = self.daq.acquired
        played = int(np.searchsorted(triggers, limit, side="right"))
        if self._stall_at is not None:
            played = min(played, self._stall_at)
        if played > self.sent:
            self.device.trigger(played - self.sent)
            self.sent = played

    def _arm(self) -> None:
        self._configured, self.sent, self._stall_at = self.daq.configured, 0, None
        fs = self.daq.sample_rate_hz
        # the frames are counted from the exposures the devices will make (a fault names a
        # frame by its session time)
        triggers = self.daq.predicted_frame_starts(STREAM)
        for f in self.faults:
            first = int(np.searchsorted(triggers, round(f.at_s * fs)))
            if f.kind == "camera_drop":
                self.device.drop(range(first, first + f.count))
            elif self._stall_at is None or first < self._stall_at:
                self._stall_at = first


class SimMMCamera(MMCamera):
    """The real driver, reading only once the triggers played so far are frames."""

    device: SimCameraDevice

    def read_frames(self) -> list[Frame]:
        self.device.flush()
        return super().read_frames()


def make_sim_mm_camera(
    daq: SimDaq,
    render: Callable[[int], np.ndarray],
    width: int,
    height: int,
    rate_hz: float = 30.0,
    faults: list[Fault] | None = None,
) -> MMCamera:
    """The simulated rig's behaviour camera: ``MMCamera`` on ``UniMMCore``, triggered by ``daq``.

    ``render(k)`` gives frame ``k`` (a ``(height, width)`` uint8 array); ``rate_hz`` is the
    trigger rate the driver reports and checks the exposure against (the protocol's video fps).
    The camera's exposure is 10 ms, or half the trigger period at rates above 50 Hz.
    """
    exposure_ms = min(MAX_EXPOSURE_MS, 500.0 / rate_hz)
    blank = np.zeros((height, width), np.uint8)

    def frame(k: int) -> np.ndarray:
        # Pre-flight snaps a frame before the DAQ is configured, when there is no world yet.
        return render(k) if daq.schedule is not None else blank

    camera, device = make_sim_camera(
        frame,
        width,
        height,
        "uint8",
        rate_hz=rate_hz,
        exposure_ms=exposure_ms,
        camera_type=SimMMCamera,
    )
    camera.device = device
    daq.on_advance(_TriggerRelay(daq, device, list(faults or [])))
    return camera
