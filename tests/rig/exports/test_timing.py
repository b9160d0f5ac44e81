"""Stimuli on time, measured: whole simulated sessions whose recorded edges come from the
played samples (the shock gate and imaging start looped back, the tone from the envelope of the
recorded sound), compared with the plan. Gates must land on their planned sample; the tone's
envelope inside its ramp; every pip of a pip train. A buffer chunk played one sample late must
make these checks fail (:func:`test_a_chunk_played_one_sample_late_is_caught`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rig.data.folder import SessionFolder
from rig.program.schedule import IMAGING_START, SHOCK_GATE, TONE_GATE
from rig.program.waveforms import Chunk, sound_segments
from sim.daq import SimDaq
from tests.conftest import info_json, make_rig

FS = 20_000
RAMP = 100  # samples: ramp_ms 5 at 20 kHz

# Pips, a trace interval (the US 1 s after the CS ends), white noise, a fixed and a random ITI,
# and a phase change between them.
PROTOCOL = """
protocol: timing-check
version: 1
seed: 11
stimuli:
  cs_plus:  {type: tone, frequency_hz: 7500, level_db: 75, duration_s: 3, ramp_ms: 5,
             pips: {rate_hz: 2, on_s: 0.2}}
  cs_minus: {type: tone, frequency_hz: 2000, level_db: 75, duration_s: 2.5, ramp_ms: 5}
  noise:    {type: white_noise, level_db: 70, duration_s: 2, ramp_ms: 5}
  shock:    {type: shock, current_ma: 0.5, duration_s: 0.5}
phases:
  - name: habituation
    trials: [{cs: cs_minus, repeat: 2}, {cs: noise}]
    order: sequential
    iti_s: 2.3
  - name: trace
    trials:
      - {cs: cs_plus, us: shock, us_onset_s: 4.0, repeat: 2}
      - {cs: cs_minus}
    order: shuffled
    iti_s: {uniform: [2, 4]}
    pre_s: 1.7
    post_s: 1
recording:
  video: {fps: 30}
  imaging: {frame_rate_hz: 30}
"""


def _run(cli, tmp_path: Path, write_yaml) -> tuple[dict, SessionFolder]:
    protocol = write_yaml(PROTOCOL, "timing.yaml")
    rig = make_rig(tmp_path)
    result = cli("run", protocol, "--fast", "--rig", rig, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip().splitlines()[-1])
    return info_json(cli, folder), SessionFolder.open(folder)


def timing_failures(info: dict, folder: SessionFolder) -> list[str]:
    """Every way the session's recorded outputs differ from the plan (empty: on time)."""
    out = []
    timing = info["timing"]
    for r in timing["stimuli"]:
        name = f"trial {r['trial'] + 1} {r['stimulus']}"
        for which in ("onset", "offset"):
            error = r[f"{which}_error_samples"]
            if error is None:
                out.append(f"{name}: {which} not recorded")
            elif r["kind"] == "us" and error != 0:
                out.append(f"{name}: gate {which} {error:+g} samples off")
            elif r["kind"] == "cs" and not (
                0 < error < RAMP if which == "onset" else -RAMP < error < 0
            ):
                out.append(f"{name}: tone {which} {error:+g} samples, not inside the ramp")
    if not timing["gates_within_one_sample"]:
        out.append(f"worst gate error {timing['worst_gate_error_samples']} samples")
    schedule = folder.schedule()
    gate = folder.edges(SHOCK_GATE)
    planned = [s for p in schedule.shocks for s in (p.start_sample, p.stop_sample)]
    if gate is None or gate.samples.tolist() != planned:
        out.append("shock gate edges are not the planned samples")
    tone = folder.edges(TONE_GATE)
    pips = [seg for s in schedule.sounds for seg in sound_segments(s, schedule.sample_rate_hz)]
    ons, offs = tone.samples[tone.rising], tone.samples[~tone.rising]
    if len(ons) != len(pips) or len(offs) != len(pips):
        out.append(f"{len(ons)} tone onsets recorded for {len(pips)} sounds and pips")
    else:
        for (a, b), on, off in zip(pips, ons.tolist(), offs.tolist(), strict=True):
            if not (a < on < a + RAMP and b - RAMP < off < b):
                out.append(f"sound [{a}, {b}) recorded as [{on}, {off})")
    start = folder.edges(IMAGING_START)
    if start is None or start.samples[start.rising].tolist() != [schedule.imaging_start_sample]:
        out.append("imaging start pulse not on its sample")
    return out


def test_stimuli_are_on_time_as_played(cli, tmp_path, write_yaml):
    info, folder = _run(cli, tmp_path, write_yaml)
    assert info["status"] == "complete"
    timing = info["timing"]
    assert timing["tone_measured_on"] == "sound envelope (ai0)"
    kinds = sorted((r["stimulus"], r["kind"]) for r in timing["stimuli"])
    assert kinds == sorted(
        [("cs_minus", "cs")] * 3 + [("noise", "cs")] + [("cs_plus", "cs"), ("shock", "us")] * 2
    )
    assert timing_failures(info, folder) == []
    assert timing["worst_gate_error_samples"] == 0 and timing["gates_within_one_sample"]
    assert 0 < timing["worst_tone_error_s"] < RAMP / FS and timing["tones_within_ramp"]
    # the trace interval: each shock 1 s after its CS ended, as planned
    shocks = [r for r in timing["stimuli"] if r["kind"] == "us"]
    for us in shocks:
        cs = next(r for r in timing["stimuli"] if r["trial"] == us["trial"] and r["kind"] == "cs")
        assert us["measured_onset_s"] - cs["planned_onset_s"] == pytest.approx(4.0, abs=0.5 / FS)
    # every frame accounted for, the microscope's on its own (0.1 % fast) clock
    imaging, video = info["streams"]["imaging"], info["streams"]["video"]
    assert imaging["complete"] and video["complete"]
    assert imaging["frames_on_clock"] == imaging["written"] > imaging["frames_expected"]
    assert imaging["sync"]["measured_rate_hz"] == pytest.approx(30.03, rel=1e-4)
    assert imaging["sync"]["latency_s"] == pytest.approx(0.01, abs=1 / FS)
    text = cli("info", folder.path).stdout
    assert "timing    worst error: shock gate 0.000 ms (0.00 samples), tone" in text
    assert "<- over one sample" not in text and "<- beyond the ramp" not in text


def test_a_chunk_played_one_sample_late_is_caught(cli, tmp_path, write_yaml, monkeypatch):
    """The DAQ plays the chunk holding the first shock's onset one sample late (every line and
    the sound): the checks above must fail, naming that shock."""
    play = SimDaq._play
    shifted: list[int] = []
    last: dict = {}  # each line's last sample in the chunk before

    def late(self: SimDaq, chunk: Chunk) -> None:
        first_shock = self.schedule.shocks[0].start_sample
        before = dict(last)
        last.update({k: v[-1:] for k, v in chunk.lines.items()}, sound=chunk.sound_v[-1:])
        if chunk.start <= first_shock < chunk.start + chunk.n and not shifted:
            shifted.append(chunk.start)
            lines = {k: np.concatenate((before[k], v[:-1])) for k, v in chunk.lines.items()}
            sound = np.concatenate((before["sound"], chunk.sound_v[:-1]))
            chunk = Chunk(chunk.start, sound, lines)
        play(self, chunk)

    monkeypatch.setattr(SimDaq, "_play", late)
    info, folder = _run(cli, tmp_path, write_yaml)
    assert shifted
    failures = timing_failures(info, folder)
    assert "trial 4 shock: gate onset +1 samples off" in failures, failures
    assert "trial 4 shock: gate offset +1 samples off" in failures, failures
    assert "shock gate edges are not the planned samples" in failures
    # one sample late is what a real loopback may read, so the report's own flag allows it;
    # the simulated DAQ reads its loopbacks exactly, and these checks ask for 0
    assert info["timing"]["worst_gate_error_samples"] == 1
    assert "shock gate 0.050 ms (1.00 samples)" in cli("info", folder.path).stdout
