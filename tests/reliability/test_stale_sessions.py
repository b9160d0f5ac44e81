"""A session is ``running`` only while the process that writes it lives (issue 17, part 3).

The writer holds ``journal/writer.lock`` (``rig.data.writer_lock``); a session written before
that lock existed falls back to its pid, alive on this host and started before the session. A
pid reused by another program must not keep a session "running" forever; a session that cannot
be checked (another host) is recovered with ``rig recover --force``, with a warning.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest

from rig.data.folder import SessionFolder
from tests.conftest import SMALL_RIG
from tests.rig.data.conftest import new_session, write_killed_session

__all__ = ["new_session"]  # the fixture, shared with tests/rig/data


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def _without_lock(folder: SessionFolder) -> None:
    """As a session written before the writer lock existed."""
    (folder.journal_path / "writer.lock").unlink(missing_ok=True)


@pytest.fixture
def killed(tmp_path, short_protocol) -> SessionFolder:
    folder, _ = write_killed_session(tmp_path, short_protocol)
    return folder


def test_a_pid_reused_by_another_process_is_not_the_writer(killed, cli):
    """After a reboot (or just later) the recorded pid belongs to a program that started
    after the session: on main the session stayed "running" and recover, export and attach
    refused it for good."""
    time.sleep(2.1)  # /proc gives process start times against a boot time in whole seconds
    other = _sleeper()
    try:
        killed.update_attrs(pid=other.pid, host=socket.gethostname())
        _without_lock(killed)
        assert SessionFolder.open(killed.path).status == "interrupted"
        result = cli("recover", killed.path)
        assert result.exit_code == 0, result.output
        assert result.stdout.strip().endswith("recovered")
    finally:
        other.kill()
        other.wait()


def test_the_lock_decides_even_when_the_pid_is_alive(killed):
    other = _sleeper()
    try:
        killed.update_attrs(pid=other.pid)  # alive, but it never held the session's lock
        assert SessionFolder.open(killed.path).status == "interrupted"
    finally:
        other.kill()
        other.wait()


def test_a_session_without_a_pid_reads_interrupted(killed):
    _without_lock(killed)
    killed.update_attrs(pid=None)
    assert SessionFolder.open(killed.path).status == "interrupted"


def test_a_live_writer_reads_running_from_its_own_process_and_others(new_session, cli):
    assert SessionFolder.open(new_session.path).status == "running"  # the GUI reading its own
    probe = subprocess.run(
        [sys.executable, "-m", "rig.cli", "info", "--json", str(new_session.path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    assert '"status": "running"' in probe.stdout
    refused = cli("recover", new_session.path, "--force")  # really being written: --force or not
    assert refused.exit_code == 1
    assert "still being written" in refused.stderr


def test_a_killed_writer_releases_its_lock(tmp_path, short_protocol, cli):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rig.cli",
            "run",
            str(short_protocol),
            "--speed",
            "1",
            "--rig",
            str(SMALL_RIG),
            "--out",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob("*/journal/events.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.05)
        (folder,) = out.glob("*_short-differential")
        assert SessionFolder.open(folder).status == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert SessionFolder.open(folder).status == "interrupted"
    assert cli("recover", folder).exit_code == 0


def test_another_hosts_session_needs_force_and_is_warned_about(killed, cli):
    _without_lock(killed)
    killed.update_attrs(host="another-machine")
    assert SessionFolder.open(killed.path).status == "running"  # cannot be checked from here
    refused = cli("recover", killed.path)
    assert refused.exit_code == 1
    assert "--force" in refused.stderr and "Traceback" not in refused.output
    forced = cli("recover", killed.path, "--force")
    assert forced.exit_code == 0, forced.output
    assert forced.stderr.startswith(f"WARNING: {killed.path}: recovering a session that reads")
    assert SessionFolder.open(killed.path).attrs.status == "recovered"


@pytest.mark.parametrize("pid", ["12ab", [1], 1.5, True])
def test_a_malformed_pid_is_bad_input(killed, cli, pid):
    import json

    meta = json.loads(killed.attrs_path.read_text())
    meta["attributes"]["pid"] = pid
    killed.attrs_path.write_text(json.dumps(meta))
    for command in ("info", "recover", "verify"):
        result = cli(command, killed.path)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"{killed.attrs_path}: pid: ")
        assert len(result.stderr.splitlines()) == 1
