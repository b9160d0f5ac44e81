"""The progress display never raises from a session callback, whatever stderr does."""

from __future__ import annotations

import errno
import io
import sys

import pytest

from rig.cli.progress import ProgressDisplay
from rig.run.signals import Progress


class GoneStream(io.TextIOBase):
    """A stderr whose every write fails like a closed pipe or a hung-up terminal."""

    def __init__(self, error: OSError):
        self.error = error
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        raise self.error

    def isatty(self) -> bool:
        return True  # rich then draws the bar at every refresh

    def fileno(self) -> int:
        raise io.UnsupportedOperation("no descriptor")


def _progress(t_s: float) -> Progress:
    return Progress(t_s, 60.0, "conditioning", 1, 4, 3.0, None, 0, {"video": _frames()})


def _frames() -> dict[str, int]:
    return {"received": 10, "written": 10, "dropped": 0}


@pytest.mark.parametrize(
    "error",
    [BrokenPipeError(errno.EPIPE, "Broken pipe"), OSError(errno.EIO, "Input/output error")],
    ids=["broken pipe", "terminal hung up"],
)
def test_a_gone_stderr_silences_the_display_and_raises_nothing(error, monkeypatch):
    stream = GoneStream(error)
    monkeypatch.setattr(sys, "stderr", stream)
    display = ProgressDisplay()
    with display:  # rich's own reaction to a broken pipe is SystemExit: none gets out
        display.update(_progress(0.0))
        display.on_event({"kind": "fault", "t_s": 1.0, "detail": "video: 2 frames lost"})
        for t in range(1, 50):
            display.update(_progress(float(t)))
    assert stream.writes >= 1
    assert display.console.quiet  # it stopped trying after the first failure
    assert stream.writes <= 2
