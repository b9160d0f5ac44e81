"""The simulated animal and brain, first fidelity: a mouse that moves and freezes to tones.

Behaviour and activity are computed for the whole session up front from the output schedule
(deterministic for a seed); frames are rendered on demand from precomputed pieces, so
rendering is cheap and frame ``k`` depends only on ``k``.
"""

from __future__ import annotations

import numpy as np

from rig.schedule import OutputSchedule

NOISE_BANK = 16


class SimWorld:
    """Behaviour video and two-photon frames for one simulated session, with ground truth."""

    def __init__(
        self,
        schedule: OutputSchedule,
        video_triggers: np.ndarray,
        imaging_triggers: np.ndarray | None,
        video_size: tuple[int, int],
        imaging_size: tuple[int, int],
        neurons: int,
        seed: int,
    ):
        self.rng = np.random.default_rng(seed)
        fs = schedule.sample_rate_hz
        self.video_t = video_triggers / fs
        self.vw, self.vh = video_size
        sound_on = _on(schedule.sounds, video_triggers)
        shock_on = _on(schedule.shocks, video_triggers)
        self.freezing = self._freezing(sound_on, shock_on)
        self.x, self.y = self._trajectory(self.freezing)
        self.arena = self._arena()
        self.video_noise = self.rng.normal(0, 4, (NOISE_BANK, self.vh, self.vw)).astype(np.int16)
        yy, xx = np.mgrid[0 : self.vh, 0 : self.vw]
        self._grid = (yy, xx)
        self.iw, self.ih = imaging_size
        self.neurons = neurons
        if imaging_triggers is not None:
            self._setup_imaging(schedule, imaging_triggers)

    def _freezing(self, sound_on: np.ndarray, shock_on: np.ndarray) -> np.ndarray:
        n = len(sound_on)
        fps = 1 / np.median(np.diff(self.video_t)) if n > 1 else 30.0
        p = np.where(sound_on, 0.6, 0.1)
        state = np.zeros(n, bool)
        k = 0
        while k < n:
            length = int(fps * self.rng.uniform(1.0, 4.0))
            state[k : k + length] = self.rng.random() < p[k] and not shock_on[k]
            k += length
        return state

    def _trajectory(self, freezing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(freezing)
        step = self.rng.normal(0, 3, (n, 2))
        step[freezing] = 0
        pos = np.cumsum(step, axis=0)
        margin = 40
        span = np.array([self.vw - 2 * margin, self.vh - 2 * margin])
        pos = np.abs((pos % (2 * span)) - span) + margin  # reflect at the walls
        return pos[:, 0], pos[:, 1]

    def _arena(self) -> np.ndarray:
        img = np.full((self.vh, self.vw), 170, np.int16)
        img[:8], img[-8:], img[:, :8], img[:, -8:] = 60, 60, 60, 60
        return img

    def render_video(self, k: int) -> np.ndarray:
        yy, xx = self._grid
        x, y = self.x[k], self.y[k]
        x0, x1 = int(max(0, x - 25)), int(min(self.vw, x + 25))
        y0, y1 = int(max(0, y - 25)), int(min(self.vh, y + 25))
        img = self.arena + self.video_noise[(k * 7) % NOISE_BANK]
        body = ((xx[y0:y1, x0:x1] - x) / 20) ** 2 + ((yy[y0:y1, x0:x1] - y) / 11) ** 2 < 1
        img[y0:y1, x0:x1][body] = 40
        return np.clip(img, 0, 255).astype(np.uint8)

    def _setup_imaging(self, schedule: OutputSchedule, triggers: np.ndarray) -> None:
        n = len(triggers)
        rng = self.rng
        self.centres = rng.uniform(6, [self.iw - 6, self.ih - 6], (self.neurons, 2))
        sound_on = _on(schedule.sounds, triggers).astype(float)
        shock_on = _on(schedule.shocks, triggers).astype(float)
        drive = rng.random(self.neurons)
        kernel = np.exp(-np.arange(30) / 15.0)
        responses = np.outer(sound_on, drive < 0.5) + 3 * np.outer(shock_on, drive > 0.7)
        traces = np.apply_along_axis(lambda c: np.convolve(c, kernel)[:n], 0, responses)
        self.traces = (traces + rng.gamma(1.0, 0.05, traces.shape)).astype(np.float32)
        yy, xx = np.mgrid[0 : self.ih, 0 : self.iw]
        self.footprints = (
            np.stack([np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 8.0) for cx, cy in self.centres])
            .reshape(self.neurons, -1)
            .astype(np.float32)
        )
        self.imaging_base = 400 + 50 * rng.random((self.ih, self.iw))
        self.imaging_noise = rng.normal(0, 20, (NOISE_BANK, self.ih, self.iw)).astype(np.float32)

    def render_imaging(self, k: int) -> np.ndarray:
        signal = (self.traces[k] @ self.footprints).reshape(self.ih, self.iw) * 800
        img = self.imaging_base + signal + self.imaging_noise[(k * 5) % NOISE_BANK]
        return np.clip(img, 0, 65535).astype(np.uint16)

    def truth(self) -> dict[str, np.ndarray]:
        out = {"freezing": self.freezing, "mouse_x": self.x, "mouse_y": self.y}
        if hasattr(self, "traces"):
            out["neuron_traces"] = self.traces
            out["neuron_centres"] = self.centres
        return out


def _on(blocks, samples: np.ndarray) -> np.ndarray:
    on = np.zeros(len(samples), bool)
    for b in blocks:
        on |= (samples >= b.start_sample) & (samples < b.stop_sample)
    return on
