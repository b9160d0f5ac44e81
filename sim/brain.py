"""The simulated brain: a field of view of neurons answering tone, shock and running.

:func:`simulate_activity` draws spikes and GCaMP-like calcium traces for every imaging frame,
with five populations:

* ``cs_plus``: tuned to the cue the animal learned as dangerous; their tone response grows
  with its learned strength;
* ``cs_minus``: tuned to the session's other sound;
* ``shock``: answer the footshock, and, once the animal has learned, the CS+ too. They are the
  hubs: their activity drives every CS+ neuron with a coupling that scales with the learned
  strength of the CS+ (zero in a naive animal, weakened by extinction);
* ``locomotion``: follow running speed, silent while freezing;
* ``unrelated``: spontaneous activity with slow modulation.

:class:`TwoPhotonRenderer` draws frame ``i`` as a uint16 image: soft cell bodies with a
nuclear shadow, a static background with blood vessels, neuropil following population
activity, shot and read noise, and optional slow rigid motion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.ndimage import gaussian_filter
from scipy.signal import lfilter
from scipy.sparse import csr_matrix

from rig.schedule import OutputSchedule
from sim.learning import (
    AnimalState,
    LearningParams,
    SessionLearning,
    generalisation,
    run_learning,
)
from sim.mouse import BehaviourTrack, _polyline_alpha

POPULATIONS = ("cs_plus", "cs_minus", "shock", "locomotion", "unrelated")
"""Population names; ``population_code`` in the truth indexes this tuple."""

_TUNING = LearningParams(generalisation_octaves=0.4)  # neurons are tuned more sharply


class BrainConfig(BaseModel):
    """What the simulated microscope sees."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(512, ge=16, le=4096)
    height: int = Field(512, ge=16, le=4096)
    neurons: int = Field(60, ge=1, le=2000)
    frac_cs_plus: float = Field(0.2, ge=0, le=1)
    frac_cs_minus: float = Field(0.15, ge=0, le=1)
    frac_shock: float = Field(0.15, ge=0, le=1)
    frac_locomotion: float = Field(0.15, ge=0, le=1)
    neuron_radius_px: float | None = Field(None, gt=0, description="default: 1.4% of the size")
    baseline_rate_hz: float = Field(0.3, ge=0)
    tau_rise_s: float = Field(0.05, gt=0)
    tau_decay_s: tuple[float, float] = (0.5, 1.0)
    dff_per_spike: tuple[float, float] = (0.3, 0.8)
    coupling_gain: float = Field(1.0, ge=0)
    neuron_photons: float = Field(12.0, gt=0, description="resting brightness of a cell")
    background_photons: float = Field(4.0, ge=0)
    neuropil: float = Field(0.3, ge=0, description="neuropil modulation by population activity")
    shot_noise: bool = True
    read_noise: float = Field(2.0, ge=0, description="counts")
    counts_per_photon: float = Field(10.0, gt=0)
    offset_counts: float = Field(200.0, ge=0)
    motion: bool = True
    motion_amplitude_px: float = Field(3.0, ge=0)

    @model_validator(mode="after")
    def _fractions(self) -> BrainConfig:
        total = self.frac_cs_plus + self.frac_cs_minus + self.frac_shock + self.frac_locomotion
        if total > 1.0 + 1e-9:
            raise ValueError(f"population fractions add up to {total:g} > 1")
        return self

    @property
    def radius_px(self) -> float:
        return self.neuron_radius_px or max(1.5, 0.014 * min(self.width, self.height))


@dataclass(frozen=True)
class ActivityTrack:
    """Neurons and their activity at every imaging frame (the simulation's ground truth)."""

    frame_times_s: np.ndarray
    populations: np.ndarray  # (N,) str, one of POPULATIONS
    spikes: np.ndarray  # (N, T) uint8 spike counts per frame
    dff: np.ndarray  # (N, T) float32 calcium dF/F
    coupling: np.ndarray  # (N, N) float32 mean coupling[post, pre] over the session
    coupling_scale: np.ndarray  # (T,) coupling of hubs to CS+ neurons at each frame
    centers_px: np.ndarray  # (N, 2) y, x in the image
    radii_px: np.ndarray  # (N,)
    brightness: np.ndarray  # (N,) resting photons at the cell's brightest pixel
    tau_decay_s: np.ndarray  # (N,)
    motion_px: np.ndarray  # (T, 2) int rigid shift dy, dx of the field of view
    cs_plus_cue: str  # the cue the cs_plus neurons are tuned to ("" if none)
    cs_minus_cue: str
    width: int
    height: int

    def __len__(self) -> int:
        return len(self.frame_times_s)

    @property
    def population_code(self) -> np.ndarray:
        """(N,) int8 index into :data:`POPULATIONS`."""
        return np.array([POPULATIONS.index(p) for p in self.populations], dtype=np.int8)

    def index(self, population: str) -> np.ndarray:
        """Indices of the neurons of one population."""
        return np.flatnonzero(self.populations == population)

    def footprint_weights(self, k: int) -> tuple[tuple[int, int], np.ndarray]:
        """(top, left) in the unshifted image and the weight patch (0..1) of neuron ``k``."""
        return _footprint(self.centers_px[k], self.radii_px[k])

    def label_image(self) -> np.ndarray:
        """(H, W) int16: 0 for background, k + 1 where neuron k is the strongest footprint."""
        labels = np.zeros((self.height, self.width), np.int16)
        best = np.zeros((self.height, self.width), np.float32)
        for k in range(len(self.populations)):
            (top, left), w = self.footprint_weights(k)
            sl, wsl = _clip_box(top, left, w.shape, (self.height, self.width))
            if sl is None:
                continue
            patch = w[wsl]
            take = (patch > 0.3) & (patch > best[sl])
            labels[sl][take] = k + 1
            best[sl][take] = patch[take]
        return labels

    def truth(self) -> dict[str, np.ndarray]:
        """Ground-truth arrays (per neuron, per frame, or per neuron pair)."""
        return {
            "frame_times_s": self.frame_times_s,
            "populations": self.populations.astype("U10"),
            "population_code": self.population_code,
            "footprints": self.label_image(),
            "centers_px": self.centers_px,
            "coupling": self.coupling,
            "coupling_scale": self.coupling_scale,
            "dff": self.dff,
            "spikes": self.spikes,
            "motion_px": self.motion_px,
        }


# --------------------------------------------------------------------------- activity model


def _footprint(center: np.ndarray, radius: float) -> tuple[tuple[int, int], np.ndarray]:
    half = math.ceil(1.6 * radius) + 1
    cy, cx = round(float(center[0])), round(float(center[1]))
    gy, gx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float32)
    r = np.hypot(gy + cy - center[0], gx + cx - center[1]) / radius
    body = np.clip((1.25 - r) / 0.35, 0, 1)  # soft edge
    nucleus = 1 - 0.55 * np.exp(-((r / 0.45) ** 2))  # GCaMP stays out of the nucleus
    return (cy - half, cx - half), (body * nucleus).astype(np.float32)


def _clip_box(
    top: int, left: int, shape: tuple[int, int], bounds: tuple[int, int]
) -> tuple[tuple[slice, slice] | None, tuple[slice, slice] | None]:
    h, w = shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, bounds[0]), min(left + w, bounds[1])
    if y1 <= y0 or x1 <= x0:
        return None, None
    return (slice(y0, y1), slice(x0, x1)), (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))


def _place(n: int, cfg: BrainConfig, rng: np.random.Generator) -> np.ndarray:
    r = cfg.radius_px
    margin = r + 1
    centers: list[tuple[float, float]] = []
    for _ in range(n):
        for _attempt in range(200):
            c = (rng.uniform(margin, cfg.height - margin), rng.uniform(margin, cfg.width - margin))
            if all((c[0] - a) ** 2 + (c[1] - b) ** 2 > (2.3 * r) ** 2 for a, b in centers):
                break
        centers.append(c)  # crowded field: accept an overlap rather than loop forever
    return np.array(centers, dtype=float).reshape(-1, 2)


def _assign(n: int, cfg: BrainConfig, rng: np.random.Generator) -> np.ndarray:
    counts = [
        round(n * cfg.frac_cs_plus),
        round(n * cfg.frac_cs_minus),
        round(n * cfg.frac_shock),
        round(n * cfg.frac_locomotion),
    ]
    while sum(counts) > n:
        counts[int(np.argmax(counts))] -= 1
    labels = [p for p, c in zip(POPULATIONS, counts, strict=False) for _ in range(c)]
    labels += ["unrelated"] * (n - len(labels))
    return rng.permutation(np.array(labels, dtype="U10"))


def _cues(learning: SessionLearning) -> tuple[str, str]:
    """The cue learned as dangerous, and the session's other sound."""
    cues = [tr.cue for tr in learning.trials]
    if not cues:
        return "", ""
    danger = learning.final.danger_cue()
    if danger is None or danger not in cues:
        named = [tr.cue for tr in learning.trials if tr.stimulus in ("cs_plus", "csplus", "cs+")]
        tones = sorted({c for c in cues if c.startswith("tone:")}, key=lambda c: -float(c[5:]))
        danger = named[0] if named else (tones[0] if tones else cues[0])
    others = [c for c in cues if c != danger]
    other = max(set(others), key=lambda c: (others.count(c), c)) if others else ""
    return danger, other


def _kernel_filter(spikes: np.ndarray, dt: float, tau_r: float, tau_d: np.ndarray) -> np.ndarray:
    """Convolve spike counts with a double exponential of peak 1 (rise tau_r, decay tau_d)."""
    out = np.empty(spikes.shape, dtype=np.float64)
    r = math.exp(-dt / tau_r)
    for k, td in enumerate(tau_d):
        d = math.exp(-dt / td)
        t_peak = tau_r * td / (td - tau_r) * math.log(td / tau_r)
        peak = math.exp(-t_peak / td) - math.exp(-t_peak / tau_r)
        # evaluated half a frame after the spike, so a spike shows in its own frame
        slow = lfilter([math.exp(-0.5 * dt / td)], [1, -d], spikes[k])
        fast = lfilter([math.exp(-0.5 * dt / tau_r)], [1, -r], spikes[k])
        out[k] = (slow - fast) / peak
    return out


def _stimulus_drives(
    learning: SessionLearning, times: np.ndarray
) -> list[tuple[str, float, np.ndarray, np.ndarray]]:
    """Per trial: cue, strength at onset, onset transient and sustained indicator per frame."""
    drives = []
    for tr in learning.trials:
        on = (times >= tr.start_s) & (times < tr.stop_s)
        if not on.any():
            continue
        transient = np.where(on, np.exp(-np.clip(times - tr.start_s, 0, None) / 0.4), 0.0)
        drives.append((tr.cue, tr.strength, transient, on.astype(float)))
    return drives


def simulate_activity(
    schedule: OutputSchedule,
    frame_times_s: np.ndarray,
    behaviour_at_frames: BehaviourTrack | None,
    state: AnimalState,
    config: BrainConfig | None = None,
    seed: int = 0,
    params: LearningParams | None = None,
) -> ActivityTrack:
    """Spikes and calcium of every neuron at every imaging frame of a session.

    ``behaviour_at_frames`` is the mouse's behaviour (resampled at the imaging frame times
    here if it was computed at other times); None for no locomotion drive. ``state`` is the
    animal at the start of the session.
    """
    cfg = config or BrainConfig()
    times = np.asarray(frame_times_s, dtype=float)
    n, t_len = cfg.neurons, len(times)
    rng = np.random.default_rng([seed, 0x425241494E])
    dt = float(np.median(np.diff(times))) if t_len > 1 else 1 / 30
    learning = run_learning(state, schedule, params)
    danger, other = _cues(learning)
    pops = _assign(n, cfg, rng)
    centers = _place(n, cfg, rng)
    radii = cfg.radius_px * rng.uniform(0.85, 1.15, n)
    brightness = cfg.neuron_photons * rng.uniform(0.6, 1.4, n)
    tau_d = rng.uniform(*cfg.tau_decay_s, n)
    amp = rng.uniform(*cfg.dff_per_spike, n)
    tone_gain = rng.uniform(3.0, 8.0, n)  # Hz at a full response
    drive_w = rng.uniform(0.5, 1.5, n)  # weight of the population drive / coupling

    rates = np.full((n, t_len), cfg.baseline_rate_hz)
    drives = _stimulus_drives(learning, times)
    for k in range(n):
        rates[k] += _own_drive(pops[k], k, drives, danger, other, tone_gain, times)
    rates += _shock_drive(schedule, times, pops, drive_w)
    rates += _behaviour_drive(behaviour_at_frames, times, pops, drive_w)
    rates += _slow_drive(pops, times, dt, rng)
    hubs = np.flatnonzero(pops == "shock")
    plus = np.flatnonzero(pops == "cs_plus")
    rates[hubs] += _hub_events(times, dt, rng)[None, :] * drive_w[hubs, None]

    spikes = np.zeros((n, t_len), np.uint8)
    spikes[hubs] = rng.poisson(np.clip(rates[hubs], 0, None) * dt).clip(0, 255)
    scale = cfg.coupling_gain * learning.strength_at(times, danger) if danger else np.zeros(t_len)
    if len(hubs) and len(plus):
        # hubs drive CS+ neurons through their (smoothed) spike rate
        hub_rate = spikes[hubs].astype(float) * drive_w[hubs, None] / dt
        hub_rate = gaussian_filter(hub_rate.mean(axis=0), 0.1 / dt) if t_len else hub_rate[0]
        rates[plus] += 0.8 * scale[None, :] * drive_w[plus, None] * hub_rate[None, :]
    rest = np.setdiff1d(np.arange(n), hubs)
    spikes[rest] = rng.poisson(np.clip(rates[rest], 0, None) * dt).clip(0, 255)
    calcium = _kernel_filter(spikes.astype(float), dt, cfg.tau_rise_s, tau_d)
    dff = (calcium * amp[:, None]).astype(np.float32)

    coupling = np.zeros((n, n), np.float32)
    if len(hubs) and len(plus):
        mean_scale = float(scale.mean()) if t_len else 0.0
        w = 0.8 * mean_scale * np.outer(drive_w[plus], drive_w[hubs]) / len(hubs)
        coupling[np.ix_(plus, hubs)] = w
    return ActivityTrack(
        frame_times_s=times,
        populations=pops,
        spikes=spikes,
        dff=dff,
        coupling=coupling,
        coupling_scale=scale.astype(np.float32),
        centers_px=centers,
        radii_px=radii,
        brightness=brightness,
        tau_decay_s=tau_d,
        motion_px=_motion(cfg, times, behaviour_at_frames, rng),
        cs_plus_cue=danger,
        cs_minus_cue=other,
        width=cfg.width,
        height=cfg.height,
    )


def _own_drive(
    pop: str,
    k: int,
    drives: list[tuple[str, float, np.ndarray, np.ndarray]],
    danger: str,
    other: str,
    tone_gain: np.ndarray,
    times: np.ndarray,
) -> np.ndarray:
    """Tone-evoked rate of neuron ``k`` (Hz over baseline)."""
    out = np.zeros(len(times))
    for cue, strength, transient, sustained in drives:
        shape = 1.5 * transient + 0.5 * sustained
        if pop == "cs_plus" and danger:
            out += tone_gain[k] * generalisation(cue, danger, _TUNING) * (0.5 + strength) * shape
        elif pop == "cs_minus" and other:
            out += tone_gain[k] * generalisation(cue, other, _TUNING) * shape
        elif pop == "shock" and danger:
            # after learning the hubs answer the CS+ as if it predicted the shock
            out += 0.6 * tone_gain[k] * generalisation(cue, danger, _TUNING) * strength * sustained
    return out


def _shock_drive(
    schedule: OutputSchedule, times: np.ndarray, pops: np.ndarray, weight: np.ndarray
) -> np.ndarray:
    out = np.zeros((len(pops), len(times)))
    rate = schedule.sample_rate_hz
    shock = np.zeros(len(times))
    for sh in schedule.shocks:
        t0, t1 = sh.start_sample / rate, sh.stop_sample / rate
        after = times - t1
        shock += np.where((times >= t0) & (times < t1), 25.0, 0.0)
        shock += np.where(after >= 0, 25.0 * np.exp(-np.clip(after, 0, None) / 0.7), 0.0)
    hubs = pops == "shock"
    out[hubs] = weight[hubs, None] * shock[None, :]
    # the whole network is stirred a little by a footshock
    out[~hubs] = 0.1 * shock[None, :]
    return out


def _behaviour_drive(
    behaviour: BehaviourTrack | None, times: np.ndarray, pops: np.ndarray, weight: np.ndarray
) -> np.ndarray:
    out = np.zeros((len(pops), len(times)))
    if behaviour is None or len(behaviour) == 0:
        return out
    if len(behaviour) != len(times) or not np.array_equal(behaviour.frame_times_s, times):
        behaviour = behaviour.at_times(times)
    speed = np.where(behaviour.freezing, 0.0, behaviour.speed_cm_s)
    loco = pops == "locomotion"
    out[loco] = 0.4 * weight[loco, None] * speed[None, :]
    return out


def _slow_drive(
    pops: np.ndarray, times: np.ndarray, dt: float, rng: np.random.Generator
) -> np.ndarray:
    """Slow private modulation of the unrelated neurons (an up-state now and then)."""
    out = np.zeros((len(pops), len(times)))
    if len(times) == 0:
        return out
    for k in np.flatnonzero(pops == "unrelated"):
        z = gaussian_filter(rng.standard_normal(len(times)), 3.0 / dt)
        out[k] = 2.0 * np.clip(z / (z.std() or 1.0), 0, None)
    return out


def _hub_events(times: np.ndarray, dt: float, rng: np.random.Generator) -> np.ndarray:
    """Shared spontaneous bursts of the hub population (rate over baseline, Hz)."""
    t_len = len(times)
    if t_len == 0:
        return np.zeros(0)
    starts = rng.random(t_len) < 0.15 * dt
    width = max(1, round(0.4 / dt))
    on = np.convolve(starts.astype(float), np.ones(width))[:t_len] > 0
    return 10.0 * on


def _motion(
    cfg: BrainConfig,
    times: np.ndarray,
    behaviour: BehaviourTrack | None,
    rng: np.random.Generator,
) -> np.ndarray:
    t_len = len(times)
    if not cfg.motion or cfg.motion_amplitude_px == 0 or t_len == 0:
        return np.zeros((t_len, 2), np.int16)
    a = cfg.motion_amplitude_px
    phase = rng.uniform(0, 2 * math.pi, 2)
    freqs = (0.011, 0.017)
    drift = np.stack(
        [0.6 * np.sin(2 * math.pi * f * times + p) for f, p in zip(freqs, phase, strict=True)], 1
    )
    wobble = rng.standard_normal((t_len, 2))
    dt = float(np.median(np.diff(times))) if t_len > 1 else 1 / 30
    wobble = gaussian_filter(wobble, (2.0 / dt, 0)) * math.sqrt(2.0 / dt) * 0.3
    shift = a * (drift + wobble)
    if behaviour is not None and len(behaviour):
        run = behaviour.at_times(times).speed_cm_s > 15  # brain moves when the mouse runs hard
        shift[run] += rng.choice([-1.0, 1.0], (int(run.sum()), 2))
    return np.clip(np.round(shift), -math.ceil(a) - 1, math.ceil(a) + 1).astype(np.int16)


# --------------------------------------------------------------------------- rendering


class TwoPhotonRenderer:
    """Renders frame ``i`` of an :class:`ActivityTrack` as a uint16 two-photon image.

    The static image (background, vessels, resting cells) is built once on a canvas padded
    for motion; a frame adds the active cells' patches and the neuropil, crops the shifted
    window and adds shot and read noise from a bank of Gaussian frames.
    """

    def __init__(self, config: BrainConfig, activity: ActivityTrack, seed: int = 0) -> None:
        self.config = config
        self.activity = activity
        if (activity.height, activity.width) != (config.height, config.width):
            raise ValueError("activity was simulated for another frame size")
        rng = np.random.default_rng([seed, 0x3250])
        self._pad = int(np.abs(activity.motion_px).max()) if len(activity) else 0
        h, w, p = config.height, config.width, self._pad
        self._static = self._background(rng, h + 2 * p, w + 2 * p)
        # Every neuron's footprint as a column of one sparse (covered pixels x neurons) matrix: a
        # frame's cells are then one sparse product, not one array operation per neuron, and
        # only the pixels some cell covers are touched.
        rows, cols, values = [], [], []
        pixel = np.arange(self._static.size).reshape(self._static.shape)
        for k in range(config.neurons):
            (top, left), weights = activity.footprint_weights(k)
            sl, wsl = _clip_box(top + p, left + p, weights.shape, self._static.shape)
            if sl is None:
                continue
            patch = weights[wsl] * np.float32(activity.brightness[k])
            self._static[sl] += patch
            rows.append(pixel[sl].ravel())
            cols.append(np.full(patch.size, k))
            values.append(patch.ravel())
        pixels = np.concatenate(rows) if rows else np.empty(0, np.int64)
        self._covered = np.unique(pixels)
        self._footprints = csr_matrix(
            (
                np.concatenate(values) if values else np.empty(0, np.float32),
                (
                    np.searchsorted(self._covered, pixels),
                    np.concatenate(cols) if cols else np.empty(0, np.int64),
                ),
            ),
            shape=(len(self._covered), config.neurons),
            dtype=np.float32,
        )
        smooth = gaussian_filter(rng.standard_normal(self._static.shape), max(2.0, w / 40))
        smooth = np.clip(1 + 0.5 * smooth / (smooth.std() or 1), 0, None)
        self._neuropil = (config.neuropil * config.background_photons * smooth).astype(np.float32)
        self._np_trace = _neuropil_trace(activity.dff)
        self._bank, self._index = self._noise(rng)

    def __len__(self) -> int:
        return len(self.activity)

    def render(self, i: int) -> np.ndarray:
        """Frame ``i`` as uint16 (height, width). Deterministic for a given seed."""
        return self.render_frames([i])[0]

    def render_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Frames ``indices`` as uint16 (n, height, width), each exactly as :meth:`render`.

        One array operation per step for all of them (a step brings a few frames): the
        per-call overhead of numpy and the sparse product is what a small frame costs.
        """
        cfg, act = self.config, self.activity
        ks = np.asarray(indices, np.int64)
        n, p, h, w = len(ks), self._pad, cfg.height, cfg.width
        if n == 0:
            return np.empty((0, h, w), np.uint16)
        # neuropil rides on population activity; the trace is >= 0, so photons stay >= 0
        buf = self._neuropil * self._np_trace[ks][:, None, None]
        buf += self._static
        dff = act.dff[:, ks]
        active = np.where(dff > 0.01, dff, np.float32(0))  # faint transients stay in the noise
        buf.reshape(n, -1)[:, self._covered] += (self._footprints @ active).T
        photons = np.empty((n, h, w), np.float32)
        for j, (dy, dx) in enumerate(act.motion_px[ks].tolist()):
            photons[j] = buf[j, p + dy : p + dy + h, p + dx : p + dx + w]
        g = np.float32(cfg.counts_per_photon)
        out = photons * g
        if cfg.shot_noise or cfg.read_noise > 0:
            var = photons * (g * g) if cfg.shot_noise else np.zeros_like(photons)
            var += np.float32(cfg.read_noise**2)
            np.sqrt(var, out=var)
            for j, (k, oy, ox) in enumerate(self._index[ks % len(self._index)].tolist()):
                var[j] *= self._bank[k, oy : oy + h, ox : ox + w]
            out += var
        out += np.float32(cfg.offset_counts)
        np.minimum(out, 65535, out=out)  # two ufuncs: np.clip costs as much again per frame
        np.maximum(out, 0, out=out)
        return out.astype(np.uint16)

    def _background(self, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
        cfg = self.config
        texture = gaussian_filter(rng.standard_normal((h, w)), max(1.0, w / 60))
        img = cfg.background_photons * (1 + 0.3 * texture / (texture.std() or 1))
        gy, gx = np.mgrid[0:h, 0:w].astype(float)
        for _ in range(3):  # blood vessels: dark, gently curving bands
            x0, x1 = rng.uniform(0, w, 2)
            ys = np.linspace(-0.1 * h, 1.1 * h, 12)
            xs = np.linspace(x0, x1, 12) + gaussian_filter(rng.normal(0, w / 20, 12), 2)
            width = rng.uniform(0.006, 0.015) * w + 0.5
            vessel = _polyline_alpha(gx, gy, np.stack([xs, ys], 1), width)
            img *= 1 - 0.7 * vessel
        return np.clip(img, 0, None).astype(np.float32)

    def _noise(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        pad, banks = 16, 6
        bank = rng.standard_normal((banks, cfg.height + pad, cfg.width + pad), np.float32)
        index = np.stack(
            [
                rng.integers(0, banks, 4096),
                rng.integers(0, pad + 1, 4096),
                rng.integers(0, pad + 1, 4096),
            ],
            axis=1,
        )
        return bank, index


def _neuropil_trace(dff: np.ndarray) -> np.ndarray:
    """Neuropil follows the smoothed mean activity of the population."""
    if dff.size == 0:
        return np.zeros(dff.shape[1] if dff.ndim == 2 else 0, np.float32)
    mean = dff.mean(axis=0)
    trace = 1.0 + 0.2 * gaussian_filter(mean - mean.mean(), 3.0) / max(float(mean.std()), 1e-6)
    return np.clip(trace, 0.0, None).astype(np.float32)
