"""The progress line ``rig run`` shows on stderr (rich), following the session's signals.

The display is a bystander: it runs inside the session's signal callbacks, so it must never
raise there, whatever happened to stderr (a closed terminal: EIO; ``2>&-``; a closed pipe). A
write that fails silences the display for the rest of the session (:mod:`rig.cli.terminal`); rich's
own reaction to a broken pipe, ``SystemExit`` from inside the callback, is replaced. It refreshes
from those callbacks only (no refresh thread), so every write it makes is one it guards.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from rig.cli.terminal import QuietConsole, silence
from rig.run.plan import fmt_duration
from rig.run.runner import Runner
from rig.run.signals import Progress as SessionProgress
from rig.run.signals import RunState

REFRESH_EVERY_S = 0.1  # host time between redraws of the bar
MIN_BAR = 10  # narrower than this, the bar is left out
REMAINING = 7  # rich's TimeRemainingColumn: "0:01:23"


def progress_line(p: SessionProgress, width: int) -> tuple[str, int, str]:
    """The progress line's text, bar width and clock for a terminal ``width`` columns wide:
    the most detail that fits (phase, trial, next CS or shock, frames per stream and losses),
    dropping detail, then the bar, rather than letting the line wrap or be cut."""
    clock = f"{fmt_duration(p.t_s)}/{fmt_duration(p.duration_s)}"
    lost = {k: v["dropped"] for k, v in p.frames.items() if v["dropped"]}
    frames = " ".join(
        f"{k} {v['written']}" + (f" ({lost[k]} lost)" if k in lost else "")
        for k, v in p.frames.items()
    )
    short_frames = " ".join(
        f"{k[0]}{v['written']}" + (f"!{lost[k]}" if k in lost else "") for k, v in p.frames.items()
    )
    nxt = short_nxt = ""
    if p.next_shock_in_s is not None:
        nxt, short_nxt = f" | shock in {p.next_shock_in_s:4.0f}s", f" US{p.next_shock_in_s:.0f}s"
    elif p.next_cs_in_s is not None:
        nxt, short_nxt = f" | CS in {p.next_cs_in_s:4.0f}s", f" CS{p.next_cs_in_s:.0f}s"
    trial = f"{p.trial}/{p.n_trials}"
    candidates = [
        f"{p.phase:<12} trial {trial}{nxt} | {frames}",
        f"{p.phase} {trial}{nxt} | {short_frames}",
        f"{p.phase} {trial}{short_nxt} {short_frames}",
        f"{p.phase} {trial}{short_nxt}",
        f"{p.phase[:12]} {trial}",
    ]
    fixed = 1 + len(clock) + 1 + REMAINING  # the columns after the bar, one space apart
    for text in candidates:
        bar = width - fixed - len(text) - 1
        if bar >= MIN_BAR:
            return text, min(bar, 40), clock
    room = max(0, width - fixed - 1)
    text = candidates[-1]
    return (text if len(text) <= room else text[: max(0, room - 1)] + "~"), 0, clock


class ProgressDisplay:
    """A rich progress bar: phase, trial k/N, session time, next CS/shock, frames."""

    def __init__(self, enabled: bool = True):
        self.console = QuietConsole(stderr=True)
        self.enabled = enabled
        self._bar_column = BarColumn()
        self._bar = Progress(
            TextColumn("{task.description}"),
            self._bar_column,
            TextColumn("{task.fields[clock]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
            disable=not enabled,
            auto_refresh=False,
        )
        self._with_bar = self._bar.columns
        self._without_bar = tuple(c for c in self._with_bar if c is not self._bar_column)
        self._task: Any = None
        self._drawn_at = 0.0

    def __enter__(self) -> ProgressDisplay:
        self._draw(self._bar.__enter__)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._draw(lambda: self._bar.__exit__(*exc))

    def connect(self, runner: Runner) -> None:
        runner.signals.progress.connect(self.update)
        runner.signals.event.connect(self.on_event)
        runner.signals.state_changed.connect(self._on_state(runner))

    def _draw(self, draw: Callable[[], object]) -> None:
        """Run ``draw``; whatever the stream does, the caller (a session callback) goes on."""
        if self.console.quiet:
            return
        try:
            draw()
        except Exception:  # OSError from the stream, or anything rich raises about it
            self.console.quiet = True
            silence(sys.stderr)

    def _on_state(self, runner: Runner) -> Callable[[RunState], None]:
        def on_state(state: RunState) -> None:
            folder = getattr(runner.recorder, "folder", None)
            if state == RunState.RUNNING and folder is not None:  # the outputs have started
                self._say(f"recording: {folder}")

        return on_state

    def update(self, p: SessionProgress) -> None:
        self._draw(lambda: self._update(p))

    def _update(self, p: SessionProgress) -> None:
        if self._task is None:
            self._task = self._bar.add_task("", total=p.duration_s, clock="")
        # the terminal's width now (a resized window is followed at the next redraw)
        desc, bar, clock = progress_line(p, self.console.width)
        self._bar_column.bar_width = bar
        self._bar.columns = self._with_bar if bar else self._without_bar
        self._bar.update(self._task, completed=p.t_s, description=desc, clock=clock)
        now = time.monotonic()
        if now - self._drawn_at >= REFRESH_EVERY_S:
            self._drawn_at = now
            self._bar.refresh()

    def on_event(self, event: dict) -> None:
        if event["kind"] == "fault":
            line = Text.assemble(("fault", "red"), f" at {event['t_s']:.2f} s: {event['detail']}")
            self._draw(lambda: self._bar.console.print(line, soft_wrap=True))

    def _say(self, text: str) -> None:
        self._draw(lambda: self._bar.console.print(Text(text), soft_wrap=True))
