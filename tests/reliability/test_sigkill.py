"""``kill -9`` at a random moment of ``rig run`` loses at most a second of frames (issue 8, part 2).

Ten real ``rig run --speed`` processes on the small simulated rig, five at a time, are each
SIGKILLed at a seeded random moment after their session folder appears (so some die while
arming, most while recording, some mid-shock). Then, for every session:

* it is readable and ``rig info`` says ``interrupted``;
* ``rig recover`` makes it ``recovered`` with no manual repair;
* every stream lost at most one second of frames against the exposures the DAQ recorded
  before the kill (the edge journal), and every frame kept has its timestamp;
* the events are complete up to the last trial boundary before the kill.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from rig.data.folder import STREAM_IMAGE
from rig.data.journal import Journal
from tests.conftest import SMALL_RIG, info_json

SESSIONS = 10
AT_ONCE = 5
SPEED = 3.0
SEED = 20240607
KILL_WITHIN_S = 3.5  # host seconds after the session folder appears
LOST_AT_MOST_S = 1.0
STEP_MARGIN_S = 0.25  # an event is logged in the engine step after its edge is recorded

# 26 s of session: a trial boundary every 3 s, shocks at the ends of the CS+.
PROTOCOL = """
protocol: sigkill
version: 1
seed: 3
stimuli:
  cs_plus: {type: tone, frequency_hz: 7500, level_db: 75, duration_s: 1.5}
  cs_minus: {type: tone, frequency_hz: 2000, level_db: 75, duration_s: 1.5}
  shock: {type: shock, current_ma: 0.3, duration_s: 0.5}
phases:
  - name: baseline
    duration_s: 1
  - name: conditioning
    trials: [{cs: cs_plus, us: shock, repeat: 4}, {cs: cs_minus, repeat: 4}]
    order: sequential
    iti_s: 1.5
    post_s: 1
recording:
  video: {fps: 30}
  imaging: {frame_rate_hz: 30}
"""


def _start(protocol: Path, out: Path) -> subprocess.Popen:
    args = ["run", str(protocol), "--speed", str(SPEED), "--rig", str(SMALL_RIG)]
    return subprocess.Popen(
        [sys.executable, "-m", "rig.cli", *args, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_batch(protocol: Path, outs: list[Path], delays: list[float]) -> None:
    procs = [_start(protocol, out) for out in outs]
    due: list[float | None] = [None] * len(procs)
    deadline = time.monotonic() + 90
    while any(p.returncode is None for p in procs) and time.monotonic() < deadline:
        now = time.monotonic()
        for i, (proc, out) in enumerate(zip(procs, outs, strict=True)):
            if proc.returncode is not None:
                continue
            if due[i] is None and list(out.glob("*/journal/events.jsonl")):
                due[i] = now + delays[i]
            if due[i] is not None and now >= due[i]:
                assert proc.poll() is None, f"rig run ended before the kill: {proc.stderr.read()}"
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
        time.sleep(0.02)
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
        proc.wait(timeout=30)
        proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_at_most_a_second(tmp_path, cli, write_yaml):
    protocol = write_yaml(PROTOCOL, "sigkill.yaml")
    rng = random.Random(SEED)
    delays = [rng.uniform(0.0, KILL_WITHIN_S) for _ in range(SESSIONS)]
    outs = [tmp_path / f"run{i}" for i in range(SESSIONS)]
    for start in range(0, SESSIONS, AT_ONCE):
        _kill_batch(protocol, outs[start : start + AT_ONCE], delays[start : start + AT_ONCE])
    recorded = 0
    for out in outs:
        (folder,) = out.glob("*_sigkill")
        recorded += _check_killed_session(cli, folder)
    assert recorded >= SESSIONS // 2  # most kills landed while frames were being recorded


def _check_killed_session(cli, folder: Path) -> bool:
    """Check one killed session; True if it had started recording frames."""
    before = info_json(cli, folder)
    assert before["status"] == "interrupted", before["end_reason"]
    result = cli("recover", folder)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("recovered")
    info = info_json(cli, folder)
    assert info["status"] == "recovered"
    root = zarr.open_group(str(folder / "session.zarr"), mode="r")  # the format itself
    fs = float(root.attrs["sample_rate_hz"])
    journal = Journal(folder / "journal")
    reached_s = 0.0
    for line in ("camera_exposure", "frame_clock", "tone", "shock_gate"):
        samples = journal.edges(line).samples
        if len(samples):
            reached_s = max(reached_s, samples[-1] / fs)
    for stream, line in (("video", "camera_exposure"), ("imaging", "frame_clock")):
        exposures = int(journal.edges(line).rising.sum())
        if STREAM_IMAGE[stream] not in root:  # killed before the streams were set up
            assert exposures == 0
            continue
        acc = info["streams"][stream]
        assert acc["edges"] == exposures
        assert exposures - acc["written"] <= LOST_AT_MOST_S * 30, (stream, acc)
        frames = root[STREAM_IMAGE[stream]]["0"]
        stamps = root["timing"][stream]["timestamps_s"][:]
        assert frames.shape[0] == len(stamps) == acc["written"]
        np.testing.assert_array_equal(
            root["timing"][stream]["device_index"][:], np.arange(acc["written"])
        )
        assert np.isfinite(stamps).all()
        if acc["written"]:
            assert frames[acc["written"] - 1].any()  # the last frame kept is on disk
    for trial in info["trials"]:
        planned = trial["planned"]
        for key in ("cs_onset_s", "cs_offset_s", "us_onset_s", "us_offset_s"):
            if planned[key] is not None and planned[key] <= reached_s - STEP_MARGIN_S:
                assert trial[key] is not None, (key, trial, reached_s)
    return "0" in root and info["streams"]["video"]["written"] > 0
