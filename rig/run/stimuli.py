"""Stimulus events from the recorded loopback lines, never from the schedule.

:class:`StimulusTracker` watches the tone and shock-gate loopbacks the DAQ records and turns
them into the session's stimulus events: ``cs_on``/``cs_off``/``us_on``/``us_off`` with the
measured and the scheduled time, ``phase_start`` as the session clock passes each phase, and a
``fault`` for a scheduled stimulus whose onset was never recorded. A CS or US is delivered when
its rising edge is recorded inside its scheduled window; the number of ``us_on`` events is the
one definition of "shocks delivered".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rig.ports import Edges
from rig.program.schedule import SHOCK_GATE, TONE_GATE, OutputSchedule
from rig.program.timeline import Timeline
from rig.program.waveforms import sound_stop_sample

LINE_OF_KIND = {"cs": TONE_GATE, "us": SHOCK_GATE}
OFFSET_GRACE_S = 0.25
"""A block is closed (its offset logged) this long after its planned end, so a late fall is
measured as late rather than missed."""


@dataclass
class _Block:
    """A scheduled output block being watched for its recorded onset and offset."""

    kind: str  # "cs" | "us"
    trial: int
    phase: str
    stimulus: str
    start: int
    stop: int
    planned_stop: int  # where the output ends: the block's stop, or its last pip's end
    onset: int | None = None
    offset: int | None = None
    high: bool = False  # the line is high from this block's own rising edge
    closed: bool = False


class StimulusTracker:
    """Matches recorded edges to scheduled stimuli; logs what was delivered, and when."""

    def __init__(
        self, timeline: Timeline, schedule: OutputSchedule, log: Callable[..., Any]
    ) -> None:
        """``log(kind, t_s, durable=..., **fields)`` records an event."""
        self.timeline = timeline
        self.fs = schedule.sample_rate_hz
        self.end = schedule.n_samples
        self.log = log
        self.blocks = self._blocks(timeline, schedule)
        self.shocks_delivered = 0
        self._phases_logged: set[str] = set()

    @staticmethod
    def _blocks(timeline: Timeline, schedule: OutputSchedule) -> list[_Block]:
        trials = {t.index: t for t in timeline.trials}
        blocks = []
        for i, s in enumerate(schedule.sounds):
            trial = timeline.trials[i]
            end = sound_stop_sample(s, schedule.sample_rate_hz)
            blocks.append(
                _Block(
                    "cs", trial.index, trial.phase, s.stimulus, s.start_sample, s.stop_sample, end
                )
            )
        for p in schedule.shocks:
            trial = trials[p.trial]
            blocks.append(
                _Block(
                    "us",
                    p.trial,
                    trial.phase,
                    p.stimulus,
                    p.start_sample,
                    p.stop_sample,
                    p.stop_sample,
                )
            )
        return blocks

    def observe(self, edges: dict[str, Edges], t_s: float) -> None:
        """Take the edges recorded up to ``t_s``: log onsets, phases, and the blocks that
        ended (with a fault for a block whose onset never came)."""
        for kind, line in LINE_OF_KIND.items():
            e = edges.get(line)
            if e is not None and len(e.samples):
                self._match(kind, e)
        self._log_phases(t_s)
        position = round(t_s * self.fs)
        grace = round(OFFSET_GRACE_S * self.fs)
        for b in self.blocks:
            if not b.closed and min(b.stop + grace, self.end) <= position:
                self._close(b)

    def _match(self, kind: str, e: Edges) -> None:
        blocks = [b for b in self.blocks if b.kind == kind and not b.closed]
        for sample, rising in zip(e.samples.tolist(), e.rising.tolist(), strict=False):
            for b in blocks:
                if rising and b.start <= sample < b.stop:
                    b.high = True
                    if b.onset is None:
                        b.onset = sample
                        self._log_block(b, "on", sample)
                        if b.kind == "us":  # delivered: a gate-high run that started
                            self.shocks_delivered += 1
                    break
                # a fall inside the block, or the fall of a run this block started that went
                # on past its planned end (a late output: measured, not hidden)
                if not rising and (b.start < sample <= b.stop or b.high):
                    b.offset = sample
                    b.high = False
                    break

    def _close(self, b: _Block) -> None:
        b.closed = True
        if b.onset is None:
            self.log(
                "fault",
                t_s=b.start / self.fs,
                detail=f"no recorded onset for the {b.kind.upper()} of trial {b.trial + 1}",
                durable=True,
            )
            return
        if b.offset is None:  # no falling edge recorded: logged at the plan, marked unmeasured
            self._log_block(b, "off", b.planned_stop, recorded=False)
        else:
            self._log_block(b, "off", b.offset)

    def _log_block(self, b: _Block, edge: str, sample: int, **extra: Any) -> None:
        scheduled = b.start if edge == "on" else b.planned_stop
        self.log(
            f"{b.kind}_{edge}",
            t_s=sample / self.fs,
            scheduled_s=scheduled / self.fs,
            trial=b.trial,
            phase=b.phase,
            stimulus=b.stimulus,
            durable=edge == "off",  # events durable at every stimulus boundary
            **extra,
        )

    def _log_phases(self, t_s: float) -> None:
        for span in self.timeline.phases:
            if span.name not in self._phases_logged and span.start_s <= t_s:
                self._phases_logged.add(span.name)
                self.log("phase_start", t_s=span.start_s, scheduled_s=span.start_s, phase=span.name)
