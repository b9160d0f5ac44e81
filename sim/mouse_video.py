"""The simulated behaviour camera's picture of the mouse (:mod:`sim.mouse`), frame by frame.

Two views:

- ``top``: an IR-lit fear-conditioning chamber seen from above, the mouse on a shock-grid floor
  (or, with ``floor: bedding``, an open field's bedding), a bright rim of walls, the
  illuminator's hot spot and the lens's vignetting;
- ``head_fixed``: the side view of a head-fixed mouse on a treaded wheel under its head post.

The mouse is drawn from parts, each a cached sprite: body (heading or gait, breathing,
posture), head (angle, whiskers; in the side view the nose's reach), forepaws while grooming,
and tail. A swinging cable moves all the time inside :meth:`MouseRenderer.cable_region`, so a
freezing scorer must mask it. Illumination (flicker, drift, wander) and camera noise come from
:mod:`sim.camera_model`; with ``jpeg_quality`` every frame goes through MJPEG compression.

A frame costs one copy of the background at the frame's illumination (cached per 1/256 step
of gain), four or five small sprite blends, the noise add and, in the side view, the wheel's
grey-level lookup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from sim.camera_model import CameraNoise, illumination_gain, mjpeg_roundtrip
from sim.drawing import (
    FRAME_OFFSET,
    Rect,
    Sprite,
    ellipse_alpha,
    make_sprite,
    polyline_alpha,
    smooth_noise,
)
from sim.mouse import GROOM, BehaviourTrack, MouseConfig, _geometry

_CACHED_LEVELS = 96  # backgrounds kept, one per 1/256 step of illumination gain (~30 MB)


@dataclass(frozen=True)
class _Grid:
    """A sprite's pixel grid (``x``, ``y`` from the anchor) and its coordinates in cm along
    the part's direction (``u``) and across it (``v``)."""

    u: np.ndarray
    v: np.ndarray
    x: np.ndarray
    y: np.ndarray
    half: int
    cos: float
    sin: float


@dataclass(frozen=True)
class _FrameTable:
    """Per-frame drawing choices of a session, one entry per frame."""

    body: np.ndarray  # body sprite key
    head: np.ndarray  # head sprite key
    paws: np.ndarray  # forepaw sprite key, -1 when not grooming
    tail: np.ndarray  # tail sprite key
    y: np.ndarray  # body anchor, pixels
    x: np.ndarray
    head_y: np.ndarray  # head anchor, pixels
    head_x: np.ndarray
    wheel_bin: np.ndarray  # rotation bin of the wheel (0 in the top view)
    cable_bin: np.ndarray  # swing bin of the cable
    gain256: np.ndarray  # illumination gain in 1/256 steps


def _bins(values: np.ndarray, lo: float, hi: float, n: int) -> np.ndarray:
    """Index of the nearest of ``n`` evenly spaced levels from ``lo`` to ``hi``."""
    frac = (np.clip(values, lo, hi) - lo) / (hi - lo)
    return np.rint(frac * (n - 1)).astype(np.int64)


class MouseRenderer:
    """Renders frame ``i`` of a :class:`BehaviourTrack` as an 8-bit grey image."""

    N_HEADINGS = 64  # body and tail orientations
    N_HEAD_ANGLES = 128  # head orientations (finer: the head turns by a few degrees)
    N_BREATH = 8  # flank excursion levels
    N_WHISK = 9  # whisker angle levels over +-WHISK_MAX
    WHISK_MAX = 0.4
    N_REACH = 9  # nose reach levels over +-REACH_MAX_MM (side view)
    REACH_MAX_MM = 2.0
    N_STROKE = 8  # grooming stroke phases
    N_TAIL = 4
    N_GAIT = 12
    N_WHEEL = 24
    N_CABLE = 64
    WHEEL_TREADS = 12

    def __init__(self, config: MouseConfig, track: BehaviourTrack, seed: int = 0) -> None:
        if track.view != config.view:
            raise ValueError(f"track is for the {track.view!r} view, config for {config.view!r}")
        self.config = config
        self.track = track
        self._rng = np.random.default_rng([seed, 0x52454E44])
        self._geo = _geometry(config)
        self._ppcm = self._geo["ppcm"]
        self._ir = config.view == "top" and config.floor == "grid"
        self._sprites: dict[tuple[str, int], Sprite] = {}
        self._cable_rect = self._make_cable_rect()
        phases = self._rng.uniform(0, 2 * math.pi, 2)
        self._scene = self._top_background() if config.view == "top" else self._side_background()
        self._wheel_rect: Rect | None = None
        self._wheels: list[np.ndarray] = []
        if config.view == "head_fixed":
            self._wheel_rect, self._wheels = self._wheel_patches()
        self._levels: dict[int, np.ndarray] = {}
        self._luts: dict[int, np.ndarray] = {}
        self._noise = CameraNoise(
            config.width,
            config.height,
            config.noise_sigma if config.noise else 0.0,
            config.row_noise_sigma if config.noise else 0.0,
            self._rng,
        )
        self._frames = self._frame_table(phases)

    # ---- public

    def __len__(self) -> int:
        return len(self.track)

    def arena_region(self) -> Rect:
        """(x0, y0, x1, y1), end exclusive: the chamber's floor and walls (top view), or the
        whole frame (side view). Where a user would crop to."""
        if self.config.view != "top":
            return (0, 0, self.config.width, self.config.height)
        g = self._geo
        x0, y0, side = int(g["x0"]), int(g["y0"]), int(g["side"])
        return (x0, y0, x0 + side, y0 + side)

    def cable_region(self) -> Rect:
        """(x0, y0, x1, y1), end exclusive: where the cable moves. Mask it when scoring."""
        return self._cable_rect

    def illumination(self, i: int) -> float:
        """The illumination gain of frame ``i`` (1.0 without flicker and drift)."""
        return float(self._frames.gain256[i]) / 256.0

    def body_box(self, i: int) -> Rect:
        """Bounding box (x0, y0, x1, y1) of the mouse (body, head, paws) in frame ``i``."""
        boxes = [sprite.box(ay, ax) for sprite, ay, ax in self._parts(i)]
        return (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )

    def render(self, i: int, animal: bool = True) -> np.ndarray:
        """Frame ``i`` as uint8 (height, width). Deterministic for a given seed.

        ``animal=False`` films the empty arena (light and camera as in frame ``i``, the cable
        hanging still with no mouse to pull it): what a calibration recording shows.
        """
        t = self._frames
        g = int(t.gain256[i])
        buf = self._background(g).copy()
        if self._wheel_rect is not None:
            x0, y0, x1, y1 = self._wheel_rect
            np.take(self._lut(g), self._wheels[int(t.wheel_bin[i])], out=buf[y0:y1, x0:x1])
        for sprite, ay, ax in self._parts(i) if animal else ():
            sprite.paste(buf, ay, ax, g)
        if self.config.cable:
            x0, y0, _, _ = self._cable_rect
            swing = int(t.cable_bin[i]) if animal else self.N_CABLE // 2
            self._sprite("cable", swing).paste(buf, y0, x0, g)
        self._noise.add(buf, i)
        if self.config.jpeg_quality is not None:
            return mjpeg_roundtrip(buf, self.config.jpeg_quality)
        return buf

    # ---- per frame

    def _parts(self, i: int) -> list[tuple[Sprite, int, int]]:
        """The mouse's sprites for frame ``i`` with their anchors, back to front."""
        t = self._frames
        y, x, hy, hx = int(t.y[i]), int(t.x[i]), int(t.head_y[i]), int(t.head_x[i])
        parts = [
            (self._sprite("tail", int(t.tail[i])), y, x),
            (self._sprite("body", int(t.body[i])), y, x),
            (self._sprite("head", int(t.head[i])), hy, hx),
        ]
        if t.paws[i] >= 0:
            parts.append((self._sprite("paws", int(t.paws[i])), hy, hx))
        return parts

    def _background(self, g: int) -> np.ndarray:
        """The scene at gain ``g / 256``, less FRAME_OFFSET (the noise adds it back)."""
        bg = self._levels.get(g)
        if bg is None:
            if len(self._levels) >= _CACHED_LEVELS:  # the light went far: start afresh
                self._levels.clear()
            level = np.rint(self._scene * (g / 256.0)) - FRAME_OFFSET
            bg = np.clip(level, 0, 255 - 2 * FRAME_OFFSET).astype(np.uint8)
            self._levels[g] = bg
        return bg

    def _lut(self, g: int) -> np.ndarray:
        lut = self._luts.get(g)
        if lut is None:
            level = np.rint(np.arange(256) * (g / 256.0)) - FRAME_OFFSET
            lut = self._luts[g] = np.clip(level, 0, 255 - 2 * FRAME_OFFSET).astype(np.uint8)
        return lut

    def _frame_table(self, phases: np.ndarray) -> _FrameTable:
        """Every frame's sprite keys, anchors, wheel and cable bins and gain, at once."""
        cfg, tr = self.config, self.track
        tau = 2 * math.pi
        n = len(tr)
        ppcm = self._ppcm
        breath = _bins(tr.breath, 0.0, 1.0, self.N_BREATH)
        whisk = _bins(tr.whisk_rad, -self.WHISK_MAX, self.WHISK_MAX, self.N_WHISK)
        stroke = (np.floor(tr.paw_phase * self.N_STROKE).astype(np.int64)) % self.N_STROKE
        grooming = tr.state == GROOM
        tail = (tr.fidget_phase * self.N_TAIL).astype(np.int64) % self.N_TAIL
        x, y = tr.x_px, tr.y_px
        if cfg.view == "top":
            heading = np.rint((tr.heading_rad % tau) / tau * self.N_HEADINGS).astype(np.int64)
            heading %= self.N_HEADINGS
            head_angle = tr.heading_rad + tr.head_yaw_rad
            angle_bin = np.rint((head_angle % tau) / tau * self.N_HEAD_ANGLES).astype(np.int64)
            angle_bin %= self.N_HEAD_ANGLES
            # the head turns about the neck; its centre is 0.75 cm + reach beyond the pivot
            pivot = _NECK_CM * ppcm
            reach = (0.75 + tr.head_ext_mm / 10.0) * ppcm
            head_x = x + pivot * np.cos(tr.heading_rad) + reach * np.cos(head_angle)
            head_y = y + pivot * np.sin(tr.heading_rad) + reach * np.sin(head_angle)
            body = (heading * self.N_BREATH + breath) * 2 + grooming
            head = angle_bin * self.N_WHISK + whisk
            paws = np.where(grooming, angle_bin * self.N_STROKE + stroke, -1)
            tail_key = heading * self.N_TAIL + tail
            wheel = np.zeros(n, np.int64)
        else:
            stride_cm = 5.0
            gait = ((tr.distance_cm / stride_cm) % 1.0 * self.N_GAIT).astype(np.int64)
            gait %= self.N_GAIT
            reach_bin = _bins(tr.head_ext_mm, -self.REACH_MAX_MM, self.REACH_MAX_MM, self.N_REACH)
            body = (gait * self.N_BREATH + breath) * 2 + grooming
            head = reach_bin * self.N_WHISK + whisk
            paws = np.where(grooming, stroke, -1)
            tail_key = tail
            head_x, head_y = x, y
            per_tread = cfg.encoder_counts_per_rev / self.WHEEL_TREADS
            counts = tr.wheel_counts.astype(np.int64)
            wheel = ((counts % per_tread) / per_tread * self.N_WHEEL).astype(np.int64)
            wheel %= self.N_WHEEL
        t = tr.frame_times_s.astype(float)
        cable = 0.7 * np.sin(tau * 0.45 * t + phases[0]) + 0.3 * np.sin(tau * 1.3 * t + phases[1])
        gain = np.ones(n)
        if cfg.flicker:
            gain = illumination_gain(
                t,
                self._rng,
                cfg.flicker_amplitude,
                cfg.mains_hz,
                cfg.drift,
                cfg.drift_tau_s,
                cfg.wander,
                cfg.wander_tau_s,
            )
        return _FrameTable(
            body=body,
            head=head,
            paws=paws,
            tail=tail_key,
            y=np.rint(y).astype(np.int64),
            x=np.rint(x).astype(np.int64),
            head_y=np.rint(head_y).astype(np.int64),
            head_x=np.rint(head_x).astype(np.int64),
            wheel_bin=wheel,
            cable_bin=np.minimum(
                self.N_CABLE - 1, ((cable + 1.0) / 2.0 * self.N_CABLE).astype(np.int64)
            ),
            gain256=np.rint(gain * 256).astype(np.int64),
        )

    # ---- sprites

    def _sprite(self, part: str, key: int) -> Sprite:
        sprite = self._sprites.get((part, key))
        if sprite is None:
            sprite = self._sprites[(part, key)] = self._draw(part, key)
        return sprite

    def _draw(self, part: str, key: int) -> Sprite:
        if part == "cable":
            return self._cable_sprite(key)
        top = self.config.view == "top"
        if part == "body":
            pose, rest = divmod(key, self.N_BREATH * 2)
            breath, hunched = divmod(rest, 2)
            return (self._top_body if top else self._side_body)(pose, breath, bool(hunched))
        if part == "head":
            pose, whisk = divmod(key, self.N_WHISK)
            return (self._top_head if top else self._side_head)(pose, whisk)
        if part == "paws":
            if top:
                return self._top_paws(*divmod(key, self.N_STROKE))
            return self._side_paws(key)
        if top:
            return self._top_tail(*divmod(key, self.N_TAIL))
        return self._side_tail(key)

    def _grid(self, half_cm: float, angle: float) -> _Grid:
        """A square pixel grid around the anchor, with coordinates in cm along ``angle``."""
        half = math.ceil(half_cm * self._ppcm) + 2
        gy, gx = np.mgrid[-half : half + 1, -half : half + 1].astype(float)
        c, s = math.cos(angle), math.sin(angle)
        u = (gx * c + gy * s) / self._ppcm
        v = (-gx * s + gy * c) / self._ppcm
        return _Grid(u, v, gx, gy, half, c, s)

    def _colours(self) -> dict[str, float]:
        if self._ir:  # a black mouse under infrared light is dark grey; ears, tail, paws pale
            return {"fur": 58, "spine": 16, "ear": 84, "nose": 104, "tail": 100, "paw": 112}
        return {"fur": 34, "spine": 22, "ear": 60, "nose": 70, "tail": 74, "paw": 70}

    def _breath_cm(self, level: int) -> float:
        return self.config.breath_amplitude_mm / 10.0 * level / (self.N_BREATH - 1)

    def _top_body(self, pose: int, breath: int, hunched: bool) -> Sprite:
        ppcm, col = self._ppcm, self._colours()
        g = self._grid(3.2, 2 * math.pi * pose / self.N_HEADINGS)
        u, v = g.u, g.v  # cm along the body (nose positive) and across it
        e = self._breath_cm(breath)
        if hunched:  # sitting up to groom: shorter, rounder
            alpha = np.maximum(
                ellipse_alpha(u + 0.1, v, 2.1, 1.45 + e, ppcm),
                ellipse_alpha(u + 1.1, v, 1.3, 1.5 + e, ppcm),
            )
        else:  # shoulders narrower than the hips
            alpha = np.maximum(
                ellipse_alpha(u - 0.4, v, 2.2, 1.1 + e, ppcm),
                ellipse_alpha(u + 1.0, v, 1.7, 1.4 + e, ppcm),
            )
        spine = np.exp(-((v / 0.6) ** 2)) * (np.abs(u) < 2.3)
        # the back rises towards the light as the mouse breathes in: its ridge brightens
        shade = 1.0 + self.config.breath_shading * breath / (self.N_BREATH - 1) * spine
        value = (col["fur"] + col["spine"] * spine) * shade
        return make_sprite(alpha, value, g.half, g.half)

    def _top_head(self, pose: int, whisk: int) -> Sprite:
        ppcm, col = self._ppcm, self._colours()
        g = self._grid(3.4, 2 * math.pi * pose / self.N_HEAD_ANGLES)
        u, v = g.u, g.v  # cm from the head's centre, along the head and across it
        head = np.maximum(
            ellipse_alpha(u, v, 1.25, 0.85, ppcm), ellipse_alpha(u - 0.75, v, 0.75, 0.45, ppcm)
        )
        ears = np.maximum(
            ellipse_alpha(u + 0.45, v - 0.75, 0.42, 0.38, ppcm),
            ellipse_alpha(u + 0.45, v + 0.75, 0.42, 0.38, ppcm),
        )
        nose = ellipse_alpha(u - 1.42, v, 0.16, 0.2, ppcm)
        whisk_rad = -self.WHISK_MAX + 2 * self.WHISK_MAX * whisk / (self.N_WHISK - 1)
        whiskers = np.zeros_like(u)
        for side in (-1.0, 1.0):
            for k in range(3):
                # rest angle from straight ahead; protraction (whisk > 0) sweeps them forward
                rest = math.radians(60 + 22 * k) - whisk_rad
                length = 2.2 + 0.3 * k
                wu = np.array([1.15, 1.15 + length * math.cos(rest)])
                wv = side * np.array([0.3, 0.3 + length * math.sin(rest)])
                pts = np.stack([wu * g.cos - wv * g.sin, wu * g.sin + wv * g.cos], 1) * ppcm
                whiskers = np.maximum(whiskers, polyline_alpha(g.x, g.y, pts, 0.25))
        alpha = np.maximum.reduce([head, ears, nose, 0.15 * whiskers])
        value = np.where(ears > head, col["ear"], col["fur"])
        value = np.where(nose > 0.5, col["nose"], value)
        value = np.where((whiskers > 0) & (head < 0.5) & (ears < 0.5), 170, value)
        return make_sprite(alpha, value, g.half, g.half)

    def _top_paws(self, pose: int, stroke: int) -> Sprite:
        ppcm, col = self._ppcm, self._colours()
        g = self._grid(2.2, 2 * math.pi * pose / self.N_HEAD_ANGLES)
        u, v = g.u, g.v
        phase = 2 * math.pi * stroke / self.N_STROKE
        # both forepaws circle from the nose back over the eyes (elliptical face strokes)
        pu = 0.55 + 0.6 * math.cos(phase)
        pv = 0.45 + 0.2 * math.sin(phase)
        alpha = np.maximum(
            ellipse_alpha(u - pu, v - pv, 0.32, 0.22, ppcm),
            ellipse_alpha(u - pu, v + pv, 0.32, 0.22, ppcm),
        )
        return make_sprite(alpha, np.full_like(u, col["paw"]), g.half, g.half)

    def _top_tail(self, pose: int, tail: int) -> Sprite:
        ppcm, col = self._ppcm, self._colours()
        heading = 2 * math.pi * pose / self.N_HEADINGS
        c, s = math.cos(heading), math.sin(heading)
        sway = 0.9 * math.sin(2 * math.pi * tail / self.N_TAIL)
        ts = np.linspace(0, 1, 10)
        tail_u = -2.4 - 6.5 * ts
        tail_v = sway * ts**1.5
        pts = np.stack([tail_u * c - tail_v * s, tail_u * s + tail_v * c], 1) * ppcm
        # only the tail's bounding box: a grid over the whole reach would cost 10x more
        lo = np.floor(pts.min(axis=0)).astype(int) - 3
        hi = np.ceil(pts.max(axis=0)).astype(int) + 4
        gy, gx = np.mgrid[lo[1] : hi[1], lo[0] : hi[0]].astype(float)
        alpha = 0.9 * polyline_alpha(gx, gy, pts, np.linspace(0.2, 0.06, 10) * ppcm)
        return make_sprite(alpha, np.full_like(gx, col["tail"]), -lo[1], -lo[0])

    def _side_grid(self) -> tuple[np.ndarray, np.ndarray, int, int]:
        ppcm = self._ppcm
        half_w, half_h = int(9 * ppcm), int(4.5 * ppcm)
        gy, gx = np.mgrid[-half_h : half_h + 1, -half_w : half_w + 1].astype(float)
        return gy / ppcm, gx / ppcm, half_h, half_w

    def _side_body(self, gait: int, breath: int, grooming: bool) -> Sprite:
        ppcm = self._ppcm
        v, u, half_h, half_w = self._side_grid()  # cm; v down, the mouse faces +u
        phase = 2 * math.pi * gait / self.N_GAIT
        bob = 0.12 * math.sin(2 * phase)
        e = self._breath_cm(breath)
        body = ellipse_alpha(u + 0.3, v - bob, 3.0, 1.3 + e, ppcm)
        foot_v = 1.5  # the wheel's top surface, cm below the anchor
        legs = []
        limbs = ((2.0, 0.0), (1.6, math.pi), (-1.8, math.pi / 2), (-1.4, -math.pi / 2))
        for hip_u, off in limbs[2:] if grooming else limbs:  # forelegs up at the face
            foot_u = hip_u + 0.8 * math.sin(phase + off)
            lift = 0.3 * max(0.0, math.cos(phase + off))
            pts = np.array([[hip_u, 0.6 + bob], [foot_u, foot_v - lift]]) * ppcm
            legs.append(polyline_alpha(u * ppcm, v * ppcm, pts, 0.22 * ppcm))
        alpha = np.maximum.reduce([body, *legs])
        back = np.exp(-(((v + 0.9 - bob) / 0.5) ** 2)) * (np.abs(u + 0.3) < 2.8)
        shade = 1.0 + self.config.breath_shading * breath / (self.N_BREATH - 1) * back
        value = (38 + 25 * back) * shade
        return make_sprite(alpha, value, half_h, half_w)

    def _side_head(self, reach: int, whisk: int) -> Sprite:
        ppcm = self._ppcm
        v, u, half_h, half_w = self._side_grid()
        r = -self.REACH_MAX_MM + 2 * self.REACH_MAX_MM * reach / (self.N_REACH - 1)
        snout = 0.1 * r  # cm: the nose twitches forward and back
        head = np.maximum(
            ellipse_alpha(u - 3.1, v - 0.2, 1.4, 0.95, ppcm),
            ellipse_alpha(u - 4.0 - snout, v - 0.4, 0.7, 0.45, ppcm),
        )
        ear = ellipse_alpha(u - 2.4, v + 0.9, 0.5, 0.45, ppcm)
        w = -self.WHISK_MAX + 2 * self.WHISK_MAX * whisk / (self.N_WHISK - 1)
        whiskers = np.zeros_like(u)
        for k in range(4):
            angle = math.radians(-25 + 17 * k) + w
            ts = np.linspace(0, 1, 6)
            pts = np.stack(
                [4.3 + snout + 2.4 * np.cos(angle) * ts, 0.35 + 2.4 * np.sin(angle) * ts], 1
            )
            whiskers = np.maximum(whiskers, polyline_alpha(u * ppcm, v * ppcm, pts * ppcm, 0.3))
        alpha = np.maximum.reduce([head, ear, 0.2 * whiskers])
        value = np.where((whiskers > 0) & (head < 0.5), 150, 40.0)
        return make_sprite(alpha, value, half_h, half_w)

    def _side_paws(self, stroke: int) -> Sprite:
        ppcm = self._ppcm
        v, u, half_h, half_w = self._side_grid()
        phase = 2 * math.pi * stroke / self.N_STROKE
        paw_u, paw_v = 3.7 + 0.5 * math.cos(phase), 0.4 + 0.5 * math.sin(phase)
        pts = np.array([[2.0, 0.6], [2.9, 1.0], [paw_u, paw_v]]) * ppcm
        arm = polyline_alpha(u * ppcm, v * ppcm, pts, 0.22 * ppcm)
        paw = ellipse_alpha(u - paw_u, v - paw_v, 0.35, 0.25, ppcm)
        return make_sprite(np.maximum(arm, paw), np.full_like(u, 70.0), half_h, half_w)

    def _side_tail(self, tail: int) -> Sprite:
        ppcm = self._ppcm
        v, u, half_h, half_w = self._side_grid()
        sway = 0.5 * math.sin(2 * math.pi * tail / self.N_TAIL)
        ts = np.linspace(0, 1, 10)
        pts = np.stack([-3.0 - 5.0 * ts, 0.3 + 2.5 * ts**2 + sway * ts], 1) * ppcm
        alpha = 0.9 * polyline_alpha(u * ppcm, v * ppcm, pts, np.linspace(0.25, 0.08, 10) * ppcm)
        return make_sprite(alpha, np.full_like(u, 60.0), half_h, half_w)

    def _make_cable_rect(self) -> Rect:
        w, h = self.config.width, self.config.height
        x0 = int(0.86 * w)
        return (x0, 0, min(w, x0 + max(8, int(0.12 * w))), max(8, int(0.75 * h)))

    def _cable_sprite(self, k: int) -> Sprite:
        x0, y0, x1, y1 = self._cable_rect
        w, h = x1 - x0, y1 - y0
        thick = max(1.0, 0.006 * self.config.height)
        length = 0.95 * h
        max_angle = math.asin(min(0.9, (w / 2 - thick - 2) / length))
        angle = (2 * (k + 0.5) / self.N_CABLE - 1) * max_angle * self.config.cable_amplitude
        s = np.linspace(0, 1, 16)
        # a hanging cable: the swing bends it more towards the free end
        bend = angle * s**1.5
        px = w / 2 + length * np.cumsum(np.sin(bend)) / len(s)
        py = thick + length * np.cumsum(np.cos(bend)) / len(s)
        gy, gx = np.mgrid[0:h, 0:w].astype(float)
        alpha = polyline_alpha(gx, gy, np.stack([px, py], 1), thick)
        value = 160 + 40 * np.clip(1 - np.abs(gx - np.interp(gy, py, px)) / thick, 0, 1)
        return make_sprite(alpha, value, 0, 0)

    # ---- scenes

    def _top_background(self) -> np.ndarray:
        cfg, g = self.config, self._geo
        h, w = cfg.height, cfg.width
        img = np.full((h, w), 32.0 if self._ir else 45.0)
        img += 5 * smooth_noise(self._rng, h, w, 3)
        x0, y0, side, wall = int(g["x0"]), int(g["y0"]), int(g["side"]), int(g["wall"])
        yy, xx = np.mgrid[0:side, 0:side].astype(float)
        if self._ir:
            floor = self._grid_floor(side, yy)
        else:
            floor = np.full((side, side), 178.0)
            floor += 10 * smooth_noise(self._rng, side, side, max(1.0, side / 80))
            floor += 7 * smooth_noise(self._rng, side, side, 0.7)
            chips = self._rng.random((side, side)) < 0.004
            floor += 25 * gaussian_filter(chips.astype(float), 1.0) / 0.16
        # walls: a bright rim with a shadow cast onto the floor
        edge = np.minimum.reduce([yy, xx, side - 1 - yy, side - 1 - xx])
        floor = np.where(edge < wall, 200 - 25 * edge / wall, floor)
        floor -= 30 * np.exp(-np.maximum(edge - wall, 0) / (0.8 * wall)) * (edge >= wall)
        img[y0 : y0 + side, x0 : x0 + side] = floor
        yy, xx = np.mgrid[0:h, 0:w]
        if self._ir:  # the illuminator's hot spot, a little off centre
            r2 = ((xx - 0.45 * w) / w) ** 2 + ((yy - 0.42 * h) / h) ** 2
            img *= 1.12 - 0.9 * r2
        else:
            r2 = ((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2
            img *= 1.0 - 0.5 * r2  # vignetting
        return np.clip(img, 20.0, 215.0)

    def _grid_floor(self, side: int, yy: np.ndarray) -> np.ndarray:
        """Steel rods (3.2 mm, 8 mm apart) over a dark drop pan, lit from above in infrared."""
        ppcm = self._ppcm
        pan = 88 + 8 * smooth_noise(self._rng, side, side, max(1.0, side / 60))
        pan += 4 * smooth_noise(self._rng, side, side, 0.8)
        period, radius = 0.8 * ppcm, 0.16 * ppcm
        d = np.abs(((yy + 0.5 * period) % period) - 0.5 * period)  # px from the nearest rod
        cover = np.clip(radius + 0.5 - d, 0, 1)
        profile = np.sqrt(np.clip(1 - (d / max(radius, 0.5)) ** 2, 0, 1))  # a lit cylinder
        rod = 125 + 70 * profile
        return pan * (1 - cover) + rod * cover

    def _side_background(self) -> np.ndarray:
        cfg, g = self.config, self._geo
        h, w = cfg.height, cfg.width
        yy, xx = np.mgrid[0:h, 0:w].astype(float)
        base = 60 + 25 * (1 - yy / h) + 5 * smooth_noise(self._rng, h, w, 4)
        # the head post comes down from the top to the mouse's head
        ppcm = g["ppcm"]
        post = (np.abs(xx - (g["mouse_x"] + 3.0 * ppcm)) < 0.5 * ppcm) & (
            yy < g["mouse_y"] - 0.6 * ppcm
        )
        return np.clip(np.where(post, 150 + 20 * np.sin(xx / ppcm), base), 20.0, 215.0)

    def _wheel_patches(self) -> tuple[Rect, list[np.ndarray]]:
        """The rectangle holding the wheel, drawn at each rotation bin over the scene."""
        cfg, g = self.config, self._geo
        h, w = cfg.height, cfg.width
        r = g["wheel_r"]
        x0, x1 = max(0, int(g["wheel_cx"] - r) - 1), min(w, int(g["wheel_cx"] + r) + 2)
        y0, y1 = max(0, int(g["wheel_cy"] - r) - 1), min(h, int(g["wheel_cy"] + r) + 2)
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(float)
        dx, dy = xx - g["wheel_cx"], yy - g["wheel_cy"]
        dist = np.hypot(dx, dy)
        theta = np.arctan2(dy, dx)
        rim = np.clip(r - dist + 0.5, 0, 1)
        shade = 1 - 0.25 * np.clip(dist / r, 0, 1) ** 4
        texture = 3 * smooth_noise(self._rng, y1 - y0, x1 - x0, 1.0)
        base = self._scene[y0:y1, x0:x1]
        out = []
        for k in range(self.N_WHEEL):
            rot = theta + 2 * math.pi * k / (self.N_WHEEL * self.WHEEL_TREADS)
            treads = 1 + 0.22 * (np.cos(self.WHEEL_TREADS * rot) > 0.3)
            wheel = (105 * treads + texture) * shade
            img = base * (1 - rim) + wheel * rim
            out.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
        return (x0, y0, x1, y1), out


_NECK_CM = 1.9  # from the body's centre to the neck, where the head turns
