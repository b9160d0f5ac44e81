"""A session from files to folder: validate, compile, build the rig, run, and fold the journal.

``prepare_session`` is what ``rig validate`` and ``rig plan`` run; ``run_session`` is ``rig run``;
``finalize_session`` turns a session's journal into its final Zarr layout, at the end of a run
and in ``rig recover`` after a crash.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from rig.devices import SECTIONS, BuildContext
from rig.inputfile import InputError, Problem
from rig.ports import FrameDiskProvider, TruthSource
from rig.protocol import LoadedProtocol, load_protocol
from rig.recording import recording_problems
from rig.rigfile import RigFile, load_rig
from rig.run.abort import Abort
from rig.run.engine import RigDevices, RigEngine
from rig.run.runner import Runner
from rig.run.signals import SessionResult
from rig.run.sinks import LiveScoring, Preview
from rig.safety import limit_problems
from rig.schedule import STREAM_EDGE_LINE, OutputSchedule, compile_schedule
from rig.scoring import score_session, write_motion
from rig.speaker import stimuli_problems
from rig.store import (
    SessionStore,
    read_index_journal,
    read_progress,
    read_root_attrs,
    trim_frames,
    update_root_attrs,
    utc_now,
    write_truth,
)
from rig.sync import FrameAccounting, synchronise
from rig.timeline import Timeline, compile_timeline

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
    plan: SessionPlan, speed: float | None, animal: str, state_dir: str | None = None
) -> tuple[dict[str, Any], dict[str, Exception]]:
    """Build every device the rig file names, through its driver, section by section (daq
    first: the others may need it). Returns the devices built and, per section, why a driver
    could not build its device."""
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
            device = plan.rig.device(section)
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


def session_attrs(plan: SessionPlan, animal: str, speed: float | None) -> dict[str, Any]:
    return {
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
) -> tuple[Path, SessionResult]:
    """Run one session; returns its folder and result.

    ``on_runner`` connects to the runner's signals before it starts; ``abort`` is the request
    the caller's Abort button or signal handlers share (made before any device); simulated
    animals keep what they learned under ``state_dir`` (default ``OUT/.sim-animals``).
    """
    state = Path(state_dir) if state_dir is not None else Path(out_dir) / SIM_ANIMALS
    devices = build_devices(plan, speed, animal, str(state))
    store = None
    try:
        store = SessionStore.create(
            Path(out_dir),
            animal,
            plan.protocol.protocol,
            session_attrs(plan, animal, speed),
            plan.rig.core.storage.queue_mb,
            devices.disk,
            lossless=_waits_for_writers(plan, speed),
        )
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
    if truth:
        write_truth(store.paths.zarr, truth)
    if scoring.scorer is not None and scoring.scorer.motion:
        write_motion(
            store.paths.zarr,
            np.array(scoring.scorer.device_index),
            np.array(scoring.scorer.motion),
            plan.rig.freezing.model_dump(mode="json"),
        )
    finalize_session(store.folder, result.status, result.reason, result.accounting)
    if scoring.scored:
        try:
            score_session(store.folder)
        except ValueError as exc:  # e.g. too short to calibrate: the data is still complete
            result.reason += f" (freezing not scored: {exc})"
    return store.folder, result


# ----------------------------------------------------------------------------- journal


def read_events(folder: Path) -> list[dict[str, Any]]:
    """Events from the journal; a half-written last line (a crash) is ignored."""
    path = folder / "journal" / "events.jsonl"
    events = []
    if not path.exists():
        return events
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return events


def read_edge_journal(folder: Path, line: str) -> tuple[np.ndarray, np.ndarray]:
    path = folder / "journal" / f"edges-{line}.i64"
    if not path.exists():
        return np.empty(0, np.int64), np.empty(0, bool)
    raw = path.read_bytes()
    packed = np.frombuffer(raw[: len(raw) // 8 * 8], dtype=np.int64)
    return packed // 2, (packed % 2).astype(bool)


def finalize_session(
    folder: Path,
    status: str,
    reason: str,
    accounting: dict[str, FrameAccounting] | None = None,
) -> dict[str, Any]:
    """Fold the journal into ``session.zarr``: edges, events, timestamps, status. Idempotent."""
    zpath = folder / "session.zarr"
    attrs = read_root_attrs(zpath)
    fs = float(attrs["sample_rate_hz"])
    root = zarr.open_group(str(zpath), mode="a")
    edges_group = root.require_group("edges")
    edges_group.attrs["sample_rate_hz"] = fs
    edges: dict[str, np.ndarray] = {}
    for f in sorted((folder / "journal").glob("edges-*.i64")):
        line = f.stem.removeprefix("edges-")
        samples, rising = read_edge_journal(folder, line)
        g = edges_group.require_group(line)
        g.create_array("samples", data=samples, overwrite=True)
        g.create_array("rising", data=rising, overwrite=True)
        edges[line] = samples[rising]
    events = read_events(folder)
    root.require_group("events").attrs.put({"events": events})
    streams = {}
    for name, line in STREAM_EDGE_LINE.items():
        if name not in root:
            continue
        if "0" not in root[name]:  # killed while setting the stream up: no frame was written
            del root[name]
            continue
        acc = accounting[name] if accounting else None
        streams[name] = _finalize_stream(folder, root[name], acc, attrs, edges.get(line), line, fs)
    return update_root_attrs(
        zpath, status=status, end_reason=reason, ended_utc=utc_now(), streams=streams
    )


def _finalize_stream(
    folder: Path,
    image: zarr.Group,
    acc: FrameAccounting | None,
    attrs: dict[str, Any],
    edges: np.ndarray | None,
    line: str,
    fs: float,
) -> dict[str, Any]:
    """Trim a stream to the frames on disk, store their device numbers and timestamps, and
    return its accounting with the sync report under ``sync``."""
    name = image.basename
    journal = folder / "journal"
    index = read_index_journal(journal, name)
    progress = read_progress(journal, name)
    written = acc.written if acc is not None else min(int(progress.get("written", 0)), len(index))
    index = index[:written]
    frames = image["0"]
    if frames.shape[0] != written:
        trim_frames(frames, written)
    image.create_array("device_index", data=index, overwrite=True)
    if acc is None:
        acc = _recovered_accounting(name, index, attrs, progress)
    edges = edges if edges is not None else np.empty(0, np.int64)
    sync = synchronise(name, line, index, edges, fs, _stream_rate(image))
    image.create_array("timestamps_s", data=sync.timestamps_s, overwrite=True)
    image.attrs["sync"] = sync.report.to_dict()
    acc.edges = len(edges)
    acc.without_edge = sync.report.frames_without_edge
    acc.edges_without_frame = sync.report.edges_without_frame
    return {**acc.to_dict(), "sync": sync.report.to_dict()}


def _stream_rate(image: zarr.Group) -> float:
    """The nominal frame rate, from the OME-NGFF time scale of the image."""
    scale = image.attrs["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]
    return 1.0 / float(scale["scale"][0])


def _recovered_accounting(
    name: str, index: np.ndarray, attrs: dict, progress: dict[str, Any]
) -> FrameAccounting:
    from rig.schedule import expected_frames

    plan_expected = attrs.get("frames_expected", {}).get(name)
    if plan_expected is None:
        sched = schedule_from_attrs(attrs)
        plan_expected = expected_frames(sched, name)
    acc = FrameAccounting(name, plan_expected)
    # frames received after the last shard written are lost with the process: not counted
    acc.written = len(index)
    acc.dropped_by_queue = int(progress.get("dropped_by_queue", 0))
    acc.received = acc.written + acc.dropped_by_queue
    if len(index):
        gaps = int(index.max()) + 1 - len(index)  # device drops and queue drops both leave gaps
        acc.dropped_by_device = max(0, gaps - acc.dropped_by_queue)
    return acc


def _waits_for_writers(plan: SessionPlan, speed: float | None) -> bool:
    """``--fast`` on the simulated rig: the clock waits for the frame writers, so a busy machine
    changes how long a run takes, never its data. Not with an injected ``slow_disk``, whose
    point is a writer that falls behind (and whose delay runs on that same clock)."""
    slow_disk = any(f.kind == "slow_disk" for f in plan.rig.core.faults)
    return plan.rig.simulated and speed is None and not slow_disk


def schedule_from_attrs(attrs: dict) -> OutputSchedule:
    """The schedule a session ran, rebuilt from the protocol text it stored (for sessions
    written before ``frames_expected`` was stored at stream setup). From the exact text that
    ran: the dumped model does not validate again (an ITI dumps as {"fixed": ..., "uniform": ...},
    which the file format rejects)."""
    from rig.protocol import protocol_from_text

    protocol = protocol_from_text(attrs["protocol_text"], attrs.get("protocol_file") or "").protocol
    timeline = Timeline.from_dict(attrs["timeline"])
    return compile_schedule(protocol, timeline, float(attrs["sample_rate_hz"]))


def ensure_input(path: str | Path) -> Path:
    """A session folder (or its session.zarr); :class:`InputError` if it is not one."""
    p = Path(path)
    if p.name == "session.zarr":
        p = p.parent
    if not (p / "session.zarr" / "zarr.json").is_file():
        raise InputError(str(path), [Problem("", "not a fear-rig session (no session.zarr here)")])
    return p
