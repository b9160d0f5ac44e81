"""The simulated brain: the animal's neurons answering tone, shock, fear and running.

The cells belong to the animal (:mod:`sim.neurons`): the same neurons, at the same places in
the tissue, on every day; the field of view is shifted by a small rigid offset from day to day.
:func:`simulate_activity` draws spikes and GCaMP-like calcium traces for every imaging frame of
one session, with six populations:

* ``cs_plus``: tuned to the cue the animal learned as dangerous; their tone response grows
  with its learned strength;
* ``cs_minus``: tuned to the session's other sound;
* ``shock``: answer the footshock, and, once the animal has learned, the CS+ too. They become
  the hubs: each is wired to about half of the CS+ and fear neurons, and that wiring is scaled
  by the learned strength of the CS+ (zero in a naive animal, strong at recall, weakened by
  extinction). Before learning they are not linked to each other or to anyone in particular;
* ``fear``: the conditioned-response population, active while the animal freezes, most of all
  during the CS+;
* ``locomotion``: follow running speed, silent while freezing;
* ``unrelated``: spontaneous activity with slow modulation.

Every neuron also has a weak, sparse, constant background wiring, and a small footshock kick
(most neurons of a real field of view are stirred a little by a shock), so "responsive" is a
decision to be made, not read off. :class:`TwoPhotonRenderer` draws frame ``i`` as a uint16
image: soft cell bodies with a nuclear shadow, the animal's own background with blood vessels,
neuropil following population activity, shot and read noise at a photon budget chosen to give
the noise level of published GCaMP6 recordings (``docs/simulation.md``), and slow rigid motion.
``clean: true`` keeps the activity and turns the noise, neuropil and motion off.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.ndimage import gaussian_filter, gaussian_filter1d
from scipy.signal import lfilter
from scipy.sparse import csr_matrix

from rig.program.schedule import OutputSchedule
from sim.drawing import polyline_alpha
from sim.learning import (
    AnimalState,
    LearningParams,
    SessionLearning,
    generalisation,
    run_learning,
)
from sim.mouse import BehaviourTrack
from sim.neurons import (
    POPULATIONS,
    REFERENCE_PIXELS,
    FieldGeometry,
    NeuronField,
    day_offset_px,
    draw_field,
)

__all__ = ["POPULATIONS", "ActivityTrack", "BrainConfig", "TwoPhotonRenderer", "simulate_activity"]

_TUNING = LearningParams(generalisation_octaves=0.4)  # neurons are tuned more sharply
SHOCK_RATE_HZ = 25.0  # a hub's rate during the footshock (times its drive weight)
HUB_BURST_HZ = 10.0  # rate over baseline during a hub's spontaneous burst
HUB_BURST_S = 0.4
COUPLING_SMOOTH_S = 0.1  # a presynaptic spike raises the postsynaptic rate for about this long
# Speed tuning of the locomotion neurons: rate = w SPEED_RATE_HZ s / (s + SPEED_HALF_CM_S), 2.4 w Hz
# at the walking mean of 6 cm/s (the linear 0.4 w s it replaces), saturating towards 6.4 w Hz.
SPEED_RATE_HZ = 6.4
SPEED_HALF_CM_S = 10.0


class BrainConfig(BaseModel):
    """What the simulated microscope sees."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(512, ge=16, le=4096)
    height: int = Field(512, ge=16, le=4096)
    neurons: int = Field(60, ge=1, le=2000)
    frac_cs_plus: float = Field(0.2, ge=0, le=1)
    frac_cs_minus: float = Field(0.15, ge=0, le=1)
    frac_shock: float = Field(0.15, ge=0, le=1)
    frac_locomotion: float = Field(0.1, ge=0, le=1)
    frac_fear: float = Field(0.1, ge=0, le=1, description="the conditioned-response population")
    neuron_radius_px: float | None = Field(None, gt=0, description="default: 1.4% of the size")
    baseline_rate_hz: float = Field(0.3, ge=0)
    tau_rise_s: float = Field(0.05, gt=0)
    tau_decay_s: tuple[float, float] = (0.5, 1.0)
    dff_per_spike: tuple[float, float] = (0.1, 0.25)
    coupling_gain: float = Field(1.0, ge=0)
    hub_to_cs_plus: float = Field(0.6, ge=0, le=1, description="P(hub wired to a CS+ neuron)")
    hub_to_fear: float = Field(0.5, ge=0, le=1, description="P(hub wired to a fear neuron)")
    background_density: float = Field(0.0, ge=0, le=1, description="constant weak wiring")
    hub_burst_rate_hz: float = Field(0.2, ge=0, description="spontaneous bursts of each hub")
    neuron_photons: float = Field(
        0.08, gt=0, description="resting photons per frame at a cell's brightest pixel (512x512)"
    )
    background_photons: float = Field(0.04, ge=0, description="per pixel and frame (512x512)")
    neuropil: float = Field(0.3, ge=0, description="neuropil modulation by population activity")
    shot_noise: bool = True
    read_noise: float = Field(2.0, ge=0, description="counts")
    counts_per_photon: float = Field(10.0, gt=0)
    offset_counts: float = Field(200.0, ge=0)
    motion: bool = True
    motion_amplitude_px: float = Field(3.0, ge=0)
    day_shift_px: float | None = Field(
        None, ge=0, description="largest rigid shift between days; default: 2% of the size"
    )
    clean: bool = Field(False, description="no shot/read noise, neuropil or motion")

    @model_validator(mode="after")
    def _fractions(self) -> BrainConfig:
        total = (
            self.frac_cs_plus
            + self.frac_cs_minus
            + self.frac_shock
            + self.frac_locomotion
            + self.frac_fear
        )
        if total > 1.0 + 1e-9:
            raise ValueError(f"population fractions add up to {total:g} > 1")
        return self

    @property
    def radius_px(self) -> float:
        return self.neuron_radius_px or max(1.5, 0.014 * min(self.width, self.height))

    @property
    def shift_px(self) -> float:
        """The largest rigid shift of the field of view between days."""
        if self.day_shift_px is not None:
            return self.day_shift_px
        return 0.02 * min(self.width, self.height)

    @property
    def photon_scale(self) -> float:
        """Photons per pixel relative to a 512x512 image of the same field of view."""
        return REFERENCE_PIXELS / (self.width * self.height)

    def geometry(self) -> FieldGeometry:
        return FieldGeometry(
            width=self.width,
            height=self.height,
            neurons=self.neurons,
            radius_px=self.radius_px,
            fractions=(
                self.frac_cs_plus,
                self.frac_cs_minus,
                self.frac_shock,
                self.frac_locomotion,
                self.frac_fear,
            ),
            hub_to_cs_plus=self.hub_to_cs_plus,
            hub_to_fear=self.hub_to_fear,
            background_density=self.background_density,
            tau_decay_s=self.tau_decay_s,
            dff_per_spike=self.dff_per_spike,
        )


@dataclass(frozen=True)
class ActivityTrack:
    """The animal's neurons and their activity at every imaging frame of one session (the
    simulation's ground truth)."""

    frame_times_s: np.ndarray
    field: NeuronField
    spikes: np.ndarray  # (N, T) uint8 spike counts per frame
    dff: np.ndarray  # (N, T) float32 calcium dF/F
    coupling: np.ndarray  # (N, N) float32 mean coupling[post, pre] over the session
    coupling_scale: np.ndarray  # (T,) scale of the hubs' learned wiring at each frame
    motion_px: np.ndarray  # (T, 2) int rigid shift dy, dx of the field of view within the day
    offset_px: np.ndarray  # (2,) int rigid offset dy, dx of this day's field of view
    sound_onsets_s: np.ndarray  # (S,) onset of every sound of the session
    sound_drive_hz: np.ndarray  # (N, S) evoked rate of each neuron by each sound
    shock_onsets_s: np.ndarray  # (K,)
    shock_drive_hz: np.ndarray  # (N, K) evoked rate of each neuron by each footshock
    cs_plus_cue: str  # the cue the cs_plus neurons are tuned to ("" if none)
    cs_minus_cue: str
    width: int
    height: int

    def __len__(self) -> int:
        return len(self.frame_times_s)

    @property
    def populations(self) -> np.ndarray:
        return self.field.populations

    @property
    def population_code(self) -> np.ndarray:
        """(N,) int8 index into :data:`POPULATIONS`."""
        return self.field.population_code

    @property
    def centers_px(self) -> np.ndarray:
        """(N, 2) y, x in the reference (unshifted) imaging frame."""
        return self.field.centers_px

    @property
    def radii_px(self) -> np.ndarray:
        return self.field.radii_px

    @property
    def tau_decay_s(self) -> np.ndarray:
        return self.field.tau_decay_s

    def index(self, population: str) -> np.ndarray:
        """Indices of the neurons of one population."""
        return self.field.index(population)

    def footprint_weights(self, k: int) -> tuple[tuple[int, int], np.ndarray]:
        """(top, left) in the reference (unshifted) frame and the weight patch (0..1) of
        neuron ``k``."""
        return _footprint(self.field.centers_px[k], self.field.radii_px[k])

    def label_image(self) -> np.ndarray:
        """(H, W) int16 in the reference frame: 0 for background, k + 1 where neuron k is the
        strongest footprint."""
        labels = np.zeros((self.height, self.width), np.int16)
        best = np.zeros((self.height, self.width), np.float32)
        for k in range(len(self.field)):
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
        """Ground-truth arrays (per neuron, per frame, per neuron pair, per stimulus)."""
        f = self.field
        return {
            "frame_times_s": self.frame_times_s,
            "neuron_id": np.arange(len(f), dtype=np.int64),
            "populations": f.populations.astype("U10"),
            "population_code": f.population_code,
            "conditioned_response": f.populations == "fear",
            "footprints": self.label_image(),
            "centers_px": f.centers_px,
            "radii_px": f.radii_px,
            "fov_offset_px": self.offset_px.astype(np.int64),
            "coupling": self.coupling,
            "coupling_learned": f.coupling_learned,
            "coupling_background": f.coupling_background,
            "coupling_scale": self.coupling_scale,
            "sound_onsets_s": self.sound_onsets_s,
            "sound_drive_hz": self.sound_drive_hz,
            "shock_onsets_s": self.shock_onsets_s,
            "shock_drive_hz": self.shock_drive_hz,
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


def simulate_activity(
    schedule: OutputSchedule,
    frame_times_s: np.ndarray,
    behaviour_at_frames: BehaviourTrack | None,
    state: AnimalState,
    config: BrainConfig | None = None,
    seed: int = 0,
    params: LearningParams | None = None,
    field: NeuronField | None = None,
) -> ActivityTrack:
    """Spikes and calcium of the animal's neurons at every imaging frame of a session.

    ``behaviour_at_frames`` is the mouse's behaviour (resampled at the imaging frame times
    here if it was computed at other times); None for no locomotion or fear drive. ``state``
    is the animal at the start of the session: its ID draws the neurons (unless ``field`` is
    given: the animal's stored cells) and its session count the day's field-of-view offset.
    ``seed`` draws the session's spikes.
    """
    cfg = config or BrainConfig()
    field = field if field is not None else draw_field(state.animal_id, cfg.geometry())
    if len(field) != cfg.neurons:
        raise ValueError("the neuron field was drawn for another number of neurons")
    times = np.asarray(frame_times_s, dtype=float)
    t_len = len(times)
    rng = np.random.default_rng([seed, 0x425241494E])
    dt = float(np.median(np.diff(times))) if t_len > 1 else 1 / 30
    learning = run_learning(state, schedule, params)
    danger, other = _cues(learning)
    pops = field.populations
    behaviour = _behaviour_at(behaviour_at_frames, times)

    # the stimulus- and behaviour-locked rate of every neuron: what "responsive" means
    rates = np.repeat((cfg.baseline_rate_hz * field.baseline_factor)[:, None], t_len, axis=1)
    rates += _tone_drive(learning, times, pops, field.tone_gain_hz, danger, other)
    rates += _shock_drive(schedule, times, pops, field)
    if behaviour is not None:
        rates += _behaviour_drive(behaviour, pops, field.drive_weight)
        rates += _fear_drive(behaviour, learning, times, field.fear_gain_hz, danger)
    scale = _coupling_scale(learning, times, danger, cfg.coupling_gain)
    # what each stimulus evokes, through the wiring too (one step, on the expected rates)
    expected = rates + _propagate(rates.astype(np.float32), field, scale)
    sound_onsets, sound_drive, shock_onsets, shock_drive = _evoked(expected, times, schedule)
    del expected

    rates += _slow_drive(pops, times, dt, rng)
    hubs = np.flatnonzero(pops == "shock")
    if len(hubs):
        rates[hubs] += (
            _hub_bursts(len(hubs), t_len, dt, cfg.hub_burst_rate_hz, rng)
            * (field.drive_weight[hubs, None])
        )
    spikes = rng.poisson(np.clip(rates, 0, None) * dt)
    # one step of propagation: every neuron's spikes raise its targets' rates briefly
    if t_len:
        pre_rate = gaussian_filter1d(spikes.astype(np.float32), COUPLING_SMOOTH_S / dt, axis=1)
        pre_rate /= np.float32(dt)
        spikes += rng.poisson(np.clip(_propagate(pre_rate, field, scale), 0, None) * dt)
    spikes = spikes.clip(0, 255).astype(np.uint8)
    calcium = _kernel_filter(spikes.astype(float), dt, cfg.tau_rise_s, field.tau_decay_s)
    dff = (calcium * field.dff_per_spike[:, None]).astype(np.float32)

    mean_scale = float(scale.mean()) if t_len else 0.0
    coupling = (field.coupling_background + mean_scale * field.coupling_learned).astype(np.float32)
    return ActivityTrack(
        frame_times_s=times,
        field=field,
        spikes=spikes,
        dff=dff,
        coupling=coupling,
        coupling_scale=scale.astype(np.float32),
        motion_px=_motion(cfg, times, behaviour, rng),
        offset_px=day_offset_px(state.animal_id, state.sessions, cfg.shift_px),
        sound_onsets_s=sound_onsets,
        sound_drive_hz=sound_drive,
        shock_onsets_s=shock_onsets,
        shock_drive_hz=shock_drive,
        cs_plus_cue=danger,
        cs_minus_cue=other,
        width=cfg.width,
        height=cfg.height,
    )


def _coupling_scale(
    learning: SessionLearning, times: np.ndarray, danger: str, gain: float
) -> np.ndarray:
    """The strength of the hubs' learned wiring at each frame: the CS+'s learned strength, as
    consolidated by the start of the session (what a day's conditioning builds shows the next
    day), and weakened as soon as it falls within the session (extinction)."""
    if not danger:
        return np.zeros(len(times))
    now = learning.strength_at(times, danger)
    start = learning.initial_strengths.get(danger, 0.0)
    return gain * np.minimum(now, start)


def _propagate(pre_rate: np.ndarray, field: NeuronField, scale: np.ndarray) -> np.ndarray:
    """The rate (N, T) each neuron gets from its inputs' rates through the wiring."""
    driven = field.coupling_background @ pre_rate
    driven += scale[None, :].astype(np.float32) * (field.coupling_learned @ pre_rate)
    return driven


def _behaviour_at(behaviour: BehaviourTrack | None, times: np.ndarray) -> BehaviourTrack | None:
    if behaviour is None or len(behaviour) == 0:
        return None
    if len(behaviour) != len(times) or not np.array_equal(behaviour.frame_times_s, times):
        behaviour = behaviour.at_times(times)
    return behaviour


def _tone_drive(
    learning: SessionLearning,
    times: np.ndarray,
    pops: np.ndarray,
    gain: np.ndarray,
    danger: str,
    other: str,
) -> np.ndarray:
    """Tone-evoked rate (Hz over baseline): an onset transient and a sustained part."""
    out = np.zeros((len(pops), len(times)))
    plus, minus, hubs = pops == "cs_plus", pops == "cs_minus", pops == "shock"
    for tr in learning.trials:
        on = (times >= tr.start_s) & (times < tr.stop_s)
        if not on.any():
            continue
        transient = np.exp(-(times[on] - tr.start_s) / 0.4)
        shape = 1.5 * transient + 0.5
        if danger:
            g = generalisation(tr.cue, danger, _TUNING)
            out[np.ix_(plus, on)] += (gain[plus] * g * (0.5 + tr.strength))[:, None] * shape
            # after learning the hubs answer the CS+ as if it predicted the shock
            out[np.ix_(hubs, on)] += (0.6 * gain[hubs] * g * tr.strength)[:, None]
        if other:
            g = generalisation(tr.cue, other, _TUNING)
            out[np.ix_(minus, on)] += (gain[minus] * g)[:, None] * shape
    return out


def _shock_drive(
    schedule: OutputSchedule, times: np.ndarray, pops: np.ndarray, field: NeuronField
) -> np.ndarray:
    rate = schedule.sample_rate_hz
    shock = np.zeros(len(times))
    for sh in schedule.shocks:
        t0, t1 = sh.start_sample / rate, sh.stop_sample / rate
        after = times - t1
        shock += np.where((times >= t0) & (times < t1), SHOCK_RATE_HZ, 0.0)
        shock += np.where(after >= 0, SHOCK_RATE_HZ * np.exp(-np.clip(after, 0, None) / 0.7), 0.0)
    weight = np.where(pops == "shock", field.drive_weight, field.us_kick)
    return weight[:, None] * shock[None, :]


def _behaviour_drive(behaviour: BehaviourTrack, pops: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Locomotion neurons follow running speed with a saturating tuning (``docs/simulation.md``):
    a startle run or a dart at 30-40 cm/s drives them about twice as hard as walking at 6 cm/s,
    not five to seven times."""
    out = np.zeros((len(pops), len(behaviour)))
    speed = np.where(behaviour.freezing, 0.0, behaviour.speed_cm_s)
    loco = pops == "locomotion"
    tuning = SPEED_RATE_HZ * speed / (speed + SPEED_HALF_CM_S)
    out[loco] = weight[loco, None] * tuning[None, :]
    return out


def _fear_drive(
    behaviour: BehaviourTrack,
    learning: SessionLearning,
    times: np.ndarray,
    gain: np.ndarray,
    danger: str,
) -> np.ndarray:
    """Fear neurons fire while the animal freezes; during a sound as much as it predicts the
    shock (the CS+), at a fifth of that otherwise."""
    cs = np.zeros(len(times))
    if danger:
        for tr in learning.trials:
            on = (times >= tr.start_s) & (times < tr.stop_s)
            cs[on] = np.maximum(cs[on], generalisation(tr.cue, danger, _TUNING))
    drive = behaviour.freezing.astype(float) * (0.2 + 0.8 * cs)
    return gain[:, None] * drive[None, :]


def _window_mean(rates: np.ndarray, times: np.ndarray, t0: float, t1: float) -> np.ndarray | None:
    inside = (times >= t0) & (times < t1)
    return rates[:, inside].mean(axis=1) if inside.any() else None


def _evoked(
    rates: np.ndarray, times: np.ndarray, schedule: OutputSchedule
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Evoked rate per neuron and stimulus: the mean stimulus-locked rate during a sound (or a
    footshock and the second after it) minus the 10 s before it (2 s for a footshock)."""
    fs = schedule.sample_rate_hz
    n = rates.shape[0]

    def drive(starts: list[float], stops: list[float], pre_s: float, post_s: float) -> np.ndarray:
        out = np.full((n, len(starts)), np.nan, np.float32)
        for j, (t0, t1) in enumerate(zip(starts, stops, strict=True)):
            during = _window_mean(rates, times, t0, t1 + post_s)
            before = _window_mean(rates, times, t0 - pre_s, t0)
            if during is not None and before is not None:
                out[:, j] = during - before
        return out

    sounds = sorted(schedule.sounds, key=lambda s: s.start_sample)
    shocks = sorted(schedule.shocks, key=lambda s: s.start_sample)
    s_on = [s.start_sample / fs for s in sounds]
    k_on = [s.start_sample / fs for s in shocks]
    return (
        np.array(s_on, float),
        drive(s_on, [s.stop_sample / fs for s in sounds], 10.0, 0.0),
        np.array(k_on, float),
        drive(k_on, [s.stop_sample / fs for s in shocks], 2.0, 1.0),
    )


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


def _hub_bursts(
    n: int, t_len: int, dt: float, rate_hz: float, rng: np.random.Generator
) -> np.ndarray:
    """Each hub's own spontaneous bursts (rate over baseline, Hz); independent of each other."""
    if t_len == 0 or n == 0:
        return np.zeros((n, t_len))
    starts = rng.random((n, t_len)) < rate_hz * dt
    width = max(1, round(HUB_BURST_S / dt))
    on = np.cumsum(starts, axis=1, dtype=np.int32)
    on[:, width:] -= on[:, :-width].copy()
    return HUB_BURST_HZ * (on > 0)


def _motion(
    cfg: BrainConfig,
    times: np.ndarray,
    behaviour: BehaviourTrack | None,
    rng: np.random.Generator,
) -> np.ndarray:
    t_len = len(times)
    if cfg.clean or not cfg.motion or cfg.motion_amplitude_px == 0 or t_len == 0:
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
    if behaviour is not None:
        run = behaviour.speed_cm_s > 15  # brain moves when the mouse runs hard
        shift[run] += rng.choice([-1.0, 1.0], (int(run.sum()), 2))
    return np.clip(np.round(shift), -_motion_bound(cfg), _motion_bound(cfg)).astype(np.int16)


def _motion_bound(cfg: BrainConfig) -> int:
    return math.ceil(cfg.motion_amplitude_px) + 1


# --------------------------------------------------------------------------- rendering


class TwoPhotonRenderer:
    """Renders frame ``i`` of an :class:`ActivityTrack` as a uint16 two-photon image.

    The static image (the animal's background with its vessels, the resting cells) is built
    once on a canvas padded for the largest day offset and motion, from the animal's seed, so
    every day images the same tissue; a frame adds the active cells' patches and the neuropil,
    crops the window at the day's offset plus the frame's motion, and adds shot and read noise
    from a bank of Gaussian frames (drawn from the session's seed).
    """

    def __init__(self, config: BrainConfig, activity: ActivityTrack, seed: int = 0) -> None:
        self.config = config
        self.activity = activity
        if (activity.height, activity.width) != (config.height, config.width):
            raise ValueError("activity was simulated for another frame size")
        tissue = np.random.default_rng([activity.field.seed, 0x3250])
        self._pad = math.ceil(config.shift_px) + _motion_bound(config) + 1
        h, w, p = config.height, config.width, self._pad
        photons = config.photon_scale
        self._static = self._background(tissue, h + 2 * p, w + 2 * p, photons)
        # Every neuron's footprint as a column of one sparse (covered pixels x neurons) matrix: a
        # frame's cells are then one sparse product, not one array operation per neuron, and
        # only the pixels some cell covers are touched.
        rows, cols, values, shapes = [], [], [], []
        pixel = np.arange(self._static.size).reshape(self._static.shape)
        cell_photons = config.neuron_photons * photons * activity.field.brightness
        for k in range(config.neurons):
            (top, left), weights = activity.footprint_weights(k)
            sl, wsl = _clip_box(top + p, left + p, weights.shape, self._static.shape)
            if sl is None:
                continue
            patch = weights[wsl] * np.float32(cell_photons[k])
            self._static[sl] += patch
            rows.append(pixel[sl].ravel())
            cols.append(np.full(patch.size, k))
            values.append(patch.ravel())
            shapes.append(weights[wsl].ravel())
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
        # neuropil varies over tens of micrometres, more slowly than cells do
        smooth = gaussian_filter(tissue.standard_normal(self._static.shape), max(2.0, w / 12))
        smooth = np.clip(1 + 0.5 * smooth / (smooth.std() or 1), 0, None)
        # a cell body displaces neuropil: its pixels see 70% of the neuropil around it (the
        # contamination ratio a neuropil correction of 0.7 assumes)
        cover = np.zeros(self._static.size, np.float32)
        if shapes:
            np.maximum.at(cover, pixels, np.concatenate(shapes))
        smooth *= 1 - 0.3 * np.clip(cover.reshape(self._static.shape), 0, 1)
        neuropil = 0.0 if config.clean else config.neuropil
        self._neuropil = (neuropil * config.background_photons * photons * smooth).astype(
            np.float32
        )
        self._np_trace = _neuropil_trace(activity.dff)
        self._origin = p + np.asarray(activity.offset_px, np.int64)
        self._bank, self._index = self._noise(np.random.default_rng([seed, 0x3250]))

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
        n, h, w = len(ks), cfg.height, cfg.width
        if n == 0:
            return np.empty((0, h, w), np.uint16)
        # neuropil rides on population activity; the trace is >= 0, so photons stay >= 0
        buf = self._neuropil * self._np_trace[ks][:, None, None]
        buf += self._static
        dff = act.dff[:, ks]
        active = np.where(dff > 0.01, dff, np.float32(0))  # faint transients stay in the noise
        buf.reshape(n, -1)[:, self._covered] += (self._footprints @ active).T
        photons = np.empty((n, h, w), np.float32)
        oy, ox = self._origin.tolist()
        for j, (dy, dx) in enumerate(act.motion_px[ks].tolist()):
            photons[j] = buf[j, oy + dy : oy + dy + h, ox + dx : ox + dx + w]
        g = np.float32(cfg.counts_per_photon)
        out = photons * g
        shot = cfg.shot_noise and not cfg.clean
        read = 0.0 if cfg.clean else cfg.read_noise
        if shot or read > 0:
            var = photons * (g * g) if shot else np.zeros_like(photons)
            var += np.float32(read**2)
            np.sqrt(var, out=var)
            for j, (k, by, bx) in enumerate(self._index[ks % len(self._index)].tolist()):
                var[j] *= self._bank[k, by : by + h, bx : bx + w]
            out += var
        out += np.float32(cfg.offset_counts)
        np.minimum(out, 65535, out=out)  # two ufuncs: np.clip costs as much again per frame
        np.maximum(out, 0, out=out)
        return out.astype(np.uint16)

    def _background(self, rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
        cfg = self.config
        texture = gaussian_filter(rng.standard_normal((h, w)), max(1.0, w / 60))
        img = cfg.background_photons * scale * (1 + 0.3 * texture / (texture.std() or 1))
        gy, gx = np.mgrid[0:h, 0:w].astype(float)
        for _ in range(3):  # blood vessels: dark, gently curving bands
            x0, x1 = rng.uniform(0, w, 2)
            ys = np.linspace(-0.1 * h, 1.1 * h, 12)
            xs = np.linspace(x0, x1, 12) + gaussian_filter(rng.normal(0, w / 20, 12), 2)
            width = rng.uniform(0.006, 0.015) * w + 0.5
            vessel = polyline_alpha(gx, gy, np.stack([xs, ys], 1), width)
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
    z = gaussian_filter(mean - mean.mean(), 3.0) / max(float(mean.std()), 1e-6)
    # a population burst (the footshock) raises the neuropil by half at most, not severalfold
    return (1.0 + 0.5 * np.tanh(0.4 * z)).astype(np.float32)
