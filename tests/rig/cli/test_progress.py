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


class Terminal(io.StringIO):
    """A terminal of a set width that keeps what is drawn."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("columns", [40, 60, 80, 100, 160])
def test_the_progress_line_fits_the_terminal(columns, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("COLUMNS", str(columns))
    display = ProgressDisplay()
    frames = {"video": {**_frames(), "dropped": 3}, "imaging": _frames()}
    with display:
        for t in (1.0, 30.0, 59.0):
            display.update(Progress(t, 3600.0, "conditioning", 3, 14, None, 12.0, 2, frames))
            display._drawn_at = 0.0  # draw each one
    drawn = [line for chunk in terminal.getvalue().split("\r") for line in chunk.split("\n")]
    text = [_visible(line) for line in drawn if _visible(line).strip()]
    assert text and max(len(line) for line in text) <= columns
    last = text[-1]
    assert "conditioning" in last and "3/14" in last and "0:59/1:00:00" in last
    if columns >= 120:  # room for everything, said in words
        assert "shock in" in last and "video 10 (3 lost)" in last and "imaging 10" in last
    elif columns >= 80:
        assert "v10!3" in last  # the frames and their losses, short


def _visible(text: str) -> str:
    """``text`` without the terminal's control sequences."""
    import re

    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def test_the_session_folder_is_on_stdout_from_the_start(tmp_path, short_protocol, small_rig, cli):
    """The first line of stdout names the folder as soon as it exists (a session killed later
    is found); the last line names it again, as it always did."""
    result = cli("run", short_protocol, "--fast", "--rig", small_rig, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert lines == [str(folder), str(folder)]
