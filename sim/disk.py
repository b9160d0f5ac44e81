"""A simulated disk for the session's frame writers, with the rig file's disk faults.

``slow_disk``: from ``at_s`` for ``duration_s`` (default: to the end) every frame write takes
``delay_s`` (default 1 s) of session time, so the writer falls behind, its bounded queue fills
and frames are dropped (counted). The delay is measured on the simulated clock, so ``--fast``
runs see the same backlog as real-time ones; a stopped clock (the session ended) ends it.

``disk_full``: from ``at_s`` every frame write fails with ``OSError(ENOSPC)``, as a full disk
does; :attr:`SimFrameDisk.failed_at_s` is the session time of the first failure.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from rig.data.disk import LocalDisk
from rig.files.rigfile import Fault
from sim.daq import SimDaq

DISK_FAULTS = ("slow_disk", "disk_full")
DEFAULT_DELAY_S = 1.0


class SimFrameDisk:
    """The local disk behind the simulated clock's disk faults (implements ``FrameDisk``)."""

    def __init__(self, daq: SimDaq, faults: list[Fault]):
        self.daq = daq
        self.faults = [f for f in faults if f.kind in DISK_FAULTS]
        self.failed_at_s: float | None = None
        self.slowed_writes = 0
        self._disk = LocalDisk()

    def _now_s(self) -> float:
        return self.daq.position / self.daq.sample_rate_hz

    def write(self, path: Path, data: bytes) -> None:
        now = self._now_s()
        for fault in self.faults:
            if fault.kind == "disk_full" and now >= fault.at_s:
                if self.failed_at_s is None:
                    self.failed_at_s = now
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            end = fault.at_s + (fault.duration_s or float("inf"))
            if fault.kind == "slow_disk" and fault.at_s <= now < end:
                self.slowed_writes += 1
                self._wait_session_time(now + (fault.delay_s or DEFAULT_DELAY_S))
        self._disk.write(path, data)

    def _wait_session_time(self, until_s: float) -> None:
        while self._now_s() < until_s and self.daq.stopped_at is None:
            time.sleep(0.002)
