"""Operating-system signals while ``rig run`` runs a session (docs/safety.md, "Signals").

The default action of SIGHUP (the terminal or the SSH connection closed), SIGQUIT (Ctrl-\\, with
a core dump), SIGTERM, SIGUSR1 and the other signals below is to end the process on the spot,
with the shock generator armed and the DAQ playing its buffer. While a session runs, each of
them asks the engine to abort instead: outputs low, shocker disarmed, data kept, exit 1. Ctrl-Z
(SIGTSTP) and the background-terminal stops (SIGTTIN, SIGTTOU) would freeze the process in the
middle of a session, so they are ignored.

Two exceptions, both what the one who started ``rig run`` asked for: a signal the process was
started with ignored stays ignored (``nohup`` ignores SIGHUP, so the session runs on when the
terminal closes; a non-interactive shell's background job ignores SIGINT and SIGQUIT), and a
signal other than the four stop signals that already has a handler (a profiler's SIGPROF) keeps
it. Signals that cannot be caught (SIGKILL, SIGSTOP) and the fatal faults of the process itself
(SIGSEGV, SIGBUS, SIGABRT...) are covered by the hardware: the gate's width is in the DAQ's
buffer, and the shock generator disarms itself when the heartbeats stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any


def _signals(*names: str) -> tuple[signal.Signals, ...]:
    """The named signals this platform has (Windows has no SIGHUP, Linux no SIGBREAK)."""
    return tuple(getattr(signal, n) for n in names if hasattr(signal, n))


STOP_SIGNALS = _signals("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGBREAK")
"""Signals meant to stop a program: always taken over (unless started ignored)."""
OTHER_ENDING_SIGNALS = _signals(
    "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGVTALRM", "SIGPROF", "SIGXCPU", "SIGIO", "SIGPWR"
)
"""Signals whose default action also ends the process: taken over while at that default."""
SUSPEND_SIGNALS = _signals("SIGTSTP", "SIGTTIN", "SIGTTOU")
"""Signals whose default action stops (freezes) the process: ignored while at that default.
SIGTSTP (Ctrl-Z) gets a handler that says so; SIGTTIN and SIGTTOU are set to SIG_IGN, the only
disposition with which the kernel lets a background process's terminal write go through (with
a handler it would send the signal again on every retry)."""

SUSPEND_NOTE = b"rig run: a session cannot be suspended (ignored); Ctrl-C ends it safely\n"

Handler = Callable[[int, Any], Any] | int | signal.Handlers | None


def _takes_over(sig: signal.Signals, current: Handler) -> bool:
    if current == signal.SIG_IGN:
        return False
    if sig in STOP_SIGNALS:
        return True
    return current in (signal.SIG_DFL, None)


@contextlib.contextmanager
def session_signals(stop: Callable[[str], None]) -> Iterator[None]:
    """While inside, an ending signal calls ``stop("interrupted by SIGHUP")`` (from the main
    thread, between two Python instructions) and a suspending one is ignored; the handlers
    from before are back on the way out. Outside the main thread (where Python cannot install
    handlers) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_ending(signum: int, _frame: Any) -> None:
        stop(f"interrupted by {signal.Signals(signum).name}")

    def on_suspend(_signum: int, _frame: Any) -> None:
        with contextlib.suppress(OSError):  # unbuffered: safe whatever the main thread does
            os.write(2, SUSPEND_NOTE)

    previous: dict[signal.Signals, Handler] = {}
    try:
        for sig in STOP_SIGNALS + OTHER_ENDING_SIGNALS + SUSPEND_SIGNALS:
            current = signal.getsignal(sig)
            if not _takes_over(sig, current):
                continue
            if sig not in SUSPEND_SIGNALS:
                handler: Handler = on_ending
            else:
                handler = on_suspend if sig == signal.SIGTSTP else signal.SIG_IGN
            previous[sig] = signal.signal(sig, handler)
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
