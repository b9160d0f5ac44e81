"""``rig selftest``: is the rig ready for a session? Every check, one table, never a traceback.

What is checked, in order:

1. **Each device answers.** Every device section is built through its driver (the builder
   sessions use, :func:`rig.run.session.build_each`) and its ``preflight()`` runs: the same checks
   the runner runs before every session. A device that cannot be built (no NI-DAQmx, no serial
   port, no Micro-Manager configuration) is a failed row, not a crash.
2. **Shock generator.** Its identity, then the smallest current the driver accepts
   (:data:`SELFTEST_CURRENT_MA`, 0 mA) is set and read back. The generator is never armed.
3. **Clocks.** The session runner (:class:`rig.run.runner.Runner`, the one every session runs
   on) plays a :data:`CLOCK_TEST_S`-second self-test program, compiled like any protocol, with
   no sound and no shock (only the camera trigger train and the microscope start pulse), into a
   recorder that counts instead of writing: the two-photon frame clock must tick at the imaging
   rate, and the camera must deliver one frame per exposure edge at the trigger rate. The rates
   are the protocol's with ``--protocol``, else 30 Hz for both.
4. **Disk.** Free space where sessions are written must hold the session's estimated size
   (:func:`rig.run.plan.totals`) with :data:`DISK_HEADROOM` to spare; without a protocol, the
   estimate is for ``--minutes`` (default :data:`DEFAULT_SESSION_S`, 30 minutes: a conditioning
   day of the driving study) at 30 fps video and 30 Hz imaging, and the check says so.

Whatever happens, every device built is left safe and closed: DAQ outputs low, shock generator
disarmed, cameras stopped.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rig.data.sync import FrameAccounting
from rig.devices import SECTIONS
from rig.files.inputfile import error_line
from rig.files.protocol import protocol_from_text
from rig.files.rigfile import RigFile
from rig.ports import Edges, Frame, PreflightCheck, StreamInfo
from rig.program.schedule import (
    CAMERA_EXPOSURE,
    FRAME_CLOCK,
    IMAGING,
    STREAM_EDGE_LINE,
    VIDEO,
    OutputSchedule,
    compile_schedule,
    expected_frames,
)
from rig.run.engine import RigDevices, RigEngine
from rig.run.runner import Runner

SELFTEST_CURRENT_MA = 0.0  # the smallest current the drivers accept; never armed anyway
CLOCK_TEST_S = 3.0  # session time the clock test plays
DEFAULT_RATE_HZ = 30.0  # video and imaging rate without a protocol
DEFAULT_SESSION_S = 1800.0  # disk estimate without a protocol: half an hour
DISK_HEADROOM = 1.25  # free space must exceed the estimate by this factor
RATE_TOLERANCE = 0.01  # measured frame clock rate within 1 % of the expected rate

Status = Literal["pass", "fail", "skip"]
STREAM_OF_SECTION = {"camera": VIDEO, "imaging": IMAGING}  # rig-file section -> its stream


@dataclass(frozen=True)
class Check:
    """One row of the table. ``skip``: not applicable, or not run because of a failure above."""

    device: str
    name: str
    status: Status
    detail: str = ""


@dataclass
class SelftestReport:
    """The outcome of a self-test: passes when no row failed."""

    rig: str
    mode: str  # SIMULATED or LIVE
    checks: list[Check] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    """Warnings the drivers logged meanwhile, one line each, without repeats (``--verbose``)."""

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def summary(self) -> str:
        """One line: passed, or how many checks failed and the first failure's reason."""
        if self.ok:
            return f"selftest passed: {len(self.checks)} checks on {self.mode} rig {self.rig}"
        first = self.failures[0]
        return (
            f"selftest failed: {len(self.failures)} of {len(self.checks)} checks failed; "
            f"first: {first.device} {first.name}: {first.detail}"
        )


def run_selftest(
    rig: RigFile,
    plan: Any = None,
    out_dir: str | Path = "sessions",
    seconds: float = CLOCK_TEST_S,
    session_s: float = DEFAULT_SESSION_S,
) -> SelftestReport:
    """Build every device of ``rig``, check it, and close it again. Never raises for a device
    failure: each is a failed row. ``plan`` (a :class:`rig.run.session.SessionPlan`) sets the rates
    and the disk estimate (without one: a ``session_s`` session at 30 Hz); ``out_dir`` is where
    sessions will be written. A simulated rig runs as fast as it can (its clock test takes no
    real time)."""
    from rig.run.session import build_each

    report = SelftestReport(rig.name, rig.mode)
    program = selftest_program(rig, plan, seconds)
    built: dict[str, Any] = {}
    with _captured_log(report.log):
        try:
            speed = None if rig.simulated else 1.0
            built, failed = build_each(program, speed, "selftest")
            not_built = {
                section: Check(
                    section, f"{rig.device(section).driver} driver", "fail", error_line(e)
                )
                for section, e in failed.items()
            }
            report.checks += check_devices(built, rig, plan, out_dir, program, not_built, session_s)
        finally:
            close_safely(built)
    return report


def selftest_program(rig: RigFile, plan: Any, seconds: float) -> Any:
    """The self-test's program: ``seconds`` of recording, no sound, no shock, at the rates of
    ``plan`` (else :data:`DEFAULT_RATE_HZ`), compiled for ``rig`` like any protocol (its one
    stimulus, which the format requires, is never played, so it is not checked against the
    speaker; the runner's safety check before arming still runs)."""
    from rig.program.timeline import compile_timeline
    from rig.run.session import SessionPlan

    video_hz, imaging_hz = DEFAULT_RATE_HZ, DEFAULT_RATE_HZ
    if plan is not None:
        video_hz = plan.schedule.camera_rate_hz
        imaging_hz = plan.schedule.imaging_rate_hz or DEFAULT_RATE_HZ
    imaging = f", imaging: {{frame_rate_hz: {imaging_hz!r}}}" if rig.device("imaging") else ""
    text = (
        "protocol: selftest\nversion: 1\nseed: 0\n"
        "stimuli: {unused: {type: tone, frequency_hz: 1000, level_db: 0, duration_s: 1}}\n"
        f"phases: [{{name: selftest, duration_s: {seconds!r}}}]\n"
        f"recording: {{video: {{fps: {video_hz!r}}}{imaging}}}\n"
    )
    loaded = protocol_from_text(text, "<selftest>")
    timeline = compile_timeline(loaded.protocol)
    sounds = rig.sound_limits
    schedule = compile_schedule(loaded.protocol, timeline, sounds.sample_rate_hz)
    return SessionPlan(loaded, rig, timeline, schedule)


class _LineHandler(logging.Handler):
    """Keeps each log record as one line (no traceback), without repeats."""

    def __init__(self, lines: list[str]):
        super().__init__(logging.WARNING)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.name}: {error_line(record.getMessage())}"
        if record.exc_info and record.exc_info[1] is not None:
            line += f" ({error_line(record.exc_info[1])})"
        if line not in self.lines:
            self.lines.append(line)


@contextlib.contextmanager
def _captured_log(lines: list[str]):
    """Drivers log their own failures (with tracebacks) on the way out, e.g. a safe state
    without NI-DAQmx; the self-test reports in rows, so keep those records as single lines."""
    root = logging.getLogger()
    handler = _LineHandler(lines)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


def check_devices(
    built: dict[str, Any],
    rig: RigFile,
    plan: Any,
    out_dir: str | Path,
    program: Any,
    not_built: dict[str, Check] | None = None,
    session_s: float = DEFAULT_SESSION_S,
) -> list[Check]:
    """Every check on devices already built (by section), in the order of the module docstring.

    ``not_built`` holds a failed row for each section whose driver could not build its device.
    Leaves the DAQ outputs low and the shock generator disarmed; does not close anything."""
    checks: list[Check] = []
    answered: dict[str, bool] = {}
    for section in SECTIONS:
        if not_built and section in not_built:
            checks.append(not_built[section])
        if section in built:
            rows = _preflight(section, built[section])
            checks += rows
            answered[section] = all(c.status == "pass" for c in rows)
    try:
        if "shocker" in built:
            checks.append(_shocker_current(built["shocker"], answered["shocker"]))
        checks += _clock_checks(built, answered, rig, program)
    finally:
        _safe(built)
    checks.append(_disk(rig, plan, Path(out_dir), session_s))
    return checks


# ----------------------------------------------------------------------------- checks


def _preflight(section: str, device: Any) -> list[Check]:
    try:
        results: list[PreflightCheck] = device.preflight()
    except Exception as exc:  # preflight() never raises; a third-party driver might
        return [Check(section, "preflight", "fail", error_line(exc))]
    if not results:
        return [Check(section, "preflight", "pass", "nothing to check")]
    return [
        Check(section, c.name, "pass" if c.ok else "fail", error_line(c.detail)) for c in results
    ]


def _shocker_current(shocker: Any, answered: bool) -> Check:
    name = "identity + current"
    if not answered:
        return Check("shocker", name, "skip", "not run: the shock generator failed its pre-flight")
    try:
        identity = shocker.identify()
        readback = float(shocker.set_current(SELFTEST_CURRENT_MA))
    except Exception as exc:
        return Check("shocker", name, "fail", error_line(exc))
    return Check(
        "shocker",
        name,
        "pass",
        f"{identity}: set {SELFTEST_CURRENT_MA:g} mA, read back {readback:g} mA (not armed)",
    )


class _CountingWriter:
    """Counts a stream's frames instead of writing them."""

    def __init__(self, name: str, info: StreamInfo, expected: int) -> None:
        self.info = info
        self.accounting = FrameAccounting(name, expected)
        self.error: BaseException | None = None

    def append(self, frame: Frame) -> bool:
        self.accounting.received += 1
        self.accounting.written += 1
        return True


class CountingRecording:
    """The self-test's recorder (a :class:`rig.run.runner.SessionRecorder` that writes
    nothing): the rising edges of each line, the frames of each stream, the faults."""

    def __init__(self, schedule: OutputSchedule) -> None:
        self.schedule = schedule
        self.rising: dict[str, list[int]] = {CAMERA_EXPOSURE: [], FRAME_CLOCK: []}
        self.writers: dict[str, _CountingWriter] = {}
        self.faults: list[str] = []

    def add_stream(self, name: str, info: StreamInfo, expected_frames: int) -> _CountingWriter:
        self.writers[name] = _CountingWriter(name, info, expected_frames)
        return self.writers[name]

    def append_edges(self, line: str, edges: Edges) -> None:
        self.rising.setdefault(line, []).extend(edges.samples[edges.rising].tolist())

    def log_event(self, event: dict[str, Any], durable: bool = False) -> None:
        if event["kind"] == "fault":
            self.faults.append(error_line(event["detail"]))

    def close_writers(self) -> dict[str, FrameAccounting]:
        return {name: w.accounting for name, w in self.writers.items()}

    def frames(self, stream: str) -> int:
        writer = self.writers.get(stream)
        return writer.accounting.received if writer is not None else 0

    def stream_faults(self, stream: str) -> list[str]:
        return [f.removeprefix(f"{stream}: ") for f in self.faults if f.startswith(f"{stream}: ")]


class NoShocker:
    """The clock test's shock generator: the program has no shock, so nothing is sent to the
    real one (checked on its own row); never armed, every heartbeat answered."""

    simulated = True

    def preflight(self) -> list[PreflightCheck]:
        return []

    def identify(self) -> str:
        return "none"

    def set_current(self, current_ma: float) -> float:
        return current_ma

    def arm(self) -> None:
        raise RuntimeError("the self-test never arms a shock generator")

    def disarm(self) -> None:
        pass

    def heartbeat(self) -> None:
        pass

    def close(self) -> None:
        pass


def _clock_checks(
    built: dict[str, Any], answered: dict[str, bool], rig: RigFile, program: Any
) -> list[Check]:
    daq = built.get("daq")
    imaging_section = rig.device("imaging") is not None
    sources = {
        s: built[s]
        for s in ("camera", "imaging")
        if s in built and answered[s] and built[s].delivers_frames
    }
    wanted = [("daq", "frame clock")] if imaging_section else []
    wanted += [(s, "frames") for s in sources]
    if daq is None or not answered.get("daq"):
        why = "not run: the DAQ failed its pre-flight" if daq is not None else "no DAQ"
        return [Check(dev, name, "skip", why) for dev, name in wanted] or []
    rec = CountingRecording(program.schedule)
    devices = RigDevices(
        daq=daq,
        shocker=NoShocker(),
        camera=sources.get("camera"),
        imaging=sources.get("imaging"),
        simulated=rig.simulated,
    )
    engine = RigEngine(program.schedule, devices, rig.safety)
    result = Runner(program.timeline, program.schedule, engine, rec, rig.safety).run()
    if result.status != "complete":
        return [Check("daq", "clock test", "fail", result.reason)]
    checks = []
    if imaging_section:
        checks.append(_frame_clock(rec))
    else:
        checks.append(Check("daq", "frame clock", "skip", "no imaging section in the rig file"))
    for section in sources:
        checks.append(_frames(section, rec))
    return checks


def _frame_clock(rec: CountingRecording) -> Check:
    sched = rec.schedule
    expected_hz = sched.imaging_rate_hz or DEFAULT_RATE_HZ
    edges = rec.rising[FRAME_CLOCK]
    expected = expected_frames(sched, IMAGING)
    seconds = sched.duration_s
    if not edges:
        return Check(
            "daq",
            "frame clock",
            "fail",
            f"no frame clock edges in {seconds:g} s (expected {expected} at {expected_hz:g} Hz): "
            "is the microscope's frame clock wired to the frame_clock input and started by "
            "imaging_start?",
        )
    rate = _rate(edges, sched.sample_rate_hz)
    detail = f"{len(edges)} edges in {seconds:g} s, {rate:.2f} Hz (expected {expected_hz:g} Hz)"
    ok = abs(len(edges) - expected) <= max(1, round(0.02 * expected)) and (
        abs(rate - expected_hz) <= RATE_TOLERANCE * expected_hz
    )
    return Check("daq", "frame clock", "pass" if ok else "fail", detail)


def _rate(edges: list[int], fs: float) -> float:
    if len(edges) < 2 or edges[-1] == edges[0]:
        return 0.0
    return (len(edges) - 1) * fs / (edges[-1] - edges[0])


def _frames(section: str, rec: CountingRecording) -> Check:
    stream = STREAM_OF_SECTION[section]
    line = STREAM_EDGE_LINE[stream]
    sched = rec.schedule
    rate = sched.camera_rate_hz if stream == VIDEO else sched.imaging_rate_hz
    triggers = expected_frames(sched, stream)
    edges, frames = len(rec.rising[line]), rec.frames(stream)
    edge_name = "exposure edges" if stream == VIDEO else "frame clock edges"
    detail = f"{frames} frames, {edges} {edge_name}, {triggers} expected at {rate:g} Hz"
    faults = rec.stream_faults(stream)
    if faults:
        detail += f"; {faults[0]}" + (f" (+{len(faults) - 1} more)" if len(faults) > 1 else "")
    ok = edges > 0 and frames == edges and abs(edges - triggers) <= 1 and not faults
    name = "frames at trigger rate" if stream == VIDEO else "frames at frame clock"
    return Check(section, name, "pass" if ok else "fail", detail)


def _disk(rig: RigFile, plan: Any, out_dir: Path, session_s: float) -> Check:
    try:
        estimate, what = _disk_estimate(rig, plan, session_s)
        where = _existing(out_dir)
        free = shutil.disk_usage(where).free
    except Exception as exc:
        return Check("disk", "free space", "fail", error_line(exc))
    need = estimate * DISK_HEADROOM
    detail = (
        f"{_gb(free)} free at {where}; {what} needs ~{_gb(estimate)} "
        f"(+{DISK_HEADROOM - 1:.0%} headroom)"
    )
    return Check("disk", "free space", "pass" if free >= need else "fail", detail)


def _disk_estimate(rig: RigFile, plan: Any, session_s: float) -> tuple[int, str]:
    from rig.run.plan import totals
    from rig.run.session import plan_from_loaded

    if plan is not None:
        return int(totals(plan)["disk_estimate_bytes"]), f"the {plan.protocol.protocol} session"
    seconds = min(session_s, rig.safety.max_session_s)
    text = (
        "protocol: selftest-default\nversion: 1\nseed: 0\n"
        "stimuli: {tone: {type: tone, frequency_hz: 2000, level_db: 60, duration_s: 1}}\n"
        f"phases: [{{name: recording, duration_s: {seconds:g}}}]\n"
        f"recording: {{video: {{fps: {DEFAULT_RATE_HZ:g}}}, "
        f"imaging: {{frame_rate_hz: {DEFAULT_RATE_HZ:g}}}}}\n"
    )
    default = plan_from_loaded(protocol_from_text(text, "<selftest>"), rig)
    minutes = seconds / 60
    what = f"a {minutes:g}-min session at {DEFAULT_RATE_HZ:g} Hz (--protocol or --minutes)"
    return int(totals(default)["disk_estimate_bytes"]), what


def _existing(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


# ----------------------------------------------------------------------------- safety


def _safe(built: dict[str, Any]) -> None:
    """DAQ outputs low, shock generator disarmed, cameras stopped. Never raises."""
    if "daq" in built:
        with contextlib.suppress(Exception):
            built["daq"].safe_state()
    if "shocker" in built:
        with contextlib.suppress(Exception):
            built["shocker"].disarm()
    for section in ("camera", "imaging"):
        if section in built:
            with contextlib.suppress(Exception):
                built[section].stop()


def close_safely(built: dict[str, Any]) -> None:
    """Leave every device safe, then close it (cameras first, the DAQ last: its ``close()`` is
    a safe state too). Never raises."""
    if "shocker" in built:
        with contextlib.suppress(Exception):
            built["shocker"].disarm()
    for section in ("camera", "imaging", "shocker", "daq"):
        if section in built:
            with contextlib.suppress(Exception):
                built[section].close()


# ----------------------------------------------------------------------------- output


def table(report: SelftestReport) -> str:
    """The report as a plain-text table, one row per check."""
    header = ("DEVICE", "CHECK", "RESULT", "DETAIL")
    rows = [(c.device, c.name, c.status.upper(), c.detail) for c in report.checks]
    w0 = max(len(header[0]), *(len(r[0]) for r in rows)) if rows else len(header[0])
    w1 = max(len(header[1]), *(len(r[1]) for r in rows)) if rows else len(header[1])
    lines = [f"[{report.mode}] rig {report.rig}: selftest"]
    for r in (header, *rows):
        lines.append(f"{r[0]:<{w0}}  {r[1]:<{w1}}  {r[2]:<6}  {r[3]}".rstrip())
    return "\n".join(lines)
