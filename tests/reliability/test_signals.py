"""Every signal that would end ``rig run`` ends its session safely (issue 14, item 3).

Each test runs a real ``rig run`` process on the small simulated rig, waits until the session
is recording (the ``recording: FOLDER`` line on stderr, then a first shard of frames on disk),
sends the signal during the CS (the tone gate is high from the first sample) and checks, from
the session the process leaves behind: exit code 1, one ``aborted: interrupted by SIGX`` line,
status ``aborted`` with that reason, the shock generator armed and then disarmed (the
``shocker_disarmed`` event is logged only once the device confirms), the recorded tone and
shock-gate lines ending low (the simulated DAQ records what it played, cut at its safe state),
and every frame exposed up to the stop stored with its timestamp.

Every process starts from default signal dispositions (the launcher resets them), so a test
run from a shell whose background jobs ignore SIGINT and SIGQUIT still tests them; the
``nohup`` case starts with SIGHUP ignored on purpose.
"""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zarr

from rig.schedule import SHOCK_GATE, TONE_GATE
from rig.store import read_progress
from tests.conftest import SMALL_RIG, info_json

# The CS is on from the first sample to 20 s, the shock from 19 s: every signal lands in the CS.
PROTOCOL = """
protocol: signals
version: 1
seed: 5
stimuli:
  cs_plus: {type: tone, frequency_hz: 7500, level_db: 75, duration_s: 20}
  shock: {type: shock, current_ma: 0.3, duration_s: 1.0}
phases:
  - name: conditioning
    trials: [{cs: cs_plus, us: shock}]
    post_s: 1
recording:
  video: {fps: 30}
  imaging: {frame_rate_hz: 30}
"""
ENDING = [
    name
    for name in (
        "SIGINT",
        "SIGTERM",
        "SIGHUP",
        "SIGQUIT",
        "SIGUSR1",
        "SIGUSR2",
        "SIGALRM",
        "SIGVTALRM",
        "SIGPROF",
        "SIGXCPU",
        "SIGIO",
        "SIGPWR",
    )
    if hasattr(signal, name)
]
TIMEOUT_S = 60.0

# ``rig`` with the signals named in argv[1] at their default, those in argv[2] ignored.
LAUNCHER = """
import signal, sys
for names, handler in ((sys.argv[1], signal.SIG_DFL), (sys.argv[2], signal.SIG_IGN)):
    for name in filter(None, names.split(",")):
        signal.signal(getattr(signal, name), handler)
sys.argv = ["rig", *sys.argv[3:]]
from rig.cli import main
main()
"""


def _command(protocol: Path, out: Path, rig: Path = SMALL_RIG, ignored: str = "") -> list[str]:
    """``rig run`` at real time, started with default signal dispositions but ``ignored``."""
    default = ",".join(name for name in [*ENDING, "SIGTSTP"] if name != ignored)
    args = ["run", str(protocol), "--speed", "1", "--rig", str(rig), "--out", str(out)]
    return [sys.executable, "-c", LAUNCHER, default, ignored, *args]


@pytest.fixture
def protocol(write_yaml) -> Path:
    return write_yaml(PROTOCOL, "signals.yaml")


def _read_line_with(stream, words: str) -> list[str]:
    """Lines read from ``stream`` up to the first one containing ``words`` (blocks on it)."""
    lines = []
    while True:
        line = stream.readline()
        assert line, f"the process ended before printing {words!r}: {lines}"
        lines.append(line)
        if words in line:
            return lines


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _frames_on_disk(folder: Path) -> bool:
    return all(
        read_progress(folder / "journal", s).get("written", 0) > 0 for s in ("video", "imaging")
    )


def _start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _recording(proc: subprocess.Popen) -> Path:
    """Wait until ``proc`` records frames; returns its session folder."""
    lines = _read_line_with(proc.stderr, "recording: ")
    folder = Path(lines[-1].split("recording: ", 1)[1].strip())
    _wait_until(lambda: _frames_on_disk(folder), "the first frames on disk")
    return folder


def _assert_ended_safely(cli, folder: Path, reason: str, dropped: int = 0) -> None:
    """The stored session shows a safe end for ``reason`` and keeps what was recorded."""
    info = info_json(cli, folder)
    assert info["status"] == "aborted"
    assert info["end_reason"].startswith(reason)
    kinds = [e["kind"] for e in info["events"]]
    assert kinds.index("shocker_armed") < kinds.index("session_start")
    assert kinds.index("shocker_disarmed") > kinds.index("session_start")
    assert kinds[-1] == "session_end"
    root = zarr.open_group(str(folder / "session.zarr"), mode="r")
    for line in (TONE_GATE, SHOCK_GATE):  # the outputs as played: low from the stop on
        rising = root["edges"][line]["rising"][:] if line in root["edges"] else np.empty(0)
        assert len(rising) == 0 or not rising[-1], line
    assert root["edges"][TONE_GATE]["rising"][0]  # the tone was on when the signal came
    for stream in ("video", "imaging"):
        acc = info["streams"][stream]
        assert acc["written"] > 0
        assert acc["written"] + (dropped if stream == "video" else 0) == acc["edges"], acc
        stamps = root[stream]["timestamps_s"][:]
        assert root[stream]["0"].shape[0] == len(stamps) == acc["written"]
        assert np.isfinite(stamps).all()


def _one_aborted_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("aborted:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("name", ENDING)
def test_each_ending_signal_ends_the_session_safely(name, protocol, tmp_path, cli):
    proc = _start(_command(protocol, tmp_path / "out"))
    folder = _recording(proc)
    proc.send_signal(getattr(signal, name))
    stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert f"interrupted by {name}" in _one_aborted_line(stderr)
    assert stdout.strip().splitlines()[-1] == str(folder)
    _assert_ended_safely(cli, folder, f"interrupted by {name}")


def test_closing_the_terminal_ends_the_session_safely(protocol, tmp_path, cli):
    """The real thing behind SIGHUP: the process's controlling terminal hangs up, so it gets
    SIGHUP and every later write to the terminal fails (EIO)."""
    master, slave = pty.openpty()

    def take_terminal() -> None:  # the new session's controlling terminal is the pty
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        _command(protocol, tmp_path / "out"),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=take_terminal,
    )
    os.close(slave)
    seen = b""
    while b"recording: " not in seen or not seen.endswith(b"\n"):
        seen += os.read(master, 4096)
    line = next(ln for ln in seen.decode().splitlines() if "recording: " in ln)
    folder = Path(line.split("recording: ", 1)[1].strip())
    _wait_until(lambda: _frames_on_disk(folder), "the first frames on disk")
    os.close(master)  # the terminal window closes
    assert proc.wait(timeout=TIMEOUT_S) == 1
    _assert_ended_safely(cli, folder, "interrupted by SIGHUP")


def test_stdout_and_stderr_closed_from_the_start(protocol, tmp_path, cli):
    """``rig run ... >&- 2>&-``: nothing can be printed; the session runs and ends the same."""
    out = tmp_path / "out"
    command = ["sh", "-c", 'exec "$0" "$@" >&- 2>&-', *_command(protocol, out)]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    _wait_until(lambda: any(_frames_on_disk(f) for f in out.glob("*_signals")), "frames")
    (folder,) = out.glob("*_signals")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=TIMEOUT_S) == 1
    _assert_ended_safely(cli, folder, "interrupted by SIGTERM")


def test_broken_pipes_mid_session_stop_nothing(protocol, tmp_path, cli):
    """Both pipes are closed by their reader while the session records (``| head``); then a
    fault makes the progress display print from inside the engine's event callback (where
    rich would raise SystemExit), and SIGTERM ends the session: exit code 1 all the same."""
    rig = tmp_path / "rig.yaml"
    rig.write_text(SMALL_RIG.read_text() + "faults: [{at_s: 2.0, kind: camera_drop, count: 2}]\n")
    proc = _start(_command(protocol, tmp_path / "out", rig))
    folder = _recording(proc)
    proc.stdout.close()
    proc.stderr.close()
    events = folder / "journal" / "events.jsonl"
    _wait_until(lambda: '"fault"' in events.read_text(), "the camera fault")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=TIMEOUT_S) == 1
    _assert_ended_safely(cli, folder, "interrupted by SIGTERM", dropped=2)


def test_a_signal_started_ignored_stays_ignored(protocol, tmp_path, cli):
    """``nohup rig run``: SIGHUP was ignored when the process started, so a closed terminal
    does not end the session; SIGTERM still does."""
    proc = _start(_command(protocol, tmp_path / "out", ignored="SIGHUP"))
    folder = _recording(proc)
    proc.send_signal(signal.SIGHUP)
    progress = folder / "journal" / "progress-video.json"
    first = read_progress(folder / "journal", "video")["written"]
    _wait_until(  # still recording after the hang-up
        lambda: read_progress(folder / "journal", "video").get("written", 0) > first,
        f"more frames than {first} in {progress}",
    )
    proc.send_signal(signal.SIGTERM)
    _stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 1, stderr
    assert "interrupted by SIGTERM" in _one_aborted_line(stderr)
    _assert_ended_safely(cli, folder, "interrupted by SIGTERM")


def test_ctrl_z_is_ignored_during_a_session(protocol, tmp_path, cli):
    """SIGTSTP would freeze the process (the shock generator's watchdog would then disarm it
    under a live session): it is ignored, with a note, and the session goes on."""
    proc = _start(_command(protocol, tmp_path / "out"))
    folder = _recording(proc)
    proc.send_signal(signal.SIGTSTP)
    _read_line_with(proc.stderr, "cannot be suspended")
    proc.send_signal(signal.SIGTERM)  # a stopped process would not act on it
    _stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 1, stderr
    _assert_ended_safely(cli, folder, "interrupted by SIGTERM")
