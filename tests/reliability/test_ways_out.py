"""Every way out of a session leaves the rig safe and the data whole (issue 8, part 1).

One parametrised test runs ``rig run`` in-process on the small simulated rig for each way out
and asserts the same invariants from the simulated hardware's own record (``SimDaq``: the
levels it played, where it was stopped; the shock generator emulator: armed or not, the lines
it received) and from the stored session:

* all outputs low and the tone off from the stop on, the stop within one engine step of
  session time after the fault (``REACT_S``; a real-time run's steps are shorter, at most
  ``MAX_WAIT_S`` of host time); stall-type faults only exist once a stream has been silent for
  ``STALL_S``, so their fault moment is ``at_s + STALL_S``;
* the shock generator disarmed (by the host, or by its own watchdog once the link is gone);
* the status and end reason say what happened; the exit code is 1 and one stderr line says why;
* everything written before the end is readable.

A full disk exists from the first frame write that fails (``SimFrameDisk.failed_at_s``).

Every signal, on a real ``rig run`` process: ``tests/reliability/test_signals.py``.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import zarr

import rig.run.session
from rig.data.folder import STREAM_IMAGE
from rig.program.schedule import SHOCK_GATE, TONE_GATE
from rig.run.engine import HEARTBEAT_SESSION_S, STEP_S
from rig.run.runner import STALL_S
from sim.shocker_emulator import ShockerEmulator
from tests.conftest import SMALL_RIG, info_json, make_rig

REACT_S = STEP_S  # the safe state comes at most this much session time after the fault

# 21 s: baseline 0-2; CS+ 2-6 with a 0.3 mA shock 5-6; CS+ 9-13 with a 0.6 mA shock 12-13 (the
# current is changed right after the first shock ends, at 6 s); CS- 16-20; post 20-21.
PROTOCOL = """
protocol: ways-out
version: 1
seed: 11
stimuli:
  cs_plus: {type: tone, frequency_hz: 7500, level_db: 75, duration_s: 4}
  cs_minus: {type: tone, frequency_hz: 2000, level_db: 75, duration_s: 4}
  low: {type: shock, current_ma: 0.3, duration_s: 1.0}
  high: {type: shock, current_ma: 0.6, duration_s: 1.0}
phases:
  - name: baseline
    duration_s: 2
  - name: conditioning
    trials: [{cs: cs_plus, us: low}, {cs: cs_plus, us: high}, {cs: cs_minus}]
    iti_s: 3
    post_s: 1
recording:
  video: {fps: 30}
  imaging: {frame_rate_hz: 30}
"""
DURATION_S = 21.0
# Inside the first shock and its CS (tone and shock gate both high), and off the engine's
# grid of steps (STEP_S), so a clock that ran on to the next step would show.
MID_SHOCK_S = 5.53


@dataclass(frozen=True)
class WayOut:
    """One way out: how to cause it, when it happens, and what the session must say."""

    fault: str | None = None  # a rig-file fault kind, injected at MID_SHOCK_S (or at_s)
    at_s: float = MID_SHOCK_S
    action: str | None = None  # "abort" | "SIGINT" | "SIGTERM", at the first step >= at_s
    fault_moment_s: float | None = None  # when the fault exists (default at_s)
    status: str = "aborted"
    words: str = ""  # in the end reason and the one-line message
    react_s: float = REACT_S  # the safe state at most this long after the fault moment
    moment_from_disk: bool = False  # the fault exists when the first frame write fails


WAYS_OUT = {
    "normal end": WayOut(status="complete", words="completed as planned", at_s=DURATION_S),
    "abort": WayOut(action="abort", words="aborted by the user"),
    "engine exception": WayOut(fault="engine_exception", words="engine error: RuntimeError"),
    "SIGINT": WayOut(action="SIGINT", words="interrupted by SIGINT"),
    "SIGTERM": WayOut(action="SIGTERM", words="interrupted by SIGTERM"),
    # the engine's heartbeat finds a lost link within one heartbeat period of session time
    "serial disconnect": WayOut(
        fault="serial_disconnect", words="ShockerError", react_s=HEARTBEAT_SESSION_S
    ),
    # refused when the engine changes the current after the first shock, at 6 s
    "shocker refuses": WayOut(
        fault="shocker_refuse", at_s=3.0, fault_moment_s=6.0, words="current refused"
    ),
    "DAQ error": WayOut(fault="daq_error", words="DaqError"),
    "camera stall": WayOut(
        fault="camera_stall", fault_moment_s=MID_SHOCK_S + STALL_S, words="video stalled"
    ),
    "frame clock stops": WayOut(
        fault="frame_clock_stop",
        fault_moment_s=MID_SHOCK_S + STALL_S,
        words="frame clock stopped",
    ),
    # the disk fills mid-shock: the next shard write fails with ENOSPC on the writer thread
    "disk full": WayOut(fault="disk_full", words="No space left on device", moment_from_disk=True),
}


@pytest.fixture
def powered_shocker(monkeypatch):
    """The shock generator stays powered when the host lets go of its port.

    The simulated rig stops the emulator when the driver closes; a real device keeps running
    its watchdog. Let the watchdog run out before the emulator stops, so its record shows what
    the device does on its own after a disconnect.
    """
    real_stop = ShockerEmulator.stop

    def stop(self: ShockerEmulator) -> None:
        deadline = time.monotonic() + self.watchdog_ms / 1000 + 2.0
        while self.armed and self.running and time.monotonic() < deadline:
            time.sleep(0.01)
        real_stop(self)

    monkeypatch.setattr(ShockerEmulator, "stop", stop)


@pytest.fixture
def capture_runner(monkeypatch):
    """Run the CLI's session through a hook that keeps its runner and can act at ``at_s``."""
    box: dict = {}
    real = rig.run.session.run_session

    def run_session(
        plan, out_dir, animal, speed=1.0, on_runner=None, state_dir=None, abort=None, **metadata
    ):
        def hook(runner):
            box["runner"] = runner
            if on_runner is not None:
                on_runner(runner)
            if box.get("action"):
                runner.signals.progress.connect(lambda p: _act(runner, p, box))

        return real(plan, out_dir, animal, speed, hook, state_dir, abort, **metadata)

    monkeypatch.setattr(rig.run.session, "run_session", run_session)
    return box


def _act(runner, progress, box) -> None:
    if progress.t_s < box["at_s"] or "acted_at_s" in box:
        return
    box["acted_at_s"] = progress.t_s
    if box["action"] == "abort":
        runner.abort("aborted by the user")
    else:  # the CLI's own handler, in the main thread, as a real signal
        signal.raise_signal(getattr(signal, box["action"]))


def _one_line_message(stderr: str, status: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith(f"{status}:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("way", list(WAYS_OUT.values()), ids=list(WAYS_OUT))
def test_every_way_out_is_safe_and_keeps_the_data(
    way, tmp_path, cli, write_yaml, capture_runner, powered_shocker
):
    protocol = write_yaml(PROTOCOL, "ways-out.yaml")
    extra = f"faults: [{{at_s: {way.at_s}, kind: {way.fault}}}]\n" if way.fault else ""
    rig_file = make_rig(tmp_path, extra)
    capture_runner.update(action=way.action, at_s=way.at_s)
    result = cli("run", protocol, "--fast", "--rig", rig_file, "--out", tmp_path / "out")

    # the exit code and one line that says why
    assert result.exit_code == (0 if way.status == "complete" else 1), result.output
    assert "Traceback" not in result.stderr
    assert way.words in _one_line_message(result.stderr, way.status)

    # the hardware's own record: outputs low from the stop on, within REACT_S of the fault
    daq = capture_runner["runner"].engine.devices.daq
    fs = daq.sample_rate_hz
    moment = capture_runner.get("acted_at_s", way.fault_moment_s or way.at_s)
    if way.moment_from_disk:
        moment = daq.session.disk.failed_at_s
        assert moment is not None and moment >= way.at_s
    assert daq.stopped_at is not None
    assert moment - 0.5 / fs <= daq.stopped_at / fs <= moment + way.react_s + 0.5 / fs
    assert daq.outputs_low_after(daq.stopped_at)
    assert not daq.level(TONE_GATE, daq.stopped_at)
    assert not daq.level(SHOCK_GATE, daq.stopped_at)
    assert [entry for entry in daq.output_log if entry[2]] == []  # nothing ever forced high

    # the shock generator disarmed: by the host, or by its own watchdog when the link is gone
    emulator = daq.session.shocker_emulator
    assert not emulator.armed
    if way.fault == "serial_disconnect":
        assert emulator.watchdog_trips == 1
    else:
        assert emulator.commands()[-1] == "disarm"
        assert emulator.watchdog_trips == 0

    # the session says what happened, and what was written before is readable
    folder = Path(result.stdout.strip().splitlines()[-1])
    info = info_json(cli, folder)
    assert info["status"] == way.status
    assert way.words in info["end_reason"]
    if way.fault:
        assert any(e["kind"] == "fault" and way.words in e["detail"] for e in info["events"])
    kinds = [e["kind"] for e in info["events"]]
    assert kinds[-1] == "session_end"
    assert "shocker_armed" in kinds
    # One definition of "shocks delivered" everywhere: a gate-high run that started, the one
    # the fault cut short included (what the shock generator's gate input saw).
    started = len(emulator.delivered)
    assert started >= 1 and info["shocks_delivered"] == started
    assert f"{started} shocks)" in _one_line_message(result.stderr, way.status)
    _assert_data_readable(folder, info, daq.stopped_at / fs)
    if way.fault not in ("camera_stall", "frame_clock_stop", "disk_full"):  # frames/edges lost
        for acc in info["streams"].values():  # every exposure up to the stop became a frame
            assert acc["written"] == acc["edges"] > 0


def _assert_data_readable(folder: Path, info: dict, stopped_s: float) -> None:
    root = zarr.open_group(str(folder / "session.zarr"), mode="r")
    assert root.attrs["status"] == info["status"]
    for stream in ("video", "imaging"):
        acc = info["streams"][stream]
        frames = root[STREAM_IMAGE[stream]]["0"][:]
        stamps = root["timing"][stream]["timestamps_s"][:]
        assert frames.shape[0] == len(stamps) == acc["written"] > 0
        # a frame whose edge was never recorded (the frame clock stopped) says so: NaN, counted
        timed = stamps[np.isfinite(stamps)]
        assert len(stamps) - len(timed) == acc["without_edge"]
        assert len(timed) > 0 and np.all(np.diff(timed) > 0) and timed[-1] <= stopped_s
    for line in (TONE_GATE, SHOCK_GATE):
        samples = root["edges"][line]["samples"][:]
        rising = root["edges"][line]["rising"][:]
        assert len(samples) == len(rising) > 0
        assert not rising[-1]  # the recorded line ends low


def test_a_signal_before_the_session_starts_ends_it_before_anything_is_armed(
    tmp_path, cli, write_yaml, monkeypatch
):
    """SIGTERM while the rig is still being built: the session ends, nothing is armed."""
    box: dict = {}
    real = rig.run.session.run_session

    def run_session(
        plan, out_dir, animal, speed=1.0, on_runner=None, state_dir=None, abort=None, **metadata
    ):
        signal.raise_signal(signal.SIGTERM)  # the CLI's handler is installed; nothing built yet

        def hook(runner):
            box["runner"] = runner
            on_runner(runner)

        return real(plan, out_dir, animal, speed, hook, state_dir, abort, **metadata)

    monkeypatch.setattr(rig.run.session, "run_session", run_session)
    protocol = write_yaml(PROTOCOL, "ways-out.yaml")
    result = cli("run", protocol, "--fast", "--rig", SMALL_RIG, "--out", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert "interrupted by SIGTERM" in _one_line_message(result.stderr, "aborted")
    daq = box["runner"].engine.devices.daq
    assert not daq.started  # the outputs never ran
    assert daq.outputs_low_after(0)
    emulator = daq.session.shocker_emulator
    assert "arm" not in emulator.commands() and not emulator.armed
    info = info_json(cli, Path(result.stdout.strip().splitlines()[-1]))
    assert info["status"] == "aborted"
    assert info["end_reason"] == "interrupted by SIGTERM"


def test_an_unsafe_schedule_is_refused_before_anything_is_armed(tmp_path, cli, write_yaml):
    """The runner's own check before arming (defence in depth behind validation)."""
    plan = rig.run.session.prepare_session(write_yaml(PROTOCOL, "ways-out.yaml"), SMALL_RIG)
    too_strong = [
        dataclasses.replace(p, current_ma=plan.rig.safety.max_current_ma * 2)
        for p in plan.schedule.shocks
    ]
    unsafe = dataclasses.replace(
        plan, schedule=dataclasses.replace(plan.schedule, shocks=tuple(too_strong))
    )
    box: dict = {}
    folder, result = rig.run.session.run_session(
        unsafe, tmp_path, "m", None, lambda runner: box.update(runner=runner)
    )
    assert result.status == "aborted"
    assert "refusing an unsafe schedule" in result.reason
    daq = box["runner"].engine.devices.daq
    assert not daq.started
    assert "arm" not in daq.session.shocker_emulator.commands()
    assert info_json(cli, folder)["status"] == "aborted"
