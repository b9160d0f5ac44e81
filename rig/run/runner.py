"""The runner: one session's loop, its state, its abort and its signals.

:class:`Runner` owns the session from preflight to the last event, as pymmcore-plus's runner
owns an acquisition: the hardware is an engine behind a Protocol
(:class:`rig.run.engine.SessionEngine`), what is recorded goes to a recorder (the session
store), and live scoring and the preview are sinks. Every way out (the program's end, an
abort, a device error, an exception anywhere in the loop) goes through the same ``finally``
that has the engine drive every output low and disarm the shock generator; the frames exposed
before that are still collected, then the frame sources are stopped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from rig.data.sync import FrameAccounting
from rig.files.inputfile import error_line
from rig.files.rigfile import SafetyLimits
from rig.ports import CameraError, DaqError, DeviceError, Edges, Frame, StreamInfo
from rig.program.safety import schedule_problems
from rig.program.schedule import FRAME_CLOCK, STREAM_EDGE_LINE, OutputSchedule
from rig.program.timeline import Timeline
from rig.run.abort import Abort
from rig.run.engine import STEP_S, SessionEngine, Step, StreamPlan
from rig.run.signals import Progress, RunState, SessionResult, SessionSignals
from rig.run.sinks import SessionSink
from rig.run.stimuli import StimulusTracker

STALL_S = 2.0  # a stream this far behind its recorded edges has stalled


class StreamWriter(Protocol):
    """Where one stream's frames go (:class:`rig.data.store.StreamWriter`)."""

    info: StreamInfo
    accounting: FrameAccounting
    error: BaseException | None

    def append(self, frame: Frame) -> bool: ...


class SessionRecorder(Protocol):
    """What keeps the session's data (:class:`rig.data.store.SessionStore`, or a self-test's
    counter): frames, recorded edges and events."""

    def add_stream(self, name: str, info: StreamInfo, expected_frames: int) -> StreamWriter: ...

    def append_edges(self, line: str, edges: Edges) -> None: ...

    def log_event(self, event: dict[str, Any], durable: bool = False) -> None: ...

    def close_writers(self) -> dict[str, FrameAccounting]: ...


class Runner:
    """Runs one session. Create, connect to :attr:`signals`, then call :meth:`run`."""

    def __init__(
        self,
        timeline: Timeline,
        schedule: OutputSchedule,
        engine: SessionEngine,
        recorder: SessionRecorder,
        limits: SafetyLimits,
        *,
        abort: Abort | None = None,
        sinks: Iterable[SessionSink] = (),
    ) -> None:
        self.timeline = timeline
        self.schedule = schedule
        self.engine = engine
        self.recorder = recorder
        self.limits = limits
        self.abort = abort if abort is not None else Abort()
        self.signals = SessionSignals()
        self.signals.on_interrupt = self.abort
        self.sinks = list(sinks)
        self.state = RunState.IDLE
        self.tracker = StimulusTracker(timeline, schedule, self.log)
        self.preflight_results: list = []
        self.t_s = 0.0
        self._writers: dict[str, StreamWriter] = {}
        self._edge_counts: dict[str, int] = {}
        self._stalled: set[str] = set()

    # ----------------------------------------------------------------- run
    def run(self) -> SessionResult:
        """Run the session to its end or abort; always leaves the rig safe."""
        status, reason = "complete", "completed as planned"
        try:
            # An abort asked for before or during preflight must not arm the shocker or start
            # the outputs only to stop them again.
            if not self.abort.requested:
                self._prepare()
            if not self.abort.requested:
                self._acquire()
            if self.abort.requested:
                status, reason = "aborted", self.abort.reason or "aborted"
        except DeviceError as exc:
            status, reason = "aborted", error_line(f"{type(exc).__name__}: {exc}")
            self.log("fault", t_s=self.t_s, detail=reason, durable=True)
        except Exception as exc:
            status, reason = "aborted", error_line(f"engine error: {type(exc).__name__}: {exc}")
            self.log("fault", t_s=self.t_s, detail=reason, durable=True)
        finally:
            self._set_state(RunState.STOPPING)
            self.engine.safe_state(self.log)
        accounting = self._collect_and_close()
        self._emit_progress()
        self.log(
            "session_end", t_s=self.t_s, detail=f"{status}: {reason}", durable=True, status=status
        )
        result = SessionResult(status, reason, self.t_s, self.tracker.shocks_delivered, accounting)
        self._set_state(RunState.FINISHED)
        self.signals.finished.emit(result)
        return result

    def _prepare(self) -> None:
        self._set_state(RunState.PREFLIGHT)
        problems = schedule_problems(self.schedule, self.limits)
        if problems:
            raise DeviceError("refusing an unsafe schedule: " + "; ".join(problems))
        checks = self.engine.preflight()
        self.preflight_results = checks
        for c in checks:
            self.log("preflight", t_s=0.0, detail=f"{c.device} {c.name}: {c.detail}", ok=c.ok)
        failed = [c for c in checks if not c.ok]
        if failed:
            raise DeviceError(
                "preflight failed: " + "; ".join(f"{c.device} {c.name}: {c.detail}" for c in failed)
            )
        streams: dict[str, StreamPlan] = self.engine.setup(self.log)
        for name, plan in streams.items():
            self._writers[name] = self.recorder.add_stream(name, plan.info, plan.expected)
        for sink in self.sinks:
            sink.start(streams)
        self.engine.arm()
        if self.schedule.shocks:
            self.log("shocker_armed", t_s=0.0, durable=True)
        self._set_state(RunState.ARMED)

    def _acquire(self) -> None:
        duration = self.schedule.duration_s
        self.log("session_start", t_s=0.0, durable=True)
        self.engine.start()
        self._set_state(RunState.RUNNING)
        while self.t_s < duration and not self.abort.requested:
            step = self.engine.step(min(self.t_s + STEP_S, duration))
            self.t_s = step.t_s
            self._record(step)
            for sink in self.sinks:
                sink.take(step)
            self._check_streams()
            self._emit_progress()

    def _record(self, step: Step) -> None:
        """A step's data into the recorder, and the stimulus events it shows."""
        for line, edges in step.edges.items():
            self.recorder.append_edges(line, edges)
            self._edge_counts[line] = self._edge_counts.get(line, 0) + int(edges.rising.sum())
        for name, frames in step.frames.items():
            writer = self._writers[name]
            for frame in frames:
                writer.append(frame)
        for fault in step.faults:
            self.log("fault", t_s=step.t_s, detail=fault)
        self.tracker.observe(step.edges, step.t_s)

    def _check_streams(self) -> None:
        for name, writer in self._writers.items():
            behind = self._edges_of(name) - writer.accounting.received
            if behind > max(5, writer.info.rate_hz * STALL_S):  # the info the stream began with
                self._stalled.add(name)
                raise CameraError(f"{name} stalled: {behind} frames behind its recorded edges")
            if writer.error is not None:
                raise DeviceError(f"writing {name} failed: {writer.error}")
        rate = self.schedule.imaging_rate_hz
        ticks = self._edge_counts.get(FRAME_CLOCK, 0)
        if rate and self.t_s > STALL_S + 1 and ticks < (self.t_s - STALL_S) * rate:
            raise DaqError("the two-photon frame clock stopped")

    def _edges_of(self, stream: str) -> int:
        return self._edge_counts.get(STREAM_EDGE_LINE[stream], 0)

    # ----------------------------------------------------------------- ending
    def _collect_and_close(self) -> dict[str, FrameAccounting]:
        """The last edges and every frame exposed before the safe state; then the sources stop
        and the writers close. A stalled stream is not waited for: it will not catch up."""
        try:
            self._record(Step(self.t_s, edges=self.engine.final_edges(self.log)))
            wanted = {
                name: max(0, self._edges_of(name) - writer.accounting.received)
                for name, writer in self._writers.items()
                if name not in self._stalled
            }
            self._record(self.engine.drain(wanted))
        finally:
            self.engine.stop()
        accounting = self.recorder.close_writers()
        for name, acc in accounting.items():
            acc.edges = self._edges_of(name)
        return accounting

    # ----------------------------------------------------------------- report
    def _set_state(self, state: RunState) -> None:
        self.state = state
        self.signals.state_changed.emit(state)

    def _emit_progress(self) -> None:
        t_s, trials = self.t_s, self.timeline.trials
        started = [t for t in trials if t.cs_onset_s <= t_s]
        upcoming = [t for t in trials if t.cs_onset_s > t_s]
        shocks = [t.us_onset_s for t in trials if t.us_onset_s is not None and t.us_onset_s > t_s]
        span = self.timeline.phase_at(t_s)
        frames = {
            name: {
                "received": w.accounting.received,
                "written": w.accounting.written,
                "dropped": w.accounting.dropped,
            }
            for name, w in self._writers.items()
        }
        self.signals.progress.emit(
            Progress(
                t_s=t_s,
                duration_s=self.timeline.duration_s,
                phase=span.name if span else (self.timeline.phases[-1].name if t_s else ""),
                trial=len(started),
                n_trials=len(trials),
                next_cs_in_s=upcoming[0].cs_onset_s - t_s if upcoming else None,
                next_shock_in_s=shocks[0] - t_s if shocks else None,
                shocks_delivered=self.tracker.shocks_delivered,
                frames=frames,
            )
        )

    def log(self, kind: str, t_s: float, durable: bool = False, **fields: Any) -> None:
        """Record one event: in the recorder's journal and on the ``event`` signal."""
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
        self.recorder.log_event(event, durable=durable)
        self.signals.event.emit(event)
