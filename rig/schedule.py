"""What the DAQ must play: the compiled, sample-exact output schedule of a session.

The timeline compiler (:mod:`rig.timeline`) turns a protocol into seconds; this module turns
seconds into DAQ samples. A DAQ driver synthesises its buffers from an :class:`OutputSchedule`
chunk by chunk, so an hour-long session never needs an hour-long buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# Names of the lines the engine knows about. Inputs are recorded as edges on the DAQ clock.
FRAME_CLOCK = "frame_clock"  # two-photon frame clock (input)
CAMERA_EXPOSURE = "camera_exposure"  # behaviour camera exposure-out (input)
TONE_GATE = "tone"  # loopback of the sound output envelope (recorded)
SHOCK_GATE = "shock_gate"  # loopback of the shock gate (recorded)
INPUT_LINES = (FRAME_CLOCK, CAMERA_EXPOSURE, TONE_GATE, SHOCK_GATE)


@dataclass(frozen=True)
class Pips:
    """A pip train inside a sound: ``on_s`` of sound at the start of every ``1/rate_hz``."""

    rate_hz: float
    on_s: float


@dataclass(frozen=True)
class SoundBlock:
    """One sound (tone or white noise) played between two samples, end exclusive."""

    start_sample: int
    stop_sample: int
    kind: Literal["tone", "white_noise"]
    level_db: float
    frequency_hz: float | None = None  # tones only
    ramp_ms: float = 5.0
    pips: Pips | None = None
    seed: int = 0  # white noise is reproducible
    stimulus: str = ""  # protocol stimulus name, e.g. "cs_plus"


@dataclass(frozen=True)
class ShockPulse:
    """One shock-gate pulse: high from ``start_sample`` to ``stop_sample`` (exclusive).

    The width is fixed in hardware by the DAQ, so the shock ends on time even if the host dies.
    """

    start_sample: int
    stop_sample: int
    current_ma: float
    stimulus: str = ""
    trial: int = -1


@dataclass(frozen=True)
class OutputSchedule:
    """Every hardware-timed output of a session, in samples of one sample clock.

    Sample 0 is the session's start trigger; the session clock is ``sample / sample_rate_hz``.
    """

    sample_rate_hz: float
    n_samples: int
    sounds: tuple[SoundBlock, ...] = ()
    shocks: tuple[ShockPulse, ...] = ()
    camera_rate_hz: float = 30.0  # camera trigger pulse train (counter output)
    camera_pulse_s: float = 0.001
    imaging_rate_hz: float | None = None  # None: no microscope in this session
    imaging_start_sample: int = 0  # microscope start pulse
    speaker_calibration: tuple[tuple[float, float, float], ...] = field(default=())
    """(frequency_hz, volts, level_db) points; the driver converts dB SPL to volts."""

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate_hz

    def seconds_to_sample(self, t_s: float) -> int:
        return round(t_s * self.sample_rate_hz)
