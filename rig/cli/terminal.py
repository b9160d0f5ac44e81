"""Writing to a terminal or pipe that may be gone: a closed terminal, ``| head``, a closed fd.

What ``rig run`` prints is best effort. A write that fails with an :class:`OSError` (a broken
pipe, EIO from a terminal that hung up, a closed descriptor) loses that text, and the stream's
descriptor is pointed at the null device, so later writes and the interpreter's final flush
succeed silently (a failed final flush would turn the exit code into 120). Nothing a session does
waits on its output or fails because of it (docs/safety.md, "Signals and output").
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TextIO

import click
from rich.console import Console

from rig.files.inputfile import one_line


def printable(text: str) -> str:
    """``text`` with every control and invisible character but the line breaks shown escaped:
    a name from a user or a session file cannot clear the terminal, move its cursor or (when
    the caller has put it through :func:`rig.files.inputfile.one_line`) forge a line."""
    return "\n".join(one_line(line) for line in text.split("\n"))


def echo(text: str, err: bool = False) -> None:
    """``click.echo`` of :func:`printable` text that never raises for a stream that is gone;
    see the module docstring."""
    try:
        click.echo(printable(text), err=err)
    except OSError:
        silence(sys.stderr if err else sys.stdout)


def silence(stream: TextIO | None) -> None:
    """Point ``stream``'s descriptor at the null device (if it has one). Never raises."""
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):  # no descriptor (a test's buffer), or closed
        fd = stream.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)


def reserve_standard_descriptors() -> None:
    """Open the null device on any of descriptors 0, 1, 2 that is closed (``rig run >&-``).

    Otherwise the next file the process opens (a session's data file) would get that number,
    and anything that writes to "standard error" at the C level would write into it."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


class QuietConsole(Console):
    """A rich console that goes quiet on a broken pipe, where rich's would point stdout at the
    null device and raise ``SystemExit`` from whatever call was writing."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        silence(sys.stderr)
