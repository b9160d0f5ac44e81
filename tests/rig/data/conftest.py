"""Sessions written through the session-folder API without running the engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rig.data.folder import SessionFolder
from rig.data.store import SessionStore
from rig.ports import Edges, Frame, StreamInfo
from rig.run.session import prepare_session, session_attrs
from tests.conftest import SMALL_RIG

FS = 20_000.0
VIDEO_HZ = 30.0


def dead_pid() -> int:
    """The pid of a process that has ended (a writer killed before it finalised)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def new_session(tmp_path, short_protocol) -> SessionFolder:
    """A session folder as ``rig run`` creates it, for the short protocol on the small rig."""
    plan = prepare_session(short_protocol, SMALL_RIG)
    return SessionFolder.create(tmp_path / "out", "m1", "short", session_attrs(plan, "m1", None))


def write_killed_session(tmp_path: Path, short_protocol: Path) -> tuple[SessionFolder, dict]:
    """A session whose writer died before finalising: 45 of 60 video frames written (frame 10
    dropped by the camera), 60 exposure edges, the trial's events. Returns it and what was
    written."""
    plan = prepare_session(short_protocol, SMALL_RIG)
    store = SessionStore.create(
        tmp_path / "out", "m1", "short", session_attrs(plan, "m1", None), queue_mb=64
    )
    rng = np.random.default_rng(1)
    writer = store.add_stream("video", StreamInfo(32, 24, "uint8", VIDEO_HZ), 60)
    device_index = np.array([k for k in range(46) if k != 10])
    frames = rng.integers(0, 255, (len(device_index), 24, 32), dtype=np.uint8)
    for k, image in zip(device_index, frames, strict=True):
        writer.append(Frame(int(k), image))
    exposures = np.round(np.arange(60) / VIDEO_HZ * FS).astype(np.int64) + 100
    for part in np.array_split(exposures, 3):  # rising and falling edge of each exposure
        samples = np.stack([part, part + 50], axis=1).ravel()
        store.append_edges("camera_exposure", Edges(samples, np.tile([True, False], len(part))))
    events = [
        {"kind": "session_start", "t_s": 0.0, "trial": None},
        {"kind": "cs_on", "t_s": 3.0, "trial": 0, "phase": "conditioning", "stimulus": "tone_a"},
        {"kind": "us_on", "t_s": 4.5, "trial": 0, "phase": "conditioning", "stimulus": "zap"},
    ]
    for event in events:
        store.log_event(event, durable=True)
    accounting = store.close_writers()["video"]
    store.close_journal()
    store.folder.update_attrs(pid=dead_pid())
    store.folder.release_writer()  # as the OS does when the writer dies
    written = {
        "device_index": device_index[: accounting.written],
        "frames": frames[: accounting.written],
        "exposures": exposures,
        "events": events,
    }
    return SessionFolder.open(store.folder.path), written


@pytest.fixture
def killed_session(tmp_path, short_protocol):
    return write_killed_session(tmp_path, short_protocol)
