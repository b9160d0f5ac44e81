"""The simulated devices' clocks, the envelope detector and the camera trigger train, on their
own; and the rig file's clock settings, validated strictly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.files.rigfile import Fault
from rig.ports import Edges
from rig.program.envelope import EnvelopeDetector, envelope_threshold_v
from rig.program.schedule import OutputSchedule, SoundBlock, frame_trigger_samples
from rig.program.waveforms import PulseTrain, Synthesizer, find_edges, sound_segments
from sim.clocks import CameraExposures, GlitchedLine, MicroscopeClock
from tests.conftest import make_rig

FS = 20_000.0


def chunked(total: int, sizes: list[int]) -> list[tuple[int, int]]:
    """``[start, stop)`` pieces of ``range(total)`` cut at the given sizes (then repeated)."""
    out, start, i = [], 0, 0
    while start < total:
        n = sizes[i % len(sizes)]
        out.append((start, min(total, start + n)))
        start += n
        i += 1
    return out


def edges_in_chunks(feed, total: int, sizes: list[int]) -> Edges:
    parts = [feed(a, b) for a, b in chunked(total, sizes)]
    return Edges(
        np.concatenate([p.samples for p in parts]), np.concatenate([p.rising for p in parts])
    )


# ------------------------------------------------------------------ camera trigger train
@given(st.lists(st.integers(1, 5000), min_size=1, max_size=5), st.sampled_from([30.0, 29.97, 90]))
@settings(max_examples=30, deadline=None)
def test_the_trigger_train_rises_on_every_planned_trigger_however_it_is_chunked(sizes, rate):
    n = 60_000
    train = PulseTrain(n, FS, rate, 0.001)
    previous = False
    rises = []
    for a, b in chunked(n, sizes):
        samples = train.samples(a, b - a)
        found = find_edges(samples, a, previous)
        previous = bool(samples[-1])
        rises += found.samples[found.rising].tolist()
    assert rises == frame_trigger_samples(n, FS, rate).tolist()


# ------------------------------------------------------------------ envelope
CAL = ((2000.0, 0.5, 75.0), (7500.0, 0.8, 75.0), (0.0, 0.4, 70.0))


def _sound_schedule() -> OutputSchedule:
    from rig.files.protocol import Pips

    sounds = (
        SoundBlock(2_000, 22_000, "tone", 75.0, frequency_hz=2000.0, ramp_ms=5),
        SoundBlock(
            30_000,
            60_000,
            "tone",
            60.0,
            frequency_hz=7500.0,
            ramp_ms=5,
            pips=Pips(rate_hz=4, on_s=0.1),
        ),
        SoundBlock(70_000, 80_000, "white_noise", 70.0, ramp_ms=2, seed=3),
    )
    return OutputSchedule(FS, 90_000, sounds=sounds, speaker_calibration=CAL)


@given(st.lists(st.integers(1, 12_000), min_size=1, max_size=4))
@settings(max_examples=25, deadline=None)
def test_the_envelope_finds_every_sound_and_pip_inside_its_ramp_however_chunked(sizes):
    sched = _sound_schedule()
    synth = Synthesizer(sched)
    noise = np.random.default_rng(1).normal(0, 0.0002, sched.n_samples)
    detector = EnvelopeDetector(envelope_threshold_v(synth.quietest_peak_v()), FS)
    recorded = synth.sound(0, sched.n_samples) + noise
    edges = edges_in_chunks(lambda a, b: detector.feed(recorded[a:b], a), sched.n_samples, sizes)
    planned = [seg for s in sched.sounds for seg in sound_segments(s, FS)]
    assert len(planned) == 1 + 6 + 1  # a tone, six pips, noise
    assert edges.rising.tolist() == [True, False] * len(planned)
    for (a, b), on, off in zip(planned, edges.samples[::2], edges.samples[1::2], strict=True):
        block = next(s for s in sched.sounds if s.start_sample <= a < s.stop_sample)
        ramp = round(block.ramp_ms * FS / 1000)
        assert a < on < a + ramp and b - ramp < off < b


def test_silence_and_noise_alone_are_no_sound():
    detector = EnvelopeDetector(envelope_threshold_v(None), FS)
    quiet = np.random.default_rng(2).normal(0, 0.0002, 200_000)
    assert detector.feed(quiet, 0).samples.size == 0


def test_a_sound_cut_off_by_the_safe_state_ends_where_the_output_stopped():
    detector = EnvelopeDetector(0.01, FS)
    tone = 0.5 * np.sin(np.arange(1000) * 0.7)
    assert detector.feed(tone, 0).rising.tolist() == [True]
    stop = detector.stop(1000)
    assert stop.samples.tolist() == [1000] and stop.rising.tolist() == [False]


# ------------------------------------------------------------------ device clocks
@given(st.lists(st.integers(1, 20_000), min_size=1, max_size=4))
@settings(max_examples=25, deadline=None)
def test_the_microscope_starts_on_the_pulse_it_sees_and_runs_on_its_own_clock(sizes):
    n, start = 200_000, 12_345
    line = np.zeros(n, bool)
    line[start : start + 200] = True
    clock = MicroscopeClock(FS, n, 30.03, drift_ppm=25, start_latency_s=0.01)
    frames = np.concatenate([clock.see(a, line[a:b]) for a, b in chunked(n, sizes)])
    assert clock.started_at == start
    k = np.arange(len(frames))
    truth = start / FS + 0.01 + k / (30.03 * (1 + 25e-6))
    np.testing.assert_array_equal(frames, np.ceil(truth * FS - 1e-9).astype(np.int64))
    assert frames[-1] < n <= np.ceil((truth[-1] + 1 / 30.03) * FS)
    np.testing.assert_array_equal(frames, clock.predict(start))


def test_a_microscope_that_sees_no_start_pulse_never_scans():
    clock = MicroscopeClock(FS, 100_000, 30.0)
    assert clock.see(0, np.zeros(100_000, bool)).size == 0


def test_camera_exposures_follow_the_triggers_it_sees_with_latency_and_jitter():
    n = 400_000
    triggers = frame_trigger_samples(n, FS, 30.0)
    train = PulseTrain(n, FS, 30.0, 0.001)
    camera = CameraExposures(FS, 0.0013, 0.0002, seed=9)
    got = np.concatenate(
        [camera.see(a, train.samples(a, b - a)) for a, b in chunked(n, [7_000, 333])]
    )
    np.testing.assert_array_equal(got, CameraExposures(FS, 0.0013, 0.0002, 9).predict(triggers))
    delay = (got - triggers) / FS
    assert 0.0013 <= np.median(delay) <= 0.0013 + 1.001 / FS  # counted on the next sample
    assert 0.00015 < np.std(delay) < 0.00026
    assert (delay >= 0).all()


def test_glitches_between_a_device_and_the_daq():
    faults = [
        Fault(at_s=0.2, kind="frame_clock_missing", count=2),
        Fault(at_s=0.5, kind="frame_clock_extra", count=1),
        Fault(at_s=0.8, kind="frame_clock_stop"),
    ]
    kinds = {
        "frame_clock_missing": "missing",
        "frame_clock_extra": "extra",
        "frame_clock_stop": "stop",
    }
    line = GlitchedLine(faults, kinds, FS)
    edges = np.arange(0, 20_000, 1000)  # every 50 ms
    out = np.concatenate([line.pass_on(edges[i : i + 3]) for i in range(0, len(edges), 3)])
    expected = [e for e in edges.tolist() if e < 16_000 and e not in (4000, 5000)]
    expected.insert(expected.index(10_000), 9_500)
    assert out.tolist() == expected


# ------------------------------------------------------------------ rig file
@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "neurons: 20,",
            "neurons: 20, clock_hz: -3,",
            "imaging.clock_hz: Input should be greater than 0",
        ),
        (
            "neurons: 20,",
            "neurons: 20, drift_ppm: 5000,",
            "imaging.drift_ppm: Input should be less than or equal to 1000",
        ),
        (
            "neurons: 20,",
            "neurons: 20, start_latency_s: fast,",
            "imaging.start_latency_s: Input should be a valid number",
        ),
        (
            "height: 120,",
            "height: 120, jitter_s: 1,",
            "camera.jitter_s: Input should be less than or equal to 0.005",
        ),
        (
            "height: 120,",
            "height: 120, exposure_latency: 0.001,",
            "camera.exposure_latency: unknown key",
        ),
        (
            "{sound_loopback: ai0}",
            "{sound_loopback: ai0, tone: ao0}",
            "daq.lines.tone: unknown key",
        ),
    ],
)
def test_clock_settings_are_validated_strictly(cli, tmp_path, old, new, message):
    rig = make_rig(tmp_path)
    text = rig.read_text()
    assert old in text
    rig.write_text(text.replace(old, new))
    result = cli("validate", "protocols/demo.yaml", "--rig", rig)
    assert result.exit_code == 2, result.output
    assert f"{rig}: {message}" in result.stderr
    assert "Traceback" not in result.output


def test_a_microscope_clock_far_from_the_protocols_rate_does_not_validate(cli, tmp_path):
    rig = make_rig(tmp_path)
    rig.write_text(rig.read_text().replace("neurons: 20,", "neurons: 20, clock_hz: 15,"))
    result = cli("validate", "protocols/demo.yaml", "--rig", rig)
    assert result.exit_code == 2
    assert "recording.imaging.frame_rate_hz: 30 Hz, but rig 'simulated-small' scans at 15 Hz" in (
        result.stderr
    )
    rig.write_text(rig.read_text().replace("clock_hz: 15,", "clock_hz: 29.5,"))
    assert cli("validate", "protocols/demo.yaml", "--rig", rig).exit_code == 0
