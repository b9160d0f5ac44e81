"""A microscope known only by its frame clock (``imaging: {driver: frame-clock}``).

Most two-photon microscopes run under their own software (ScanImage, PrairieView, ...), which
keeps the frames. The rig starts the microscope with the DAQ's ``imaging_start`` pulse and
records its frame clock on the DAQ's ``frame_clock`` input; the engine counts those edges, so
every frame of the microscope's own file has a time on the session clock. This frame source
delivers no frames (``delivers_frames = False``): there is nothing for it to talk to.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from rig.devices import BuildContext, DriverSpec
from rig.ports import Frame, PreflightCheck, StreamInfo


class FrameClockConfig(BaseModel):
    """The ``imaging:`` section for ``driver: frame-clock``. Every key is optional."""

    model_config = ConfigDict(extra="forbid")

    width: int | None = Field(default=None, ge=1, le=16_384)
    """Frame width in pixels, for the record only (the frames stay in the microscope)."""
    height: int | None = Field(default=None, ge=1, le=16_384)
    """Frame height in pixels, for the record only."""


class FrameClockImaging:
    """Implements ``rig.ports.FrameSource`` for a frame-clock-only microscope."""

    simulated = False
    delivers_frames = False

    def __init__(self, config: FrameClockConfig, rate_hz: float = 30.0):
        self.config = config
        self.rate_hz = rate_hz

    def preflight(self) -> list[PreflightCheck]:
        """Nothing to ask: the frame clock itself is checked by ``rig selftest`` on the DAQ."""
        return [
            PreflightCheck("imaging", "device", True, "frame clock only: frames counted on the DAQ")
        ]

    def info(self) -> StreamInfo:
        return StreamInfo(self.config.width or 0, self.config.height or 0, "uint16", self.rate_hz)

    def start(self, expected_frames: int) -> None:
        """Nothing to arm: the DAQ's ``imaging_start`` pulse starts the microscope."""

    def read_frames(self) -> list[Frame]:
        return []

    def stop(self) -> None:
        """Nothing to stop: the microscope stops on its own at the end of its acquisition."""

    def close(self) -> None:
        """Nothing to release."""


def _build(section: str, config: BaseModel, ctx: BuildContext) -> FrameClockImaging:
    assert isinstance(config, FrameClockConfig)
    imaging = getattr(getattr(ctx.protocol, "recording", None), "imaging", None)
    rate = getattr(imaging, "frame_rate_hz", None) or 30.0
    return FrameClockImaging(config, float(rate))


SPEC = DriverSpec(
    name="frame-clock",
    sections=("imaging",),
    config_model=FrameClockConfig,
    build=_build,
)
