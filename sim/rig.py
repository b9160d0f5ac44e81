"""The simulated rig's drivers, registered under the ``sim`` entry point.

Every device section of a rig file can say ``driver: sim``. The devices share one
:class:`SimSession`: the DAQ's clock drives the cameras, the simulated world renders the
frames, and faults from the rig file's ``faults:`` list fire at their session time.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import numpy as np
from pydantic import Field

from drivers.serial_shocker import ProfileSetting
from rig.devices import BuildContext, DriverSpec
from rig.files.protocol import StrictModel
from rig.files.rigfile import Fault
from rig.program.schedule import (
    IMAGING,
    SHOCK_GATE,
    VIDEO,
    WHEEL,
    OutputSchedule,
    frame_trigger_samples,
)
from sim.brain import BrainConfig
from sim.daq import DeviceTiming, SimDaq
from sim.disk import SimFrameDisk
from sim.frames import SimFrameSource
from sim.mm_frames import make_sim_mm_camera
from sim.mouse import MouseConfig
from sim.shocker_emulator import open_simulated_shocker
from sim.world import SimWorld

# Rig-file fault kinds -> what the shock generator emulator is told to do.
SHOCKER_FAULTS = {
    "serial_disconnect": "disconnect",
    "shocker_refuse": "refuse_current",
    "shocker_no_reply": "no_reply",
}


RESONANT_OFFSET_PPM = 1000.0
"""A resonant microscope's frame rate is set by its mirror, not by the protocol: by default the
simulated one scans 0.1 % faster than the protocol asks (30.03 Hz for 30 Hz)."""


class SimDaqLines(StrictModel):
    """The simulated DAQ's recorded inputs beyond the loopbacks it always has (shock gate,
    tone gate, imaging start), named like the NI driver's ``lines:``."""

    sound_loopback: str | None = Field(default=None, min_length=1, max_length=40)
    """An analog input wired to the sound output (e.g. ``ai0``): the played sound is recorded
    and the tone's onset and offset are measured on its envelope. Without it the tone is
    measured on the tone gate's digital loopback."""
    loopback_noise_v: float = Field(default=0.0002, ge=0, le=0.01)
    """RMS noise of that analog input (an X Series AI at +-5 V: about 0.2 mV)."""


class SimDaqConfig(StrictModel):
    sample_rate_hz: float = Field(default=20_000.0, ge=1_000, le=1_000_000)
    lines: SimDaqLines = SimDaqLines()
    chunk_s: float = Field(default=0.5, ge=0.05, le=10.0)
    """Output buffer chunk, as the NI driver's ``chunk_s``."""
    max_output_v: float = Field(default=5.0, gt=0, le=10)
    """The sound output's range in peak volts, as the NI driver's: a level that needs more does
    not validate (``speaker.max_volts`` may set a lower limit)."""


class SimShockerConfig(StrictModel):
    """The simulated shock generator: the real serial driver against an emulator on a pty."""

    profile: ProfileSetting = "default"
    heartbeat_timeout_s: float = Field(default=0.09, ge=0.005, le=0.09)
    heartbeat_misses_allowed: int = Field(default=3, ge=0, le=5)
    """The emulator shares the host with a faster-than-real-time session, so a heartbeat may
    go unanswered for a while when the machine is busy: tolerate a few (a disconnect is still
    seen at once, because the port fails)."""
    device_watchdog_ms: int = Field(default=2000, ge=50, le=10_000)
    """The emulated device disarms itself this long after the last heartbeat. Longer than a
    real device's 500 ms: a ``--fast`` session renders its frames on the same two cores as the
    engine, and a busy test machine can stall the engine's loop for longer than 500 ms without
    anything being wrong with the link."""


CAMERA_CLOCK_KEYS = {"backend", "exposure_latency_s", "jitter_s"}
IMAGING_CLOCK_KEYS = {
    "delivers_frames",
    "free_running_hz",
    "clock_hz",
    "drift_ppm",
    "start_latency_s",
}


class SimCameraConfig(MouseConfig):
    """The simulated behaviour camera: the simulated mouse's settings (``sim.mouse``), and
    how its exposures follow the DAQ's trigger pulses."""

    exposure_latency_s: float = Field(default=20e-6, ge=0, le=0.01)
    """From a trigger's rising edge to the start of the exposure (and of the exposure-out
    pulse the DAQ records). Machine-vision cameras: under 10 us (Point Grey, FLIR); sCMOS:
    two line times, about 24 us (PCO)."""
    jitter_s: float = Field(default=5e-6, ge=0, le=0.005)
    """Standard deviation of that latency from frame to frame (PCO: at most one line time,
    about 12 us)."""

    backend: Literal["micromanager", "direct"] = Field("micromanager", exclude=True)
    """``micromanager``: the real Micro-Manager driver on ``UniMMCore`` (``sim.mm_frames``);
    ``direct``: frames rendered straight into the engine (``sim.frames``)."""


class SimImagingConfig(BrainConfig):
    """The simulated microscope: the simulated brain's settings (``sim.brain``)."""

    delivers_frames: bool = True
    """False: a frame-clock-only microscope (its frames stay in its own software)."""
    free_running_hz: float | None = Field(default=None, gt=0, le=500)
    """A microscope someone started by hand: it scans at this rate from the session's start
    even when the protocol records no imaging (and so never starts it). Its frame clock is
    recorded; its frames stay in its own software."""
    clock_hz: float | None = Field(default=None, gt=0, le=500)
    """The microscope's frame rate on its own clock. Default: the protocol's
    ``recording.imaging.frame_rate_hz`` plus 0.1 % (30.03 Hz for 30 Hz), as a resonant scanner
    whose rate its mirror sets. The protocol's rate is what the user expects; this is what
    happens, and the sync report shows the difference."""
    drift_ppm: float = Field(default=25.0, ge=-1000, le=1000)
    """The microscope's oscillator against the DAQ's timebase (each within about +-50 ppm): its
    frames come this many ppm faster (negative: slower) on the session clock."""
    start_latency_s: float = Field(default=0.01, ge=0, le=1.0)
    """From the imaging start pulse's rising edge to the first frame clock edge."""


class SimSession:
    """What the simulated devices of one session share."""

    def __init__(self, ctx: BuildContext):
        self.ctx = ctx
        self.faults: list[Fault] = list(ctx.rig.core.faults)
        self.world: SimWorld | None = None
        self.shocker_emulator: Any = None
        self.disk: SimFrameDisk | None = None

    def world_for(self, daq: SimDaq) -> SimWorld:
        if self.world is None:
            assert daq.schedule is not None, "the DAQ is configured before frames are rendered"
            cam = self.ctx.rig.device("camera").config
            img = self.ctx.rig.device("imaging")
            brain = None
            if img is not None and isinstance(img.config, BrainConfig):
                brain = BrainConfig.model_validate(
                    img.config.model_dump(exclude=IMAGING_CLOCK_KEYS)
                )
            # The world is simulated for the whole session before it runs, at the frame times
            # the devices' own clocks predict; what is recorded comes from the played samples.
            self.world = SimWorld(
                daq.schedule,
                daq.predicted_frame_starts(VIDEO),
                daq.predicted_frame_starts(IMAGING),
                MouseConfig.model_validate(cam.model_dump(exclude=CAMERA_CLOCK_KEYS)),
                brain,
                seed=self.ctx.seed,
                animal=self.ctx.animal,
                state_dir=self.ctx.state_dir,
            )
        return self.world


class SimRigDaq(SimDaq):
    """The simulated DAQ plus the session's ground truth."""

    session: SimSession

    def configure(self, schedule: OutputSchedule) -> None:
        super().configure(schedule)
        # The whole session's behaviour and activity are simulated here, before the shocker is
        # armed: done lazily at the first frame, it would starve the shocker's watchdog.
        world = self.session.world_for(self)
        camera = self.session.ctx.rig.device("camera")
        if camera is not None and getattr(camera.config, "view", "top") == "head_fixed":
            # The head-fixed mouse runs on a wheel: its encoder counts reach the DAQ as edges.
            # (The encoder is a device of its own: its counts follow the mouse's steps.)
            track = world.track
            steps = np.diff(np.asarray(track.wheel_counts, np.int64), prepend=0)
            frames = self.predicted_frame_starts(VIDEO)
            self.add_recorded_line(WHEEL, np.repeat(frames, np.abs(steps)))

    def frame_disk(self) -> SimFrameDisk:
        """The disk the frame writers write through, with the rig file's disk faults."""
        if self.session.disk is None:
            self.session.disk = SimFrameDisk(self, self.session.faults)
        return self.session.disk

    def truth(self) -> dict[str, np.ndarray]:
        if self.session.world is None:
            return {}
        return self.session.world.truth()

    def close(self) -> None:
        super().close()
        if self.session.world is not None:
            self.session.world.save_learning(self.stopped_at)


def _session(ctx: BuildContext) -> SimSession:
    daq = ctx.built.get("daq")
    if isinstance(daq, SimRigDaq):
        return daq.session
    raise ValueError("simulated cameras and shock generators need the simulated DAQ (driver: sim)")


def _build(section: str, config: Any, ctx: BuildContext) -> Any:
    if section == "daq":
        session = SimSession(ctx)
        daq = SimRigDaq(
            config.sample_rate_hz,
            ctx.speed,
            session.faults,
            limits=ctx.rig.safety,
            chunk_s=config.chunk_s,
            timing=device_timing(ctx, config),
        )
        daq.session = session
        return daq
    session = _session(ctx)
    daq = ctx.built["daq"]
    if section == "shocker":
        shocker, emulator = open_simulated_shocker(
            ctx.rig.safety.max_current_ma,
            profile=config.profile,
            heartbeat_timeout_s=config.heartbeat_timeout_s,
            heartbeat_misses_allowed=config.heartbeat_misses_allowed,
            device_watchdog_ms=config.device_watchdog_ms,
            timeout_s=0.5,
        )
        session.shocker_emulator = emulator
        _wire_gate(daq, emulator)
        _fire_at(
            daq, session.faults, tuple(SHOCKER_FAULTS), lambda k: emulator.inject(SHOCKER_FAULTS[k])
        )
        return shocker
    if section == "camera":
        render = lambda k: session.world_for(daq).render_video(k)  # noqa: E731
        if config.backend == "micromanager":
            fps = ctx.protocol.recording.video.fps if ctx.protocol is not None else 30.0
            return make_sim_mm_camera(
                daq, render, config.width, config.height, fps, faults=session.faults
            )
        return SimFrameSource(
            daq,
            "video",
            config.width,
            config.height,
            "uint8",
            render,
            faults=session.faults,
        )
    return SimFrameSource(
        daq,
        "imaging",
        config.width,
        config.height,
        "uint16",
        lambda k: session.world_for(daq).render_imaging(k),
        delivers_frames=config.delivers_frames,
        render_many=lambda ks: session.world_for(daq).render_imaging_frames(ks),
    )


def device_timing(ctx: BuildContext, daq: SimDaqConfig) -> DeviceTiming:
    """The simulated devices' clocks, from the rig file's sim sections."""
    camera = ctx.rig.device("camera")
    imaging = ctx.rig.device("imaging")
    cam = camera.config if camera is not None and camera.driver == "sim" else None
    img = imaging.config if imaging is not None and imaging.driver == "sim" else None
    return DeviceTiming(
        imaging_clock_hz=getattr(img, "clock_hz", None),
        imaging_rate_offset_ppm=RESONANT_OFFSET_PPM,
        imaging_drift_ppm=getattr(img, "drift_ppm", 0.0),
        imaging_start_latency_s=getattr(img, "start_latency_s", 0.0),
        free_running_hz=getattr(img, "free_running_hz", None),
        exposure_latency_s=getattr(cam, "exposure_latency_s", 0.0),
        exposure_jitter_s=getattr(cam, "jitter_s", 0.0),
        sound_loopback=daq.lines.sound_loopback is not None,
        loopback_noise_v=daq.lines.loopback_noise_v,
        seed=ctx.seed,
    )


def _wire_gate(daq: SimDaq, emulator: Any) -> None:
    """The DAQ's shock gate line drives the emulated device's gate input as the clock plays it."""
    seen = 0

    def listener(position: int) -> None:
        nonlocal seen
        limit = position if daq.stopped_at is None else min(position, daq.stopped_at)
        samples, rising = daq.played_edges(SHOCK_GATE)
        while seen < len(samples) and samples[seen] <= limit:
            emulator.gate_input(int(samples[seen]), bool(rising[seen]))
            seen += 1

    daq.on_advance(listener)


def _fire_at(daq: SimDaq, faults: list[Fault], kinds: tuple[str, ...], fire) -> None:
    pending = sorted((f for f in faults if f.kind in kinds), key=lambda f: f.at_s)

    def listener(position: int) -> None:
        while pending and pending[0].at_s * daq.sample_rate_hz <= position:
            fire(pending.pop(0).kind)

    daq.on_advance(listener)


SAMPLE_S = 20.0  # a short session whose frames stand for a stream's (the disk estimate)
SAMPLE_FRAMES = 12


SAMPLE_RATE_HZ = 30.0


def sample_frames(section: str, config: Any) -> np.ndarray | None:
    """A dozen frames of ``section`` (camera or imaging) as this configuration renders them,
    over a short session of the simulated animal at 30 Hz (``DriverSpec.sample_frames``)."""
    if section not in ("camera", "imaging"):
        return None
    if section == "imaging" and not getattr(config, "delivers_frames", True):
        return None
    return _sample(section, config.model_dump_json())


@functools.lru_cache(maxsize=8)
def _sample(section: str, config_json: str) -> np.ndarray:
    rate_hz = SAMPLE_RATE_HZ
    from rig.files.protocol import protocol_from_text
    from rig.program.schedule import compile_schedule
    from rig.program.timeline import compile_timeline

    loaded = protocol_from_text(
        "protocol: frame-sample\nversion: 1\nseed: 0\n"
        "stimuli: {tone: {type: tone, frequency_hz: 2000, level_db: 60, duration_s: 5}}\n"
        f"phases: [{{name: sample, trials: [{{cs: tone}}], pre_s: {SAMPLE_S / 2}, "
        f"post_s: {SAMPLE_S / 2 - 5}}}]\n"
        f"recording: {{video: {{fps: {rate_hz}}}, imaging: {{frame_rate_hz: {rate_hz}}}}}\n",
        "<frame sample>",
    )
    schedule = compile_schedule(loaded.protocol, compile_timeline(loaded.protocol), 20_000.0)
    triggers = frame_trigger_samples(schedule.n_samples, schedule.sample_rate_hz, rate_hz)
    if section == "camera":
        mouse = MouseConfig.model_validate(
            SimCameraConfig.model_validate_json(config_json).model_dump(exclude=CAMERA_CLOCK_KEYS)
        )
        brain = None
    else:
        mouse = MouseConfig()
        imaging = SimImagingConfig.model_validate_json(config_json)
        brain = BrainConfig.model_validate(imaging.model_dump(exclude=IMAGING_CLOCK_KEYS))
    world = SimWorld(schedule, triggers, triggers if brain else None, mouse, brain, 0, "", None)
    ks = np.linspace(0, len(triggers) - 1, SAMPLE_FRAMES).astype(int)
    if section == "camera":
        return np.stack([world.render_video(int(k)) for k in ks])
    return world.render_imaging_frames([int(k) for k in ks])


def build_sim_devices() -> DriverSpec:
    """The ``sim`` entry point: one driver name serving every section."""
    return DriverSpec(
        name="sim",
        sections=("daq", "shocker", "camera", "imaging"),
        config_model={
            "daq": SimDaqConfig,
            "shocker": SimShockerConfig,
            "camera": SimCameraConfig,
            "imaging": SimImagingConfig,
        },
        build=_build,
        simulated=True,
        sample_frames=sample_frames,
    )
