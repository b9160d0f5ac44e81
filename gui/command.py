"""``rig gui [PROTOCOL]``: registered under the ``rig.commands`` entry-point group.

This module imports no Qt at import time, so ``rig --help`` stays fast and works where PyQt5
is missing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from rig.cli import EXIT_FAILED, PROTOCOL_OPTIONAL, RIG, handles_errors


def display_problem() -> str | None:
    """Why no window can be shown here, or ``None`` when one can."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform.split(":")[0] in ("offscreen", "minimal", "vnc", "eglfs", "linuxfb"):
        return None
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return "no display: set DISPLAY (or QT_QPA_PLATFORM=offscreen to render off screen)"
    return None


@click.command()
@PROTOCOL_OPTIONAL
@RIG
@handles_errors
def gui(protocol: Path | None, rig_path: Path | None) -> None:
    """Open the protocol designer, run console and session review (PyQt5).

    A protocol that does not validate opens anyway: the designer shows each problem on its
    field (and they are printed here too)."""
    from rig.files.inputfile import InputError, read_text_file
    from rig.files.protocol import load_protocol
    from rig.files.rigfile import load_rig

    rig = load_rig(rig_path)
    if protocol is not None:
        read_text_file(protocol)  # a file that cannot be read at all is still bad input
        try:
            load_protocol(protocol)
        except InputError as exc:
            click.echo(exc.report(), err=True)
            click.echo("rig gui: opening it in the designer to fix", err=True)
    problem = display_problem()
    if problem is not None:
        click.echo(f"rig gui: {problem}", err=True)
        sys.exit(EXIT_FAILED)
    try:
        from gui.app import run_app
    except ImportError as exc:
        click.echo(
            f"rig gui: the GUI needs PyQt5 and pyqtgraph ({exc}); pip install 'fear-rig[gui]'",
            err=True,
        )
        sys.exit(EXIT_FAILED)
    sys.exit(run_app(protocol, rig))
