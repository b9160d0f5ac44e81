"""One request to end a session now, in the safe state."""

from __future__ import annotations


class Abort:
    """Shared by everything that may end a session early: the CLI's signal handlers, the GUI's
    Abort button, a listener that was interrupted, a test. Made before any device is built, so
    a request that comes early needs no special case: the runner sees it before it arms
    anything, and never arms. Safe to call from a signal handler or any thread (it only sets
    attributes; the runner looks at it every step)."""

    def __init__(self) -> None:
        self._reason: str | None = None

    def __call__(self, reason: str = "aborted by the user") -> None:
        """Ask for the session to end; the first reason given is the one kept."""
        if self._reason is None:
            self._reason = reason

    @property
    def requested(self) -> bool:
        return self._reason is not None

    @property
    def reason(self) -> str | None:
        return self._reason
