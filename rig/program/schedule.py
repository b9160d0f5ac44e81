"""What the DAQ must play: the compiled, sample-exact output schedule of a session.

The timeline compiler (:mod:`rig.program.timeline`) turns a protocol into seconds; this module turns
seconds into DAQ samples. A DAQ driver synthesises its buffers from an :class:`OutputSchedule`
chunk by chunk, so an hour-long session never needs an hour-long buffer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from rig.files.protocol import Pips, Shock
from rig.files.speaker import SoundLimits

if TYPE_CHECKING:
    from rig.files.protocol import Protocol
    from rig.program.timeline import Timeline

# Names of the lines the engine knows about. Inputs are recorded as edges on the DAQ clock.
FRAME_CLOCK = "frame_clock"  # two-photon frame clock (input)
CAMERA_EXPOSURE = "camera_exposure"  # behaviour camera exposure-out (input)
TONE_GATE = "tone"  # loopback of the sound output envelope (recorded)
SHOCK_GATE = "shock_gate"  # loopback of the shock gate (recorded)
IMAGING_START = "imaging_start"  # the microscope start pulse (output; recorded where looped back)
CAMERA_TRIGGER = "camera_trigger"  # the camera's trigger pulse train (counter output)
INPUT_LINES = (FRAME_CLOCK, CAMERA_EXPOSURE, TONE_GATE, SHOCK_GATE, IMAGING_START)
WHEEL = "wheel"  # optional: rotary encoder counts, one rising edge per count (input)
VIDEO, IMAGING = "video", "imaging"  # the frame streams: behaviour camera, two-photon microscope
STREAM_EDGE_LINE = {VIDEO: CAMERA_EXPOSURE, IMAGING: FRAME_CLOCK}
"""The recorded line whose rising edges time each frame stream's frames."""


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
    sound_limits: SoundLimits | None = None
    """The rig's limits on sounds, checked at validation; the driver's synthesiser checks every
    sound against them again before it plays (None: a schedule built for no rig)."""

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate_hz

    def seconds_to_sample(self, t_s: float) -> int:
        return round(t_s * self.sample_rate_hz)


_EPS = 1e-6  # of a sample: absorbs float error in a duration x rate product (0.001 * 20000)


def samples_at_most(duration_s: float, sample_rate_hz: float) -> int:
    """The most whole samples that last no longer than ``duration_s``."""
    return math.floor(duration_s * sample_rate_hz + _EPS)


def samples_at_least(duration_s: float, sample_rate_hz: float) -> int:
    """The fewest whole samples that last at least ``duration_s``."""
    return math.ceil(duration_s * sample_rate_hz - _EPS)


def frame_trigger_samples(
    n_samples: int, sample_rate_hz: float, rate_hz: float, start_sample: int = 0
) -> np.ndarray:
    """Samples of every frame trigger of a stream running at ``rate_hz`` within the session.

    Frame ``k`` is triggered at ``start_sample + round(k * sample_rate_hz / rate_hz)``; the
    count is the number of such samples before ``n_samples``. Plans, simulated devices and
    frame accounting all use this one definition of "expected frames".
    """
    period = sample_rate_hz / rate_hz
    count = max(0, int(np.ceil((n_samples - start_sample) / period)))
    samples = start_sample + np.round(np.arange(count) * period).astype(np.int64)
    return samples[samples < n_samples]


def expected_frames(schedule: OutputSchedule, stream: str) -> int:
    """Frames the ``video`` or ``imaging`` stream should deliver in this session."""
    if stream == VIDEO:
        rate, start = schedule.camera_rate_hz, 0
    else:
        if schedule.imaging_rate_hz is None:
            return 0
        rate, start = schedule.imaging_rate_hz, schedule.imaging_start_sample
    return count_frame_triggers(schedule.n_samples, schedule.sample_rate_hz, rate, start)


def count_frame_triggers(
    n_samples: int, sample_rate_hz: float, rate_hz: float, start_sample: int = 0
) -> int:
    """``len(frame_trigger_samples(...))``, counted without making the array (a plan of a
    day at 500 Hz would otherwise allocate 350 MB to count its frames)."""
    period = sample_rate_hz / rate_hz
    count = max(0, int(np.ceil((n_samples - start_sample) / period)))
    # the last few candidates decide; rounding can push them past the end
    while count and start_sample + int(np.round((count - 1) * period)) >= n_samples:
        count -= 1
    return count


def compile_schedule(
    protocol: Protocol,
    timeline: Timeline,
    sample_rate_hz: float,
    calibration: tuple[tuple[float, float, float], ...] = (),
    sound_limits: SoundLimits | None = None,
) -> OutputSchedule:
    """Turn a compiled timeline into sample-exact output blocks on a ``sample_rate_hz`` clock."""

    def sample(t_s: float) -> int:
        return round(t_s * sample_rate_hz)

    sounds = []
    shocks = []
    for trial in timeline.trials:
        cs = protocol.stimuli[trial.cs]
        assert not isinstance(cs, Shock)
        pips = getattr(cs, "pips", None)
        sounds.append(
            SoundBlock(
                start_sample=sample(trial.cs_onset_s),
                stop_sample=sample(trial.cs_offset_s),
                kind=cs.type,
                level_db=cs.level_db,
                frequency_hz=getattr(cs, "frequency_hz", None),
                ramp_ms=cs.ramp_ms,
                pips=pips,
                seed=protocol.seed * 1000 + trial.index,
                stimulus=trial.cs,
            )
        )
        if trial.us is not None:
            us = protocol.stimuli[trial.us]
            assert isinstance(us, Shock)
            assert trial.us_onset_s is not None
            onset = sample(trial.us_onset_s)
            shocks.append(
                ShockPulse(
                    # The width is the shock's duration rounded down to whole samples, never
                    # up: a shock at the rig's max_shock_s stays within it wherever it starts.
                    start_sample=onset,
                    stop_sample=onset + samples_at_most(us.duration_s, sample_rate_hz),
                    current_ma=us.current_ma,
                    stimulus=trial.us,
                    trial=trial.index,
                )
            )
    imaging = protocol.recording.imaging
    return OutputSchedule(
        sample_rate_hz=sample_rate_hz,
        n_samples=sample(timeline.duration_s),
        sounds=tuple(sounds),
        shocks=tuple(shocks),
        camera_rate_hz=protocol.recording.video.fps,
        imaging_rate_hz=imaging.frame_rate_hz if imaging else None,
        imaging_start_sample=0,
        speaker_calibration=calibration,
        sound_limits=sound_limits,
    )
