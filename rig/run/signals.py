"""What a running session tells the world: its state, progress, events, frames, freezing.

The signals are declared once, typed, in :class:`SessionSignals` (a psygnal ``SignalGroup``),
so the CLI's progress line, the GUI and the tests all follow the same ones. Their listeners
run inside the session's loop and its safe-state path: :class:`ListenerGuard` makes sure a
listener can never break either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
from psygnal import EmitLoopError, Signal, SignalGroup, SignalInstance

log = logging.getLogger(__name__)


class RunState(str, Enum):
    """Where a session is; it only moves forward."""

    IDLE = "idle"
    PREFLIGHT = "preflight"
    ARMED = "armed"
    RUNNING = "running"
    STOPPING = "stopping"
    FINISHED = "finished"


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
    """How a session ended."""

    status: str  # complete | aborted
    reason: str
    duration_s: float
    shocks_delivered: int
    accounting: dict[str, Any]


class ListenerGuard(SignalInstance):
    """A session signal whose listeners cannot break the session.

    Listeners (the CLI's progress display, the GUI) run inside the session's loop and inside
    its safe-state and finalise path. One that raises an ``Exception`` is logged (once per
    signal) and the session goes on: a display is never a reason to stop an experiment, nor to
    skip the safe state. One that raises ``KeyboardInterrupt`` or ``SystemExit`` (Ctrl-C
    landing in a listener, or a library that exits on a broken pipe) asks the session to
    abort, which then ends it the safe way, instead of unwinding through it.
    """

    def emit(self, *args: Any, check_nargs: bool = False, check_types: bool = False) -> None:
        try:
            super().emit(*args, check_nargs=check_nargs, check_types=check_types)
        except EmitLoopError as exc:
            if not getattr(self, "_warned", False):
                self._warned = True
                log.warning(
                    "a listener of the session's %s signal failed; the session goes on: %r",
                    self.name,
                    exc.__cause__,
                )
        except (KeyboardInterrupt, SystemExit) as exc:
            on_interrupt = getattr(self.instance, "on_interrupt", None)
            if callable(on_interrupt):
                on_interrupt(f"interrupted: {type(exc).__name__} in a listener of {self.name}")


def _signal(*types: Any) -> Signal:
    return Signal(*types, signal_instance_class=ListenerGuard)


class SessionSignals(SignalGroup):
    """Every signal a session emits, declared once."""

    state_changed = _signal(RunState)
    progress = _signal(Progress)
    event = _signal(dict)
    """Every logged event (the journal's lines), as it is logged."""
    frame = _signal(str, np.ndarray)
    """``(stream, image)``: a preview, at most ~15 per second per stream."""
    freezing = _signal(object)
    """One :class:`rig.behaviour` freezing sample per video frame (or wheel bin)."""
    finished = _signal(SessionResult)

    on_interrupt: Callable[[str], None] | None = None
    """Called by a guarded signal whose listener raised ``KeyboardInterrupt``/``SystemExit``."""
