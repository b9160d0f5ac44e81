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
import select
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

import rig.run.session
from rig.data.folder import STREAM_IMAGE
from rig.data.journal import Journal
from rig.program.schedule import SHOCK_GATE, TONE_GATE
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
SUSPENDING = ["SIGTSTP", "SIGTTIN", "SIGTTOU"]
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
    default = ",".join(name for name in [*ENDING, *SUSPENDING] if name != ignored)
    args = ["run", str(protocol), "--speed", "1", "--rig", str(rig), "--out", str(out)]
    return [sys.executable, "-c", LAUNCHER, default, ignored, *args]


@pytest.fixture
def protocol(write_yaml) -> Path:
    return write_yaml(PROTOCOL, "signals.yaml")


class Lines:
    """Lines a process writes to ``fd``, waited for with a deadline (``select``), so a process
    that never prints the line, or was frozen, fails the test instead of hanging it."""

    def __init__(self, fd: int):
        self.fd = fd
        self.pending = b""
        self.seen: list[str] = []

    def wait_for(self, words: str) -> str:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            while b"\n" in self.pending:
                raw, self.pending = self.pending.split(b"\n", 1)
                self.seen.append(raw.decode(errors="replace"))
                if words in self.seen[-1]:
                    return self.seen[-1]
            left = deadline - time.monotonic()
            assert left > 0, f"no line with {words!r} in time; got {self.seen}"
            if select.select([self.fd], [], [], left)[0]:
                chunk = os.read(self.fd, 4096)
                assert chunk, f"the output ended before a line with {words!r}: {self.seen}"
                self.pending += chunk


@pytest.fixture
def start():
    """Start ``rig run`` processes (stdout and stderr piped, stderr read through
    :class:`Lines` until the process ends); any still running at the end is killed."""
    procs: list[subprocess.Popen] = []

    def begin(command: list[str], **kwargs) -> subprocess.Popen:
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        proc = subprocess.Popen(command, **{**pipes, **kwargs})
        procs.append(proc)
        if proc.stderr is not None:
            proc.lines = Lines(proc.stderr.fileno())  # type: ignore[attr-defined]
        return proc

    yield begin
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT_S)


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _written(folder: Path, stream: str) -> int:
    """Frames of ``stream`` on disk so far, from the journal's progress record."""
    progress = Journal(folder / "journal").progress(stream)
    return progress.written if progress is not None else 0


def _frames_on_disk(folder: Path) -> bool:
    return all(_written(folder, s) > 0 for s in ("video", "imaging"))


def _recording(lines: Lines) -> Path:
    """Wait until the process records frames; returns its session folder."""
    line = lines.wait_for("recording: ")
    folder = Path(line.split("recording: ", 1)[1].strip())
    _wait_until(lambda: _frames_on_disk(folder), "the first frames on disk")
    return folder


def _finish(proc: subprocess.Popen) -> tuple[str, str]:
    """Wait for the end; stdout, and all of stderr (what :class:`Lines` read, then the rest)."""
    stdout, rest = proc.communicate(timeout=TIMEOUT_S)
    seen = "".join(line + "\n" for line in proc.lines.seen)  # type: ignore[attr-defined]
    pending = proc.lines.pending  # type: ignore[attr-defined]
    return stdout.decode(), seen + (pending + rest).decode(errors="replace")


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
        stamps = root["timing"][stream]["timestamps_s"][:]
        assert root[STREAM_IMAGE[stream]]["0"].shape[0] == len(stamps) == acc["written"]
        assert np.isfinite(stamps).all()


def _one_aborted_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("aborted:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("name", ENDING)
def test_each_ending_signal_ends_the_session_safely(name, protocol, tmp_path, cli, start):
    proc = start(_command(protocol, tmp_path / "out"))
    folder = _recording(proc.lines)
    proc.send_signal(getattr(signal, name))
    stdout, stderr = _finish(proc)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert f"interrupted by {name}" in _one_aborted_line(stderr)
    assert stdout.strip().splitlines()[-1] == str(folder)
    _assert_ended_safely(cli, folder, f"interrupted by {name}")


def test_closing_the_terminal_ends_the_session_safely(protocol, tmp_path, cli, start):
    """The real thing behind SIGHUP: the process's controlling terminal hangs up, so it gets
    SIGHUP and every later write to the terminal fails (EIO)."""
    master, slave = pty.openpty()

    def take_terminal() -> None:  # the new session's controlling terminal is the pty
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = start(
        _command(protocol, tmp_path / "out"),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=take_terminal,
    )
    os.close(slave)
    folder = _recording(Lines(master))
    os.close(master)  # the terminal window closes
    assert proc.wait(timeout=TIMEOUT_S) == 1
    _assert_ended_safely(cli, folder, "interrupted by SIGHUP")


def test_stdout_and_stderr_closed_from_the_start(protocol, tmp_path, cli, start):
    """``rig run ... >&- 2>&-``: nothing can be printed; the session runs and ends the same."""
    out = tmp_path / "out"
    command = ["sh", "-c", 'exec "$0" "$@" >&- 2>&-', *_command(protocol, out)]
    proc = start(command, stdin=subprocess.DEVNULL, stdout=None, stderr=None)
    _wait_until(lambda: any(_frames_on_disk(f) for f in out.glob("*_signals")), "frames")
    (folder,) = out.glob("*_signals")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=TIMEOUT_S) == 1
    _assert_ended_safely(cli, folder, "interrupted by SIGTERM")


def test_broken_pipes_mid_session_stop_nothing(protocol, tmp_path, cli, start):
    """Both pipes are closed by their reader while the session records (``| head``); then a
    fault makes the progress display print from inside the engine's event callback (where
    rich would raise SystemExit), and SIGTERM ends the session: exit code 1 all the same."""
    rig = tmp_path / "rig.yaml"
    rig.write_text(SMALL_RIG.read_text() + "faults: [{at_s: 2.0, kind: camera_drop, count: 2}]\n")
    proc = start(_command(protocol, tmp_path / "out", rig))
    folder = _recording(proc.lines)
    proc.stdout.close()
    proc.stderr.close()
    events = folder / "journal" / "events.jsonl"
    _wait_until(lambda: '"fault"' in events.read_text(), "the camera fault")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=TIMEOUT_S) == 1
    _assert_ended_safely(cli, folder, "interrupted by SIGTERM", dropped=2)


def test_a_signal_started_ignored_stays_ignored(protocol, tmp_path, cli, start):
    """``nohup rig run``: SIGHUP was ignored when the process started, so a closed terminal
    does not end the session; SIGTERM still does."""
    proc = start(_command(protocol, tmp_path / "out", ignored="SIGHUP"))
    folder = _recording(proc.lines)
    proc.send_signal(signal.SIGHUP)
    progress = folder / "journal" / "progress-video.json"
    first = _written(folder, "video")
    _wait_until(  # still recording after the hang-up
        lambda: _written(folder, "video") > first,
        f"more frames than {first} in {progress}",
    )
    proc.send_signal(signal.SIGTERM)
    _, stderr = _finish(proc)
    assert proc.returncode == 1, stderr
    assert "interrupted by SIGTERM" in _one_aborted_line(stderr)
    _assert_ended_safely(cli, folder, "interrupted by SIGTERM")


@pytest.mark.parametrize("name", SUSPENDING)
def test_a_suspend_signal_is_ignored_during_a_session(name, protocol, tmp_path, cli, start):
    """Ctrl-Z (SIGTSTP), or a background job touching the terminal (SIGTTIN, SIGTTOU), would
    freeze the process mid-session (and a live shock generator's watchdog would then disarm
    it): ignored, Ctrl-Z with a note, and the session goes on."""
    proc = start(_command(protocol, tmp_path / "out"))
    folder = _recording(proc.lines)
    proc.send_signal(getattr(signal, name))
    if name == "SIGTSTP":
        proc.lines.wait_for("cannot be suspended")
    proc.send_signal(signal.SIGTERM)  # a stopped process would not act on it
    _, stderr = _finish(proc)
    assert proc.returncode == 1, stderr
    assert "interrupted by SIGTERM" in _one_aborted_line(stderr)
    _assert_ended_safely(cli, folder, "interrupted by SIGTERM")


def test_a_signal_while_the_files_are_read_ends_before_any_session(
    protocol, tmp_path, cli, monkeypatch
):
    """The handlers are installed before anything else: a signal during validation (SIGHUP's
    default would end the process) ends ``rig run`` with exit 1 and no session folder."""
    real = rig.run.session.prepare_session

    def prepare_session(*args):
        plan = real(*args)
        signal.raise_signal(signal.SIGHUP)
        return plan

    monkeypatch.setattr(rig.run.session, "prepare_session", prepare_session)
    out = tmp_path / "out"
    result = cli("run", protocol, "--fast", "--rig", SMALL_RIG, "--out", out)
    assert result.exit_code == 1
    assert result.stderr.strip() == "aborted: interrupted by SIGHUP before the session started"
    assert not out.exists()
