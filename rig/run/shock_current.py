"""Each shock at its own current, or no shock: the engine's side of the current program.

The current program (:func:`rig.program.safety.current_program`) sets the first shock's current
while arming and each next one as soon as the shock before it has ended. :class:`CurrentSequencer`
carries it out during a session:

* at each shock's set sample it sets the planned current and reads it back (one
  ``shock_current`` event per shock, with the planned current and the read-back);
* a shock is *confirmed* once a read-back equal to its planned current came after the last
  different current was set; the DAQ's outputs are released only up to the onset of the first
  shock not confirmed (``Daq.release``), so an unconfirmed shock is never in the output buffer;
* a shock whose current differs from the one before must be confirmed
  ``current_change_lead_s`` before its onset, else :class:`CurrentNotConfirmed` ends the
  session (in the safe state, before that shock).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rig.ports import Daq, ShockerError, ShockGenerator
from rig.program.safety import current_program
from rig.program.schedule import OutputSchedule, samples_at_least

READBACK_TOLERANCE_MA = 0.005  # a read-back this close to the planned current confirms it


class CurrentNotConfirmed(ShockerError):
    """A shock's current was not read back in time: the session ends before that shock."""


@dataclass
class PlannedShock:
    """One shock of the program, in samples of the session clock."""

    number: int  # 0-based, in order of onset
    trial: int
    stimulus: str
    onset: int
    current_ma: float
    set_at: int  # when its current is set (-1: while arming)
    deadline: int  # confirmed by this sample, or the session ends before the shock
    set_done: bool = False
    confirmed: bool = False


class CurrentSequencer:
    """Sets, reads back and confirms each shock's current; moves the DAQ's output fence."""

    def __init__(
        self,
        schedule: OutputSchedule,
        lead_s: float,
        shocker: ShockGenerator,
        daq: Daq,
        log: Callable[..., Any],
        phases: dict[int, str] | None = None,
    ) -> None:
        """``log(kind, t_s, durable=..., **fields)`` records an event; ``phases`` names the
        phase of each trial index for those events."""
        self.phases = phases or {}
        self.fs = schedule.sample_rate_hz
        self.shocker = shocker
        self.daq = daq
        self.log = log
        lead = samples_at_least(lead_s, self.fs)
        pulses = sorted(schedule.shocks, key=lambda p: p.start_sample)
        steps = current_program(pulses)
        self.shocks: list[PlannedShock] = []
        for k, (pulse, step) in enumerate(zip(pulses, steps, strict=True)):
            changed = k > 0 and pulses[k - 1].current_ma != pulse.current_ma
            self.shocks.append(
                PlannedShock(
                    number=k,
                    trial=pulse.trial,
                    stimulus=pulse.stimulus,
                    onset=pulse.start_sample,
                    current_ma=pulse.current_ma,
                    set_at=step.at_sample,
                    deadline=pulse.start_sample - lead if changed else pulse.start_sample,
                )
            )

    def arm(self) -> None:
        """Set and confirm the first shock's current (before the session starts)."""
        if self.shocks:
            self._set(self.shocks[0], 0)
        self._release()

    def next_checkpoint(self, position: int) -> int | None:
        """The next sample at which :meth:`step` has work: a set or a deadline."""
        due = []
        for shock in self.shocks:
            if not shock.set_done:
                due.append(shock.set_at)
            if not shock.confirmed:
                due.append(shock.deadline)
        return min((s for s in due if s > position), default=None)

    def step(self, position: int) -> None:
        """Do what is due at ``position`` (samples acquired so far).

        Raises :class:`~rig.ports.ShockerError` if a set fails or reads back wrong, and
        :class:`CurrentNotConfirmed` when a shock's deadline passes unconfirmed.
        """
        for shock in self.shocks:
            if not shock.set_done and 0 <= shock.set_at <= position:
                self._set(shock, position)
        for shock in self.shocks:
            if not shock.confirmed and position >= shock.deadline:
                raise CurrentNotConfirmed(
                    f"the {shock.current_ma:g}-mA shock of trial {shock.trial + 1} was not "
                    f"given: its current was not read back by {shock.deadline / self.fs:g} s, "
                    f"before its onset at {shock.onset / self.fs:g} s"
                )

    def _set(self, shock: PlannedShock, position: int) -> None:
        shock.set_done = True
        readback = self.shocker.set_current(shock.current_ma)
        ok = abs(readback - shock.current_ma) <= READBACK_TOLERANCE_MA
        self.log(
            "shock_current",
            t_s=max(position, 0) / self.fs,
            durable=True,
            trial=shock.trial,
            phase=self.phases.get(shock.trial),
            stimulus=shock.stimulus,
            detail=f"shock {shock.number + 1}: set {shock.current_ma:g} mA, "
            f"read back {readback:g} mA",
            planned_ma=shock.current_ma,
            readback_ma=readback,
        )
        if not ok:
            raise ShockerError(
                f"shocker: current read-back {readback:g} mA for the {shock.current_ma:g}-mA "
                f"shock of trial {shock.trial + 1}"
            )
        # The device now holds this current: every later shock that plans the same current,
        # up to the next different one, is confirmed by this read-back.
        for later in self.shocks[shock.number :]:
            if later.current_ma != shock.current_ma:
                break
            later.confirmed = True
        self._release()

    def _release(self) -> None:
        pending = next((s for s in self.shocks if not s.confirmed), None)
        self.daq.release(pending.onset if pending is not None else None)
