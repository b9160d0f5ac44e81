"""``rig selftest``: is the rig ready for a session? Every check, one table, never a traceback.

What is checked, in order:

1. **Each device answers.** Every device section is built through its driver (as
   :func:`rig.session.build_devices` does) and its ``preflight()`` runs: the same checks the
   engine runs before every session. A device that cannot be built (no NI-DAQmx, no serial
   port, no Micro-Manager configuration) is a failed row, not a crash.
2. **Shock generator.** Its identity, then the smallest current the driver accepts
   (:data:`SELFTEST_CURRENT_MA`, 0 mA) is set and read back. The generator is never armed.
3. **Clocks.** The DAQ plays a :data:`CLOCK_TEST_S`-second schedule with no sound and no shock
   (only the camera trigger train and the microscope start pulse) and records its inputs:
   the two-photon frame clock must tick at the imaging rate, and the camera must deliver one
   frame per exposure edge at the trigger rate. The rates are the protocol's with
   ``--protocol``, else 30 Hz for both.
4. **Disk.** Free space where sessions are written must hold the session's estimated size
   (:func:`rig.plan.totals`) with :data:`DISK_HEADROOM` to spare; without a protocol, the
   estimate is for :data:`DEFAULT_SESSION_S` (an hour) at 30 fps video and 30 Hz imaging.

Whatever happens, every device built is left safe and closed: DAQ outputs low, shock generator
disarmed, cameras stopped.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rig.devices import BuildContext
from rig.ports import Edges, FrameSource, PreflightCheck
from rig.protocol import protocol_from_text
from rig.rigfile import RigFile
from rig.schedule import CAMERA_EXPOSURE, FRAME_CLOCK, OutputSchedule, expected_frames

SELFTEST_CURRENT_MA = 0.0  # the smallest current the drivers accept; never armed anyway
CLOCK_TEST_S = 3.0  # session time the clock test plays
DEFAULT_RATE_HZ = 30.0  # video and imaging rate without a protocol
DEFAULT_SESSION_S = 3600.0  # disk estimate without a protocol: an hour
DISK_HEADROOM = 1.25  # free space must exceed the estimate by this factor
RATE_TOLERANCE = 0.01  # measured frame clock rate within 1 % of the expected rate
STEP_S = 0.1
DRAIN_S = 1.0  # host time to wait for frames still on their way after the clock test

Status = Literal["pass", "fail", "skip"]
SECTIONS = ("daq", "shocker", "camera", "imaging")
STREAMS = {"camera": ("video", CAMERA_EXPOSURE), "imaging": ("imaging", FRAME_CLOCK)}


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


def one_line(exc: BaseException) -> str:
    """An exception as one readable line (its first non-empty line, or its type)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def run_selftest(
    rig: RigFile,
    plan: Any = None,
    out_dir: str | Path = "sessions",
    seconds: float = CLOCK_TEST_S,
) -> SelftestReport:
    """Build every device of ``rig``, check it, and close it again. Never raises for a device
    failure: each is a failed row. ``plan`` (a :class:`rig.session.SessionPlan`) sets the rates
    and the disk estimate; ``out_dir`` is where sessions will be written. A simulated rig runs
    as fast as it can (its clock test takes no real time)."""
    report = SelftestReport(rig.name, rig.mode)
    protocol = plan.protocol if plan is not None else None
    ctx = BuildContext(
        rig=rig,
        speed=None if rig.simulated else 1.0,
        seed=protocol.seed if protocol is not None else 0,
        animal="selftest",
        protocol=protocol,
    )
    built: dict[str, Any] = {}
    with _captured_log(report.log):
        try:
            _build_and_check(report, built, ctx, rig, plan, out_dir, seconds)
        finally:
            close_safely(built)
    return report


def _build_and_check(
    report: SelftestReport,
    built: dict[str, Any],
    ctx: BuildContext,
    rig: RigFile,
    plan: Any,
    out_dir: str | Path,
    seconds: float,
) -> None:
    not_built: dict[str, Check] = {}
    for section in SECTIONS:
        device = rig.device(section)
        if device is None:
            continue
        ctx.built = built
        try:
            built[section] = device.spec.build(section, device.config, ctx)
        except Exception as exc:
            not_built[section] = Check(section, f"{device.driver} driver", "fail", one_line(exc))
    report.checks += check_devices(built, rig, plan, out_dir, seconds, not_built)


class _LineHandler(logging.Handler):
    """Keeps each log record as one line (no traceback), without repeats."""

    def __init__(self, lines: list[str]):
        super().__init__(logging.WARNING)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.name}: {_flat(record.getMessage())}"
        if record.exc_info and record.exc_info[1] is not None:
            line += f" ({one_line(record.exc_info[1])})"
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
    plan: Any = None,
    out_dir: str | Path = "sessions",
    seconds: float = CLOCK_TEST_S,
    not_built: dict[str, Check] | None = None,
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
        checks += _clock_checks(built, answered, rig, plan, seconds)
    finally:
        _safe(built)
    checks.append(_disk(rig, plan, Path(out_dir)))
    return checks


# ----------------------------------------------------------------------------- checks


def _preflight(section: str, device: Any) -> list[Check]:
    try:
        results: list[PreflightCheck] = device.preflight()
    except Exception as exc:  # preflight() never raises; a third-party driver might
        return [Check(section, "preflight", "fail", one_line(exc))]
    if not results:
        return [Check(section, "preflight", "pass", "nothing to check")]
    return [Check(section, c.name, "pass" if c.ok else "fail", _flat(c.detail)) for c in results]


def _shocker_current(shocker: Any, answered: bool) -> Check:
    name = "identity + current"
    if not answered:
        return Check("shocker", name, "skip", "not run: the shock generator failed its pre-flight")
    try:
        identity = shocker.identify()
        readback = float(shocker.set_current(SELFTEST_CURRENT_MA))
    except Exception as exc:
        return Check("shocker", name, "fail", one_line(exc))
    return Check(
        "shocker",
        name,
        "pass",
        f"{identity}: set {SELFTEST_CURRENT_MA:g} mA, read back {readback:g} mA (not armed)",
    )


@dataclass
class _Recording:
    """What the clock test recorded."""

    schedule: OutputSchedule
    rising: dict[str, list[int]] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)
    faults: dict[str, list[str]] = field(default_factory=dict)


def _clock_checks(
    built: dict[str, Any], answered: dict[str, bool], rig: RigFile, plan: Any, seconds: float
) -> list[Check]:
    daq = built.get("daq")
    imaging_section = rig.device("imaging") is not None
    sources = {
        s: built[s] for s in STREAMS if s in built and answered[s] and built[s].delivers_frames
    }
    wanted = [("daq", "frame clock")] if imaging_section else []
    wanted += [(s, "frames") for s in sources]
    if daq is None or not answered.get("daq"):
        why = "not run: the DAQ failed its pre-flight" if daq is not None else "no DAQ"
        return [Check(dev, name, "skip", why) for dev, name in wanted] or []
    schedule = _test_schedule(daq.sample_rate_hz, rig, plan, seconds, imaging_section)
    try:
        rec = _record(daq, sources, schedule)
    except Exception as exc:
        return [Check("daq", "clock test", "fail", one_line(exc))]
    checks = []
    if imaging_section:
        checks.append(_frame_clock(rec))
    else:
        checks.append(Check("daq", "frame clock", "skip", "no imaging section in the rig file"))
    for section in sources:
        checks.append(_frames(section, rec))
    return checks


def _test_schedule(
    fs: float, rig: RigFile, plan: Any, seconds: float, imaging: bool
) -> OutputSchedule:
    video_hz, imaging_hz = DEFAULT_RATE_HZ, DEFAULT_RATE_HZ
    if plan is not None:
        video_hz = plan.schedule.camera_rate_hz
        imaging_hz = plan.schedule.imaging_rate_hz or DEFAULT_RATE_HZ
    return OutputSchedule(
        sample_rate_hz=fs,
        n_samples=round(seconds * fs),
        camera_rate_hz=video_hz,
        imaging_rate_hz=imaging_hz if imaging else None,
        speaker_calibration=rig.speaker.points(),
    )


def _record(daq: Any, sources: dict[str, FrameSource], schedule: OutputSchedule) -> _Recording:
    rec = _Recording(schedule, {CAMERA_EXPOSURE: [], FRAME_CLOCK: []})
    daq.configure(schedule)
    for section, source in sources.items():
        source.start(max(1, expected_frames(schedule, STREAMS[section][0])))
        rec.frames[section], rec.faults[section] = 0, []
    daq.start()
    duration = schedule.duration_s
    give_up = time.monotonic() + 2 * duration + 5.0
    t_s = 0.0
    while t_s < duration:
        t_s = daq.wait(min(t_s + STEP_S, duration))
        _take(rec, daq.read_edges(), sources)
        if time.monotonic() > give_up:
            raise TimeoutError(f"the DAQ clock reached only {t_s:.2f} s of {duration:g} s")
    daq.safe_state()
    _take(rec, daq.read_edges(), sources)
    deadline = time.monotonic() + DRAIN_S
    for section in sources:
        line = STREAMS[section][1]
        while rec.frames[section] < len(rec.rising[line]) and time.monotonic() < deadline:
            time.sleep(0.01)
            _take(rec, {}, {section: sources[section]})
    return rec


def _take(rec: _Recording, edges: dict[str, Edges], sources: dict[str, FrameSource]) -> None:
    for line, e in edges.items():
        if line in rec.rising:
            rec.rising[line] += e.samples[e.rising].tolist()
    for section, source in sources.items():
        rec.frames[section] += len(source.read_frames())
        drain: Callable[[], list] | None = getattr(source, "drain_faults", None)
        if callable(drain):
            rec.faults[section] += [f[1] if isinstance(f, tuple) else str(f) for f in drain()]


def _frame_clock(rec: _Recording) -> Check:
    sched = rec.schedule
    expected_hz = sched.imaging_rate_hz or DEFAULT_RATE_HZ
    edges = rec.rising[FRAME_CLOCK]
    expected = expected_frames(sched, "imaging")
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


def _frames(section: str, rec: _Recording) -> Check:
    stream, line = STREAMS[section]
    sched = rec.schedule
    rate = sched.camera_rate_hz if stream == "video" else sched.imaging_rate_hz
    triggers = expected_frames(sched, stream)
    edges, frames = len(rec.rising[line]), rec.frames[section]
    edge_name = "exposure edges" if stream == "video" else "frame clock edges"
    detail = f"{frames} frames, {edges} {edge_name}, {triggers} expected at {rate:g} Hz"
    faults = rec.faults.get(section) or []
    if faults:
        detail += f"; {faults[0]}" + (f" (+{len(faults) - 1} more)" if len(faults) > 1 else "")
    ok = edges > 0 and frames == edges and abs(edges - triggers) <= 1 and not faults
    name = "frames at trigger rate" if stream == "video" else "frames at frame clock"
    return Check(section, name, "pass" if ok else "fail", detail)


def _disk(rig: RigFile, plan: Any, out_dir: Path) -> Check:
    try:
        estimate, what = _disk_estimate(rig, plan)
        where = _existing(out_dir)
        free = shutil.disk_usage(where).free
    except Exception as exc:
        return Check("disk", "free space", "fail", one_line(exc))
    need = estimate * DISK_HEADROOM
    detail = (
        f"{_gb(free)} free at {where}; {what} needs ~{_gb(estimate)} "
        f"(+{DISK_HEADROOM - 1:.0%} headroom)"
    )
    return Check("disk", "free space", "pass" if free >= need else "fail", detail)


def _disk_estimate(rig: RigFile, plan: Any) -> tuple[int, str]:
    from rig.plan import totals
    from rig.session import plan_from_loaded

    if plan is not None:
        return int(totals(plan)["disk_estimate_bytes"]), f"the {plan.protocol.protocol} session"
    seconds = min(DEFAULT_SESSION_S, rig.safety.max_session_s)
    text = (
        "protocol: selftest-default\nversion: 1\nseed: 0\n"
        "stimuli: {tone: {type: tone, frequency_hz: 2000, level_db: 60, duration_s: 1}}\n"
        f"phases: [{{name: recording, duration_s: {seconds:g}}}]\n"
        f"recording: {{video: {{fps: {DEFAULT_RATE_HZ:g}}}, "
        f"imaging: {{frame_rate_hz: {DEFAULT_RATE_HZ:g}}}}}\n"
    )
    default = plan_from_loaded(protocol_from_text(text, "<selftest>"), rig)
    minutes = seconds / 60
    return int(totals(default)["disk_estimate_bytes"]), f"a {minutes:g}-min session"


def _existing(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def _flat(text: str) -> str:
    return " ".join(str(text).split())


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
