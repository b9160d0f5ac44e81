"""A session from files to folder: validate, compile, build the rig and run.

``prepare_session`` is what ``rig validate`` and ``rig plan`` run; ``run_session`` is ``rig run``
(the fold of the journal at its end is :mod:`rig.data.finalize`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rig.behaviour.live import write_live_scores
from rig.behaviour.rescore import score_session
from rig.data.finalize import finalize_session
from rig.data.folder import SessionFolder
from rig.data.store import SessionStore
from rig.devices import SECTIONS, BuildContext
from rig.files.inputfile import InputError, Problem, error_line
from rig.files.protocol import LoadedProtocol, load_protocol
from rig.files.rigfile import RigFile, load_rig
from rig.files.speaker import stimuli_problems
from rig.files.subject import LoadedSubject, SessionMetadata, metadata_attrs
from rig.ports import FrameDiskProvider, TruthSource
from rig.program.recording import recording_problems
from rig.program.safety import limit_problems
from rig.program.schedule import OutputSchedule, compile_schedule
from rig.program.timeline import Timeline, compile_timeline
from rig.run.abort import Abort
from rig.run.engine import RigDevices, RigEngine
from rig.run.rig_lock import holding_rig
from rig.run.runner import Runner
from rig.run.signals import SessionResult
from rig.run.sinks import LiveScoring, Preview

SIM_ANIMALS = ".sim-animals"  # under OUT: what simulated animals learned, between sessions


@dataclass(frozen=True)
class SessionPlan:
    """A validated protocol compiled for one rig: everything a run needs but the devices."""

    loaded: LoadedProtocol
    rig: RigFile
    timeline: Timeline
    schedule: OutputSchedule

    @property
    def protocol(self):
        return self.loaded.protocol


def plan_from_loaded(loaded: LoadedProtocol, rig: RigFile) -> SessionPlan:
    """Compile a loaded protocol for ``rig``; raises :class:`InputError` listing everything the
    rig cannot do as asked: a safety limit exceeded, a sound it cannot play, a recording it has
    no device for. ``rig validate``, ``plan`` and ``run`` and the GUI designer all run this."""
    timeline = compile_timeline(loaded.protocol)
    sounds = rig.sound_limits
    schedule = compile_schedule(
        loaded.protocol, timeline, sounds.sample_rate_hz, sounds.calibration, sounds
    )
    problems = [
        *limit_problems(loaded.protocol, timeline, schedule, rig.safety),
        *stimuli_problems(loaded.protocol.stimuli, sounds),
        *recording_problems(loaded.protocol, rig),
    ]
    if problems:
        raise InputError(loaded.file, problems)
    return SessionPlan(loaded, rig, timeline, schedule)


def prepare_session(protocol_path: str | Path, rig_path: str | Path | None = None) -> SessionPlan:
    """Load, validate and compile. Raises :class:`InputError` for any bad input."""
    rig = load_rig(rig_path)
    loaded = load_protocol(protocol_path)
    return plan_from_loaded(loaded, rig)


def build_each(
    plan: SessionPlan,
    speed: float | None,
    animal: str,
    state_dir: str | None = None,
    sections: tuple[str, ...] = SECTIONS,
) -> tuple[dict[str, Any], dict[str, Exception]]:
    """Build every device the rig file names (of ``sections``), through its driver, section by
    section (daq first: the others may need it). Returns the devices built and, per section,
    why a driver could not build its device."""
    ctx = BuildContext(
        rig=plan.rig,
        speed=speed,
        seed=plan.protocol.seed,
        animal=animal,
        protocol=plan.protocol,
        state_dir=state_dir,
    )
    built: dict[str, Any] = {}
    failed: dict[str, Exception] = {}
    try:
        for section in SECTIONS:
            device = plan.rig.device(section) if section in sections else None
            if device is None:
                continue
            ctx.built = built
            try:
                built[section] = device.spec.build(section, device.config, ctx)
            except Exception as exc:
                failed[section] = exc
    except BaseException:  # interrupted while building: leave nothing open
        for dev in built.values():
            dev.close()
        raise
    return built, failed


def build_devices(
    plan: SessionPlan, speed: float | None, animal: str, state_dir: str | None = None
) -> RigDevices:
    """Build every device the rig file names, through its driver; the first failure raises
    (after closing what was built)."""
    built, failed = build_each(plan, speed, animal, state_dir)
    if failed:
        for dev in built.values():
            dev.close()
        raise next(iter(failed.values()))
    disks = [d.frame_disk() for d in built.values() if isinstance(d, FrameDiskProvider)]
    return RigDevices(
        disk=disks[0] if disks else None,
        daq=built["daq"],
        shocker=built["shocker"],
        camera=built["camera"],
        imaging=built.get("imaging"),
        simulated=plan.rig.simulated,
    )


def session_attrs(
    plan: SessionPlan,
    animal: str,
    speed: float | None,
    subject: LoadedSubject | None = None,
    metadata: SessionMetadata | None = None,
) -> dict[str, Any]:
    """The root attributes a new session starts with (``docs/format.md``)."""
    return {
        **metadata_attrs(subject, metadata or SessionMetadata()),
        "simulated": plan.rig.simulated,
        "mode": plan.rig.mode,
        "animal": animal,
        "protocol_name": plan.protocol.protocol,
        "protocol": plan.protocol.model_dump(mode="json"),
        "protocol_text": plan.loaded.text,
        "protocol_sha256": plan.loaded.sha256,
        "protocol_file": plan.loaded.file,
        "seed": plan.protocol.seed,
        "rig_name": plan.rig.name,
        "rig_file": plan.rig.file,
        "rig_text": plan.rig.text,
        "devices": {
            section: {"driver": d.driver, **d.info.model_dump(exclude_none=True)}
            for section, d in plan.rig.devices.items()
        },
        "speed": "fast" if speed is None else speed,
        "sample_rate_hz": plan.schedule.sample_rate_hz,
        "timeline": plan.timeline.to_dict(),
        "safety": plan.rig.safety.model_dump(),
        "freezing_params": plan.rig.freezing.model_dump(mode="json"),
    }


def run_session(
    plan: SessionPlan,
    out_dir: str | Path,
    animal: str,
    speed: float | None = 1.0,
    on_runner: Callable[[Runner], None] | None = None,
    state_dir: str | Path | None = None,
    abort: Abort | None = None,
    subject: LoadedSubject | None = None,
    metadata: SessionMetadata | None = None,
) -> tuple[Path, SessionResult]:
    """Run one session; returns its folder and result.

    ``subject`` (a subject file, :func:`rig.files.subject.load_subject`) and ``metadata``
    (experimenter, institution, lab, notes) are stored with the session from its start.

    ``on_runner`` connects to the runner's signals before it starts; ``abort`` is the request
    the caller's Abort button or signal handlers share (made before any device); simulated
    animals keep what they learned under ``state_dir`` (default ``OUT/.sim-animals``).
    """
    # no output test meanwhile (and on a LIVE rig no other session)
    with holding_rig(plan.rig, shared=plan.rig.simulated):
        return _run_session(
            plan, out_dir, animal, speed, on_runner, state_dir, abort, subject, metadata
        )


def _run_session(
    plan: SessionPlan,
    out_dir: str | Path,
    animal: str,
    speed: float | None,
    on_runner: Callable[[Runner], None] | None,
    state_dir: str | Path | None,
    abort: Abort | None,
    subject: LoadedSubject | None,
    metadata: SessionMetadata | None,
) -> tuple[Path, SessionResult]:
    state = Path(state_dir) if state_dir is not None else Path(out_dir) / SIM_ANIMALS
    devices = build_devices(plan, speed, animal, str(state))
    store = None
    try:
        attrs = session_attrs(plan, animal, speed, subject, metadata)
        store = _create_store(plan, out_dir, animal, speed, attrs, devices)
        engine = RigEngine(
            plan.schedule,
            devices,
            plan.rig.safety,
            {t.index: t.phase for t in plan.timeline.trials},
        )
        runner = Runner(plan.timeline, plan.schedule, engine, store, plan.rig.safety, abort=abort)
        scoring = LiveScoring(plan.rig.freezing, plan.timeline, plan.schedule, runner.signals)
        runner.sinks += [scoring, Preview(runner.signals)]
        if on_runner is not None:
            on_runner(runner)
        result = runner.run()
        truth = {}
        for device in (devices.daq, devices.camera, devices.imaging):
            if isinstance(device, TruthSource):
                truth.update(device.truth())
    finally:
        devices.close()
        if store is not None:
            store.close_journal()
    folder = store.folder
    try:
        _save(folder, result, truth, scoring)
    finally:
        folder.release_writer()  # final, or left for rig recover: no longer this process's
    return folder.path, result


def _create_store(
    plan: SessionPlan,
    out_dir: str | Path,
    animal: str,
    speed: float | None,
    attrs: dict[str, Any],
    devices: RigDevices,
) -> SessionStore:
    """The new session's folder and store; :class:`InputError` naming ``out_dir`` when no
    session can be written there (read-only, full, not a folder)."""
    try:
        return SessionStore.create(
            Path(out_dir),
            animal,
            plan.protocol.protocol,
            attrs,
            plan.rig.core.storage.queue_mb,
            devices.disk,
            lossless=_waits_for_writers(plan, speed),
        )
    except OSError as exc:
        raise InputError(
            str(out_dir), [Problem("", f"cannot write a session here: {error_line(exc)}")]
        ) from None


def _save(
    folder: SessionFolder,
    result: SessionResult,
    truth: dict[str, np.ndarray],
    scoring: LiveScoring,
) -> None:
    """After the run: truth, motion index, the fold of the journal, the freezing scores.

    A disk that fails (full, gone) at any of these steps ends the session ``aborted`` with
    the steps named, never a traceback; what could not be folded in stays in the journal,
    and the session reads as interrupted until ``rig recover`` (run once there is room)."""
    failed: list[str] = []
    error: OSError | None = None
    try:
        if truth:
            folder.write_truth(truth)
    except OSError as exc:
        failed, error = [*failed, "saving the simulated truth"], exc
    try:
        write_live_scores(folder, scoring.scorer)
    except OSError as exc:
        failed, error = [*failed, "saving the motion index"], exc
    if failed:
        _failed(result, failed, error)
    try:
        finalize_session(folder, result.status, result.reason, result.accounting)
    except OSError as exc:
        _failed(result, ["folding the journal into session.zarr"], exc)
        result.reason += f"; run `rig recover {folder}` once the disk has room"
        return
    if scoring.scored:
        try:
            score_session(folder)
        except ValueError as exc:  # e.g. too short to calibrate: the data is still complete
            result.reason += f" (freezing not scored: {exc})"
        except OSError as exc:
            _failed(result, ["saving the freezing scores"], exc)
            with contextlib.suppress(OSError):  # the data is all there; say why it ended
                folder.update_attrs(status=result.status, end_reason=result.reason)


def _failed(result: SessionResult, steps: list[str], exc: OSError | None) -> None:
    """The session ends aborted: ``steps`` could not be written (``exc``: the last error)."""
    what = " and ".join(dict.fromkeys(steps))
    if result.status == "aborted":
        result.reason += f"; {what} failed too"
    else:
        result.reason = f"{what} failed: {error_line(exc or 'error')}"
    result.status = "aborted"


def _waits_for_writers(plan: SessionPlan, speed: float | None) -> bool:
    """``--fast`` on the simulated rig: the clock waits for the frame writers, so a busy machine
    changes how long a run takes, never its data. Not with an injected ``slow_disk``, whose
    point is a writer that falls behind (and whose delay runs on that same clock)."""
    slow_disk = any(f.kind == "slow_disk" for f in plan.rig.core.faults)
    return plan.rig.simulated and speed is None and not slow_disk
