"""A full disk ends the session aborted and safe, never in a traceback (issue 17, part 4).

The real thing: a 20 MB tmpfs (mounting needs root; without it the test is skipped with the
reason), filled to leave a chosen amount of room so that the disk fills while frames are
written, while the truth is saved, or while the journal is folded in. Then ``rig recover`` on
the still-full disk says so in one line, and once room is made recovers every frame on disk.

The simulated variant always runs: the same outcome with each write step made to fail with
ENOSPC in turn (frames, journal, truth, motion, scores, attributes).
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from rig.data.folder import SessionFolder
from tests.conftest import SMALL_RIG, make_rig


def _mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc}): the simulated variant covers this")
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.strip()}): the simulated variant covers this"
        )


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "size=20m")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True, timeout=30)


def _fill(disk: Path, leave_kb: int) -> Path:
    filler = disk / "filler"
    stat = os.statvfs(disk)
    free_kb = stat.f_bavail * stat.f_frsize // 1024
    with open(filler, "wb") as f:
        f.truncate(0)
        block = b"\0" * 1024 * 64
        for _ in range(max(0, free_kb - leave_kb) // 64):
            f.write(block)
    return filler


def _assert_aborted_safely(result) -> Path:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    (aborted,) = [line for line in lines if line.startswith("aborted: ")]
    assert "No space left on device" in aborted
    return Path(result.stdout.strip().splitlines()[-1])


# room left on the disk: the frames fill it at once, mid-session, or just after the run
@pytest.mark.parametrize("leave_kb", [60, 2000, 5800])
def test_a_real_full_disk_ends_the_session_aborted(small_disk, short_protocol, cli, leave_kb):
    filler = _fill(small_disk, leave_kb)
    result = cli(
        "run",
        short_protocol,
        "--fast",
        "--rig",
        SMALL_RIG,
        "--out",
        small_disk / "out",
        "--state-dir",
        small_disk.parent / "animals",
    )
    folder = _assert_aborted_safely(result)
    assert cli("info", folder).exit_code == 0
    status = SessionFolder.open(folder).status
    if status == "interrupted":  # the fold did not fit: recover once there is room
        full = cli("recover", folder)
        assert full.exit_code == 1
        (line,) = full.stderr.splitlines()
        assert (
            line == f"{folder}: cannot recover: [Errno 28] No space left on device "
            "(nothing lost: run it again)"
        )
    filler.unlink()
    if status == "interrupted":
        assert cli("recover", folder).exit_code == 0
    verify = cli("verify", folder)
    assert verify.exit_code == 0, verify.output  # what is on disk is whole


def test_out_on_a_read_only_file_system_is_one_line(tmp_path, short_protocol, cli):
    ro = tmp_path / "ro"
    _mount_tmpfs(ro, "size=1m,ro")
    try:
        result = cli("run", short_protocol, "--fast", "--rig", SMALL_RIG, "--out", ro / "out")
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines()[-1] == (
            f"{ro / 'out'}: cannot write a session here: [Errno 30] Read-only file system: "
            f"'{ro / 'out'}'"
        )
    finally:
        subprocess.run(["umount", "-l", str(ro)], capture_output=True, timeout=30)


def test_out_that_cannot_be_a_folder_is_one_line(tmp_path, short_protocol, cli):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = cli("run", short_protocol, "--fast", "--rig", SMALL_RIG, "--out", blocker / "out")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith(str(blocker))]
    assert "cannot write a session here" in line


# ------------------------------------------------------------------ the simulated variant


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FillingFile:
    """A journal file on a disk that fills after ``room`` writes."""

    def __init__(self, inner, room: int):
        self.inner, self.room = inner, room

    def write(self, data):
        self.room -= 1
        if self.room < 0:
            _enospc()
        return self.inner.write(data)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _fill_journal(monkeypatch, room: int) -> None:
    from rig.data import journal

    original = journal.JournalWriter.__init__

    def init(self, folder):
        original(self, folder)
        self._events = _FillingFile(self._events, room)

    monkeypatch.setattr(journal.JournalWriter, "__init__", init)


STEPS = {
    "frames": None,  # the rig file's disk_full fault: every frame write fails from 3 s
    "journal": "journal",
    "truth": "write_truth",
    "motion": "write_motion",
    "events fold": "write_events",
    "scores": "write_freezing",
}


@pytest.mark.parametrize("step", list(STEPS))
def test_a_full_disk_at_any_step_ends_the_session_aborted(
    tmp_path, short_protocol, cli, monkeypatch, step
):
    rig = SMALL_RIG
    if step == "frames":
        rig = make_rig(tmp_path, "faults: [{at_s: 3, kind: disk_full}]\n")
    elif step == "journal":
        _fill_journal(monkeypatch, room=8)
    else:
        monkeypatch.setattr(SessionFolder, STEPS[step], _enospc)
    result = cli("run", short_protocol, "--fast", "--rig", rig, "--out", tmp_path / "out")
    folder = _assert_aborted_safely(result)
    monkeypatch.undo()
    info = cli("info", folder)
    assert info.exit_code == 0, info.output
    status = SessionFolder.open(folder).status
    assert status in ("aborted", "interrupted")
    if status == "interrupted":
        assert "rig recover" in result.stderr
        assert cli("recover", folder).exit_code == 0
    assert cli("verify", folder).exit_code == 0


def test_recover_on_a_full_disk_says_so_in_one_line(tmp_path, short_protocol, cli, monkeypatch):
    from tests.rig.data.conftest import write_killed_session

    folder, _ = write_killed_session(tmp_path, short_protocol)
    monkeypatch.setattr(SessionFolder, "write_edges", _enospc)
    result = cli("recover", folder.path)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{folder.path}: cannot recover: [Errno 28] No space left on device "
        "(nothing lost: run it again)"
    ]
    monkeypatch.undo()
    assert SessionFolder.open(folder.path).status == "interrupted"
    assert cli("recover", folder.path).exit_code == 0
