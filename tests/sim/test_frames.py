"""The simulated frame source: a frame at every trigger the simulated DAQ has played."""

from __future__ import annotations

import numpy as np

from rig.files.rigfile import Fault, SafetyLimits
from rig.program.schedule import OutputSchedule
from sim.daq import SimDaq
from sim.frames import RENDER_STACK_MAX, SimFrameSource

RATE = 1000.0


def draw(k: int) -> np.ndarray:
    return np.full((6, 8), k, np.uint16)


def source(faults: list[Fault] | None = None) -> tuple[SimDaq, SimFrameSource, list[int]]:
    limits = SafetyLimits(max_current_ma=1, max_shock_s=2, max_shocks=20, max_session_s=3600)
    daq = SimDaq(RATE, speed=None, faults=faults, limits=limits)
    daq.configure(OutputSchedule(RATE, round(20 * RATE), imaging_rate_hz=30.0))
    stacks: list[int] = []

    def draw_many(ks):
        stacks.append(len(ks))
        return np.stack([draw(k) for k in ks]) if ks else np.empty((0, 6, 8), np.uint16)

    src = SimFrameSource(daq, "imaging", 8, 6, "uint16", draw, faults=faults, render_many=draw_many)
    src.start(expected_frames=600)
    daq.start()
    return daq, src, stacks


def played(daq: SimDaq) -> int:
    return int(np.searchsorted(daq.frame_starts("imaging"), daq.position, side="right"))


def test_a_long_read_renders_in_bounded_stacks_and_misses_nothing():
    # a host that fell 3 s behind reads some 90 frames at once
    daq, src, stacks = source()
    daq.wait(3.0)
    frames = src.read_frames()
    assert len(frames) == played(daq) > 5 * RENDER_STACK_MAX
    assert [f.index for f in frames] == list(range(len(frames)))
    assert all(np.array_equal(f.image, draw(f.index)) for f in frames)
    assert max(stacks) == RENDER_STACK_MAX and sum(stacks) == len(frames)
    daq.wait(3.2)
    more = src.read_frames()
    assert [f.index for f in more] == list(range(len(frames), played(daq)))


def test_dropped_frames_are_never_rendered():
    daq, src, stacks = source([Fault(at_s=1.0, kind="camera_drop", count=3)])
    t_s = 0.0
    while t_s < 2.0:  # the simulated clock stops at each fault's moment on its way
        t_s = daq.wait(2.0)
    first = int(np.searchsorted(daq.frame_starts("imaging"), round(1.0 * RATE)))
    indices = [f.index for f in src.read_frames()]
    assert indices == [k for k in range(played(daq)) if not first <= k < first + 3]
    assert sum(stacks) == len(indices)
