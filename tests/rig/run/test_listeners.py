"""A listener of the session's signals can never break it (rig.run.signals.ListenerGuard).

The CLI's progress display and the GUI run inside the runner's loop and inside its safe-state
and finalise path. Each test connects a listener that raises to every signal and runs a short
session on the small simulated rig, then checks the hardware's own record and the stored
session.
"""

from __future__ import annotations

import pytest

from rig.run.runner import Runner
from rig.run.session import prepare_session, run_session
from rig.run.signals import Progress
from tests.conftest import SMALL_RIG, info_json

PROTOCOL = """
protocol: listeners
version: 1
seed: 2
stimuli:
  cs_plus: {type: tone, frequency_hz: 7500, level_db: 75, duration_s: 3}
  shock: {type: shock, current_ma: 0.3, duration_s: 0.5}
phases:
  - name: conditioning
    trials: [{cs: cs_plus, us: shock, repeat: 2}]
    iti_s: 1
    post_s: 1
recording:
  video: {fps: 30}
  imaging: {frame_rate_hz: 30}
"""
SIGNALS = ("state_changed", "progress", "event", "frame", "freezing", "finished")


def _run_with(raiser, tmp_path, write_yaml):
    """Run the protocol with ``raiser`` connected to every signal of the session."""
    plan = prepare_session(write_yaml(PROTOCOL, "listeners.yaml"), SMALL_RIG)
    box: dict = {"calls": 0}

    def listener(*args):
        box["calls"] += 1
        raiser(*args)

    def on_runner(runner: Runner) -> None:
        box["runner"] = runner
        for name in SIGNALS:
            getattr(runner.signals, name).connect(listener)

    folder, result = run_session(plan, tmp_path / "out", "m", None, on_runner)
    return folder, result, box


def _assert_safe_and_kept(runner: Runner, folder, cli, status: str) -> None:
    daq = runner.engine.devices.daq
    assert daq.stopped_at is not None and daq.outputs_low_after(daq.stopped_at)
    emulator = daq.session.shocker_emulator
    assert not emulator.armed and emulator.commands()[-1] == "disarm"
    info = info_json(cli, folder)
    assert info["status"] == status
    assert [e["kind"] for e in info["events"]][-1] == "session_end"
    for acc in info["streams"].values():
        assert acc["written"] == acc["edges"] > 0


def test_a_listener_that_raises_does_not_stop_the_session(tmp_path, write_yaml, cli, caplog):
    def fail(*_args):
        raise BrokenPipeError(32, "Broken pipe")

    folder, result, box = _run_with(fail, tmp_path, write_yaml)
    assert result.status == "complete", result.reason
    assert box["calls"] > 10  # it kept being called, and kept failing
    assert result.shocks_delivered == 2
    _assert_safe_and_kept(box["runner"], folder, cli, "complete")
    warned = [r.getMessage() for r in caplog.records if r.name == "rig.run.signals"]
    for name in SIGNALS:  # said once per signal, not at every call
        assert sum(f"session's {name} signal failed" in m for m in warned) == 1, warned


@pytest.mark.parametrize("exit_kind", [SystemExit, KeyboardInterrupt])
def test_a_listener_that_exits_ends_the_session_the_safe_way(exit_kind, tmp_path, write_yaml, cli):
    """What rich did on a broken pipe (SystemExit from inside the callback), or Ctrl-C landing in
    a listener: the session aborts, then goes through the safe state and finalises."""

    def leave(*args):
        if isinstance(args[0], Progress) and args[0].t_s >= 3.2:  # mid-shock
            raise exit_kind(1)

    folder, result, box = _run_with(leave, tmp_path, write_yaml)
    assert result.status == "aborted"
    assert result.reason == f"interrupted: {exit_kind.__name__} in a listener of progress"
    assert result.duration_s == pytest.approx(3.25)  # the runner's next step ended it
    _assert_safe_and_kept(box["runner"], folder, cli, "aborted")
