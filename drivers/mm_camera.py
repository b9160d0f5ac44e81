"""Micro-Manager camera driver: a hardware-triggered camera behind :class:`rig.ports.FrameSource`.

The camera runs a Micro-Manager sequence acquisition in external-trigger mode: the DAQ's camera
trigger pulse train decides when each frame is exposed, and the camera's exposure-out line is
recorded on the DAQ clock, so frame times never come from the host. This driver only moves
frames from Micro-Manager's circular buffer to the engine and accounts for every one of them.

Frame accounting. Each frame's index is read from its metadata (``frame_number_key``; by
default the core's ``ImageNumber``). A gap in the indices means frames were lost:

* lost in the circular buffer (the buffer overflowed because frames were not read fast
  enough) -- visible as a gap in the core's ``ImageNumber``;
* dropped by the camera itself -- visible only when ``frame_number_key`` names a hardware
  frame counter the camera adapter puts in the metadata; the gap in that counter beyond the
  ``ImageNumber`` gap is what the camera dropped.

Both are counted in :attr:`MMCamera.dropped` (indices in :attr:`MMCamera.dropped_frames`) and
each event is queued as a ``(frame_index, message)`` fault in :attr:`MMCamera.faults`, which
the engine drains with :meth:`MMCamera.drain_faults` and logs as events. A buffer overflow is
also reported once per acquisition from the core's overflow flag. Frames missing after the
last frame received cannot be seen here; the engine finds them by comparing the frames
received with the exposure edges the DAQ recorded.

Lifetime. The driver owns its core: :meth:`MMCamera.close` unloads every device and drops the
core, and an ``atexit`` hook closes any camera still open, because a core with devices loaded
that is destroyed during interpreter shutdown can abort the process.
"""

from __future__ import annotations

import atexit
import gc
import logging
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rig.devices import BuildContext, DriverSpec
from rig.ports import CameraError, Frame, PreflightCheck, StreamInfo

log = logging.getLogger(__name__)

IMAGE_NUMBER_KEY = "ImageNumber"  # the core's own per-camera counter of buffered frames
DEFAULT_RATE_HZ = 30.0


class MMCameraConfig(BaseModel):
    """The ``camera:`` (or ``imaging:``) section of a rig file for ``driver: micromanager``."""

    model_config = ConfigDict(extra="forbid")

    config: Path | None = None
    """Micro-Manager hardware configuration (.cfg). Required unless a core is injected."""
    device: str = "Camera"
    """Label of the camera device in that configuration."""
    exposure_ms: float | None = Field(default=None, gt=0)
    """Exposure time; None keeps the configuration's value."""
    roi: tuple[int, int, int, int] | None = None
    """[x, y, width, height] in (binned) camera pixels; None keeps the full frame."""
    binning: int | None = Field(default=None, ge=1)
    """Binning factor; None keeps the configuration's value."""
    trigger_properties: dict[str, str] = Field(default_factory=dict)
    """Device properties that put the camera in external-trigger mode, set before each
    acquisition, e.g. ``{TriggerMode: External}``. Quote values YAML would read as booleans."""
    buffer_mb: int = Field(default=512, ge=1)
    """Size of Micro-Manager's circular buffer in MiB."""
    frame_number_key: str = IMAGE_NUMBER_KEY
    """Metadata tag with the frame number. Name the camera's hardware frame counter, when its
    adapter provides one, to detect frames the camera itself dropped."""
    frame_number_start: int = Field(default=0, ge=0)
    """Value of ``frame_number_key`` on the first frame of an acquisition (1 for counters
    that start at 1)."""

    @field_validator("trigger_properties", mode="before")
    @classmethod
    def _scalars_to_str(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = {}
        for key, val in value.items():
            if isinstance(val, bool):
                raise ValueError(
                    f"{key}: {val} was read as a boolean; quote the value the camera expects "
                    "(e.g. 'On')"
                )
            out[key] = str(val) if isinstance(val, int | float) else val
        return out


_OPEN: weakref.WeakSet[MMCamera] = weakref.WeakSet()


@atexit.register
def _close_open_cameras() -> None:
    for camera in list(_OPEN):
        camera.close()


class MMCamera:
    """A Micro-Manager camera acquiring one frame per external trigger.

    ``core`` may be an already-built ``CMMCorePlus`` or ``UniMMCore`` with the camera loaded
    (the simulated rig injects one); otherwise ``config.config`` is loaded into a new core.
    The driver owns the core either way: :meth:`close` unloads its devices.
    ``rate_hz`` is the trigger rate (reported by :meth:`info`, checked against the exposure).

    Raises :class:`CameraError` if the configuration cannot be loaded or the settings are
    refused.
    """

    delivers_frames = True

    def __init__(
        self,
        config: MMCameraConfig,
        core: Any | None = None,
        *,
        rate_hz: float = DEFAULT_RATE_HZ,
        simulated: bool = False,
    ) -> None:
        self.config = config
        self.label = config.device
        self.rate_hz = rate_hz
        self.simulated = simulated
        self.dropped = 0
        self.dropped_frames: list[int] = []
        self.overflowed = False
        self.faults: list[tuple[int, str]] = []
        self._expected = 0
        self._next_index = 0
        self._next_buffer_number = 0
        self._core: Any | None = core if core is not None else _load_core(config)
        _OPEN.add(self)
        try:
            self._apply_settings()
        except Exception as exc:
            self.close()
            raise CameraError(f"camera {self.label!r}: {exc}") from exc

    # -- setup --------------------------------------------------------------------------

    @property
    def core(self) -> Any:
        """The Micro-Manager core; :class:`CameraError` once closed."""
        if self._core is None:
            raise CameraError(f"camera {self.label!r} is closed")
        return self._core

    def _apply_settings(self) -> None:
        core, cfg = self.core, self.config
        if self.label not in core.getLoadedDevices():
            loaded = ", ".join(core.getLoadedDevices()) or "none"
            raise CameraError(f"no device {self.label!r} loaded (loaded: {loaded})")
        core.setCameraDevice(self.label)
        if cfg.binning is not None:  # before the ROI: an ROI is in binned pixels
            core.setProperty(self.label, "Binning", cfg.binning)
        if cfg.exposure_ms is not None:
            core.setExposure(self.label, cfg.exposure_ms)
        if cfg.roi is not None:
            core.setROI(self.label, *cfg.roi)
        core.setCircularBufferMemoryFootprint(cfg.buffer_mb)

    # -- FrameSource --------------------------------------------------------------------

    def info(self) -> StreamInfo:
        """Frame shape and dtype as the camera is set now; ``rate_hz`` is the trigger rate."""
        core = self.core
        width, height = int(core.getImageWidth()), int(core.getImageHeight())
        components = int(core.getNumberOfComponents())
        dtype = "uint8" if components > 1 else f"uint{8 * int(core.getBytesPerPixel())}"
        extra: dict[str, Any] = {
            "device": self.label,
            "exposure_ms": float(core.getExposure(self.label)),
            "roi": [int(v) for v in core.getROI(self.label)],
        }
        if components > 1:
            extra["components"] = components
        return StreamInfo(width, height, dtype, self.rate_hz, extra)

    def preflight(self) -> list[PreflightCheck]:
        """Check the camera: it answers, the settings read back, the exposure fits the trigger
        period, the trigger properties exist and take the configured values, and a snapped
        image has the expected shape. The snap is skipped (and says so) when the camera is
        already in its trigger mode, where a snap would wait for a trigger. Never raises."""
        checks = [self._check("answers", self._check_answers)]  # shown as "Camera answers: ..."
        if not checks[0].ok:
            return checks
        checks.append(self._check("settings", self._check_settings))
        checks.append(self._check("exposure fits trigger period", self._check_exposure))
        checks.append(self._check("trigger properties", self._check_trigger_properties))
        checks.append(self._check("snap", self._check_snap))
        return checks

    def start(self, expected_frames: int) -> None:
        """Put the camera in trigger mode and start a sequence of ``expected_frames`` frames.

        Frame accounting (indices, drops, faults) restarts at 0. Raises :class:`CameraError`.
        """
        if expected_frames <= 0:
            raise ValueError(f"expected_frames must be positive, got {expected_frames}")
        core = self.core
        try:
            if core.isSequenceRunning(self.label):
                core.stopSequenceAcquisition(self.label)
            self._set_trigger_properties()
            self._reset_accounting(expected_frames)
            core.startSequenceAcquisition(self.label, expected_frames, 0.0, False)
        except CameraError:
            raise
        except Exception as exc:
            raise CameraError(f"camera {self.label!r}: could not start: {exc}") from exc

    def read_frames(self) -> list[Frame]:
        """Every frame waiting in the circular buffer, in order. Non-blocking.

        Gaps in frame numbers and buffer overflows are counted in :attr:`dropped` and queued
        in :attr:`faults`. Raises :class:`CameraError` if the camera or the metadata fail.
        """
        core = self.core
        frames: list[Frame] = []
        try:
            while core.getRemainingImageCount() > 0:
                image, metadata = core.popNextImageAndMD()
                frames.append(self._account(image, metadata))
            if not self.overflowed and core.isBufferOverflowed():
                self._report_overflow()
        except CameraError:
            raise
        except Exception as exc:
            raise CameraError(f"camera {self.label!r}: reading frames failed: {exc}") from exc
        return frames

    def drain_faults(self) -> list[tuple[int, str]]:
        """The faults queued since the last call, as ``(frame_index, message)``; clears them."""
        faults, self.faults = self.faults, []
        return faults

    def stop(self) -> None:
        """Stop the sequence. Frames already buffered can still be read. Never raises."""
        if self._core is None:
            return
        try:
            if self._core.isSequenceRunning(self.label):
                self._core.stopSequenceAcquisition(self.label)
        except Exception:
            log.exception("camera %r: stopping the acquisition failed", self.label)

    def close(self) -> None:
        """Stop, unload every device of the core and release it. Idempotent; never raises."""
        if self._core is None:
            return
        self.stop()
        try:
            self._core.unloadAllDevices()
        except Exception:
            log.exception("camera %r: unloading the devices failed", self.label)
        self._core = None
        _OPEN.discard(self)
        gc.collect()  # destroy the core now, not during interpreter shutdown

    # -- frame accounting ---------------------------------------------------------------

    def _reset_accounting(self, expected_frames: int) -> None:
        self._expected = expected_frames
        self._next_index = 0
        self._next_buffer_number = 0
        self.dropped = 0
        self.dropped_frames = []
        self.overflowed = False
        self.faults = []

    def _account(self, image: np.ndarray, metadata: Any) -> Frame:
        key = self.config.frame_number_key
        try:
            index = int(metadata[key]) - self.config.frame_number_start
            buffer_number = int(metadata[IMAGE_NUMBER_KEY])
        except (KeyError, ValueError) as exc:
            tags = ", ".join(sorted(metadata))
            raise CameraError(
                f"camera {self.label!r}: frame metadata lacks a numeric {key!r} "
                f"or {IMAGE_NUMBER_KEY!r} tag (tags: {tags})"
            ) from exc
        if index < self._next_index:
            raise CameraError(
                f"camera {self.label!r}: frame number went back from "
                f"{self._next_index - 1} to {index} ({key!r})"
            )
        if index > self._next_index:
            lost_in_buffer = buffer_number - self._next_buffer_number
            if key == IMAGE_NUMBER_KEY:
                lost_in_buffer = index - self._next_index
            self._report_gap(self._next_index, index, lost_in_buffer)
        self._next_index = index + 1
        self._next_buffer_number = buffer_number + 1
        return Frame(index=index, image=image)

    def _report_gap(self, first: int, stop: int, lost_in_buffer: int) -> None:
        missing = stop - first
        by_camera = missing - lost_in_buffer
        causes = []
        if by_camera:
            causes.append(f"{by_camera} dropped by the camera")
        if lost_in_buffer:
            causes.append(
                f"{lost_in_buffer} lost in the circular buffer (overflow: frames were not "
                f"read fast enough for buffer_mb={self.config.buffer_mb})"
            )
        span = f"frame {first}" if missing == 1 else f"frames {first}-{stop - 1}"
        message = f"camera {self.label!r}: {span} missing: {'; '.join(causes)}"
        self.dropped += missing
        self.dropped_frames.extend(range(first, stop))
        self.faults.append((first, message))
        log.warning(message)

    def _report_overflow(self) -> None:
        self.overflowed = True
        message = (
            f"camera {self.label!r}: circular buffer overflowed (buffer_mb="
            f"{self.config.buffer_mb}); frames lost are counted as dropped"
        )
        self.faults.append((self._next_index, message))
        log.warning(message)

    # -- trigger mode and pre-flight ----------------------------------------------------

    def _set_trigger_properties(self) -> None:
        core = self.core
        for name, value in self.config.trigger_properties.items():
            core.setProperty(self.label, name, value)
            read_back = str(core.getProperty(self.label, name))
            if read_back != value:
                raise CameraError(
                    f"camera {self.label!r}: property {name} reads back {read_back!r} "
                    f"after setting {value!r}"
                )

    def _in_trigger_mode(self) -> bool:
        props = self.config.trigger_properties
        return bool(props) and all(
            str(self.core.getProperty(self.label, k)) == v for k, v in props.items()
        )

    def _check(self, name: str, fn: Callable[[], str]) -> PreflightCheck:
        try:
            return PreflightCheck(self.label, name, True, fn())
        except Exception as exc:
            return PreflightCheck(self.label, name, False, str(exc))

    def _check_answers(self) -> str:
        core = self.core
        device_type = str(core.getDeviceType(self.label))
        if "camera" not in device_type.lower():
            raise CameraError(f"{self.label!r} is a {device_type}, not a camera")
        return f"{core.getDeviceName(self.label)} ({core.getDeviceLibrary(self.label)})"

    def _check_settings(self) -> str:
        core, cfg, problems = self.core, self.config, []
        exposure = float(core.getExposure(self.label))
        if cfg.exposure_ms is not None and not np.isclose(exposure, cfg.exposure_ms, rtol=1e-3):
            problems.append(f"exposure {exposure} ms, configured {cfg.exposure_ms} ms")
        if cfg.binning is not None:
            binning = str(core.getProperty(self.label, "Binning"))
            if binning not in (str(cfg.binning), f"{cfg.binning}x{cfg.binning}"):
                problems.append(f"binning {binning}, configured {cfg.binning}")
        roi = [int(v) for v in core.getROI(self.label)]
        if cfg.roi is not None and roi != list(cfg.roi):
            problems.append(f"ROI {roi}, configured {list(cfg.roi)}")
        if problems:
            raise CameraError("; ".join(problems))
        return f"exposure {exposure:g} ms, ROI {roi}"

    def _check_exposure(self) -> str:
        exposure = float(self.core.getExposure(self.label))
        period_ms = 1000.0 / self.rate_hz
        if exposure >= period_ms:
            raise CameraError(
                f"exposure {exposure:g} ms does not fit the trigger period {period_ms:.3g} ms "
                f"({self.rate_hz:g} Hz): frames would be missed"
            )
        return f"{exposure:g} ms < {period_ms:.3g} ms"

    def _check_trigger_properties(self) -> str:
        core, props = self.core, self.config.trigger_properties
        if not props:
            return "none configured: the camera must already be in external-trigger mode"
        for name, value in props.items():
            if not core.hasProperty(self.label, name):
                raise CameraError(f"camera has no property {name!r}")
            allowed = [str(v) for v in core.getAllowedPropertyValues(self.label, name)]
            if allowed and value not in allowed:
                raise CameraError(f"{name}={value!r} not allowed; allowed: {allowed}")
        return ", ".join(f"{k}={v}" for k, v in props.items())

    def _check_snap(self) -> str:
        if self._in_trigger_mode():
            return "skipped: the camera is in trigger mode, a snap would wait for a trigger"
        core = self.core
        core.snapImage()
        image = core.getImage()
        info = self.info()
        if image.shape[:2] != (info.height, info.width):
            raise CameraError(f"snapped {image.shape}, expected {(info.height, info.width)}")
        return f"{image.shape[1]}x{image.shape[0]} {image.dtype}"


def _load_core(config: MMCameraConfig) -> Any:
    """A new ``CMMCorePlus`` with ``config.config`` loaded. Raises :class:`CameraError`."""
    if config.config is None:
        raise CameraError("camera: 'config' (a Micro-Manager .cfg file) is required")
    path = Path(config.config)
    if not path.is_file():
        raise CameraError(f"camera: Micro-Manager configuration {path} not found")
    from pymmcore_plus import CMMCorePlus

    core = CMMCorePlus()
    try:
        core.loadSystemConfiguration(str(path))
    except Exception as exc:
        core.unloadAllDevices()
        raise CameraError(f"camera: loading {path} failed: {exc}") from exc
    return core


def _protocol_rate(section: str, protocol: Any) -> float:
    """The frame rate the protocol asks of this section, or the default."""
    recording = getattr(protocol, "recording", None)
    if section == "imaging":
        rate = getattr(getattr(recording, "imaging", None), "frame_rate_hz", None)
    else:
        rate = getattr(getattr(recording, "video", None), "fps", None)
    return float(rate) if rate else DEFAULT_RATE_HZ


def _build(section: str, config: BaseModel, ctx: BuildContext) -> MMCamera:
    assert isinstance(config, MMCameraConfig)
    return MMCamera(config, rate_hz=_protocol_rate(section, ctx.protocol))


SPEC = DriverSpec(
    name="micromanager",
    sections=("camera", "imaging"),
    config_model=MMCameraConfig,
    build=_build,
)
