"""The engine: runs a compiled session on a rig and ends it, always, in the safe state.

Preflight, configure, arm, start every output on one DAQ start, then watch: read recorded
edges, collect frames, log stimulus onsets/offsets as the DAQ records them, keep the shock
generator's heartbeat, and publish progress through psygnal signals that the CLI and GUI
follow. Python never times a stimulus: the DAQ plays the compiled buffers.

Every way out (normal end, :meth:`Engine.abort`, Ctrl-C/SIGTERM via ``abort``, a device error,
an exception in the engine) goes through the same ``finally`` that drives the DAQ outputs low and
disarms the shock generator, in that order; the cameras are stopped once the frames exposed
before that have been collected.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from array import array
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
from psygnal import EmitLoopError, Signal, SignalInstance

from rig.freezing import FreezingParams
from rig.ports import (
    CameraError,
    Daq,
    DaqError,
    DeviceError,
    Edges,
    Frame,
    FrameDisk,
    FrameSource,
    PreflightCheck,
    ShockGenerator,
)
from rig.rigfile import SafetyLimits
from rig.safety import schedule_problems
from rig.schedule import (
    CAMERA_EXPOSURE,
    FRAME_CLOCK,
    SHOCK_GATE,
    TONE_GATE,
    WHEEL,
    OutputSchedule,
    expected_frames,
)
from rig.scoring import LiveLocomotion, LiveScorer
from rig.shock_current import CurrentSequencer
from rig.store import SessionStore
from rig.timeline import Timeline

# Session time the engine advances per loop at most. A real-time loop comes round every
# MAX_WAIT_S of host time whatever this is; ahead of real time (--fast, --speed) every step
# costs a heartbeat, a camera hand-off and a journal write, and its frames are rendered and
# scored as one stack, so a longer step is a faster rehearsal (docs/architecture.md).
STEP_S = 0.25
HEARTBEAT_EVERY_S = 0.05  # host time between shock generator heartbeats
# Session time between heartbeats: one per step, so a --fast rehearsal finds a lost link within
# a step of the fault, as it finds every other fault (in real time the host-time beat above
# comes first).
HEARTBEAT_SESSION_S = STEP_S
STALL_S = 2.0  # a stream this far behind its recorded edges has stalled
DRAIN_TIMEOUT_S = 3.0

log = logging.getLogger(__name__)


class EngineState(str, Enum):
    IDLE = "idle"
    PREFLIGHT = "preflight"
    ARMED = "armed"
    RUNNING = "running"
    STOPPING = "stopping"
    FINISHED = "finished"


@dataclass
class RigDevices:
    """The devices of one rig, built from its rig file."""

    daq: Daq
    shocker: ShockGenerator
    camera: FrameSource
    imaging: FrameSource | None = None
    simulated: bool = True
    disk: FrameDisk | None = None  # where frames are written; None: the local file system

    def frame_sources(self) -> dict[str, FrameSource]:
        sources: dict[str, FrameSource] = {"video": self.camera}
        if self.imaging is not None:
            sources["imaging"] = self.imaging
        return sources

    def close(self) -> None:
        for device in (self.camera, self.imaging, self.shocker, self.daq):
            if device is not None:
                with contextlib.suppress(Exception):  # close() never raises; be sure of it
                    device.close()


@dataclass
class Progress:
    """What the CLI progress line and the GUI show during a session."""

    t_s: float
    duration_s: float
    phase: str
    trial: int  # 1-based index of the current or last started trial; 0 before the first
    n_trials: int
    next_cs_in_s: float | None
    next_shock_in_s: float | None
    shocks_delivered: int
    frames: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class SessionResult:
    status: str  # complete | aborted
    reason: str
    duration_s: float
    shocks_delivered: int
    accounting: dict[str, Any]


@dataclass
class _Block:
    """A scheduled output block being watched for its recorded onset and offset."""

    kind: str  # "cs" | "us"
    trial: int
    phase: str
    stimulus: str
    start: int
    stop: int
    onset: int | None = None
    offset: int | None = None
    closed: bool = False


class ListenerGuard(SignalInstance):
    """An engine signal whose listeners cannot break the engine.

    Listeners (the CLI's progress display, the GUI) run inside the engine's loop and inside
    its safe-state and finalise path. One that raises an ``Exception`` is logged (once per
    signal) and the session goes on: a display is never a reason to stop an experiment, nor to
    skip the safe state. One that raises ``KeyboardInterrupt`` or ``SystemExit`` (Ctrl-C
    landing in a listener, or a library that exits on a broken pipe) asks the engine to abort,
    which then ends the session the safe way, instead of unwinding through it.
    """

    def emit(self, *args: Any, check_nargs: bool = False, check_types: bool = False) -> None:
        try:
            super().emit(*args, check_nargs=check_nargs, check_types=check_types)
        except EmitLoopError as exc:
            if not getattr(self, "_warned", False):
                self._warned = True
                log.warning(
                    "a listener of the engine's %s signal failed; the session goes on: %r",
                    self.name,
                    exc.__cause__,
                )
        except (KeyboardInterrupt, SystemExit) as exc:
            engine = self.instance
            if isinstance(engine, Engine):
                engine.abort(f"interrupted: {type(exc).__name__} in a listener of {self.name}")


def _signal(*types: Any) -> Signal:
    return Signal(*types, signal_instance_class=ListenerGuard)


class Engine:
    """Runs one session. Create, connect to the signals, then call :meth:`run` (blocking)."""

    state_changed = _signal(str)
    progress = _signal(object)  # Progress
    event = _signal(dict)  # every logged event
    frame = _signal(str, object)  # (stream, image) at most ~15 per second per stream
    freezing = _signal(object)  # rig.scoring.FreezingSample, one per video frame
    finished = _signal(object)  # SessionResult

    def __init__(
        self,
        timeline: Timeline,
        schedule: OutputSchedule,
        devices: RigDevices,
        store: SessionStore,
        limits: SafetyLimits,
        freezing_params: FreezingParams | None = None,
    ):
        self.timeline = timeline
        self.schedule = schedule
        self.devices = devices
        self.store = store
        self.limits = limits
        self.state = EngineState.IDLE
        self._abort = threading.Event()
        self._abort_reason = ""
        self._fs = schedule.sample_rate_hz
        self._blocks = self._make_blocks()
        self._edge_counts: dict[str, int] = {}
        self._shocks_delivered = 0  # gate-high runs that started (recorded us_on onsets)
        self._currents = CurrentSequencer(
            schedule,
            limits.current_change_lead_s,
            devices.shocker,
            devices.daq,
            self._log,
            {t.index: t.phase for t in timeline.trials},
        )
        self._phase_logged: set[str] = set()
        self._last_preview: dict[str, float] = {}
        self.preflight_results: list[PreflightCheck] = []
        self.freezing_params = freezing_params
        self.scorer: LiveScorer | None = None
        self.wheel: LiveLocomotion | None = None
        self._exposures = array("q")  # camera exposure samples; typed: one per frame, for hours
        self._stalled: set[str] = set()
        # set in preflight; empty until then, so ending before it (a failed preflight, an early
        # abort) still reports progress and closes cleanly
        self._streams: dict[str, tuple[FrameSource, Any]] = {}

    # ----------------------------------------------------------------- control
    def abort(self, reason: str = "aborted by the user") -> None:
        """Ask the running session to end now in the safe state. Thread- and signal-safe."""
        if not self._abort.is_set():
            self._abort_reason = reason
            self._abort.set()

    @property
    def abort_requested(self) -> bool:
        return self._abort.is_set()

    def _set_state(self, state: EngineState) -> None:
        self.state = state
        self.state_changed.emit(state.value)

    # ----------------------------------------------------------------- run
    def run(self) -> SessionResult:
        """Run the session to its end or abort; always leaves the rig safe."""
        status, reason = "complete", "completed as planned"
        try:
            # An abort asked for before or during preflight must not arm the shocker or start
            # the outputs only to stop them again.
            if not self._abort.is_set():
                self._preflight_and_arm()
            if not self._abort.is_set():
                self._acquire()
            if self._abort.is_set():
                status, reason = "aborted", self._abort_reason
        except DeviceError as exc:
            status, reason = "aborted", _one_line(f"{type(exc).__name__}: {exc}")
            self._log("fault", t_s=self._now_s(), detail=reason, durable=True)
        except Exception as exc:
            status, reason = "aborted", _one_line(f"engine error: {type(exc).__name__}: {exc}")
            self._log("fault", t_s=self._now_s(), detail=reason, durable=True)
        finally:
            self._set_state(EngineState.STOPPING)
            self._safe_state()
        accounting = self._drain_and_close()
        t_end = self._now_s()
        self._emit_progress(t_end)
        self._log(
            "session_end", t_s=t_end, detail=f"{status}: {reason}", durable=True, status=status
        )
        result = SessionResult(status, reason, t_end, self._shocks_delivered, accounting)
        self._set_state(EngineState.FINISHED)
        self.finished.emit(result)
        return result

    def _preflight_and_arm(self) -> None:
        self._set_state(EngineState.PREFLIGHT)
        problems = schedule_problems(self.schedule, self.limits)
        if problems:
            raise DeviceError("refusing an unsafe schedule: " + "; ".join(problems))
        d = self.devices
        checks: list[PreflightCheck] = []
        for device in (d.daq, d.shocker, *self._frame_sources().values()):
            checks += device.preflight()
        self.preflight_results = checks
        for c in checks:
            self._log("preflight", t_s=0.0, detail=f"{c.device} {c.name}: {c.detail}", ok=c.ok)
        failed = [c for c in checks if not c.ok]
        if failed:
            raise DeviceError(
                "preflight failed: " + "; ".join(f"{c.device} {c.name}: {c.detail}" for c in failed)
            )
        d.daq.configure(self.schedule)
        self._currents.arm()
        self._streams = {}
        for name, source in self._frame_sources().items():
            n = expected_frames(self.schedule, name)
            source.start(n)
            if source.delivers_frames:
                self._streams[name] = (source, self.store.add_stream(name, source.info(), n))
        params = self.freezing_params
        if "video" in self._streams and params is not None and params.measure == "motion":
            info = self._streams["video"][0].info()
            self.scorer = LiveScorer(params, info.width, info.height, info.rate_hz, self.timeline)
        if params is not None and params.measure == "locomotion":
            self.wheel = LiveLocomotion(params, self._fs, self.schedule.duration_s)
        if self.schedule.shocks:
            # Armed last, just before the start: the device's watchdog runs from here, so no
            # slow set-up step may sit between arming and the first heartbeat.
            d.shocker.arm()
            self._log("shocker_armed", t_s=0.0, durable=True)
        self._set_state(EngineState.ARMED)

    def _acquire(self) -> float:
        d = self.devices
        duration = self.schedule.duration_s
        self._log("session_start", t_s=0.0, durable=True)
        d.daq.start()
        self._set_state(EngineState.RUNNING)
        t_s = 0.0
        last_beat_host, last_beat_session = 0.0, 0.0
        half_sample = 0.5 / self._fs  # t_s is a whole number of samples: compare to within one
        while t_s < duration and not self._abort.is_set():
            # The DAQ returns within HEARTBEAT_EVERY_S of host time whatever ``until`` is (see
            # Daq.wait), so the host-time beats keep running in a real-time session. A step
            # also ends at the next shock-current set or deadline, so each is met on time.
            until = min(t_s + STEP_S, duration)
            checkpoint = self._currents.next_checkpoint(round(t_s * self._fs))
            if checkpoint is not None:
                until = min(until, checkpoint / self._fs)
            t_s = d.daq.wait(until)
            self._t_s = t_s
            self._currents.step(round(t_s * self._fs))
            # Beat often in host time (the device's watchdog) and in session time (so a
            # faster-than-real-time rehearsal notices a lost link as a real run would).
            now = time.monotonic()
            if (
                now - last_beat_host >= HEARTBEAT_EVERY_S
                or t_s - last_beat_session >= HEARTBEAT_SESSION_S - half_sample
            ):
                d.shocker.heartbeat()
                last_beat_host, last_beat_session = now, t_s
            self._take_edges(d.daq.read_edges(), t_s)
            self._take_frames()
            self._check_streams(t_s)
            self._emit_progress(t_s)
        return t_s

    def _frame_sources(self) -> dict[str, FrameSource]:
        """The frame sources this session takes frames from: the microscope's only when the
        protocol records imaging (behaviour only on an imaging rig: its frame clock is still
        recorded, as every input the DAQ records, but no frames are expected, none are taken,
        and a microscope someone runs by hand is not a stalled stream)."""
        sources = self.devices.frame_sources()
        if self.schedule.imaging_rate_hz is None:
            sources.pop("imaging", None)
        return sources

    # ----------------------------------------------------------------- watching
    def _make_blocks(self) -> list[_Block]:
        trials = {t.index: t for t in self.timeline.trials}
        blocks = []
        for i, s in enumerate(self.schedule.sounds):
            trial = self.timeline.trials[i]
            blocks.append(
                _Block("cs", trial.index, trial.phase, s.stimulus, s.start_sample, s.stop_sample)
            )
        for p in self.schedule.shocks:
            trial = trials[p.trial]
            blocks.append(
                _Block("us", p.trial, trial.phase, p.stimulus, p.start_sample, p.stop_sample)
            )
        return blocks

    def _take_edges(self, edges: dict[str, Edges], t_s: float) -> None:
        for line, e in edges.items():
            self.store.append_edges(line, e)
            if line == CAMERA_EXPOSURE:
                self._exposures.extend(e.samples[e.rising].tolist())
            self._edge_counts[line] = self._edge_counts.get(line, 0) + int(e.rising.sum())
        if self.wheel is not None:
            wheel = edges.get(WHEEL)
            samples = wheel.samples[wheel.rising] if wheel is not None else np.empty(0, np.int64)
            for sample in self.wheel.push(samples, round(t_s * self._fs)):
                self.freezing.emit(sample)
        for kind, line in (("cs", TONE_GATE), ("us", SHOCK_GATE)):
            e = edges.get(line)
            if e is not None and len(e.samples):
                self._match_edges(kind, e)
        self._log_phases(t_s)
        position = round(t_s * self._fs)
        for b in self._blocks:
            if not b.closed and b.stop <= position:
                self._close_block(b)

    def _match_edges(self, kind: str, e: Edges) -> None:
        blocks = [b for b in self._blocks if b.kind == kind and not b.closed]
        for sample, rising in zip(e.samples.tolist(), e.rising.tolist(), strict=False):
            for b in blocks:
                if rising and b.start <= sample < b.stop:
                    if b.onset is None:
                        b.onset = sample
                        self._log_block(b, "on", sample)
                        if b.kind == "us":  # delivered: a gate-high run that started
                            self._shocks_delivered += 1
                    break
                if not rising and b.start < sample <= b.stop:
                    b.offset = sample
                    break

    def _close_block(self, b: _Block) -> None:
        b.closed = True
        if b.onset is None:
            self._log(
                "fault",
                t_s=b.start / self._fs,
                detail=f"no recorded onset for the {b.kind.upper()} of trial {b.trial + 1}",
                durable=True,
            )
            return
        self._log_block(b, "off", b.offset if b.offset is not None else b.stop)
        self.store.sync_journal()  # events durable at every stimulus boundary

    def _log_block(self, b: _Block, edge: str, sample: int) -> None:
        scheduled = b.start if edge == "on" else b.stop
        self._log(
            f"{b.kind}_{edge}",
            t_s=sample / self._fs,
            scheduled_s=scheduled / self._fs,
            trial=b.trial,
            phase=b.phase,
            stimulus=b.stimulus,
            durable=edge == "off",
        )

    def _log_phases(self, t_s: float) -> None:
        for span in self.timeline.phases:
            if span.name not in self._phase_logged and span.start_s <= t_s:
                self._phase_logged.add(span.name)
                self._log(
                    "phase_start", t_s=span.start_s, scheduled_s=span.start_s, phase=span.name
                )

    def _take_frames(self) -> None:
        for name, (source, writer) in self._streams.items():
            frames = source.read_frames()
            for frame in frames:
                writer.append(frame)
            if frames and name == "video" and self.scorer is not None:
                self._score(frames)
            if frames:
                self._preview(name, frames[-1].image)
            for fault in _drain_faults(source):
                self._log("fault", t_s=self._now_s(), detail=f"{name}: {fault}")

    def _score(self, frames: list[Frame]) -> None:
        assert self.scorer is not None
        times = []
        for frame in frames:
            k = frame.index
            if k < len(self._exposures):
                times.append(self._exposures[k] / self._fs)
            else:  # edge not read yet: its nominal time, for the live display only
                times.append(k / self.schedule.camera_rate_hz)
        images = np.stack([frame.image for frame in frames])
        for sample in self.scorer.push_many([f.index for f in frames], images, times):
            self.freezing.emit(sample)

    def _preview(self, stream: str, image: np.ndarray) -> None:
        now = time.monotonic()
        if now - self._last_preview.get(stream, 0.0) >= 1 / 15:
            self._last_preview[stream] = now
            self.frame.emit(stream, image)

    def _check_streams(self, t_s: float) -> None:
        for name, (_, writer) in self._streams.items():
            line = CAMERA_EXPOSURE if name == "video" else FRAME_CLOCK
            behind = self._edge_counts.get(line, 0) - writer.accounting.received
            if behind > max(5, writer.info.rate_hz * STALL_S):  # the info the stream began with
                self._stalled.add(name)
                raise CameraError(f"{name} stalled: {behind} frames behind its recorded edges")
            if writer.error is not None:
                raise DeviceError(f"writing {name} failed: {writer.error}")
        if self.schedule.imaging_rate_hz and t_s > STALL_S + 1:
            expected = t_s * self.schedule.imaging_rate_hz
            if (
                self._edge_counts.get(FRAME_CLOCK, 0)
                < expected - self.schedule.imaging_rate_hz * STALL_S
            ):
                raise DaqError("the two-photon frame clock stopped")

    def _emit_progress(self, t_s: float) -> None:
        trials = self.timeline.trials
        started = [t for t in trials if t.cs_onset_s <= t_s]
        upcoming = [t for t in trials if t.cs_onset_s > t_s]
        shocks = [t for t in trials if t.us_onset_s is not None and t.us_onset_s > t_s]
        span = self.timeline.phase_at(t_s)
        frames = {
            name: {
                "received": w.accounting.received,
                "written": w.accounting.written,
                "dropped": w.accounting.dropped,
            }
            for name, (_, w) in self._streams.items()
        }
        self.progress.emit(
            Progress(
                t_s=t_s,
                duration_s=self.timeline.duration_s,
                phase=span.name if span else (self.timeline.phases[-1].name if t_s else ""),
                trial=len(started),
                n_trials=len(trials),
                next_cs_in_s=upcoming[0].cs_onset_s - t_s if upcoming else None,
                next_shock_in_s=shocks[0].us_onset_s - t_s if shocks else None,  # type: ignore[operator]
                shocks_delivered=self._shocks_delivered,
                frames=frames,
            )
        )

    # ----------------------------------------------------------------- ending
    def _safe_state(self) -> None:
        """Outputs low, then the shocker disarmed: each step runs even if the one before fails."""
        d = self.devices
        try:
            d.daq.safe_state()
        except Exception as exc:  # "never raises"; if it does, still disarm
            self._log("fault", t_s=self._now_s(), detail=f"DAQ safe state failed: {exc}")
        try:
            d.shocker.disarm()
            self._log("shocker_disarmed", t_s=self._now_s(), durable=True)
        except Exception as exc:
            self._log("fault", t_s=self._now_s(), detail=f"disarm failed: {exc}", durable=True)

    def _stop_sources(self) -> None:
        for source in self._frame_sources().values():
            with contextlib.suppress(Exception):  # stop() never raises; be sure of it
                source.stop()

    def _drain_and_close(self) -> dict[str, Any]:
        # The cameras are stopped only after the drain: frames exposed before the safe state
        # are still collected (a source may drop what it has not delivered when stopped).
        try:
            self._drain()
        finally:
            self._stop_sources()
        accounting = {}
        for name, acc in self.store.close_writers().items():
            line = CAMERA_EXPOSURE if name == "video" else FRAME_CLOCK
            acc.edges = self._edge_counts.get(line, 0)
            accounting[name] = acc
        return accounting

    def _drain(self) -> None:
        streams = self._streams
        try:
            self._take_edges(self.devices.daq.read_edges(), self._now_s())
        except Exception as exc:
            self._log("fault", t_s=self._now_s(), detail=f"reading final edges failed: {exc}")
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        for name, (source, writer) in streams.items():
            line = CAMERA_EXPOSURE if name == "video" else FRAME_CLOCK
            exposed = self._edge_counts.get(line, 0)  # a stalled stream will not catch up
            while name not in self._stalled and writer.accounting.received < exposed:
                try:
                    frames = source.read_frames()
                except Exception:
                    break
                for frame in frames:
                    writer.append(frame)
                for fault in _drain_faults(source):
                    self._log("fault", t_s=self._now_s(), detail=f"{name}: {fault}")
                if not frames:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.01)

    # ----------------------------------------------------------------- log
    def _now_s(self) -> float:
        return getattr(self, "_t_s", 0.0)

    def _log(self, kind: str, t_s: float, durable: bool = False, **fields: Any) -> None:
        event = {
            "kind": kind,
            "t_s": round(t_s, 6),
            "scheduled_s": fields.pop("scheduled_s", None),
            "trial": fields.pop("trial", None),
            "phase": fields.pop("phase", None),
            "stimulus": fields.pop("stimulus", None),
            "detail": fields.pop("detail", ""),
            **fields,
        }
        self.store.log_event(event, durable=durable)
        self.event.emit(event)


def _one_line(text: str) -> str:
    """A reason fit for one line of output: whitespace runs (newlines too) become one space."""
    return " ".join(text.split())


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
