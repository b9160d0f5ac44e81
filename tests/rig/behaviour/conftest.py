"""Simulated behaviour videos with known freezing, and the agreement check with its base-rate
guard."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from rig.behaviour.agreement import Agreement, compare
from rig.files.freezing import FreezingParams, RectRegion
from rig.program.schedule import OutputSchedule, SoundBlock
from sim.learning import AnimalState
from sim.mouse import BehaviourTrack, MouseConfig, simulate_behaviour
from sim.mouse_video import MouseRenderer

RATE = 1000


@dataclass
class SimVideo:
    """A simulated session: the mouse's truth, its renderer and the CS windows."""

    track: BehaviourTrack
    renderer: MouseRenderer
    times: np.ndarray
    fps: float
    cs_epochs: list[tuple[float, float]]
    baseline_s: float

    @property
    def truth(self) -> np.ndarray:
        return self.track.freezing

    def frames(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        stop = len(self.times) if stop is None else stop
        return np.stack([self.renderer.render(i) for i in range(start, stop)])

    def video(self) -> RenderedVideo:
        """All frames as a lazily rendered stack (what motion_indices reads in slices)."""
        return RenderedVideo(self)

    def params(self, **changes) -> FreezingParams:
        """The rig file a user would write: the cable excluded, the baseline calibrates."""
        x0, y0, x1, y1 = self.renderer.cable_region()
        cable = RectRegion(x_px=x0, y_px=y0, width_px=x1 - x0, height_px=y1 - y0)
        settings = {"exclude": [cable], "calibration_s": [0.0, self.baseline_s], **changes}
        return FreezingParams(**settings)


class RenderedVideo:
    """A simulated video that renders the frames of each slice read from it."""

    def __init__(self, video: SimVideo) -> None:
        self._video = video
        r = video.renderer.config
        self.shape = (len(video.times), r.height, r.width)

    def __getitem__(self, key: slice) -> np.ndarray:
        start, stop, _ = key.indices(self.shape[0])
        return self._video.frames(start, stop)


def simulated_video(
    width: int,
    height: int,
    fps: float,
    baseline_s: float,
    cs_s: float,
    iti_s: float,
    n_cs: int,
    seed: int,
    **mouse: object,
) -> SimVideo:
    """A conditioned animal hears ``n_cs`` CS+ after a baseline (no shocks)."""
    onsets = [baseline_s + k * (cs_s + iti_s) for k in range(n_cs)]
    sounds = tuple(
        SoundBlock(int(a * RATE), int((a + cs_s) * RATE), "tone", 75, 7500.0, stimulus="cs_plus")
        for a in onsets
    )
    duration = baseline_s + n_cs * (cs_s + iti_s)
    schedule = OutputSchedule(
        sample_rate_hz=RATE, n_samples=int(duration * RATE), sounds=sounds, camera_rate_hz=fps
    )
    state = AnimalState(animal_id="conditioned", strengths={"tone:7500": 0.8}, context_fear=0.2)
    config = MouseConfig(width=width, height=height, **mouse)
    times = np.arange(int(duration * fps)) / fps
    track = simulate_behaviour(schedule, times, state, config, seed=seed)
    return SimVideo(
        track=track,
        renderer=MouseRenderer(config, track, seed=seed),
        times=times,
        fps=fps,
        cs_epochs=[(a, a + cs_s) for a in onsets],
        baseline_s=baseline_s,
    )


@pytest.fixture(scope="session")
def clip() -> tuple[SimVideo, np.ndarray]:
    """40 s at 240x180 and 15 fps with every nuisance on, rendered once (26 MB)."""
    video = simulated_video(240, 180, 15.0, 15.0, 10.0, 5.0, 2, seed=3)
    return video, video.frames()


def assert_agrees(
    scored: np.ndarray,
    truth: np.ndarray,
    times: np.ndarray,
    epochs: list[tuple[float, float]],
    min_agreement: float = 0.95,
    max_epoch_pp: float = 5.0,
    min_kappa: float = 0.8,
) -> Agreement:
    """The scorer agrees with the truth, and not merely by predicting the commoner state: the
    truth must hold both states, and Cohen's kappa (0 for a constant scorer, which can still
    agree on most frames) must be high too."""
    result = compare(scored, truth, times, epochs)
    assert 0.05 <= result.reference_freezing <= 0.95, "the truth cannot tell scorers apart"
    assert result.frame_agreement >= min_agreement, result
    assert result.kappa >= min_kappa, result
    assert result.epoch_error_pp_max <= max_epoch_pp, result
    return result
