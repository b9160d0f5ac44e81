"""Rig files (design section 5): one YAML per machine, validated strictly.

Device sections name a driver; the driver's own strict model validates the rest of the section,
so a typo in a driver key is an error with its path, just like a core key. With no rig file the
built-in simulated rig (:data:`DEFAULT_SIM_RIG`) is used; every output says SIMULATED or LIVE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from rig.devices import SECTIONS, DriverSpec, available_drivers
from rig.files.device_info import INFO_MODELS, CameraInfo, DeviceInfo, MicroscopeInfo, info_keys
from rig.files.freezing import FreezingParams
from rig.files.inputfile import (
    InputError,
    Problem,
    fmt_against,
    parse_yaml_text,
    problems_from_validation,
    read_yaml_file,
)
from rig.files.protocol import StrictModel
from rig.files.speaker import DEFAULT_MAX_VOLTS, Calibration, SoundLimits

DEFAULT_SIM_RIG = """\
rig: simulated
daq:     {driver: sim, sample_rate_hz: 20000, lines: {sound_loopback: ai0}}
shocker: {driver: sim}
camera:  {driver: sim, width: 640, height: 480,
          mm_per_px: 0.72}  # the arena (30 cm) as the simulated mouse draws it
imaging: {driver: sim, width: 512, height: 512, neurons: 60,
          um_per_px: 0.7, indicator: GCaMP6s, excitation_nm: 920, emission_nm: 510,
          location: Prelimbic area, depth_um: 250}  # Allen CCF name; ~10-um somata
speaker: {calibration: [{frequency_hz: 2000, volts: 0.5, level_db: 75},
                        {frequency_hz: 7500, volts: 0.8, level_db: 75},
                        {frequency_hz: 12000, volts: 1.0, level_db: 75},
                        {frequency_hz: 0, volts: 0.4, level_db: 70}]}
safety:  {max_current_ma: 1.0, max_shock_s: 2.0, max_shocks: 20, max_session_s: 14400}
freezing: {threshold: auto, min_freeze_s: 1.0,
           exclude: [{x_px: 548, y_px: 0, width_px: 80, height_px: 362}]}  # the cable
"""
DEFAULT_RIG_NAME = "<built-in simulated rig>"
DEFAULT_SAMPLE_RATE_HZ = 20_000.0  # a DAQ driver that does not say


class SafetyLimits(StrictModel):
    """The shock limits of this rig. A protocol over any of them does not validate, and the
    same limits are checked on every buffer a DAQ driver writes (``rig.program.safety``)."""

    max_current_ma: float = Field(gt=0, le=5.0)
    max_shock_s: float = Field(gt=0, le=10.0)
    max_shocks: int = Field(ge=0, le=1000)
    max_session_s: float = Field(gt=0, le=86_400)
    min_shock_gap_s: float = Field(default=1.0, gt=0, le=3600)
    """Low time between two shock-gate runs: shocks closer than this would feel like one."""
    max_shock_duty: float = Field(default=0.1, gt=0, le=1.0)
    """Most of any 60-s window the gate may be high (0.1: 6 s of shock in any minute)."""
    current_change_lead_s: float = Field(default=2.0, gt=0, le=3600)
    """A changed current is set and read back at least this long before the shock using it."""
    max_level_db: float = Field(default=85.0, gt=0, le=140)
    """The loudest sound (dB SPL) any protocol may play on this rig."""


class CalibrationPoint(StrictModel):
    """The speaker gives ``level_db`` dB SPL at ``frequency_hz`` when driven at ``volts`` (RMS
    of a sine). ``frequency_hz: 0`` calibrates white noise."""

    frequency_hz: float = Field(ge=0, le=100_000)
    volts: float = Field(gt=0, le=10)
    level_db: float = Field(ge=0, le=140)


class Speaker(StrictModel):
    calibration: list[CalibrationPoint] = Field(default_factory=list, max_length=200)
    max_volts: float | None = Field(default=None, gt=0, le=10)
    """Peak volts the sound output may drive (e.g. the amplifier's input limit); default: the
    DAQ's output range (its ``max_output_v``)."""
    extrapolate_octaves: float = Field(default=0.0, ge=0, le=1)
    """How far past the calibrated frequencies a tone may be, holding the nearest point's gain
    (0: a tone outside the calibration is an error)."""

    def points(self) -> Calibration:
        """The calibration as ``(frequency_hz, volts, level_db)`` tuples."""
        return tuple((c.frequency_hz, c.volts, c.level_db) for c in self.calibration)


class Storage(StrictModel):
    """The frame queue between acquisition and the disk."""

    queue_mb: int = Field(default=256, ge=8, le=65_536)


FaultKind = Literal[
    "camera_drop",
    "camera_stall",
    "frame_clock_missing",
    "frame_clock_extra",
    "frame_clock_stop",
    "exposure_missing",
    "exposure_extra",
    "serial_disconnect",
    "shocker_refuse",
    "shocker_no_reply",
    "daq_error",
    "slow_disk",
    "disk_full",
    "engine_exception",
]


class Fault(StrictModel):
    """A failure the simulated rig injects at ``at_s`` of session time."""

    at_s: float = Field(ge=0, le=86_400)
    kind: FaultKind
    count: int = Field(default=1, ge=1, le=100_000)
    duration_s: float | None = Field(default=None, gt=0, le=86_400)
    delay_s: float | None = Field(default=None, gt=0, le=3_600)
    """``slow_disk`` only: how long each frame write takes (session seconds)."""


class RigCore(StrictModel):
    """The rig file without its device sections (validated by their drivers)."""

    rig: str = Field(min_length=1, max_length=80)
    speaker: Speaker = Speaker()
    safety: SafetyLimits
    freezing: FreezingParams = FreezingParams()
    storage: Storage = Storage()
    faults: list[Fault] = Field(default_factory=list, max_length=1000)


@dataclass(frozen=True)
class DeviceConfig:
    """One device section: its driver, the driver-validated settings and what the section
    says about the device for the record (:mod:`rig.files.device_info`)."""

    section: str
    driver: str
    spec: DriverSpec
    config: BaseModel
    info: DeviceInfo = field(default_factory=DeviceInfo)


@dataclass(frozen=True)
class RigFile:
    """A validated rig file."""

    core: RigCore
    devices: dict[str, DeviceConfig]
    text: str
    file: str

    @property
    def name(self) -> str:
        return self.core.rig

    @property
    def safety(self) -> SafetyLimits:
        return self.core.safety

    @property
    def speaker(self) -> Speaker:
        return self.core.speaker

    @property
    def freezing(self) -> FreezingParams:
        return self.core.freezing

    @property
    def simulated(self) -> bool:
        return all(d.spec.simulated for d in self.devices.values())

    @property
    def mode(self) -> str:
        return "SIMULATED" if self.simulated else "LIVE"

    def device(self, section: str) -> DeviceConfig | None:
        return self.devices.get(section)

    @property
    def camera_info(self) -> CameraInfo:
        """The behaviour camera's description and pixel size (``camera.mm_per_px``)."""
        info = self.devices["camera"].info if "camera" in self.devices else None
        return info if isinstance(info, CameraInfo) else CameraInfo()

    @property
    def microscope_info(self) -> MicroscopeInfo:
        """The microscope's description, pixel size (``imaging.um_per_px``), indicator,
        wavelengths and imaged location."""
        info = self.devices["imaging"].info if "imaging" in self.devices else None
        return info if isinstance(info, MicroscopeInfo) else MicroscopeInfo()

    @property
    def sample_rate_hz(self) -> float:
        """The DAQ's sample clock: the session clock."""
        return float(self._daq_setting("sample_rate_hz") or DEFAULT_SAMPLE_RATE_HZ)

    @property
    def sound_limits(self) -> SoundLimits:
        """What this rig's sound output can play (checked by
        :func:`rig.files.speaker.sound_problems`)."""
        speaker = self.speaker
        if speaker.max_volts is not None:
            volts, key = speaker.max_volts, "speaker.max_volts"
        else:
            volts, key = self._daq_setting("max_output_v") or DEFAULT_MAX_VOLTS, "daq.max_output_v"
        return SoundLimits(
            sample_rate_hz=self.sample_rate_hz,
            calibration=speaker.points(),
            max_volts=float(volts),
            max_volts_key=key,
            max_level_db=self.safety.max_level_db,
            extrapolate_octaves=speaker.extrapolate_octaves,
        )

    def _daq_setting(self, key: str) -> Any:
        daq = self.devices.get("daq")
        return getattr(daq.config, key, None) if daq is not None else None


REQUIRED_SECTIONS = ("daq", "shocker", "camera")


def _device_section(
    section: str, value: Any, drivers: dict[str, DriverSpec]
) -> tuple[DeviceConfig | None, list[Problem]]:
    if not isinstance(value, dict):
        return None, [Problem(section, "expected a mapping with a driver key")]
    name = value.get("driver")
    if not isinstance(name, str):
        return None, [Problem(f"{section}.driver", "required: the name of a driver")]
    spec = drivers.get(name)
    if spec is None or section not in spec.sections:
        choices = sorted(n for n, s in drivers.items() if section in s.sections)
        return None, [
            Problem(
                f"{section}.driver",
                f"no driver {name!r} for {section} is installed; choose one of {choices}",
            )
        ]
    core_keys = info_keys(section)
    settings = {k: v for k, v in value.items() if k != "driver" and k not in core_keys}
    problems: list[Problem] = []
    try:
        info = INFO_MODELS[section].model_validate({k: value[k] for k in core_keys & value.keys()})
    except ValidationError as exc:
        problems += problems_from_validation(exc, prefix=(section,))
    try:
        config = spec.model_for(section).model_validate(settings)
    except ValidationError as exc:
        problems += problems_from_validation(exc, prefix=(section,))
    if problems:
        return None, problems
    return DeviceConfig(section, name, spec, config, info), []


def _speaker_problems(speaker: Speaker, daq: DeviceConfig) -> list[Problem]:
    """The speaker may not ask for more than the DAQ's output can give."""
    output_range = getattr(daq.config, "max_output_v", None)
    if speaker.max_volts is None or output_range is None or speaker.max_volts <= output_range:
        return []
    volts, limit = fmt_against(speaker.max_volts, output_range)
    return [
        Problem(
            "speaker.max_volts",
            f"{volts} V is above the DAQ's output range of {limit} V (daq.max_output_v)",
        )
    ]


def rig_from_data(data: dict[str, Any], text: str, file: str) -> RigFile:
    """Validate a parsed rig file. Raises :class:`InputError` listing every problem."""
    drivers = available_drivers()
    problems: list[Problem] = []
    devices: dict[str, DeviceConfig] = {}
    for section in SECTIONS:
        if section not in data or data[section] is None:
            if section in REQUIRED_SECTIONS:
                problems.append(Problem(section, "required section is missing"))
            continue
        device, found = _device_section(section, data[section], drivers)
        problems += found
        if device is not None:
            devices[section] = device
    core_data = {k: v for k, v in data.items() if k not in SECTIONS}
    try:
        core = RigCore.model_validate(core_data)
    except ValidationError as exc:
        problems += problems_from_validation(exc)
        core = None
    if core is not None and core.faults and any(not d.spec.simulated for d in devices.values()):
        problems.append(Problem("faults", "faults can only be injected on a simulated rig"))
    if core is not None and "daq" in devices:
        problems += _speaker_problems(core.speaker, devices["daq"])
    if problems:
        raise InputError(file, problems)
    assert core is not None
    return RigFile(core, devices, text, file)


def load_rig(path: str | Path | None) -> RigFile:
    """Read and validate a rig file; ``None`` gives the built-in simulated rig."""
    if path is None:
        return rig_from_text(DEFAULT_SIM_RIG, DEFAULT_RIG_NAME)
    data, text = read_yaml_file(path)
    return rig_from_data(data, text, str(path))


def rig_from_text(text: str, file: str = "<rig>") -> RigFile:
    """Validate rig YAML text."""
    return rig_from_data(parse_yaml_text(text, file), text, file)
