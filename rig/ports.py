"""The ports: the interfaces the engine drives, one per device family.

Real hardware (``drivers/``) and simulated hardware (``sim/``) implement these classes; the
engine (:mod:`rig.run.engine`) only ever talks to them. A driver is found by the name a rig file
gives it, through the ``rig.drivers`` entry-point group (see :mod:`rig.devices`).

Errors: every device signals failure by raising a subclass of :class:`DeviceError`. The engine
treats any ``DeviceError`` during a session as fatal: it ends the session in the safe state
(all outputs low, tone off, shocker disarmed), logs the error as an event and keeps the data.
Methods documented as "never raises" must swallow and log their own failures, because they run
on the way out of a session, when there is nowhere left to report to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # the ports are the bottom layer: nothing of rig at run time
    from rig.program.schedule import OutputSchedule

MAX_WAIT_S = 0.05  # Daq.wait returns within this much host time: the engine beats the shocker


class DeviceError(Exception):
    """A device failed. The session ends in the safe state; data written so far is kept."""


class DeviceBusy(DeviceError):
    """The rig's devices are in use by a session or an output test (nothing was touched)."""


class DaqError(DeviceError):
    """The DAQ failed: a driver error, a buffer underflow, a lost device."""


class DaqNotAvailable(DaqError):
    """No DAQ driver or device on this machine (e.g. NI-DAQmx is not installed)."""


class ShockerError(DeviceError):
    """The shock generator failed: no reply, a bad reply, a refused command, a disconnect."""


class CameraError(DeviceError):
    """A camera or imaging source failed or stalled."""


@dataclass(frozen=True)
class PreflightCheck:
    """One line of a pre-flight check: what was checked, whether it passed, and the detail."""

    device: str
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Edges:
    """Transitions recorded on one input line, as sample indices on the DAQ clock."""

    samples: np.ndarray  # int64, ascending
    rising: np.ndarray  # bool, same length: True for a low->high transition

    @classmethod
    def empty(cls) -> Edges:
        return cls(np.empty(0, np.int64), np.empty(0, bool))


@dataclass(frozen=True)
class Frame:
    """One frame from a camera or imaging source.

    ``index`` is the device's own frame number (0-based, counting every exposure it saw), so a
    gap in ``index`` is a frame the device dropped.
    """

    index: int
    image: np.ndarray


@dataclass(frozen=True)
class StreamInfo:
    """Shape and rate of a frame stream, known before the session starts."""

    width: int
    height: int
    dtype: str
    rate_hz: float
    extra: dict = field(default_factory=dict)


@runtime_checkable
class Daq(Protocol):
    """The session clock: plays every output and records every input on one sample clock."""

    simulated: bool
    sample_rate_hz: float

    def preflight(self) -> list[PreflightCheck]:
        """Check the device answers and the lines exist. Never raises; failures are checks."""

    def configure(self, schedule: OutputSchedule) -> None:
        """Create the output and input tasks for ``schedule``; outputs stay low. May raise
        :class:`DaqError` (or :class:`DaqNotAvailable`)."""

    def release(self, until_sample: int | None) -> None:
        """Let the outputs be written up to ``until_sample`` (``None``: to the end).

        After :meth:`configure`, a driver writes its output buffers only up to the onset of the
        schedule's first shock; the engine moves this fence on each time it has confirmed the
        next shock's current. A driver builds on
        :class:`rig.program.output_stream.OutputStream`, which keeps the fence and verifies every
        chunk. Running dry at the fence is an underflow
        (:class:`DaqError`) that leaves the shock gate low.
        """

    def start(self) -> None:
        """Start every output and input on one start trigger: sample 0 is session time 0."""

    def wait(self, until_s: float) -> float:
        """Block until the DAQ has acquired up to ``until_s`` or a short while has passed
        (at most :data:`MAX_WAIT_S` of host time, so the engine's heartbeats keep running).

        Returns the session time acquired so far (always ``<= until_s`` for a simulated
        DAQ, whose clock only moves here). Raises :class:`DaqError` on underflow or error.
        """

    def read_edges(self) -> dict[str, Edges]:
        """Edges recorded since the last call, keyed by line name (see ``rig.program.schedule``)."""

    def safe_state(self) -> None:
        """Stop outputs and drive every output line low, tone off. Idempotent; never raises."""

    def close(self) -> None:
        """Release the device. Calls :meth:`safe_state` first. Never raises."""


@runtime_checkable
class ShockGenerator(Protocol):
    """The shock generator. It sets the current; the DAQ's shock gate sets the timing."""

    simulated: bool

    def preflight(self) -> list[PreflightCheck]:
        """Identity and current read-back. Never raises; failures are checks."""

    def identify(self) -> str:
        """The device's identity string. Raises :class:`ShockerError`."""

    def set_current(self, current_ma: float) -> float:
        """Set the shock current and return the device's read-back in mA. Raises
        :class:`ShockerError` if the device refuses or the read-back differs."""

    def arm(self) -> None:
        """Enable the output stage (the gate still decides when current flows)."""

    def disarm(self) -> None:
        """Disable the output stage. Raises :class:`ShockerError` if not confirmed."""

    def heartbeat(self) -> None:
        """Prove the link is alive, within 100 ms. Raises :class:`ShockerError` otherwise."""

    def close(self) -> None:
        """Disarm (best effort) and release the port. Never raises."""


@runtime_checkable
class FrameSource(Protocol):
    """A camera or imaging source whose exposures are recorded as edges on the DAQ clock."""

    simulated: bool
    delivers_frames: bool  # False for a frame-clock-only microscope (frames stay in its software)

    def preflight(self) -> list[PreflightCheck]:
        """Check the device answers. Never raises; failures are checks."""

    def info(self) -> StreamInfo:
        """Frame shape, dtype and rate."""

    def start(self, expected_frames: int) -> None:
        """Arm a hardware-triggered acquisition of up to ``expected_frames`` frames."""

    def read_frames(self) -> list[Frame]:
        """Frames received since the last call, in order. Non-blocking. Raises
        :class:`CameraError` on a device failure."""

    def stop(self) -> None:
        """Stop acquiring. Idempotent; never raises."""

    def close(self) -> None:
        """Release the device. Never raises."""


# The behaviour camera and the imaging source share one port.
Camera = FrameSource
ImagingSource = FrameSource


@runtime_checkable
class FrameDisk(Protocol):
    """Where the session store writes frame data: whole files (one Zarr shard each).

    The plain implementation is :class:`rig.data.disk.LocalDisk`; a simulated rig may supply one
    that injects disk faults (see :class:`FrameDiskProvider`).
    """

    def write(self, path: Path, data: bytes) -> None:
        """Replace ``path`` with ``data`` atomically (a reader sees all of it or none of it).
        Raises :class:`OSError` when the disk fails (e.g. ``ENOSPC``, disk full)."""


@runtime_checkable
class FrameDiskProvider(Protocol):
    """Implemented by a device that decides where frames are written (a simulated rig)."""

    def frame_disk(self) -> FrameDisk:
        """The disk the session's frame writers write through."""


@runtime_checkable
class TruthSource(Protocol):
    """Implemented by simulated devices: the ground truth saved with a simulated session."""

    def truth(self) -> dict[str, np.ndarray]:
        """Arrays keyed by name (e.g. ``freezing`` per video frame)."""
