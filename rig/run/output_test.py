"""Manual output tests and the speaker calibration tone: the rig's outputs, one at a time.

A lab checks a rig before an animal goes on it: does the speaker play the tone (and how loud,
to calibrate it), does the shock generator deliver the current into a test load. Each test is
a small program compiled and run exactly like a session, so nothing here plays anything a
session could not:

- the program is a protocol compiled for the rig (:func:`rig.run.session.plan_from_loaded`):
  a tone goes through the speaker calibration and ``max_level_db``; a shock through the one
  safety verifier (:mod:`rig.program.safety`) against the rig file's limits, then again when
  the engine arms and on every buffer the DAQ driver writes;
- it runs on :class:`rig.run.runner.Runner` with the session engine, so every way out (end,
  Ctrl-C, a device error) leaves the outputs low and the shock generator disarmed;
- it holds the rig's lock (:mod:`rig.run.rig_lock`): refused while a session runs, and a
  session is refused while a test runs.

Nothing is written to disk: the runner records into a counter (no session folder).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from rig.files.inputfile import InputError, Problem, problems_from_validation
from rig.files.protocol import protocol_from_text
from rig.files.rigfile import CalibrationPoint, RigFile, Speaker
from rig.run.abort import Abort
from rig.run.engine import RigDevices, RigEngine
from rig.run.rig_lock import holding_rig
from rig.run.runner import Runner
from rig.run.selftest import CountingRecording, NoShocker, close_safely
from rig.run.session import SessionPlan, build_each, plan_from_loaded

Kind = Literal["tone", "calibration", "shock"]
LEAD_S = 1.0  # before the output: the DAQ is running, the shock current is set
TAIL_S = 0.5  # after it: the output is seen to end
CUE_HZ = 1000.0  # the shock test's silent cue (the format pairs a shock with a CS)
OPTION_OF_FIELD = {  # protocol field -> the option or form field a user typed it in
    "frequency_hz": "--frequency-hz",
    "level_db": "--level-db",
    "current_ma": "--current-ma",
    "duration_s": "--duration-s",
    "repeat": "--count",
    "iti_s": "--interval-s",
    "volts": "--volts",
}


@dataclass
class OutputTestResult:
    """What a test did: its status (``complete`` or ``aborted``), a line for the user, and the
    stimulus events as the runner logged them (measured onsets and offsets)."""

    kind: Kind
    status: str
    summary: str
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "complete"


def _program(text: str, rig: RigFile, what: str) -> SessionPlan:
    """Compile a test program for ``rig``; its problems are named by the option a user set."""
    try:
        return plan_from_loaded(protocol_from_text(text, f"<{what}>"), rig)
    except InputError as exc:
        problems = [
            Problem(OPTION_OF_FIELD.get(p.path.rsplit(".", 1)[-1], p.path), p.message)
            for p in exc.problems
        ]
        raise InputError(what, problems) from None


def tone_test_plan(
    rig: RigFile, frequency_hz: float, level_db: float, duration_s: float = 2.0
) -> SessionPlan:
    """A tone at ``level_db`` dB SPL through the rig's speaker calibration."""
    text = (
        "protocol: tone-test\nversion: 1\nseed: 0\n"
        f"stimuli: {{tone: {{type: tone, frequency_hz: {frequency_hz!r}, "
        f"level_db: {level_db!r}, duration_s: {duration_s!r}, ramp_ms: 5}}}}\n"
        f"phases: [{{name: tone-test, trials: [{{cs: tone}}], pre_s: {LEAD_S}, "
        f"post_s: {TAIL_S}}}]\n"
    )
    return _program(text, rig, "tone test")


def calibration_tone_plan(
    rig: RigFile, frequency_hz: float, volts: float, duration_s: float = 3.0
) -> SessionPlan:
    """A tone of ``volts`` RMS at the speaker output, whatever the calibration says: what the
    speaker calibration assistant plays while the user reads the sound level meter. The rig's
    voltage limits apply (the calibration point is the tone's own, so the level is nominal)."""
    level = rig.safety.max_level_db
    try:
        point = CalibrationPoint(frequency_hz=frequency_hz, volts=volts, level_db=level)
    except ValidationError as exc:
        problems = problems_from_validation(exc)
        raise InputError(
            "speaker calibration",
            [Problem(OPTION_OF_FIELD.get(p.path, p.path), p.message) for p in problems],
        ) from None
    speaker = Speaker(calibration=[point], max_volts=rig.speaker.max_volts, extrapolate_octaves=0.0)
    probe = dataclasses.replace(rig, core=rig.core.model_copy(update={"speaker": speaker}))
    text = (
        "protocol: speaker-calibration\nversion: 1\nseed: 0\n"
        f"stimuli: {{tone: {{type: tone, frequency_hz: {frequency_hz!r}, "
        f"level_db: {level!r}, duration_s: {duration_s!r}, ramp_ms: 5}}}}\n"
        f"phases: [{{name: calibration, trials: [{{cs: tone}}], pre_s: {LEAD_S}, "
        f"post_s: {TAIL_S}}}]\n"
    )
    try:
        plan = _program(text, probe, "speaker calibration")
    except InputError as exc:
        problems = [
            Problem("--volts" if p.path == "--level-db" else p.path, p.message)
            for p in exc.problems
        ]
        raise InputError("speaker calibration", problems) from None
    return dataclasses.replace(plan, rig=probe)


def shock_test_plan(
    rig: RigFile,
    current_ma: float,
    duration_s: float = 1.0,
    count: int = 1,
    interval_s: float = 5.0,
) -> SessionPlan:
    """``count`` shocks of ``current_ma`` for ``duration_s`` into a load, ``interval_s`` apart
    (onset to onset), checked against the rig file's safety limits like any protocol."""
    cue = f"cue: {{type: tone, frequency_hz: {CUE_HZ!r}, level_db: 0, duration_s: {duration_s!r}}}"
    iti = max(interval_s - duration_s, 0.0)
    pre = max(LEAD_S, rig.safety.current_change_lead_s)
    text = (
        "protocol: shock-test\nversion: 1\nseed: 0\n"
        f"stimuli: {{{cue}, shock: {{type: shock, current_ma: {current_ma!r}, "
        f"duration_s: {duration_s!r}}}}}\n"
        f"phases: [{{name: shock-test, trials: [{{cs: cue, us: shock, us_onset_s: 0, "
        f"repeat: {count}}}], iti_s: {iti!r}, pre_s: {pre!r}, "
        f"post_s: {TAIL_S}}}]\n"
    )
    # The cue is never played: it is compiled against a speaker point of its own (so a rig
    # without a calibration can still test its shocker), then its sound is removed. The
    # shocks and every limit on them are the rig's own.
    silent = Speaker(calibration=[CalibrationPoint(frequency_hz=CUE_HZ, volts=0.01, level_db=0)])
    compile_rig = dataclasses.replace(rig, core=rig.core.model_copy(update={"speaker": silent}))
    plan = _program(text, compile_rig, "shock test")
    schedule = dataclasses.replace(plan.schedule, sounds=())
    return SessionPlan(plan.loaded, rig, plan.timeline, schedule)


class _Recording(CountingRecording):
    """Keeps every event the runner logs (the onsets and offsets the test reports)."""

    def __init__(self, schedule: Any) -> None:
        super().__init__(schedule)
        self.events: list[dict[str, Any]] = []

    def log_event(self, event: dict[str, Any], durable: bool = False) -> None:
        super().log_event(event, durable)
        self.events.append(event)


def run_output_test(
    kind: Kind, plan: SessionPlan, speed: float | None = 1.0, abort: Abort | None = None
) -> OutputTestResult:
    """Run a test program on the rig's DAQ (and, for a shock test, its shock generator).

    :class:`rig.run.rig_lock.RigBusy` while a session or another test uses the rig. The
    devices are left safe and closed whatever happens."""
    rig = plan.rig
    sections = ("daq", "shocker") if kind == "shock" else ("daq",)
    with holding_rig(rig):
        built, failed = build_each(plan, speed, f"{kind}-test", sections=sections)
        try:
            if failed:
                section, exc = next(iter(failed.items()))
                return OutputTestResult(kind, "aborted", f"{section}: {exc}")
            devices = RigDevices(
                daq=built["daq"],
                shocker=built["shocker"] if kind == "shock" else NoShocker(),
                camera=None,
                simulated=rig.simulated,
            )
            rec = _Recording(plan.schedule)
            engine = RigEngine(plan.schedule, devices, rig.safety)
            runner = Runner(plan.timeline, plan.schedule, engine, rec, rig.safety, abort=abort)
            result = runner.run()
        finally:
            close_safely(built)
    stimuli = [e for e in rec.events if e["kind"] in ("cs_on", "cs_off", "us_on", "us_off")]
    if result.status != "complete":
        return OutputTestResult(kind, result.status, result.reason, stimuli)
    return OutputTestResult(kind, "complete", _summary(kind, plan, rec.events), stimuli)


def _summary(kind: Kind, plan: SessionPlan, events: list[dict[str, Any]]) -> str:
    mode = plan.rig.mode
    if kind == "shock":
        on = [e["t_s"] for e in events if e["kind"] == "us_on"]
        off = [e["t_s"] for e in events if e["kind"] == "us_off"]
        currents = [e.get("readback_ma") for e in events if e["kind"] == "shock_current"]
        widths = ", ".join(f"{b - a:.3f} s" for a, b in zip(on, off, strict=False))
        stim = plan.protocol.stimuli["shock"]
        read = f"; read back {currents[-1]:g} mA" if currents and currents[-1] is not None else ""
        return (
            f"[{mode}] {len(on)} shock(s) at {stim.current_ma:g} mA delivered "
            f"({widths}){read}; shock generator disarmed"
        )
    on = [e["t_s"] for e in events if e["kind"] == "cs_on"]
    off = [e["t_s"] for e in events if e["kind"] == "cs_off"]
    tone = plan.protocol.stimuli["tone"]
    played = f"{off[0] - on[0]:.2f} s" if on and off else "no onset recorded"
    return f"[{mode}] {tone.frequency_hz:g} Hz tone played ({played})"


__all__ = [
    "OutputTestResult",
    "calibration_tone_plan",
    "run_output_test",
    "shock_test_plan",
    "tone_test_plan",
]
