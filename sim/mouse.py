"""The simulated mouse's behaviour: freezing that follows the learning model, and everything else
a real mouse does that a freezing scorer must not mistake for freezing.

:func:`simulate_behaviour` computes the whole session up front (cheap), one value per camera
frame: the behaviour state, the body's path (top view) or the wheel's rotation (head-fixed), and
the small movements of a body that is not walking (breathing, head, whiskers, forepaws).
:class:`sim.mouse_video.MouseRenderer` draws it.

States (``BehaviourTrack.state``, codes in :data:`STATES`):

- ``mobile``: walking (an Ornstein-Uhlenbeck speed), head scanning a little;
- ``freeze``: no movement except breathing (the human definition of freezing; bouts of at least
  ``min_freeze_s``). The body breathes at ``breath_rate_hz``; the head and whiskers keep a
  breath-locked micro-movement far below what an observer sees;
- ``groom``: sitting hunched, forepaws stroking the face at ``groom_stroke_hz``, head bobbing;
- ``sniff``: sitting still, head scanning and nose bobbing, whisking and sniffing fast;
- ``startle``: running from a footshock; ``dart``: a short fast run at a tone's onset.

Grooming and sniffing are not freezing: the body stays put but the head moves. Bout lengths,
rates and amplitudes and where they come from are in ``docs/simulation.md``.

Frame conventions: the state of frame ``i`` holds from its time to the next frame's. Position,
heading and the head's pose move between frames ``i - 1`` and ``i`` unless both are still
(trapezoidal integration), so the frames of a freezing bout show exactly one pose (breathing
aside) and the frames just before and after it differ from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rig.program.schedule import OutputSchedule
from sim.learning import AnimalState, LearningParams, SessionLearning, run_learning

STATES = ("mobile", "freeze", "groom", "sniff", "startle", "dart")
MOBILE, FREEZE, GROOM, SNIFF, STARTLE, DART = range(len(STATES))
_STILL_BODY = (FREEZE, GROOM, SNIFF)  # states in which the body does not travel
RAMP_S = 0.3  # a walking mouse slows to a stop (and sets off again) over this long
# The head's micro-movement while freezing, locked to breathing: seen by head-mounted
# accelerometers, not on video (Bagur et al. 2021); kept in the truth, far below a pixel.
HEAD_BOB_MM = 0.05


class MouseConfig(BaseModel):
    """What the simulated behaviour camera sees and how the simulated mouse behaves."""

    model_config = ConfigDict(extra="forbid")

    # --- the scene and the camera
    view: Literal["top", "head_fixed"] = "top"
    width: int = Field(640, ge=32, le=4096)
    height: int = Field(480, ge=32, le=4096)
    floor: Literal["grid", "bedding"] = Field(
        "grid", description="top view: a shock-grid floor (IR lit) or an open field's bedding"
    )
    noise: bool = True
    noise_sigma: float = Field(2.5, ge=0, le=8, description="temporal pixel noise, grey levels")
    row_noise_sigma: float = Field(0.6, ge=0, le=4, description="row (line) noise, grey levels")
    flicker: bool = True
    flicker_amplitude: float = Field(0.015, ge=0, le=0.1, description="residual lamp flicker")
    mains_hz: Literal[50, 60] = 50
    drift: float = Field(0.04, ge=0, le=0.1, description="light lost as the illuminator warms")
    drift_tau_s: float = Field(600.0, gt=0)
    wander: float = Field(0.005, ge=0, le=0.03, description="slow random gain fluctuation (sd)")
    wander_tau_s: float = Field(20.0, gt=0)
    jpeg_quality: int | None = Field(
        None, ge=10, le=95, description="MJPEG compression of every frame; None: uncompressed"
    )
    cable: bool = True
    cable_amplitude: float = Field(1.0, ge=0, le=1, description="swing, fraction of the max")
    # --- the animal
    arena_cm: float = Field(30.0, gt=5)
    mean_speed_cm_s: float = Field(6.0, gt=0)
    startle_speed_cm_s: float = Field(30.0, gt=0)
    startle_s: float = Field(2.0, ge=0)
    min_freeze_s: float = Field(1.0, gt=0)
    cs_latency_s: float = Field(1.0, ge=0)
    max_cs_freezing: float = Field(0.9, ge=0, le=0.97)
    baseline_freezing: float = Field(0.03, ge=0, le=0.5)
    context_freezing: float = Field(0.35, ge=0, le=0.9)
    breath_rate_hz: float = Field(4.0, gt=0, le=15, description="breathing while freezing")
    breath_amplitude_mm: float = Field(0.2, ge=0, le=1, description="flank excursion per side")
    breath_shading: float = Field(0.04, ge=0, le=0.2, description="back brightness swing")
    sniff_probability: float = Field(0.7, ge=0, le=1, description="per walking bout")
    sniff_mean_s: float = Field(2.0, gt=0)
    sniff_rate_hz: float = Field(10.0, gt=0, le=20, description="sniffing and whisking")
    head_scan_deg: float = Field(12.0, ge=0, le=45, description="head yaw sd while sniffing")
    whisker_tremor_deg: float = Field(3.0, ge=0, le=20, description="whiskers while freezing")
    groom_probability: float = Field(0.2, ge=0, le=1, description="per walking bout, no fear")
    groom_mean_s: float = Field(6.0, gt=0)
    groom_stroke_hz: float = Field(6.0, gt=0, le=15)
    dart_probability: float = Field(0.1, ge=0, le=1, description="per tone onset")
    dart_speed_cm_s: float = Field(40.0, gt=0)
    dart_s: float = Field(0.5, gt=0, le=3)
    wheel_radius_cm: float = Field(7.5, gt=0)
    encoder_counts_per_rev: int = Field(1024, gt=0)


@dataclass(frozen=True)
class BehaviourTrack:
    """The mouse's behaviour at every camera frame (the simulation's ground truth)."""

    frame_times_s: np.ndarray
    state: np.ndarray  # int8 codes into STATES
    x_px: np.ndarray
    y_px: np.ndarray
    heading_rad: np.ndarray
    speed_cm_s: np.ndarray
    freezing: np.ndarray  # bool
    startle: np.ndarray  # bool: running from a shock
    distance_cm: np.ndarray  # cumulative path (top) or wheel surface travel (head-fixed)
    wheel_counts: np.ndarray  # int64 cumulative encoder counts (zeros in the top view)
    fidget_phase: np.ndarray  # cycles; the tail's sway, advancing while the mouse travels
    breath: np.ndarray  # 0-1: the flanks' excursion as a fraction of breath_amplitude_mm
    head_yaw_rad: np.ndarray  # the head's angle to the body
    head_ext_mm: np.ndarray  # the head's reach along its own axis (nose forward +)
    head_bob_mm: np.ndarray  # breath-locked micro-movement of the head while freezing
    whisk_rad: np.ndarray  # whisker angle from rest
    paw_phase: np.ndarray  # cycles of grooming strokes (forepaws shown while grooming)
    freeze_probability: np.ndarray  # the model's freezing probability at each frame
    freeze_bouts_s: np.ndarray  # (k, 2) start/stop of every true freezing bout, seconds
    view: str
    px_per_cm: float

    def __len__(self) -> int:
        return len(self.frame_times_s)

    @property
    def grooming(self) -> np.ndarray:
        return self.state == GROOM

    @property
    def sniffing(self) -> np.ndarray:
        return self.state == SNIFF

    @property
    def darting(self) -> np.ndarray:
        return self.state == DART

    def at_times(self, times_s: np.ndarray) -> BehaviourTrack:
        """The track sampled at other times (the last camera frame at or before each time)."""
        times = np.asarray(times_s, dtype=float)
        idx = np.clip(np.searchsorted(self.frame_times_s, times, side="right") - 1, 0, None)
        pick = {
            name: getattr(self, name)[idx]
            for name in (
                "state",
                "x_px",
                "y_px",
                "heading_rad",
                "speed_cm_s",
                "startle",
                "distance_cm",
                "wheel_counts",
                "fidget_phase",
                "breath",
                "head_yaw_rad",
                "head_ext_mm",
                "head_bob_mm",
                "whisk_rad",
                "paw_phase",
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
            "grooming": self.grooming,
            "sniffing": self.sniffing,
            "darting": self.darting,
            "startle": self.startle,
            "state": self.state,
            "position_px": np.stack([self.x_px, self.y_px], axis=1),
            "heading_rad": self.heading_rad,
            "speed_cm_s": self.speed_cm_s,
            "breath": self.breath,
            "wheel_counts": self.wheel_counts,
            "freeze_probability": self.freeze_probability,
            "freeze_bouts_s": self.freeze_bouts_s,
        }


# --------------------------------------------------------------------------- bouts


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


Bout = tuple[float, float, str]  # start, stop, state name


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
) -> list[Bout]:
    """Alternate mobile/freezing bouts (semi-Markov), cut by sound onsets and shocks."""
    bouts: list[Bout] = []
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
    return bouts


def _pauses(
    bouts: list[Bout], p_of_t: Callable[[float], float], cfg: MouseConfig, rng: np.random.Generator
) -> list[Bout]:
    """Walking bouts give way to grooming (at their start) and sniffing (at their end).

    Grooming is rarer the more the animal fears (fear suppresses it); sniffing is a pause to
    scan, often just before the mouse freezes, which is where a scorer's onset is tested.
    """
    out: list[Bout] = []
    for a, b, kind in bouts:
        if kind != "mobile" or b - a < 0.8:
            out.append((a, b, kind))
            continue
        room = b - a - 0.3  # keep some walking
        groom = 0.0
        if rng.random() < cfg.groom_probability * (1.0 - p_of_t(a)):
            groom = min(rng.gamma(3.0, cfg.groom_mean_s / 3.0), 0.8 * room)
            groom = groom if groom >= 1.5 else 0.0
        sniff = 0.0
        if rng.random() < cfg.sniff_probability:
            sniff = min(max(0.4, rng.gamma(2.0, cfg.sniff_mean_s / 2.0)), 0.6 * (room - groom))
            sniff = sniff if sniff >= 0.4 else 0.0
        if groom:
            out.append((a, a + groom, "groom"))
        out.append((a + groom, b - sniff, "mobile"))
        if sniff:
            out.append((b - sniff, b, "sniff"))
    return out


def _darts(
    bouts: list[Bout], onsets_s: list[float], cfg: MouseConfig, rng: np.random.Generator
) -> list[Bout]:
    """A dart (a short fast run) at some tone onsets, over whatever the mouse was doing."""
    for onset in onsets_s:
        if rng.random() >= cfg.dart_probability:
            continue
        a = onset + rng.uniform(0.1, 0.4)
        b = a + cfg.dart_s * rng.uniform(0.6, 1.4)
        if any(k == "startle" and s < b and a < e for s, e, k in bouts):
            continue
        cut: list[Bout] = []
        for s, e, k in bouts:
            if e <= a or s >= b:
                cut.append((s, e, k))
                continue
            if s < a:
                cut.append((s, a, k))
            if e > b:
                cut.append((b, e, k))
        cut.append((a, b, "dart"))
        bouts = sorted(cut)
    return bouts


def _finish(bouts: list[Bout], cfg: MouseConfig) -> list[Bout]:
    """Freezing shorter than the minimum is not freezing (a pause); merge neighbours alike."""
    out: list[Bout] = []
    for a, b, k in bouts:
        if b <= a:
            continue
        if k == "freeze" and b - a < cfg.min_freeze_s:
            k = "mobile"
        if out and out[-1][2] == k and abs(out[-1][1] - a) < 1e-9:
            out[-1] = (out[-1][0], b, k)
        else:
            out.append((a, b, k))
    return out


# --------------------------------------------------------------------------- movement


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


def _ramps(bouts: list[Bout], idx: np.ndarray, times: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Speed factor of a walking mouse: it slows down over the last RAMP_S before it stops
    (to freeze, groom or sniff) and speeds up over the first RAMP_S after it sets off."""
    if len(times) == 0:
        return np.ones(0)
    starts = np.array([b[0] for b in bouts])
    ends = np.array([b[1] for b in bouts])
    still = np.array([b[2] in ("freeze", "groom", "sniff") for b in bouts] + [False])
    prev_still = np.concatenate(([False], still[:-1]))[idx]
    next_still = still[idx + 1]
    down = np.where(next_still, np.clip((ends[idx] - times) / RAMP_S, 0.1, 1.0), 1.0)
    up = np.where(prev_still, np.clip((times - starts[idx]) / RAMP_S, 0.1, 1.0), 1.0)
    return np.where(kind == MOBILE, np.minimum(down, up), 1.0)


def _trapezoid(rate: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """Cumulative integral of a per-frame rate, moving between frames i-1 and i by the mean of
    their rates: zero between two frames whose rate is zero."""
    if len(rate) == 0:
        return rate.astype(float)
    prev = np.concatenate(([rate[0]], rate[:-1]))
    return np.cumsum(0.5 * (prev + rate) * dt)


def _hold_still(values: np.ndarray, still: np.ndarray) -> np.ndarray:
    """``values`` with every run of ``still`` frames held at the run's first value, and later
    values shifted so that nothing jumps when the run ends."""
    if not still.any():
        return values
    steps = np.diff(values, prepend=values[:1])
    both = still & np.concatenate(([False], still[:-1]))  # still at i-1 and at i
    steps[both] = 0.0
    return values[0] + np.cumsum(steps) - steps[0]


def _head_pose(
    state: np.ndarray, times: np.ndarray, dt: np.ndarray, cfg: MouseConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Head yaw (rad), reach (mm), whisker angle (rad) and grooming stroke phase per frame."""
    n = len(state)
    sniff, groom, freeze = state == SNIFF, state == GROOM, state == FREEZE
    scan_sd = np.where(sniff, math.radians(cfg.head_scan_deg), math.radians(4.0))
    scan_sd = np.where(groom, math.radians(5.0), scan_sd)
    yaw = _ou(n, dt, np.zeros(n), 1.0, 0.35, rng) * scan_sd
    stroke = np.cumsum(np.where(groom, cfg.groom_stroke_hz * dt, 0.0))
    bob = 2 * math.pi * np.cumsum(np.where(sniff, 2.0 * dt, 0.0))
    reach = np.where(sniff, 1.5 * np.sin(bob) + 0.5, 0.5)  # nose forward while walking
    reach = np.where(groom, -1.5 + 1.0 * np.sin(2 * math.pi * stroke), reach)
    yaw = _hold_still(yaw, freeze)
    reach = _hold_still(reach, freeze)
    whisk_hz = np.where(sniff, cfg.sniff_rate_hz, np.where(freeze, cfg.breath_rate_hz, 8.0))
    whisk_amp = np.where(sniff, 0.35, np.where(freeze, math.radians(cfg.whisker_tremor_deg), 0.2))
    whisk_amp = np.where(groom, 0.0, whisk_amp)
    whisk = whisk_amp * np.sin(2 * math.pi * np.cumsum(whisk_hz * dt) + rng.uniform(0, 6.3))
    return yaw, reach, whisk, stroke


def _breathing(
    state: np.ndarray, dt: np.ndarray, cfg: MouseConfig, rng: np.random.Generator
) -> np.ndarray:
    """Flank excursion (0-1) per frame."""
    n = len(state)
    rate = np.where(state == FREEZE, cfg.breath_rate_hz, 6.0)
    rate = np.where(state == SNIFF, cfg.sniff_rate_hz, rate)
    rate = np.where(np.isin(state, (STARTLE, DART)), 9.0, rate)
    wobble = _ou(n, dt, np.zeros(n), 0.1, 5.0, rng)  # rate drifts by ~10 %
    phase = np.cumsum(rate * (1.0 + wobble) * dt) + rng.uniform(0, 1)
    depth = np.where(state == FREEZE, 1.0, np.where(state == SNIFF, 0.4, 0.7))
    return depth * 0.5 * (1.0 - np.cos(2 * math.pi * phase))


# --------------------------------------------------------------------------- the session


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
    bouts = _pauses(bouts, p_of_t, cfg, rng)
    bouts = _finish(_darts(bouts, [tr.start_s for tr in learning.trials], cfg, rng), cfg)
    starts = np.array([b[0] for b in bouts])
    codes = np.array([STATES.index(b[2]) for b in bouts], np.int8)
    idx = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, None)
    kind = codes[idx] if n else np.zeros(0, np.int8)
    freezing = kind == FREEZE
    startle = kind == STARTLE
    freeze_bouts = np.array([(a, b) for a, b, k in bouts if k == "freeze"], dtype=float)
    freeze_bouts = freeze_bouts.reshape(-1, 2)

    first_dt = float(np.median(np.diff(times))) if n > 1 else 1 / 30
    dt = np.clip(np.diff(times, prepend=times[0] - first_dt) if n else times, 1e-4, 1.0)
    speed = np.maximum(
        _ou(n, dt, np.full(n, cfg.mean_speed_cm_s), 0.5 * cfg.mean_speed_cm_s, 1.5, rng), 1.0
    )
    speed *= _ramps(bouts, idx, times, kind)
    # a shock or a dart sets the mouse running at once
    burst = np.select(
        [kind == STARTLE, kind == DART], [cfg.startle_speed_cm_s, cfg.dart_speed_cm_s], 0.0
    )
    speed = np.where(burst > 0, burst * (1.0 + 0.15 * rng.standard_normal(n)), speed)
    still_body = np.isin(kind, _STILL_BODY)
    speed[still_body] = 0.0
    turn = _ou(n, dt, np.zeros(n), 1.5, 0.5, rng)
    turn[still_body] = 0.0
    travels = ~still_body
    distance = _trapezoid(speed, dt)
    fidget = _trapezoid(np.where(travels, 0.8, 0.0), dt)
    yaw, reach, whisk, stroke = _head_pose(kind, times, dt, cfg, rng)
    breath = _breathing(kind, dt, cfg, rng)
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
    step = max(1, n // 4000)
    probability = np.array([p_of_t(float(t)) for t in times[::step]])
    probability = np.interp(times, times[::step], probability) if n else probability
    return BehaviourTrack(
        frame_times_s=times,
        state=kind,
        x_px=x,
        y_px=y,
        heading_rad=heading,
        speed_cm_s=speed,
        freezing=freezing,
        startle=startle,
        distance_cm=distance,
        wheel_counts=counts,
        fidget_phase=fidget,
        breath=breath,
        head_yaw_rad=yaw,
        head_ext_mm=reach,
        head_bob_mm=HEAD_BOB_MM * breath * freezing,
        whisk_rad=whisk,
        paw_phase=stroke,
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
    """Integrate the path in the arena (trapezoidal steps), turning away from walls."""
    n = len(speed)
    ppcm = geo["ppcm"]
    margin = geo["wall"] + 3.5 * ppcm
    lo_x, hi_x = geo["x0"] + margin, geo["x0"] + geo["side"] - margin
    lo_y, hi_y = geo["y0"] + margin, geo["y0"] + geo["side"] - margin
    x = float(rng.uniform(lo_x, hi_x))
    y = float(rng.uniform(lo_y, hi_y))
    h = float(rng.uniform(-math.pi, math.pi))
    xs, ys, hs = np.empty(n), np.empty(n), np.empty(n)
    prev_v = float(speed[0]) if n else 0.0
    prev_w = float(turn[0]) if n else 0.0
    for i in range(n):
        v, w = float(speed[i]), float(turn[i])
        h += 0.5 * (prev_w + w) * dt[i]
        step = 0.5 * (prev_v + v) * ppcm * dt[i]
        prev_v, prev_w = v, w
        if step:
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
