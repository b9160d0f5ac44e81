"""The hardware engine: a session's devices driven through the ports, step by step.

:class:`RigEngine` is the one implementation of :class:`SessionEngine` (the Protocol the
runner drives, as pymmcore-plus's runner drives its ``PMDAEngine``). It preflights the
devices, configures the DAQ with the output program, sets and confirms each shock's current
(:class:`rig.run.shock_current.CurrentSequencer`), arms the shock generator, starts every output
on one DAQ start, and then, step by step, lets the DAQ run, keeps the shock generator's
heartbeat and collects what was recorded (edges) and exposed (frames). It knows nothing of
files, scoring or displays. Python never times a stimulus: the DAQ plays the buffers.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rig.files.rigfile import SafetyLimits
from rig.ports import (
    Daq,
    Edges,
    Frame,
    FrameDisk,
    FrameSource,
    PreflightCheck,
    ShockGenerator,
    StreamInfo,
)
from rig.program.schedule import IMAGING, VIDEO, OutputSchedule, expected_frames
from rig.run.shock_current import CurrentSequencer

# Session time a step advances at most. A real-time loop comes round every MAX_WAIT_S of host
# time whatever this is; ahead of real time (--fast, --speed) every step costs a heartbeat, a
# camera hand-off and a journal write, and its frames are rendered and scored as one stack, so
# a longer step is a faster rehearsal (docs/architecture.md).
STEP_S = 0.25
HEARTBEAT_EVERY_S = 0.05  # host time between shock generator heartbeats
# Session time between heartbeats: one per step, so a --fast rehearsal finds a lost link within
# a step of the fault, as it finds every other fault (in real time the host-time beat above
# comes first).
HEARTBEAT_SESSION_S = STEP_S
DRAIN_TIMEOUT_S = 3.0  # host time to wait for frames exposed before the stop


@dataclass
class RigDevices:
    """The devices of one rig, built from its rig file."""

    daq: Daq
    shocker: ShockGenerator
    camera: FrameSource | None  # None only in a self-test whose camera failed its checks
    imaging: FrameSource | None = None
    simulated: bool = True
    disk: FrameDisk | None = None  # where frames are written; None: the local file system

    def frame_sources(self) -> dict[str, FrameSource]:
        named = {VIDEO: self.camera, IMAGING: self.imaging}
        return {name: source for name, source in named.items() if source is not None}

    def close(self) -> None:
        for device in (self.camera, self.imaging, self.shocker, self.daq):
            if device is not None:
                with contextlib.suppress(Exception):  # close() never raises; be sure of it
                    device.close()


@dataclass(frozen=True)
class StreamPlan:
    """A frame stream the session records: its shape and rate, and the frames expected."""

    info: StreamInfo
    expected: int


@dataclass
class Step:
    """What the hardware did in one step: the session time reached, the edges recorded and
    the frames received since the step before, and what the frame sources reported."""

    t_s: float
    edges: dict[str, Edges] = field(default_factory=dict)
    frames: dict[str, list[Frame]] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)


class SessionEngine(Protocol):
    """The hardware side of a session, as the runner drives it (in this order)."""

    def preflight(self) -> list[PreflightCheck]:
        """Every device's checks. Never raises."""

    def setup(self, log: Callable[..., Any]) -> dict[str, StreamPlan]:
        """Configure the outputs (low), confirm the first shock's current, start the frame
        sources; the streams whose frames the session records. ``log(kind, t_s, durable=...,
        **fields)`` records the engine's events from here on. Raises ``DeviceError``."""

    def arm(self) -> None:
        """Arm the shock generator (only if the program has shocks), just before the start."""

    def start(self) -> None:
        """Start every output on one trigger: session time 0."""

    def step(self, until_s: float) -> Step:
        """Let the session run up to ``until_s`` (or a short while in host time) and return
        what happened. Raises ``DeviceError``."""

    def safe_state(self, log: Callable[..., Any]) -> None:
        """Outputs low, then the shock generator disarmed. Never raises; logs failures."""

    def final_edges(self, log: Callable[..., Any]) -> dict[str, Edges]:
        """After the safe state: the edges recorded up to the stop. Never raises; logs."""

    def drain(self, wanted: dict[str, int]) -> Step:
        """After the safe state: frames of each stream until it has delivered ``wanted``
        more (those it exposed before the stop) or a timeout passed. Never raises."""

    def stop(self) -> None:
        """Stop the frame sources. Never raises."""


class RigEngine:
    """A session's devices (:class:`RigDevices`) driven through the ports."""

    def __init__(
        self,
        schedule: OutputSchedule,
        devices: RigDevices,
        limits: SafetyLimits,
        phases: dict[int, str] | None = None,
    ) -> None:
        """``phases`` names the phase of each trial index, for the shock-current events."""
        self.schedule = schedule
        self.devices = devices
        self.limits = limits
        self.phases = phases
        self.fs = schedule.sample_rate_hz
        self.currents: CurrentSequencer | None = None
        self.sources: dict[str, FrameSource] = {}
        self.t_s = 0.0
        self._beat_host = 0.0
        self._beat_session = 0.0

    def frame_sources(self) -> dict[str, FrameSource]:
        """The frame sources this session takes frames from: the microscope's only when the
        protocol records imaging (behaviour only on an imaging rig: its frame clock is still
        recorded, as every input the DAQ records, but no frames are expected, none are taken,
        and a microscope someone runs by hand is not a stalled stream)."""
        sources = self.devices.frame_sources()
        if self.schedule.imaging_rate_hz is None:
            sources.pop(IMAGING, None)
        return sources

    def preflight(self) -> list[PreflightCheck]:
        d = self.devices
        checks: list[PreflightCheck] = []
        for device in (d.daq, d.shocker, *self.frame_sources().values()):
            checks += device.preflight()
        return checks

    def setup(self, log: Callable[..., Any]) -> dict[str, StreamPlan]:
        self.devices.daq.configure(self.schedule)
        self.currents = CurrentSequencer(
            self.schedule,
            self.limits.current_change_lead_s,
            self.devices.shocker,
            self.devices.daq,
            log,
            self.phases,
        )
        self.currents.arm()
        streams = {}
        for name, source in self.frame_sources().items():
            n = expected_frames(self.schedule, name)
            source.start(n)
            self.sources[name] = source
            if source.delivers_frames:
                streams[name] = StreamPlan(source.info(), n)
        return streams

    def arm(self) -> None:
        if self.schedule.shocks:
            # Armed last, just before the start: the device's watchdog runs from here, so no
            # slow set-up step may sit between arming and the first heartbeat.
            self.devices.shocker.arm()

    def start(self) -> None:
        self.devices.daq.start()

    def step(self, until_s: float) -> Step:
        daq = self.devices.daq
        assert self.currents is not None, "step() before setup()"
        position = round(self.t_s * self.fs)
        checkpoint = self.currents.next_checkpoint(position)
        if checkpoint is not None:  # a current set or a deadline is met on its sample
            until_s = min(until_s, checkpoint / self.fs)
        # The DAQ returns within HEARTBEAT_EVERY_S of host time whatever ``until`` is (see
        # Daq.wait), so the host-time beats keep running in a real-time session.
        self.t_s = daq.wait(until_s)
        self.currents.step(round(self.t_s * self.fs))
        self._heartbeat()
        return Step(self.t_s, daq.read_edges(), self._read_frames(), self._faults())

    def _heartbeat(self) -> None:
        """Beat often in host time (the device's watchdog) and in session time (so a
        faster-than-real-time rehearsal notices a lost link as a real run would)."""
        now = time.monotonic()
        half_sample = 0.5 / self.fs  # t_s is a whole number of samples: compare within one
        if (
            now - self._beat_host >= HEARTBEAT_EVERY_S
            or self.t_s - self._beat_session >= HEARTBEAT_SESSION_S - half_sample
        ):
            self.devices.shocker.heartbeat()
            self._beat_host, self._beat_session = now, self.t_s

    def _read_frames(self) -> dict[str, list[Frame]]:
        return {
            name: source.read_frames()
            for name, source in self.sources.items()
            if source.delivers_frames
        }

    def _faults(self) -> list[str]:
        faults = []
        for name, source in self.sources.items():
            faults += [f"{name}: {fault}" for fault in _drain_faults(source)]
        return faults

    def safe_state(self, log: Callable[..., Any]) -> None:
        """Outputs low, then the shocker disarmed: each step runs even if the one before fails."""
        d = self.devices
        try:
            d.daq.safe_state()
        except Exception as exc:  # "never raises"; if it does, still disarm
            log("fault", t_s=self.t_s, detail=f"DAQ safe state failed: {exc}")
        try:
            d.shocker.disarm()
            log("shocker_disarmed", t_s=self.t_s, durable=True)
        except Exception as exc:
            log("fault", t_s=self.t_s, detail=f"disarm failed: {exc}", durable=True)

    def final_edges(self, log: Callable[..., Any]) -> dict[str, Edges]:
        try:
            return self.devices.daq.read_edges()
        except Exception as exc:
            log("fault", t_s=self.t_s, detail=f"reading final edges failed: {exc}")
            return {}

    def drain(self, wanted: dict[str, int]) -> Step:
        # The cameras are stopped only after this: frames exposed before the safe state are
        # still collected (a source may drop what it has not delivered when stopped).
        last = Step(self.t_s)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        for name, n in wanted.items():
            source, got = self.sources[name], []
            while len(got) < n:
                try:
                    frames = source.read_frames()
                except Exception:
                    break
                got += frames
                last.faults += [f"{name}: {fault}" for fault in _drain_faults(source)]
                if not frames:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.01)
            last.frames[name] = got
        return last

    def stop(self) -> None:
        for source in self.devices.frame_sources().values():
            with contextlib.suppress(Exception):  # stop() never raises; be sure of it
                source.stop()


def _drain_faults(source: Any) -> list[str]:
    """Faults a frame source reports (e.g. frame-number gaps): through its ``drain_faults()``
    (``MMCamera``: ``(frame_index, message)`` tuples), else from a ``faults`` list it keeps."""
    drain = getattr(source, "drain_faults", None)
    if callable(drain):
        faults = list(drain())
    else:
        faults = list(getattr(source, "faults", None) or [])
        if faults:
            source.faults.clear()
    return [f[1] if isinstance(f, tuple) and len(f) == 2 else str(f) for f in faults]
