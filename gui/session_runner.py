"""Runs a session off the UI thread and hands the session's signals to Qt.

The session (``rig.run.session.run_session``) runs in a worker thread. Its psygnal signals fire in
that thread; the runner only appends what they carry to buffers under a lock and emits
``updated`` (a Qt signal to an object living in the UI thread, so Qt queues it) at most every
``UPDATE_EVERY_S``. The UI drains the buffers in its slot. Nothing the UI does waits on the
session, the hardware or the disk; :meth:`SessionRunner.abort` only sets the session's abort
request (made before the worker starts, so an Abort pressed at once is never lost).
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PyQt5.QtCore import QObject, pyqtSignal

from rig.behaviour.live import FreezingSample
from rig.files.inputfile import InputError
from rig.files.subject import LoadedSubject, SessionMetadata
from rig.ports import DeviceError
from rig.run.abort import Abort
from rig.run.runner import Runner
from rig.run.session import SessionPlan, run_session
from rig.run.signals import Progress, RunState, SessionResult

UPDATE_EVERY_S = 0.05


@dataclass
class Drained:
    """Everything that arrived since the last drain."""

    progress: Progress | None = None
    events: list[dict] = field(default_factory=list)
    freezing: list[FreezingSample] = field(default_factory=list)
    frames: dict[str, np.ndarray] = field(default_factory=dict)
    states: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunRequest:
    """What the console asks for: a plan, the animal (and its subject, validated), who ran it
    (experimenter, institution, lab, notes: stored from the session's start), where, and how
    fast (simulated rigs)."""

    plan: SessionPlan
    out_dir: Path
    animal: str
    subject: LoadedSubject | None = None
    metadata: SessionMetadata = field(default_factory=SessionMetadata)
    speed: float | None = 1.0  # None: as fast as possible (simulated rig only)


class SessionRunner(QObject):
    """One session in a worker thread. Create in the UI thread, then :meth:`start`."""

    updated = pyqtSignal()
    started = pyqtSignal(object)  # rig.run.runner.Runner, connected and about to run
    finished = pyqtSignal(object, object)  # (session folder | None, SessionResult | None)
    failed = pyqtSignal(str)  # the session could not start or the runner crashed

    def __init__(self, request: RunRequest, parent: QObject | None = None):
        super().__init__(parent)
        self.request = request
        self.runner: Runner | None = None
        self.folder: Path | None = None
        self.result: SessionResult | None = None
        self._lock = threading.Lock()
        self._buffer = Drained()
        self._last_emit = 0.0
        self._abort = Abort()
        self._thread = threading.Thread(target=self._run, name="rig-session", daemon=True)

    # ------------------------------------------------------------------ UI thread
    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def abort(self, reason: str = "aborted by the user") -> None:
        """End the session now in the safe state (the runner acts on it within one step)."""
        self._abort(reason)

    def drain(self) -> Drained:
        with self._lock:
            out, self._buffer = self._buffer, Drained()
        return out

    def wait(self, timeout_s: float | None = None) -> bool:
        """Join the worker (tests and shutdown only; the UI never calls this)."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    # ------------------------------------------------------------------ worker thread
    def _run(self) -> None:
        r = self.request
        try:
            self.folder, self.result = run_session(
                r.plan,
                r.out_dir,
                r.animal,
                r.speed,
                self._connect,
                abort=self._abort,
                subject=r.subject,
                metadata=r.metadata,
            )
        except InputError as exc:
            self.failed.emit(exc.report())
        except DeviceError as exc:  # a device that cannot be built, a rig in use: one line
            self.failed.emit(f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            self.failed.emit(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
        finally:
            self._flush()
            self.finished.emit(self.folder, self.result)

    def _connect(self, runner: Runner) -> None:
        self.runner = runner
        self.folder = runner.recorder.folder.path
        signals = runner.signals
        signals.progress.connect(self._on_progress)
        signals.event.connect(self._on_event)
        signals.freezing.connect(self._on_freezing)
        signals.frame.connect(self._on_frame)
        signals.state_changed.connect(self._on_state)
        self.started.emit(runner)

    def _on_progress(self, progress: Progress) -> None:
        with self._lock:
            self._buffer.progress = progress
        self._maybe_emit()

    def _on_event(self, event: dict) -> None:
        with self._lock:
            self._buffer.events.append(event)
        self._maybe_emit()

    def _on_freezing(self, sample: FreezingSample) -> None:
        with self._lock:
            self._buffer.freezing.append(sample)

    def _on_frame(self, stream: str, image: Any) -> None:
        with self._lock:
            self._buffer.frames[stream] = np.array(image, copy=True)

    def _on_state(self, state: RunState) -> None:
        with self._lock:
            self._buffer.states.append(state.value)
        self._flush()

    def _maybe_emit(self) -> None:
        now = time.monotonic()
        if now - self._last_emit >= UPDATE_EVERY_S:
            self._flush(now)

    def _flush(self, now: float | None = None) -> None:
        self._last_emit = time.monotonic() if now is None else now
        self.updated.emit()
