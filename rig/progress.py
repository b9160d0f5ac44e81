"""The progress line ``rig run`` shows on stderr (rich), following the engine's signals."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from rig.engine import Engine
from rig.engine import Progress as EngineProgress
from rig.plan import fmt_duration


class ProgressDisplay:
    """A rich progress bar: phase, trial k/N, session time, next CS/shock, frames."""

    def __init__(self, enabled: bool = True):
        self.console = Console(stderr=True)
        self.enabled = enabled
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[clock]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
            disable=not enabled,
        )
        self._task: Any = None

    def __enter__(self) -> ProgressDisplay:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._bar.__exit__(*exc)

    def connect(self, engine: Engine) -> None:
        engine.progress.connect(self.update)
        engine.event.connect(self.on_event)

    def update(self, p: EngineProgress) -> None:
        if self._task is None:
            self._task = self._bar.add_task("", total=p.duration_s, clock="")
        nxt = ""
        if p.next_shock_in_s is not None:
            nxt = f" | shock in {p.next_shock_in_s:4.0f}s"
        elif p.next_cs_in_s is not None:
            nxt = f" | CS in {p.next_cs_in_s:4.0f}s"
        frames = " ".join(
            f"{k} {v['written']}" + (f" ({v['dropped']} lost)" if v["dropped"] else "")
            for k, v in p.frames.items()
        )
        desc = f"{p.phase:<12} trial {p.trial}/{p.n_trials}{nxt} | {frames}"
        clock = f"{fmt_duration(p.t_s)}/{fmt_duration(p.duration_s)}"
        self._bar.update(self._task, completed=p.t_s, description=desc, clock=clock)

    def on_event(self, event: dict) -> None:
        if event["kind"] == "fault":
            self._bar.console.print(f"[red]fault[/red] at {event['t_s']:.2f} s: {event['detail']}")
