"""Output synthesis: levels, ramps, pips, gates, chunking and edge finding."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.files.protocol import Pips
from rig.files.speaker import SoundLimits
from rig.program.schedule import SHOCK_GATE, TONE_GATE, OutputSchedule, ShockPulse, SoundBlock
from rig.program.waveforms import (
    IMAGING_START,
    Synthesizer,
    WaveformError,
    edges_from_counts,
    find_edges,
)

RATE = 20_000.0
CAL = ((2000.0, 0.5, 70.0), (8000.0, 0.2, 70.0), (0.0, 0.3, 65.0))


def schedule(**kw) -> OutputSchedule:
    sounds = (
        SoundBlock(1000, 21000, "tone", 70.0, frequency_hz=2000.0, ramp_ms=5, stimulus="cs"),
        SoundBlock(
            30000,
            70000,
            "tone",
            64.0,
            frequency_hz=4000.0,
            pips=Pips(rate_hz=2.0, on_s=0.25),
            stimulus="pip",
        ),
        SoundBlock(80000, 90000, "white_noise", 65.0, seed=7, stimulus="noise"),
    )
    base = dict(
        sample_rate_hz=RATE,
        n_samples=100_000,
        sounds=sounds,
        shocks=(ShockPulse(19000, 21000, 0.5),),
        imaging_rate_hz=30.0,
        imaging_start_sample=10,
        speaker_calibration=CAL,
    )
    base.update(kw)
    return OutputSchedule(**base)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


def test_noise_without_broadband_point_is_an_error():
    with pytest.raises(WaveformError, match="white noise"):
        Synthesizer(schedule(speaker_calibration=CAL[:2]))


def test_too_loud_and_above_nyquist_are_refused():
    with pytest.raises(WaveformError, match=r"stimuli.cs.level_db: .* allows 0.5 V"):
        Synthesizer(schedule(), max_output_v=0.5)
    high = schedule(sounds=(SoundBlock(0, 100, "tone", 70.0, frequency_hz=12000.0),))
    with pytest.raises(WaveformError, match="highest tone, 8000 Hz"):
        Synthesizer(high, calibration=((12000.0, 1.0, 70.0),))


def test_the_synthesiser_checks_the_rigs_sound_limits_again():
    """A schedule compiled for a rig carries its limits: the synthesiser a driver plays from
    refuses what validation refused, with the same check (rig.files.speaker.sound_problems)."""
    capped = schedule(sound_limits=SoundLimits(RATE, max_level_db=66.0))
    with pytest.raises(WaveformError, match=r"stimuli.cs.level_db: 70 dB SPL .*max_level_db"):
        Synthesizer(capped)
    speaker = schedule(
        sound_limits=SoundLimits(RATE, max_volts=0.5, max_volts_key="speaker.max_volts")
    )
    with pytest.raises(WaveformError, match=r"allows 0.5 V \(speaker.max_volts\)"):
        Synthesizer(speaker)
    # the driver's own range still binds when the rig file allows more
    with pytest.raises(WaveformError, match=r"allows 0.5 V \(daq.max_output_v\)"):
        Synthesizer(schedule(sound_limits=SoundLimits(RATE, max_volts=8.0)), max_output_v=0.5)
    # extrapolation the rig file allows is played, with the nearest point's gain
    cal = ((2500.0, 0.5, 70.0), (8000.0, 0.2, 70.0), (0.0, 0.3, 65.0))
    with pytest.raises(WaveformError, match="no speaker calibration covers 2000 Hz"):
        Synthesizer(schedule(speaker_calibration=cal))
    wider = schedule(
        speaker_calibration=cal, sound_limits=SoundLimits(RATE, extrapolate_octaves=0.5)
    )
    assert Synthesizer(wider).segments[0].rms_v == pytest.approx(0.5)


def test_tone_level_frequency_and_onset():
    synth = Synthesizer(schedule())
    x = synth.sound(0, 30000)
    tone = x[1000:21000]
    assert np.all(x[:1000] == 0) and x[1000] != 0 and x[20999] != 0 and np.all(x[21000:] == 0)
    # The steady part (past the ramps) is a 2 kHz sine of 0.5 V RMS.
    steady = tone[200:-200]
    assert rms(steady) == pytest.approx(0.5, rel=1e-3)
    spectrum = np.abs(np.fft.rfft(tone))
    assert np.fft.rfftfreq(len(tone), 1 / RATE)[np.argmax(spectrum)] == pytest.approx(2000.0)


def test_cosine_ramp_reaches_full_level_after_ramp_ms():
    x = Synthesizer(schedule()).sound(1000, 200)
    ramp = 100  # 5 ms at 20 kHz; the tone's period is 10 samples
    assert rms(x[:10]) < 0.01
    assert rms(x[40:50]) < 0.5 * rms(x[ramp : ramp + 100])
    assert rms(x[ramp : ramp + 100]) == pytest.approx(0.5, rel=1e-6)


def test_pips_and_tone_gate():
    synth = Synthesizer(schedule())
    gate = synth.lines(30000, 40000)[TONE_GATE]
    edges = find_edges(gate, 30000)
    on = 5000  # 0.25 s
    expected_on = [30000 + k * 10000 for k in range(4)]
    assert edges.samples[edges.rising].tolist() == expected_on
    assert edges.samples[~edges.rising].tolist() == [s + on for s in expected_on]
    x = synth.sound(30000, 40000)
    assert np.all(x[~gate] == 0)
    assert rms(x[200 : on - 200]) == pytest.approx(math.sqrt(0.1) * 10 ** (-6 / 20), rel=1e-3)


def test_noise_is_seeded_uniform_and_at_level():
    synth = Synthesizer(schedule())
    x = synth.sound(80000, 10000)
    assert rms(x[200:-200]) == pytest.approx(0.3, rel=0.02)
    assert np.abs(x).max() <= 0.3 * math.sqrt(3) + 1e-12
    other_seed = schedule(sounds=(SoundBlock(80000, 90000, "white_noise", 65.0, seed=8),))
    assert not np.allclose(Synthesizer(other_seed).sound(80000, 10000), x)


def test_digital_lines_shock_and_imaging_start():
    lines = Synthesizer(schedule()).lines(0, 100_000)
    shock = find_edges(lines[SHOCK_GATE], 0)
    assert shock.samples.tolist() == [19000, 21000]
    assert shock.rising.tolist() == [True, False]
    imaging = find_edges(lines[IMAGING_START], 0)
    assert imaging.samples.tolist() == [10, 210]  # 10 ms pulse
    assert not Synthesizer(schedule(imaging_rate_hz=None)).lines(0, 1000)[IMAGING_START].any()


def test_past_the_end_is_silent_and_low():
    chunk = Synthesizer(schedule()).chunk(100_000, 5000)
    assert not chunk.sound_v.any()
    assert not any(v.any() for v in chunk.lines.values())


def test_output_is_hard_clipped_where_sounds_overlap():
    overlap = schedule(
        sounds=(
            SoundBlock(0, 4000, "tone", 70.0, frequency_hz=2000.0),
            SoundBlock(0, 4000, "tone", 70.0, frequency_hz=2000.0),
        )
    )
    x = Synthesizer(overlap, max_output_v=1.0).sound(0, 4000)
    assert np.abs(x).max() == pytest.approx(1.0)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 40_000), min_size=1, max_size=8), st.integers(0, 5000))
def test_chunked_synthesis_equals_one_shot(sizes, first):
    synth = Synthesizer(schedule())
    total = sum(sizes)
    whole = synth.chunk(first, total)
    start = first
    sound, lines = [], {k: [] for k in whole.lines}
    for n in sizes:
        chunk = synth.chunk(start, n)
        sound.append(chunk.sound_v)
        for k, v in chunk.lines.items():
            lines[k].append(v)
        start += n
    assert np.array_equal(np.concatenate(sound), whole.sound_v)
    for k, v in whole.lines.items():
        assert np.array_equal(np.concatenate(lines[k]), v)


def test_find_edges_across_chunks():
    signal = np.zeros(100, bool)
    signal[10:20] = True
    signal[50:] = True
    whole = find_edges(signal, 1000)
    assert whole.samples.tolist() == [1010, 1020, 1050]
    assert whole.rising.tolist() == [True, False, True]
    a = find_edges(signal[:50], 1000)
    b = find_edges(signal[50:], 1050, previous=bool(signal[49]))
    c = find_edges(signal[60:], 1060, previous=True)
    assert np.concatenate([a.samples, b.samples]).tolist() == whole.samples.tolist()
    assert c.samples.size == 0


def test_edges_from_counts_handles_bursts_and_wraparound():
    counts = np.array([0, 1, 1, 3, 3], np.uint32)
    edges = edges_from_counts(counts, 100)
    assert edges.samples.tolist() == [101, 103, 103]
    assert edges.rising.all()
    wrapped = edges_from_counts(np.array([0, 1], np.uint32), 7, previous_count=2**32 - 1)
    assert wrapped.samples.tolist() == [7, 8]
