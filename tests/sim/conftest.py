"""Small hand-built output schedules for the simulated animal's tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from rig.program.schedule import OutputSchedule, ShockPulse, SoundBlock

RATE = 1000.0
CS_PLUS_HZ = 7500.0
CS_MINUS_HZ = 2000.0


def make_day(
    n_plus: int,
    n_minus: int,
    shock_ma: float = 0.0,
    cs_s: float = 10.0,
    iti_s: float = 20.0,
    baseline_s: float = 20.0,
    plus_hz: float = CS_PLUS_HZ,
    minus_hz: float = CS_MINUS_HZ,
    imaging_hz: float | None = None,
) -> OutputSchedule:
    """Alternating CS+/CS- trials; with ``shock_ma`` a 1-s shock ends every CS+."""
    order = []
    for i in range(max(n_plus, n_minus)):
        order += (["plus"] if i < n_plus else []) + (["minus"] if i < n_minus else [])
    sounds, shocks, t = [], [], baseline_s
    for trial, which in enumerate(order):
        start, stop = round(t * RATE), round((t + cs_s) * RATE)
        hz = plus_hz if which == "plus" else minus_hz
        sounds.append(
            SoundBlock(start, stop, "tone", 75.0, frequency_hz=hz, stimulus=f"cs_{which}")
        )
        if which == "plus" and shock_ma > 0:
            shocks.append(ShockPulse(stop - round(RATE), stop, shock_ma, "shock", trial))
        t += cs_s + iti_s
    return OutputSchedule(
        sample_rate_hz=RATE,
        n_samples=round((t + 5.0) * RATE),
        sounds=tuple(sounds),
        shocks=tuple(shocks),
        imaging_rate_hz=imaging_hz,
    )


def frame_times(schedule: OutputSchedule, rate_hz: float) -> np.ndarray:
    """Frame times of a stream running at ``rate_hz`` for the whole session."""
    return np.arange(int(schedule.duration_s * rate_hz)) / rate_hz


@pytest.fixture
def day() -> Callable[..., OutputSchedule]:
    return make_day


@pytest.fixture
def times() -> Callable[[OutputSchedule, float], np.ndarray]:
    return frame_times


@pytest.fixture
def four_days() -> list[OutputSchedule]:
    """Habituation, conditioning (0.5 mA), recall, extinction."""
    return [
        make_day(4, 4),
        make_day(7, 7, shock_ma=0.5),
        make_day(4, 4),
        make_day(15, 4),
    ]
