"""What a rig's speaker can play: dB SPL to volts through its calibration, and the rig's limits.

Conventions (the rig file's ``speaker.calibration``, :mod:`rig.program.waveforms` and the drivers
follow them):

* A calibration point ``(frequency_hz, volts, level_db)`` says that a sine at ``frequency_hz``
  of ``volts`` **RMS** plays at ``level_db`` dB SPL. A level L needs
  ``volts * 10 ** ((L - level_db) / 20)`` V RMS. Between points the gain (dB of volts per dB
  SPL) is interpolated linearly in log-frequency. Outside the calibrated range nothing is
  known: a tone there is an error, unless the rig file's ``speaker.extrapolate_octaves`` allows
  that many octaves beyond it, where the nearest point's gain is held.
* White noise is calibrated by a point with ``frequency_hz: 0`` (broadband). The noise is
  uniform (peak = sqrt(3) x RMS), so its peak voltage is known exactly; a sine's is sqrt(2) x.

:func:`sound_problems` is the one check of a sound against a rig (docs/safety.md, "Sounds"):
``rig validate``/``plan``/``run``, the GUI designer and the synthesiser a driver plays from all
call it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rig.files.inputfile import Problem, fmt_against

BROADBAND_HZ = 0.0  # calibration frequency that stands for white noise
SINE_PEAK_FACTOR = math.sqrt(2.0)
NOISE_PEAK_FACTOR = math.sqrt(3.0)  # uniform noise: peak / RMS
MAX_TONE_FRACTION = 0.4
"""Highest tone, as a fraction of the DAQ's sample rate (0.8 x Nyquist). See docs/safety.md:
the DAC's image of a tone at f lies at fs - f, and a reconstruction filter can only separate
the two if they are well apart; the raised-cosine ramps and pip edges spread each tone by about
2/ramp either side, which must also stay below Nyquist."""
DEFAULT_MAX_VOLTS = 10.0  # a DAQ driver that states no output range: the widest common DAC range

Calibration = tuple[tuple[float, float, float], ...]


class SoundError(ValueError):
    """A sound cannot be played as asked: no calibration for it, too loud, too high."""


def level_to_volts(
    level_db: float,
    frequency_hz: float | None,
    calibration: Calibration | list[tuple[float, float, float]],
    extrapolate_octaves: float = 0.0,
) -> float:
    """RMS volts that play ``level_db`` dB SPL at ``frequency_hz`` (None or 0: white noise).

    Raises :class:`SoundError` if no calibration point covers the sound.
    """
    points = sorted((float(f), float(v), float(db)) for f, v, db in calibration)
    if not frequency_hz:
        broadband = [p for p in points if p[0] == BROADBAND_HZ]
        if not broadband:
            raise SoundError(
                "no speaker calibration for white noise: add a point with frequency_hz: 0"
            )
        _, v, db = broadband[0]
        return v * 10 ** ((level_db - db) / 20)
    tones = [p for p in points if p[0] > 0]
    reach = 2.0**extrapolate_octaves
    if not tones or not tones[0][0] / reach <= frequency_hz <= tones[-1][0] * reach:
        have = f"{tones[0][0]:g}-{tones[-1][0]:g} Hz" if tones else "no tone points"
        beyond = f" and {extrapolate_octaves:g} octaves beyond" if extrapolate_octaves else ""
        raise SoundError(
            f"no speaker calibration covers {frequency_hz:g} Hz (calibrated: {have}{beyond})"
        )
    freqs = np.log([p[0] for p in tones])
    gain_db = np.array([20 * math.log10(p[1]) - p[2] for p in tones])
    g = float(np.interp(math.log(frequency_hz), freqs, gain_db))  # held flat past the ends
    return 10 ** ((g + level_db) / 20)


@dataclass(frozen=True)
class SoundLimits:
    """What a rig's sound output can play. Built from the rig file by
    :attr:`rig.files.rigfile.RigFile.sound_limits`; a driver's synthesiser refines it with its own
    facts (its sample rate, its calibration, its output range)."""

    sample_rate_hz: float
    calibration: Calibration = ()
    max_volts: float = DEFAULT_MAX_VOLTS
    """Peak volts the sound output may drive."""
    max_volts_key: str = "daq.max_output_v"
    """The rig-file key ``max_volts`` comes from, named in errors."""
    max_level_db: float | None = None  # safety.max_level_db
    extrapolate_octaves: float = 0.0  # speaker.extrapolate_octaves

    @property
    def max_tone_hz(self) -> float:
        return MAX_TONE_FRACTION * self.sample_rate_hz


def sound_problems(
    name: str, kind: str, level_db: float, frequency_hz: float | None, limits: SoundLimits
) -> list[Problem]:
    """Every reason the rig cannot play stimulus ``name`` (a ``tone`` or ``white_noise``), as
    problems on its protocol fields ``stimuli.NAME.frequency_hz`` / ``.level_db``."""
    where = f"stimuli.{name}"
    problems: list[Problem] = []
    if limits.max_level_db is not None and level_db > limits.max_level_db:
        value, limit = fmt_against(level_db, limits.max_level_db)
        problems.append(
            Problem(
                f"{where}.level_db",
                f"{value} dB SPL is above this rig's limit of {limit} dB SPL (safety.max_level_db)",
            )
        )
    if kind == "tone":
        frequency = frequency_hz or 0.0
        if frequency > limits.max_tone_hz:
            value, limit = fmt_against(frequency, limits.max_tone_hz)
            problems.append(
                Problem(
                    f"{where}.frequency_hz",
                    f"{value} Hz is above this rig's highest tone, {limit} Hz "
                    f"({MAX_TONE_FRACTION:g} x daq.sample_rate_hz {limits.sample_rate_hz:g} Hz)",
                )
            )
            return problems
        peak_factor = SINE_PEAK_FACTOR
    else:
        frequency, peak_factor = BROADBAND_HZ, NOISE_PEAK_FACTOR
    try:
        rms = level_to_volts(level_db, frequency, limits.calibration, limits.extrapolate_octaves)
    except SoundError as exc:
        field = "frequency_hz" if kind == "tone" else "level_db"
        return [*problems, Problem(f"{where}.{field}", f"{exc} (speaker.calibration)")]
    peak = rms * peak_factor
    if peak > limits.max_volts * (1 + 1e-9):
        value, limit = fmt_against(peak, limits.max_volts)
        at = f" at {frequency:g} Hz" if kind == "tone" else " of white noise"
        problems.append(
            Problem(
                f"{where}.level_db",
                f"{level_db:g} dB SPL{at} needs {value} V peak; this rig's sound output allows "
                f"{limit} V ({limits.max_volts_key})",
            )
        )
    return problems


def stimuli_problems(stimuli: Mapping[str, Any], limits: SoundLimits) -> list[Problem]:
    """:func:`sound_problems` for every sound among a protocol's ``stimuli`` (shocks are the
    safety limits' business, :mod:`rig.program.safety`)."""
    problems: list[Problem] = []
    for name, stim in stimuli.items():
        if stim.type in ("tone", "white_noise"):
            frequency = getattr(stim, "frequency_hz", None)
            problems += sound_problems(name, stim.type, stim.level_db, frequency, limits)
    return problems
