"""Sounds are checked against the rig at validate (issue 14, item 4; rig.files.speaker).

One test per rule, through ``rig validate`` as a user meets it (exit 2, ``FILE: field: message``
naming the rig-file key that limits it), each with the case just inside the limit passing; the
conversion from dB SPL to volts; and a property: whatever validates, the synthesiser plays, below
the output's voltage limit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.files.inputfile import fmt_against
from rig.files.speaker import (
    MAX_TONE_FRACTION,
    SoundError,
    SoundLimits,
    level_to_volts,
    sound_problems,
)
from rig.program.schedule import OutputSchedule, SoundBlock
from rig.program.waveforms import Synthesizer
from tests.conftest import SMALL_RIG, make_rig

CAL = ((2000.0, 0.5, 70.0), (8000.0, 0.2, 70.0), (0.0, 0.3, 65.0))

# sim-small: 20 kHz, calibrated 2000-12000 Hz and broadband, DAQ range 5 V, max_level_db 85.
PROTOCOL = """\
protocol: sounds
version: 1
seed: 1
stimuli:
  cs_plus: {{type: tone, frequency_hz: {frequency_hz}, level_db: {level_db}, duration_s: 2}}
  noise: {{type: white_noise, level_db: {noise_db}, duration_s: 2}}
phases:
  - name: test
    trials: [{{cs: cs_plus}}, {{cs: noise}}]
    iti_s: 1
"""


@pytest.fixture
def validate(cli, write_yaml, tmp_path):
    """``rig validate`` of the sounds protocol (tone at ``frequency_hz``/``level_db``, noise at
    ``noise_db``) on sim-small with ``rig_extra`` rig-file text replacing or adding lines."""

    def run(frequency_hz=7500, level_db=75, noise_db=70, rig_extra="", replace=None):
        protocol = write_yaml(
            PROTOCOL.format(frequency_hz=frequency_hz, level_db=level_db, noise_db=noise_db),
            "sounds.yaml",
        )
        rig = make_rig(tmp_path, rig_extra)
        if replace:
            text = rig.read_text()
            assert replace[0] in text, f"the rig file has no {replace[0]!r} to replace"
            rig.write_text(text.replace(*replace))
        return cli("validate", protocol, "--rig", rig)

    return run


def _problems(result) -> list[str]:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return [line.split(": ", 1)[1] for line in result.stderr.splitlines()]


def test_the_shipped_sounds_validate(validate):
    result = validate()
    assert result.exit_code == 0, result.output


# ------------------------------------------------------------------ Nyquist with margin
def test_a_tone_above_four_tenths_of_the_sample_rate_fails(validate):
    assert _problems(validate(frequency_hz=8001)) == [
        "stimuli.cs_plus.frequency_hz: 8001 Hz is above this rig's highest tone, 8000 Hz "
        "(0.4 x daq.sample_rate_hz 20000 Hz)"
    ]
    assert validate(frequency_hz=8000).exit_code == 0
    # the limit is the rig's: at 40 kHz the same tone plays
    faster = ("sample_rate_hz: 20000", "sample_rate_hz: 40000")
    assert validate(frequency_hz=8001, replace=faster).exit_code == 0


def test_without_a_rig_file_the_built_in_rig_is_the_rig(cli, write_yaml):
    text = PROTOCOL.format(frequency_hz=9000, level_db=75, noise_db=70)
    result = cli("validate", write_yaml(text, "sounds.yaml"))
    assert _problems(result) == [
        "stimuli.cs_plus.frequency_hz: 9000 Hz is above this rig's highest tone, 8000 Hz "
        "(0.4 x daq.sample_rate_hz 20000 Hz)"
    ]


# ------------------------------------------------------------------ inside the calibration
def test_a_tone_outside_the_calibration_fails_unless_the_rig_allows_extrapolation(validate):
    assert _problems(validate(frequency_hz=1999)) == [
        "stimuli.cs_plus.frequency_hz: no speaker calibration covers 1999 Hz "
        "(calibrated: 2000-12000 Hz) (speaker.calibration)"
    ]
    half_octave = ("speaker: {calibration:", "speaker: {extrapolate_octaves: 0.5, calibration:")
    assert validate(frequency_hz=1999, replace=half_octave).exit_code == 0
    assert (
        validate(frequency_hz=1415, replace=half_octave).exit_code == 0
    )  # 2000 / sqrt(2) = 1414.2
    assert _problems(validate(frequency_hz=1400, replace=half_octave)) == [
        "stimuli.cs_plus.frequency_hz: no speaker calibration covers 1400 Hz "
        "(calibrated: 2000-12000 Hz and 0.5 octaves beyond) (speaker.calibration)"
    ]


def test_white_noise_needs_a_broadband_calibration_point(validate):
    broadband = ",\n                        {frequency_hz: 0, volts: 0.4, level_db: 70}]}"
    assert _problems(validate(replace=(broadband, "]}"))) == [
        "stimuli.noise.level_db: no speaker calibration for white noise: add a point with "
        "frequency_hz: 0 (speaker.calibration)"
    ]


# ------------------------------------------------------------------ the output's voltage
def test_a_level_that_needs_more_than_the_output_can_drive_fails(validate):
    # 75 dB at 7500 Hz: 0.8 V RMS, 1.131 V peak
    assert _problems(
        validate(rig_extra="", replace=("speaker: {", "speaker: {max_volts: 1.1, "))
    ) == [
        "stimuli.cs_plus.level_db: 75 dB SPL at 7500 Hz needs 1.13 V peak; this rig's sound "
        "output allows 1.1 V (speaker.max_volts)"
    ]
    assert validate(replace=("speaker: {", "speaker: {max_volts: 1.14, ")).exit_code == 0
    # without speaker.max_volts, the DAQ's output range is the limit
    small_range = ("sample_rate_hz: 20000", "sample_rate_hz: 20000, max_output_v: 1.0")
    assert _problems(validate(replace=small_range)) == [
        "stimuli.cs_plus.level_db: 75 dB SPL at 7500 Hz needs 1.13 V peak; this rig's sound "
        "output allows 1 V (daq.max_output_v)"
    ]
    # noise: uniform, peak sqrt(3) x RMS: 70 dB is 0.4 V RMS, 0.693 V peak
    assert _problems(
        validate(
            frequency_hz=2000, level_db=70, replace=("speaker: {", "speaker: {max_volts: 0.69, ")
        )
    ) == [
        "stimuli.noise.level_db: 70 dB SPL of white noise needs 0.693 V peak; this rig's sound "
        "output allows 0.69 V (speaker.max_volts)"
    ]


def test_the_speaker_cannot_ask_for_more_than_the_daq_gives(validate):
    assert _problems(validate(replace=("speaker: {", "speaker: {max_volts: 6, "))) == [
        "speaker.max_volts: 6 V is above the DAQ's output range of 5 V (daq.max_output_v)"
    ]


# ------------------------------------------------------------------ safety.max_level_db
def test_every_sound_is_capped_by_max_level_db(validate):
    assert _problems(validate(level_db=85.0000001, noise_db=86)) == [
        "stimuli.cs_plus.level_db: 85.0000001 dB SPL is above this rig's limit of 85 dB SPL "
        "(safety.max_level_db)",
        "stimuli.noise.level_db: 86 dB SPL is above this rig's limit of 85 dB SPL "
        "(safety.max_level_db)",
    ]
    assert validate(level_db=85, noise_db=85).exit_code == 0
    louder = ("max_session_s: 14400}", "max_session_s: 14400, max_level_db: 86}")
    assert validate(level_db=86, noise_db=86, replace=louder).exit_code == 0


def test_plan_and_run_refuse_what_validate_refuses(cli, write_yaml, tmp_path):
    protocol = write_yaml(PROTOCOL.format(frequency_hz=9000, level_db=75, noise_db=70))
    for args in (("plan", protocol), ("run", protocol, "--fast", "--out", tmp_path / "out")):
        result = cli(*args, "--rig", SMALL_RIG)
        assert result.exit_code == 2, result.output
        assert "stimuli.cs_plus.frequency_hz: 9000 Hz is above" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing was built, nothing was armed


# ------------------------------------------------------------------ the conversion
def test_level_to_volts_follows_calibration_and_interpolates_in_log_frequency():
    assert level_to_volts(70.0, 2000.0, CAL) == pytest.approx(0.5)
    assert level_to_volts(76.0, 2000.0, CAL) == pytest.approx(0.5 * 10 ** (6 / 20))
    # 4 kHz is half-way between 2 and 8 kHz in log frequency: the geometric mean of the volts.
    assert level_to_volts(70.0, 4000.0, CAL) == pytest.approx(math.sqrt(0.5 * 0.2))
    assert level_to_volts(65.0, None, CAL) == pytest.approx(0.3)


@pytest.mark.parametrize("freq", [1000.0, 9000.0])
def test_uncalibrated_tone_is_a_clear_error(freq):
    with pytest.raises(SoundError, match=f"no speaker calibration covers {freq:g} Hz"):
        level_to_volts(70.0, freq, CAL)


def test_extrapolation_holds_the_nearest_points_gain():
    assert level_to_volts(70.0, 16000.0, CAL, extrapolate_octaves=1.0) == pytest.approx(0.2)
    assert level_to_volts(70.0, 1000.0, CAL, extrapolate_octaves=1.0) == pytest.approx(0.5)
    with pytest.raises(SoundError):
        level_to_volts(70.0, 16001.0, CAL, extrapolate_octaves=1.0)


def test_limit_messages_show_enough_digits_to_tell_value_from_limit():
    assert fmt_against(1.0000000001, 1.0) == ("1.0000000001", "1")
    assert fmt_against(9000.0, 8000.0) == ("9000", "8000")  # not 9e+03 against 8e+03
    assert fmt_against(5.656854, 5.0) == ("5.66", "5")


# ------------------------------------------------------------------ validate agrees with play
@settings(max_examples=300, deadline=None)
@given(
    rate=st.sampled_from([10_000.0, 20_000.0, 44_100.0, 100_000.0]),
    frequency=st.floats(1000.0, 20_000.0),  # the calibration, an octave either side
    level=st.floats(0.0, 120.0),
    noise=st.booleans(),
    volts=st.floats(0.05, 10.0),
    cap=st.floats(40.0, 120.0),
    octaves=st.sampled_from([0.0, 0.25, 1.0]),
)
def test_whatever_validates_plays_within_the_limits(
    rate, frequency, level, noise, volts, cap, octaves
):
    limits = SoundLimits(rate, CAL, volts, "speaker.max_volts", cap, octaves)
    kind = "white_noise" if noise else "tone"
    problems = sound_problems("cs", kind, level, None if noise else frequency, limits)
    block = SoundBlock(0, 4000, kind, level, None if noise else frequency, stimulus="cs")
    schedule = OutputSchedule(rate, 4000, (block,), speaker_calibration=CAL, sound_limits=limits)
    if problems:
        with pytest.raises(SoundError):  # the synthesiser refuses it too, for the same reasons
            Synthesizer(schedule)
        return
    played = Synthesizer(schedule).sound(0, 4000)
    assert np.abs(played).max() <= volts * (1 + 1e-9)
    assert level <= cap
    assert noise or frequency <= MAX_TONE_FRACTION * rate
