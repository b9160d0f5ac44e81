"""The simulated mouse: behaviour that follows the learning model, and its video.

:func:`simulate_behaviour` computes the whole session up front (cheap): freezing bouts whose
probability during each sound follows the learned strength of that sound, baseline freezing
from context fear, a startle run on every shock, and the resulting path (top view) or wheel
rotation (head-fixed). :class:`MouseRenderer` turns frame ``i`` of that track into an 8-bit
image with sensor noise, illumination flicker and a swinging cable; the cable keeps moving
while the mouse freezes, inside :meth:`MouseRenderer.cable_region`, so a freezing scorer must
mask it. During a true freezing bout the mouse body does not move at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.ndimage import gaussian_filter

from rig.schedule import OutputSchedule
from sim.learning import AnimalState, LearningParams, SessionLearning, run_learning

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (end exclusive)

_NOISE_MID = 16  # noise bank values are centred here (uint8), so noise adds without overflow
_GREY_RAMP = np.arange(256, dtype=np.float64)
_LUT_BLOCK = 64  # frames whose grey-level lookups are made together


class MouseConfig(BaseModel):
    """What the simulated behaviour camera sees and how the simulated mouse behaves."""

    model_config = ConfigDict(extra="forbid")

    view: Literal["top", "head_fixed"] = "top"
    width: int = Field(640, ge=32, le=4096)
    height: int = Field(480, ge=32, le=4096)
    noise: bool = True
    noise_sigma: float = Field(3.0, ge=0, le=8, description="sensor noise, grey levels")
    flicker: bool = True
    flicker_amplitude: float = Field(0.03, ge=0, le=0.2, description="relative gain swing")
    cable: bool = True
    cable_amplitude: float = Field(1.0, ge=0, le=1, description="swing, fraction of the max")
    bedding: bool = True
    arena_cm: float = Field(40.0, gt=5)
    mean_speed_cm_s: float = Field(6.0, gt=0)
    startle_speed_cm_s: float = Field(30.0, gt=0)
    startle_s: float = Field(2.0, ge=0)
    min_freeze_s: float = Field(1.0, gt=0)
    cs_latency_s: float = Field(1.0, ge=0)
    max_cs_freezing: float = Field(0.9, ge=0, le=0.97)
    baseline_freezing: float = Field(0.03, ge=0, le=0.5)
    context_freezing: float = Field(0.35, ge=0, le=0.9)
    wheel_radius_cm: float = Field(7.5, gt=0)
    encoder_counts_per_rev: int = Field(1024, gt=0)


@dataclass(frozen=True)
class BehaviourTrack:
    """The mouse's behaviour at every camera frame (the simulation's ground truth)."""

    frame_times_s: np.ndarray
    x_px: np.ndarray
    y_px: np.ndarray
    heading_rad: np.ndarray
    speed_cm_s: np.ndarray
    freezing: np.ndarray  # bool
    startle: np.ndarray  # bool: running from a shock
    distance_cm: np.ndarray  # cumulative path (top) or wheel surface travel (head-fixed)
    wheel_counts: np.ndarray  # int64 cumulative encoder counts (zeros in the top view)
    fidget_phase: np.ndarray  # cycles; advances while the mouse is not freezing (tail, head)
    freeze_probability: np.ndarray  # the model's freezing probability at each frame
    freeze_bouts_s: np.ndarray  # (k, 2) start/stop of every true freezing bout, seconds
    view: str
    px_per_cm: float

    def __len__(self) -> int:
        return len(self.frame_times_s)

    def at_times(self, times_s: np.ndarray) -> BehaviourTrack:
        """The track sampled at other times (the last camera frame at or before each time)."""
        times = np.asarray(times_s, dtype=float)
        idx = np.clip(np.searchsorted(self.frame_times_s, times, side="right") - 1, 0, None)
        pick = {
            name: getattr(self, name)[idx]
            for name in (
                "x_px",
                "y_px",
                "heading_rad",
                "speed_cm_s",
                "startle",
                "distance_cm",
                "wheel_counts",
                "fidget_phase",
                "freeze_probability",
            )
        }
        freezing = _in_bouts(times, self.freeze_bouts_s)
        return replace(self, frame_times_s=times, freezing=freezing, **pick)

    def truth(self) -> dict[str, np.ndarray]:
        """Ground-truth arrays, one value per camera frame unless noted."""
        return {
            "frame_times_s": self.frame_times_s,
            "freezing": self.freezing,
            "position_px": np.stack([self.x_px, self.y_px], axis=1),
            "heading_rad": self.heading_rad,
            "speed_cm_s": self.speed_cm_s,
            "startle": self.startle,
            "wheel_counts": self.wheel_counts,
            "freeze_probability": self.freeze_probability,
            "freeze_bouts_s": self.freeze_bouts_s,
        }


# --------------------------------------------------------------------------- behaviour model


def _in_bouts(times: np.ndarray, bouts: np.ndarray) -> np.ndarray:
    if len(bouts) == 0:
        return np.zeros(len(times), bool)
    idx = np.searchsorted(bouts[:, 0], times, side="right") - 1
    ok = idx >= 0
    return ok & (times < bouts[np.maximum(idx, 0), 1])


@dataclass(frozen=True)
class _Event:
    t_s: float
    kind: str  # "cs" or "shock"
    p: float = 0.0
    stop_s: float = 0.0


def _probability_fn(
    learning: SessionLearning, schedule: OutputSchedule, cfg: MouseConfig
) -> Callable[[float], float]:
    """Freezing probability at time t: context baseline, raised during a feared sound."""
    windows = [
        (tr.start_s + cfg.cs_latency_s, tr.stop_s, cfg.max_cs_freezing * tr.strength)
        for tr in learning.trials
    ]
    rate = schedule.sample_rate_hz
    shock_ends = [s.stop_sample / rate for s in schedule.shocks]

    def p_of_t(t: float) -> float:
        ctx = float(learning.context_at(t)[0])
        p = cfg.baseline_freezing + cfg.context_freezing * ctx
        for start, stop, p_cs in windows:
            if start <= t < stop:
                p = max(p, p_cs)
        for end in shock_ends:
            if 0 <= t - end < 60.0:  # post-shock freezing fades over a minute
                p = max(p, 0.5 * math.exp(-(t - end) / 20.0))
        return min(0.95, max(0.01, p))

    return p_of_t


def _freeze_mean_s(p: float) -> float:
    return 1.5 + 5.0 * p


def _bouts(
    duration_s: float,
    p_of_t: Callable[[float], float],
    events: list[_Event],
    cfg: MouseConfig,
    rng: np.random.Generator,
) -> list[tuple[float, float, str]]:
    """Alternate mobile/freezing bouts (semi-Markov), cut by sound onsets and shocks."""
    bouts: list[tuple[float, float, str]] = []
    t, state, ev_i = 0.0, "mobile", 0
    while t < duration_s:
        p = p_of_t(t)
        mean_f = _freeze_mean_s(p)
        if state == "freeze":
            dur = max(cfg.min_freeze_s, rng.gamma(3.0, mean_f / 3.0))
        else:
            dur = max(0.3, rng.exponential(mean_f * (1.0 - p) / p))
        end = t + dur
        cut: tuple[float, str, float] | None = None  # (time, next state, resume time)
        while ev_i < len(events) and events[ev_i].t_s < end:
            ev = events[ev_i]
            ev_i += 1
            if ev.t_s < t:
                continue
            if ev.kind == "shock":
                cut = (ev.t_s, "startle", ev.stop_s + cfg.startle_s)
                break
            if state == "mobile" and rng.random() < ev.p:
                cut = (ev.t_s, "freeze", ev.t_s)
                break
        if cut is None:
            bouts.append((t, end, state))
            t, state = end, ("mobile" if state == "freeze" else "freeze")
            continue
        at, nxt, resume = cut
        if at > t:
            bouts.append((t, at, state))
        if nxt == "startle":
            bouts.append((at, resume, "startle"))
            t = resume
            state = "freeze" if rng.random() < p_of_t(t) else "mobile"
        else:
            t, state = at, "freeze"
    # a freezing bout cut short by a shock is not freezing
    return [
        (a, b, "mobile" if k == "freeze" and b - a < cfg.min_freeze_s else k) for a, b, k in bouts
    ]


def _ou(
    n: int, dt: np.ndarray, mean: np.ndarray, sd: float, tau: float, rng: np.random.Generator
) -> np.ndarray:
    """Ornstein-Uhlenbeck path around a (per-frame) mean."""
    z = rng.standard_normal(n)
    out = np.empty(n)
    x = float(mean[0]) if n else 0.0
    k = np.minimum(dt / tau, 1.0)
    kick = sd * np.sqrt(2.0 * k)
    for i in range(n):
        x += (mean[i] - x) * k[i] + kick[i] * z[i]
        out[i] = x
    return out


def _geometry(cfg: MouseConfig) -> dict[str, float]:
    """Pixel layout of the scene, shared by the behaviour model and the renderer."""
    w, h = cfg.width, cfg.height
    if cfg.view == "top":
        side = int(0.92 * min(w, h))
        x0, y0 = (w - side) // 2, (h - side) // 2
        wall = max(2, round(0.03 * side))
        return {
            "x0": x0,
            "y0": y0,
            "side": side,
            "wall": wall,
            "ppcm": (side - 2 * wall) / cfg.arena_cm,
        }
    ppcm = w / 25.0
    wheel_r = cfg.wheel_radius_cm * ppcm
    wheel_top = 0.62 * h
    return {
        "ppcm": ppcm,
        "wheel_r": wheel_r,
        "wheel_cx": 0.42 * w,
        "wheel_cy": wheel_top + wheel_r,
        "mouse_x": 0.42 * w,
        "mouse_y": wheel_top - 1.5 * ppcm,
    }


def simulate_behaviour(
    schedule: OutputSchedule,
    frame_times_s: np.ndarray,
    state: AnimalState,
    config: MouseConfig | None = None,
    seed: int = 0,
    params: LearningParams | None = None,
) -> BehaviourTrack:
    """The mouse's behaviour at every camera frame of a session, computed up front.

    ``state`` is the animal at the start of the session; learning within the session (e.g.
    conditioning trial by trial) shapes freezing as it goes.
    """
    cfg = config or MouseConfig()
    times = np.asarray(frame_times_s, dtype=float)
    n = len(times)
    rng = np.random.default_rng([seed, 0x4D4F555345])
    learning = run_learning(state, schedule, params)
    p_of_t = _probability_fn(learning, schedule, cfg)
    rate = schedule.sample_rate_hz
    events = [
        _Event(tr.start_s + cfg.cs_latency_s, "cs", p=cfg.max_cs_freezing * tr.strength)
        for tr in learning.trials
    ] + [
        _Event(s.start_sample / rate, "shock", stop_s=s.stop_sample / rate) for s in schedule.shocks
    ]
    events.sort(key=lambda e: (e.t_s, e.kind))
    end_s = max(schedule.duration_s, float(times[-1]) if n else 0.0) + 1.0
    bouts = _bouts(end_s, p_of_t, events, cfg, rng)
    starts = np.array([b[0] for b in bouts])
    kinds = np.array([b[2] for b in bouts])
    idx = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, None)
    kind = kinds[idx] if n else np.array([], dtype=str)
    freezing = kind == "freeze"
    startle = kind == "startle"
    freeze_bouts = np.array([(a, b) for a, b, k in bouts if k == "freeze"], dtype=float)
    freeze_bouts = freeze_bouts.reshape(-1, 2)

    first_dt = float(np.median(np.diff(times))) if n > 1 else 1 / 30
    dt = np.clip(np.diff(times, prepend=times[0] - first_dt) if n else times, 1e-4, 1.0)
    mean_speed = np.where(startle, cfg.startle_speed_cm_s, cfg.mean_speed_cm_s)
    speed = np.maximum(_ou(n, dt, mean_speed, 0.5 * cfg.mean_speed_cm_s, 1.5, rng), 1.0)
    speed[freezing] = 0.0
    turn = _ou(n, dt, np.zeros(n), 1.5, 0.5, rng)
    turn[freezing] = 0.0
    distance = np.cumsum(speed * dt)
    fidget = np.cumsum(np.where(freezing, 0.0, 0.8 * dt))
    geo = _geometry(cfg)
    ppcm = geo["ppcm"]
    if cfg.view == "top":
        x, y, heading = _walk(speed, turn, dt, geo, rng)
        counts = np.zeros(n, np.int64)
    else:
        x = np.full(n, geo["mouse_x"])
        y = np.full(n, geo["mouse_y"])
        heading = np.zeros(n)
        revs = distance / (2 * math.pi * cfg.wheel_radius_cm)
        counts = np.floor(revs * cfg.encoder_counts_per_rev).astype(np.int64)
    probability = np.array([p_of_t(float(t)) for t in times[:: max(1, n // 4000)]])
    probability = np.interp(times, times[:: max(1, n // 4000)], probability) if n else probability
    return BehaviourTrack(
        frame_times_s=times,
        x_px=x,
        y_px=y,
        heading_rad=heading,
        speed_cm_s=speed,
        freezing=freezing,
        startle=startle,
        distance_cm=distance,
        wheel_counts=counts,
        fidget_phase=fidget,
        freeze_probability=probability,
        freeze_bouts_s=freeze_bouts,
        view=cfg.view,
        px_per_cm=ppcm,
    )


def _walk(
    speed: np.ndarray,
    turn: np.ndarray,
    dt: np.ndarray,
    geo: dict[str, float],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrate the path in the arena, turning away from walls."""
    n = len(speed)
    ppcm = geo["ppcm"]
    margin = geo["wall"] + 3.5 * ppcm
    lo_x, hi_x = geo["x0"] + margin, geo["x0"] + geo["side"] - margin
    lo_y, hi_y = geo["y0"] + margin, geo["y0"] + geo["side"] - margin
    x = float(rng.uniform(lo_x, hi_x))
    y = float(rng.uniform(lo_y, hi_y))
    h = float(rng.uniform(-math.pi, math.pi))
    xs, ys, hs = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        h += turn[i] * dt[i]
        step = speed[i] * ppcm * dt[i]
        x += step * math.cos(h)
        y += step * math.sin(h)
        if x < lo_x or x > hi_x:
            x = min(max(x, lo_x), hi_x)
            h = math.pi - h
        if y < lo_y or y > hi_y:
            y = min(max(y, lo_y), hi_y)
            h = -h
        h = math.atan2(math.sin(h), math.cos(h))
        xs[i], ys[i], hs[i] = x, y, h
    return xs, ys, hs


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _FrameTable:
    """Per-frame rendering choices of a session, one array entry per frame."""

    pose: np.ndarray  # sprite pose: heading bin (top view) or gait phase bin (head-fixed)
    tail: np.ndarray  # tail sway bin
    y: np.ndarray  # anchor of the mouse sprite, pixels
    x: np.ndarray
    wheel_bin: np.ndarray  # background: rotation bin of the wheel (0 in the top view)
    cable_bin: np.ndarray  # cable sprite: swing bin
    gain: np.ndarray  # illumination gain (1.0 without flicker)


@dataclass(frozen=True)
class _Sprite:
    """A premultiplied patch: out = (img * inv_alpha + value_alpha) >> 8 (uint16 maths)."""

    dy: int  # offset of the patch's top-left from the anchor point
    dx: int
    inv_alpha: np.ndarray  # uint16, 256 - alpha
    value_alpha: np.ndarray  # uint16, value * alpha

    def paste(self, img: np.ndarray, ay: int, ax: int) -> None:
        h, w = self.inv_alpha.shape
        y0, x0 = ay + self.dy, ax + self.dx
        y1, x1 = min(y0 + h, img.shape[0]), min(x0 + w, img.shape[1])
        sy, sx = max(0, -y0), max(0, -x0)
        y0, x0 = max(y0, 0), max(x0, 0)
        if y1 <= y0 or x1 <= x0:
            return
        region = img[y0:y1, x0:x1]
        acc = region.astype(np.uint16)
        acc *= self.inv_alpha[sy : sy + y1 - y0, sx : sx + x1 - x0]
        acc += self.value_alpha[sy : sy + y1 - y0, sx : sx + x1 - x0]
        acc >>= 8
        region[...] = acc

    def box(self, ay: int, ax: int) -> Rect:
        h, w = self.inv_alpha.shape
        return (ax + self.dx, ay + self.dy, ax + self.dx + w, ay + self.dy + h)


def _make_sprite(alpha: np.ndarray, value: np.ndarray, cy: int, cx: int) -> _Sprite:
    """Crop to the non-transparent part; (cy, cx) is the anchor inside the grid."""
    a = np.clip(np.round(alpha * 256), 0, 256).astype(np.uint16)
    ys, xs = np.nonzero(a)
    if len(ys) == 0:
        ys, xs = np.array([cy]), np.array([cx])
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    a = a[y0:y1, x0:x1]
    v = np.clip(np.round(value[y0:y1, x0:x1]), 0, 255).astype(np.uint16)
    return _Sprite(int(y0 - cy), int(x0 - cx), (256 - a).astype(np.uint16), v * a)


def _ellipse_alpha(u: np.ndarray, v: np.ndarray, a: float, b: float, px: float) -> np.ndarray:
    """Anti-aliased filled ellipse (semi-axes a, b in the same units as u, v)."""
    r = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return np.clip(0.5 - (r - 1.0) * min(a, b) * px, 0.0, 1.0)


def _polyline_alpha(
    gx: np.ndarray, gy: np.ndarray, pts: np.ndarray, radius: np.ndarray | float
) -> np.ndarray:
    """Anti-aliased thick polyline (in pixels); radius per vertex or constant."""
    rad = np.broadcast_to(np.asarray(radius, dtype=float), (len(pts),))
    best = np.full(gx.shape, np.inf)
    for (x0, y0), (x1, y1), r0, r1 in zip(pts[:-1], pts[1:], rad[:-1], rad[1:], strict=True):
        vx, vy = x1 - x0, y1 - y0
        ll = vx * vx + vy * vy or 1e-9
        s = np.clip(((gx - x0) * vx + (gy - y0) * vy) / ll, 0, 1)
        d = np.hypot(gx - (x0 + s * vx), gy - (y0 + s * vy)) - (r0 + (r1 - r0) * s)
        np.minimum(best, d, out=best)
    return np.clip(0.5 - best, 0.0, 1.0)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    field = gaussian_filter(rng.standard_normal((h, w)), sigma, mode="wrap")
    return field / (field.std() or 1.0)


class MouseRenderer:
    """Renders frame ``i`` of a :class:`BehaviourTrack` as an 8-bit grey image.

    Backgrounds, sprites (cached per pose) and a bank of noise frames are prepared up front,
    so a frame costs a background copy, two small blends, a gain lookup and one add.
    """

    N_HEADINGS = 64
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
        self._sprites: dict[tuple[int, int], _Sprite] = {}
        self._cable_sprites: dict[int, _Sprite] = {}
        self._cable_rect = self._make_cable_rect()
        phases = self._rng.uniform(0, 2 * math.pi, 4)
        self._phases = phases
        if config.view == "top":
            self._backgrounds = [self._top_background()]
        else:
            self._backgrounds = self._wheel_backgrounds()
        self._noise_bank, self._noise_index = self._make_noise()
        self._frames = self._frame_table()
        self._luts: tuple[int, np.ndarray] | None = None  # (block, its frames' lookups)

    # ---- public

    def __len__(self) -> int:
        return len(self.track)

    def cable_region(self) -> Rect:
        """(x0, y0, x1, y1), end exclusive: where the cable moves. Mask it when scoring."""
        return self._cable_rect

    def illumination(self, i: int) -> float:
        """The illumination gain of frame ``i`` (1.0 without flicker)."""
        return float(self._frames.gain[i])

    def body_box(self, i: int) -> Rect:
        """Bounding box (x0, y0, x1, y1) of the mouse in frame ``i``."""
        sprite, ay, ax = self._mouse(i)
        return sprite.box(ay, ax)

    def render(self, i: int) -> np.ndarray:
        """Frame ``i`` as uint8 (height, width). Deterministic for a given seed."""
        cfg, table = self.config, self._frames
        buf = self._backgrounds[table.wheel_bin[i]].copy()
        sprite, ay, ax = self._mouse(i)
        sprite.paste(buf, ay, ax)
        if cfg.cable:
            x0, y0, _, _ = self._cable_rect
            self._cable_sprite(int(table.cable_bin[i])).paste(buf, y0, x0)
        if not cfg.noise and not cfg.flicker:
            return buf
        out = np.take(self._grey_lut(i), buf)
        if cfg.noise:
            k, oy, ox = self._noise_index[i % len(self._noise_index)]
            h, w = out.shape
            np.add(out, self._noise_bank[k, oy : oy + h, ox : ox + w], out=out)
        return out

    # ---- pieces

    def _grey_lut(self, i: int) -> np.ndarray:
        """Frame ``i``'s grey-level lookup (its gain; room left for the noise added after it).

        Made for a block of frames at once: per frame, the handful of small array operations
        cost more in Python than the lookup itself.
        """
        block = i // _LUT_BLOCK
        if self._luts is None or self._luts[0] != block:
            gains = self._frames.gain[block * _LUT_BLOCK : (block + 1) * _LUT_BLOCK]
            lut = _GREY_RAMP[np.newaxis, :] * gains[:, np.newaxis]
            np.rint(lut, out=lut)
            low, high = (_NOISE_MID, 255 - _NOISE_MID) if self.config.noise else (0, 255)
            np.maximum(lut, low, out=lut)
            np.minimum(lut, high, out=lut)
            if self.config.noise:
                lut -= _NOISE_MID
            self._luts = (block, lut.astype(np.uint8))
        return self._luts[1][i - block * _LUT_BLOCK]

    def _frame_table(self) -> _FrameTable:
        """Every frame's pose, position, wheel and cable bins and gain, computed at once."""
        cfg, tr, p = self.config, self.track, self._phases
        tau = 2 * math.pi
        tail = (tr.fidget_phase * self.N_TAIL).astype(np.int64) % self.N_TAIL
        if cfg.view == "top":
            frac = (tr.heading_rad % tau) / tau
            pose = np.rint(frac * self.N_HEADINGS).astype(np.int64) % self.N_HEADINGS
            wheel = np.zeros(len(tr), np.int64)
        else:
            stride_cm = 5.0
            pose = ((tr.distance_cm / stride_cm) % 1.0 * self.N_GAIT).astype(np.int64) % self.N_GAIT
            per_tread = cfg.encoder_counts_per_rev / self.WHEEL_TREADS
            counts = tr.wheel_counts.astype(np.int64)
            wheel = ((counts % per_tread) / per_tread * self.N_WHEEL).astype(
                np.int64
            ) % self.N_WHEEL
        t = tr.frame_times_s.astype(float)
        cable = 0.7 * np.sin(tau * 0.45 * t + p[2]) + 0.3 * np.sin(tau * 1.3 * t + p[3])
        gain = np.ones(len(tr))
        if cfg.flicker:
            swing = 0.6 * np.sin(tau * 0.37 * t + p[0]) + 0.4 * np.sin(tau * 2.3 * t + p[1])
            gain = 1.0 + cfg.flicker_amplitude * swing
        return _FrameTable(
            pose=pose,
            tail=tail,
            y=np.rint(tr.y_px).astype(np.int64),
            x=np.rint(tr.x_px).astype(np.int64),
            wheel_bin=wheel,
            cable_bin=np.minimum(
                self.N_CABLE - 1, ((cable + 1.0) / 2.0 * self.N_CABLE).astype(np.int64)
            ),
            gain=gain,
        )

    def _mouse(self, i: int) -> tuple[_Sprite, int, int]:
        table = self._frames
        key = (int(table.pose[i]), int(table.tail[i]))
        sprite = self._sprites.get(key)
        if sprite is None:
            sprite = self._sprites[key] = (
                self._top_sprite(*key) if self.config.view == "top" else self._side_sprite(*key)
            )
        return sprite, int(table.y[i]), int(table.x[i])

    def _make_cable_rect(self) -> Rect:
        w, h = self.config.width, self.config.height
        x0 = int(0.86 * w)
        return (x0, 0, min(w, x0 + max(8, int(0.12 * w))), max(8, int(0.75 * h)))

    def _cable_sprite(self, k: int) -> _Sprite:
        sprite = self._cable_sprites.get(k)
        if sprite is not None:
            return sprite
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
        alpha = _polyline_alpha(gx, gy, np.stack([px, py], 1), thick)
        value = 160 + 40 * np.clip(1 - np.abs(gx - np.interp(gy, py, px)) / thick, 0, 1)
        sprite = self._cable_sprites[k] = _make_sprite(alpha, value, 0, 0)
        return sprite

    def _top_sprite(self, pose: int, tail: int) -> _Sprite:
        ppcm = self._geo["ppcm"]
        heading = 2 * math.pi * pose / self.N_HEADINGS
        half = math.ceil(9.5 * ppcm) + 2
        gy, gx = np.mgrid[-half : half + 1, -half : half + 1].astype(float)
        c, s = math.cos(heading), math.sin(heading)
        u = (gx * c + gy * s) / ppcm  # cm along the body, nose positive
        v = (-gx * s + gy * c) / ppcm
        body = _ellipse_alpha(u, v, 2.6, 1.35, ppcm)
        head = _ellipse_alpha(u - 2.7, v, 1.35, 0.95, ppcm)
        ears = np.maximum(
            _ellipse_alpha(u - 2.2, v - 0.8, 0.45, 0.4, ppcm),
            _ellipse_alpha(u - 2.2, v + 0.8, 0.45, 0.4, ppcm),
        )
        sway = 0.9 * math.sin(2 * math.pi * tail / self.N_TAIL)
        ts = np.linspace(0, 1, 10)
        tail_u = -2.3 - 6.0 * ts
        tail_v = sway * ts**1.5
        pts = np.stack([tail_u * c - tail_v * s, tail_u * s + tail_v * c], 1) * ppcm
        tail_a = _polyline_alpha(gx, gy, pts, np.linspace(0.25, 0.08, 10) * ppcm)
        alpha = np.maximum.reduce([body, head, ears, 0.9 * tail_a])
        spine = np.exp(-((v / 0.6) ** 2)) * (np.abs(u) < 2.4)
        value = 34 + 22 * spine + 40 * (tail_a > body) * (tail_a > head)
        return _make_sprite(alpha, value, half, half)

    def _side_sprite(self, gait: int, tail: int) -> _Sprite:
        ppcm = self._geo["ppcm"]
        half_w, half_h = int(9 * ppcm), int(4.5 * ppcm)
        gy, gx = np.mgrid[-half_h : half_h + 1, -half_w : half_w + 1].astype(float)
        u, v = gx / ppcm, gy / ppcm  # cm; v down, the mouse faces +u
        phase = 2 * math.pi * gait / self.N_GAIT
        bob = 0.12 * math.sin(2 * phase)
        body = _ellipse_alpha(u + 0.3, v - bob, 3.0, 1.3, ppcm)
        head = _ellipse_alpha(u - 3.1, v + 0.2, 1.4, 0.95, ppcm)
        ear = _ellipse_alpha(u - 2.4, v + 0.9, 0.5, 0.45, ppcm)
        foot_v = 1.5  # the wheel's top surface, cm below the anchor
        legs = []
        for hip_u, off in ((2.0, 0.0), (1.6, math.pi), (-1.8, math.pi / 2), (-1.4, -math.pi / 2)):
            foot_u = hip_u + 0.8 * math.sin(phase + off)
            lift = 0.3 * max(0.0, math.cos(phase + off))
            pts = np.array([[hip_u, 0.6 + bob], [foot_u, foot_v - lift]]) * ppcm
            legs.append(_polyline_alpha(gx, gy, pts, 0.22 * ppcm))
        sway = 0.5 * math.sin(2 * math.pi * tail / self.N_TAIL)
        ts = np.linspace(0, 1, 10)
        tail_pts = np.stack([-3.0 - 5.0 * ts, 0.3 + 2.5 * ts**2 + sway * ts], 1) * ppcm
        tail_a = _polyline_alpha(gx, gy, tail_pts, np.linspace(0.25, 0.08, 10) * ppcm)
        alpha = np.maximum.reduce([body, head, ear, *legs, 0.9 * tail_a])
        value = 38 + 25 * np.exp(-(((v + 0.9 - bob) / 0.5) ** 2)) * (np.abs(u + 0.3) < 2.8)
        return _make_sprite(alpha, value, half_h, half_w)

    def _top_background(self) -> np.ndarray:
        cfg, g = self.config, self._geo
        h, w = cfg.height, cfg.width
        img = np.full((h, w), 45.0)
        img += 6 * _smooth_noise(self._rng, h, w, 3)
        x0, y0, side, wall = int(g["x0"]), int(g["y0"]), int(g["side"]), int(g["wall"])
        floor = np.full((side, side), 178.0)
        if cfg.bedding:
            floor += 10 * _smooth_noise(self._rng, side, side, max(1.0, side / 80))
            floor += 7 * _smooth_noise(self._rng, side, side, 0.7)
            chips = self._rng.random((side, side)) < 0.004
            floor += 25 * gaussian_filter(chips.astype(float), 1.0) / 0.16
        # walls: a bright rim with a shadow cast onto the floor
        yy, xx = np.mgrid[0:side, 0:side]
        edge = np.minimum.reduce([yy, xx, side - 1 - yy, side - 1 - xx]).astype(float)
        floor = np.where(edge < wall, 215 - 25 * edge / wall, floor)
        floor -= 35 * np.exp(-np.maximum(edge - wall, 0) / (0.8 * wall)) * (edge >= wall)
        img[y0 : y0 + side, x0 : x0 + side] = floor
        yy, xx = np.mgrid[0:h, 0:w]
        r2 = ((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2
        img *= 1.0 - 0.5 * r2  # vignetting
        return np.clip(np.round(img), 0, 255).astype(np.uint8)

    def _wheel_backgrounds(self) -> list[np.ndarray]:
        cfg, g = self.config, self._geo
        h, w = cfg.height, cfg.width
        yy, xx = np.mgrid[0:h, 0:w].astype(float)
        base = 60 + 25 * (1 - yy / h) + 5 * _smooth_noise(self._rng, h, w, 4)
        # the head post comes down from the top to the mouse's head
        ppcm = g["ppcm"]
        post = (np.abs(xx - (g["mouse_x"] + 3.0 * ppcm)) < 0.5 * ppcm) & (
            yy < g["mouse_y"] - 0.6 * ppcm
        )
        base = np.where(post, 150 + 20 * np.sin(xx / ppcm), base)
        dx, dy = xx - g["wheel_cx"], yy - g["wheel_cy"]
        r = np.hypot(dx, dy)
        theta = np.arctan2(dy, dx)
        rim = np.clip(g["wheel_r"] - r + 0.5, 0, 1)
        shade = 1 - 0.25 * np.clip((r / g["wheel_r"]), 0, 1) ** 4
        texture = 3 * _smooth_noise(self._rng, h, w, 1.0)
        out = []
        for k in range(self.N_WHEEL):
            rot = theta + 2 * math.pi * k / (self.N_WHEEL * self.WHEEL_TREADS)
            treads = 1 + 0.22 * (np.cos(self.WHEEL_TREADS * rot) > 0.3)
            wheel = (105 * treads + texture) * shade
            img = base * (1 - rim) + wheel * rim
            out.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
        return out

    def _make_noise(self) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        if not cfg.noise:
            return np.zeros((1, 1, 1), np.uint8), np.zeros((1, 3), np.int64)
        pad, banks = 32, 8
        z = self._rng.standard_normal((banks, cfg.height + pad, cfg.width + pad))
        bank = np.clip(np.round(_NOISE_MID + cfg.noise_sigma * z), 0, 2 * _NOISE_MID)
        index = np.stack(
            [
                self._rng.integers(0, banks, 4096),
                self._rng.integers(0, pad + 1, 4096),
                self._rng.integers(0, pad + 1, 4096),
            ],
            axis=1,
        )
        return bank.astype(np.uint8), index
