"""A small synthetic behaviour video with known freezing, for tests and the freezing benchmark.

A dark mouse-shaped blob (body and head ellipses) walks on a lit, textured arena and
alternates moving and freezing bouts; while freezing only its flank moves with breathing.
Sensor noise, illumination flicker and a cable that sways all the time (freezing included)
make it realistic enough that a naive frame difference fails: the cable has to be excluded
with a mask (:attr:`SyntheticVideo.cable_box`). Freezing is more likely during the CS and after
a shock, so per-trial freezing differs between epochs. The truth is per frame.

This is a stand-in: ``sim/mouse.py`` (the simulated rig's mouse) will replace it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

# Mean bout lengths in seconds by context: (moving, freezing).
BOUTS_S = {"baseline": (10.0, 3.0), "cs": (2.0, 6.0), "us": (1.0, 0.0), "iti": (4.0, 4.0)}
MIN_FREEZE_BOUT_S = 1.5  # truth freezing bouts last at least this long
MIN_MOVE_BOUT_S = 0.6


@dataclass
class SyntheticVideo:
    """The schedule, truth and renderer of one synthetic session."""

    width: int = 320
    height: int = 240
    fps: float = 30.0
    baseline_s: float = 30.0
    n_trials: int = 4
    cs_s: float = 10.0
    us_s: float = 1.0
    iti_s: float = 15.0
    seed: int = 0
    noise_grey: float = 2.5
    flicker: float = 0.015
    trials: list[dict] = field(init=False)
    phases: list[dict] = field(init=False)
    truth: np.ndarray = field(init=False)
    n_frames: int = field(init=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._schedule()
        self.n_frames = round(self.duration_s * self.fps)
        self.times_s = np.arange(self.n_frames) / self.fps
        self._behave()
        self._scene()

    # --- schedule and behaviour ---------------------------------------------------------

    @property
    def duration_s(self) -> float:
        return self.phases[-1]["end_s"]

    def _schedule(self) -> None:
        cond_start = self.baseline_s
        trials, t = [], cond_start
        for i in range(self.n_trials):
            cs_on, cs_off = t, t + self.cs_s
            us = i % 2 == 0  # alternate CS+ (with shock at CS end) and CS-
            trials.append(
                {
                    "index": i,
                    "phase": "conditioning",
                    "cs": "cs_plus" if us else "cs_minus",
                    "us": "shock" if us else None,
                    "cs_onset_s": cs_on,
                    "cs_offset_s": cs_off,
                    "us_onset_s": cs_off - self.us_s if us else None,
                    "us_offset_s": cs_off if us else None,
                }
            )
            t = cs_off + self.iti_s
        self.trials = trials
        self.phases = [
            {"name": "baseline", "start_s": 0.0, "end_s": cond_start},
            {"name": "conditioning", "start_s": cond_start, "end_s": t},
        ]

    def _context(self, t: float) -> str:
        for tr in self.trials:
            if tr["us_onset_s"] is not None and tr["us_onset_s"] <= t < tr["us_offset_s"]:
                return "us"
            if tr["cs_onset_s"] <= t < tr["cs_offset_s"]:
                return "cs"
        return "baseline" if t < self.baseline_s else "iti"

    def _behave(self) -> None:
        """Draw moving/freezing bouts frame by frame; a shock interrupts any bout."""
        rng, fps = self._rng, self.fps
        truth = np.zeros(self.n_frames, bool)
        freezing, left = False, 0
        for i in range(self.n_frames):
            ctx = self._context(i / fps)
            if ctx == "us":
                freezing, left = False, 0
            elif left <= 0:
                move_s, freeze_s = BOUTS_S[ctx]
                freezing = not freezing
                mean = freeze_s if freezing else move_s
                floor = MIN_FREEZE_BOUT_S if freezing else MIN_MOVE_BOUT_S
                left = round((floor + rng.exponential(mean)) * fps)
            truth[i] = freezing
            left -= 1
        self.truth = truth

    # --- rendering ------------------------------------------------------------------------

    @property
    def scale(self) -> float:
        return self.width / 640

    @property
    def cable_box(self) -> tuple[int, int, int, int]:
        """``(x, y, width, height)`` in pixels of the region the cable sways in."""
        return (int(0.68 * self.width), 0, int(0.2 * self.width), int(0.34 * self.height))

    def _scene(self) -> None:
        h, w, rng = self.height, self.width, self._rng
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        bg = 150 + 25 * (x / w) - 20 * (y / h)
        tex = rng.normal(0, 1, (h // 8 + 2, w // 8 + 2)).astype(np.float32)
        tex = np.kron(tex, np.ones((8, 8), np.float32))[:h, :w]
        k = np.ones(9, np.float32) / 9
        tex = np.apply_along_axis(np.convolve, 1, tex, k, "same")
        tex = np.apply_along_axis(np.convolve, 0, tex, k, "same")
        self._bg = (bg + 12 * tex).astype(np.float32)
        self._noise = rng.normal(0, self.noise_grey, (17, h, w)).astype(np.float32)
        # Mouse trajectory: smooth random velocity while moving, still while freezing.
        n, s = self.n_frames, self.scale
        pos = np.empty((n, 2))
        heading = np.empty(n)
        p = np.array([0.4 * w, 0.65 * h])
        v = np.zeros(2)
        speed = 160 * s  # px/s
        lo = np.array([60 * s, 0.45 * h])
        hi = np.array([w - 60 * s, h - 40 * s])
        ang = 0.0
        for i in range(n):
            if not self.truth[i]:
                v = 0.9 * v + rng.normal(0, speed * 0.35, 2)
                nv = np.linalg.norm(v)
                if nv < 0.4 * speed:
                    v = v / max(nv, 1e-9) * 0.4 * speed
                p = p + v / self.fps
                bounce = (p < lo) | (p > hi)
                v[bounce] *= -1
                p = np.clip(p, lo, hi)
                ang = float(np.arctan2(v[1], v[0]))
            pos[i], heading[i] = p, ang
        self._pos, self._heading = pos, heading
        self._cable_amp = self._cable_envelope()

    def _draw_ellipse(self, img, cx, cy, a, b, ang, depth):
        r = int(max(a, b)) + 2
        x0, x1 = max(0, int(cx) - r), min(self.width, int(cx) + r + 1)
        y0, y1 = max(0, int(cy) - r), min(self.height, int(cy) + r + 1)
        if x1 <= x0 or y1 <= y0:
            return
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dx, dy = xx - cx, yy - cy
        c, s = np.cos(ang), np.sin(ang)
        u, v = dx * c + dy * s, -dx * s + dy * c
        inside = (u / a) ** 2 + (v / b) ** 2
        # A soft edge (about a pixel wide) so sub-pixel breathing changes the image.
        alpha = np.clip((1.0 - inside) * min(a, b) / 2, 0, 1)
        img[y0:y1, x0:x1] -= depth * alpha

    def _cable_envelope(self) -> np.ndarray:
        """Per-frame swing amplitude (0-1): the cable swings in bouts, whatever the mouse does."""
        env = np.zeros(self.n_frames)
        i = 0
        while i < self.n_frames:
            still = round(self._rng.uniform(1, 6) * self.fps)
            swing = round(self._rng.uniform(2, 8) * self.fps)
            env[i + still : i + still + swing] = 1.0
            i += still + swing
        k = np.ones(max(1, round(0.5 * self.fps)))
        return np.convolve(env, k / k.sum(), "same")

    def _draw_cable(self, img, i, t):
        bx, by, bw, bh = self.cable_box
        amp = self._cable_amp[i] * bw
        sway = amp * (0.3 * np.sin(2 * np.pi * 0.8 * t) + 0.1 * np.sin(2 * np.pi * 2.3 * t))
        top = np.array([bx + bw / 2, by])
        bottom = np.array([bx + bw / 2 + sway, by + bh - 2])
        ys = np.arange(by, by + bh - 1)
        frac = (ys - by) / max(1, bh - 2)
        xs = top[0] + (bottom[0] - top[0]) * frac**2
        half = max(2.0, 6 * self.scale)
        cols = np.arange(bx, bx + bw)[None, :]
        alpha = np.clip(half - np.abs(cols - xs[:, None]), 0, 1)
        img[by : by + len(ys), bx : bx + bw] -= 70 * alpha

    def frame(self, i: int) -> np.ndarray:
        """Render frame ``i`` as uint8 ``(height, width)``."""
        t = i / self.fps
        img = self._bg.copy()
        s = self.scale
        cx, cy = self._pos[i]
        ang = self._heading[i]
        breath = 0.6 * s * np.sin(2 * np.pi * 3.0 * t)
        self._draw_ellipse(img, cx, cy, 42 * s, 22 * s + breath, ang, 80)
        hx, hy = cx + 44 * s * np.cos(ang), cy + 44 * s * np.sin(ang)
        self._draw_ellipse(img, hx, hy, 16 * s, 12 * s, ang, 80)
        self._draw_cable(img, i, t)
        gain = (
            1
            + self.flicker * np.sin(2 * np.pi * 7.3 * t)
            + 0.3 * self.flicker * (self._rng.random() - 0.5)
        )
        img *= gain
        img += self._noise[self._rng.integers(len(self._noise))]
        return np.clip(img, 0, 255).astype(np.uint8)

    def chunks(self, size: int = 256) -> Iterator[np.ndarray]:
        """All frames in order, as ``(k, height, width)`` uint8 stacks of up to ``size``."""
        for start in range(0, self.n_frames, size):
            stop = min(self.n_frames, start + size)
            yield np.stack([self.frame(i) for i in range(start, stop)])
