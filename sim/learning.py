"""The simulated animal's associative learning, carried from session to session.

The animal learns about sounds, not protocol names: a cue is the sound's kind and frequency
(``"tone:7500"``, ``"white_noise"``). Learning follows Rescorla-Wagner with the footshock as the
unconditioned stimulus:

* every sound is a trial; its prediction is ``P(s) = clip(sum_k g(s, k) V_k, 0, 1)`` where
  ``g`` is the generalisation between cues (a Gaussian in octaves between tones, 1 for the same
  cue, ``noise_tone_generalisation`` between white noise and any tone);
* a shock during the sound (or within ``trace_window_s`` after it, weaker with the gap) makes
  the trial reinforced with ``lambda = 1 - exp(-current / shock_scale_ma)``; otherwise
  ``lambda = 0`` and the trial is an extinction trial;
* every stored cue moves by ``alpha * g(s, k) * (lambda - P(s))``, with ``alpha_acquisition``
  when ``lambda > P`` and the slower ``alpha_extinction`` otherwise; strengths stay in [0, 1].

Context fear ``C`` rises with every shock (``C += context_alpha * (lambda - C)``) and decays
with time spent in the rig without shock (``context_extinction_per_min``); only
``context_carryover`` of it is carried to the next session (a new day, often a new context).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rig.data.atomic import write_text_atomic
from rig.data.writer_lock import exclusive
from rig.files.inputfile import read_bounded
from rig.program.schedule import OutputSchedule, ShockPulse, SoundBlock

WHITE_NOISE = "white_noise"


class LearningParams(BaseModel):
    """Parameters of the learning model (defaults give realistic-looking cohorts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha_acquisition: float = Field(0.3, gt=0, le=1)
    alpha_extinction: float = Field(0.1, gt=0, le=1)
    generalisation_octaves: float = Field(1.0, gt=0, description="Gaussian sigma in octaves")
    noise_tone_generalisation: float = Field(0.0, ge=0, le=1)
    shock_scale_ma: float = Field(0.25, gt=0)
    trace_window_s: float = Field(20.0, ge=0)
    trace_decay_s: float = Field(5.0, gt=0)
    context_alpha: float = Field(0.12, ge=0, le=1)
    context_extinction_per_min: float = Field(0.03, ge=0, le=1)
    context_carryover: float = Field(0.5, ge=0, le=1, description="kept to the next day")


class AnimalState(BaseModel):
    """What an animal has learned so far; persisted as JSON between sessions."""

    model_config = ConfigDict(extra="forbid")

    animal_id: str = "sim-mouse"
    strengths: dict[str, float] = Field(default_factory=dict)
    """Associative strength V per cue key (see :func:`cue_key`)."""
    context_fear: float = 0.0
    sessions: int = 0
    history: list[dict[str, float]] = Field(default_factory=list)
    """Strengths (and ``"context"``) after each session, oldest first."""

    def strength(self, cue: str, params: LearningParams | None = None) -> float:
        """The prediction the animal makes for ``cue``, generalisation included."""
        return predicted_strength(self.strengths, cue, params or LearningParams())

    def danger_cue(self) -> str | None:
        """The cue with the highest learned strength, or None for a naive animal."""
        if not self.strengths:
            return None
        cue, v = max(self.strengths.items(), key=lambda kv: kv[1])
        return cue if v > 0.05 else None


@dataclass(frozen=True)
class Trial:
    """One sound of a session, as the animal experienced it."""

    start_s: float
    stop_s: float
    cue: str
    stimulus: str
    strength: float
    """Prediction (0..1) at the sound's onset, before this trial's update: drives freezing."""
    reinforcement: float
    """Lambda: 0 for a sound alone, up to 1 for a strong shock during the sound."""
    strength_after: float


@dataclass(frozen=True)
class SessionLearning:
    """The learning trajectory through one session."""

    trials: tuple[Trial, ...]
    shock_times_s: np.ndarray
    context_start: float
    context_after_shock: np.ndarray
    """Context fear just after each shock (same order as ``shock_times_s``)."""
    final: AnimalState
    params: LearningParams
    initial_strengths: dict[str, float]
    strengths_after_trials: tuple[dict[str, float], ...]
    """Stored strengths after each trial (same order as ``trials``)."""

    def context_at(self, t_s: np.ndarray | float) -> np.ndarray:
        """Context fear at session times ``t_s`` (decays between shocks)."""
        t = np.atleast_1d(np.asarray(t_s, dtype=float))
        times = np.concatenate([[0.0], self.shock_times_s])
        levels = np.concatenate([[self.context_start], self.context_after_shock])
        idx = np.maximum(np.searchsorted(times, t, side="right") - 1, 0)
        level, since = levels[idx], t - times[idx]
        rate = -math.log(1.0 - self.params.context_extinction_per_min) / 60.0
        return level * np.exp(-rate * np.maximum(since, 0.0))

    def strength_at(self, t_s: np.ndarray | float, cue: str) -> np.ndarray:
        """Stored strength of ``cue`` at times ``t_s`` (a step function over trials)."""
        t = np.atleast_1d(np.asarray(t_s, dtype=float))
        ends = np.array([tr.stop_s for tr in self.trials], dtype=float)
        values = [self.initial_strengths.get(cue, 0.0)] + [
            s.get(cue, 0.0) for s in self.strengths_after_trials
        ]
        idx = np.searchsorted(ends, t, side="right")
        return np.asarray(values, dtype=float)[idx]


def cue_key(sound: SoundBlock) -> str:
    """The identity of a sound for the animal: ``"tone:<Hz>"`` or ``"white_noise"``."""
    if sound.kind == "tone":
        if sound.frequency_hz is None:
            raise ValueError("a tone needs frequency_hz")
        return f"tone:{float(sound.frequency_hz):g}"
    return WHITE_NOISE


def _tone_hz(cue: str) -> float | None:
    return float(cue.split(":", 1)[1]) if cue.startswith("tone:") else None


def generalisation(a: str, b: str, params: LearningParams | None = None) -> float:
    """How much learning about cue ``b`` transfers to cue ``a`` (1 for the same cue)."""
    p = params or LearningParams()
    if a == b:
        return 1.0
    fa, fb = _tone_hz(a), _tone_hz(b)
    if fa is None or fb is None:
        return p.noise_tone_generalisation if (fa is None) != (fb is None) else 0.0
    octaves = math.log2(fa / fb)
    return math.exp(-0.5 * (octaves / p.generalisation_octaves) ** 2)


def predicted_strength(strengths: dict[str, float], cue: str, params: LearningParams) -> float:
    """``clip(sum_k g(cue, k) V_k, 0, 1)``."""
    total = sum(generalisation(cue, k, params) * v for k, v in strengths.items())
    return min(1.0, max(0.0, total))


def _shock_lambda(current_ma: float, params: LearningParams) -> float:
    return 1.0 - math.exp(-max(current_ma, 0.0) / params.shock_scale_ma)


def _reinforcement(
    sound: SoundBlock, shocks: tuple[ShockPulse, ...], rate: float, params: LearningParams
) -> tuple[float, list[int]]:
    """Lambda of a sound trial and the indices of the shocks it claims."""
    lam, claimed = 0.0, []
    for i, sh in enumerate(shocks):
        gap_s = (sh.start_sample - sound.stop_sample) / rate
        if sh.start_sample < sound.start_sample or gap_s > params.trace_window_s:
            continue
        weight = 1.0 if gap_s <= 0 else math.exp(-gap_s / params.trace_decay_s)
        lam = max(lam, weight * _shock_lambda(sh.current_ma, params))
        claimed.append(i)
    return lam, claimed


def run_learning(
    state: AnimalState, schedule: OutputSchedule, params: LearningParams | None = None
) -> SessionLearning:
    """Apply the learning model to one session; the state passed in is not modified."""
    p = params or LearningParams()
    rate = schedule.sample_rate_hz
    stored = dict(state.strengths)
    initial = dict(stored)
    trials: list[Trial] = []
    after: list[dict[str, float]] = []
    for sound in sorted(schedule.sounds, key=lambda s: s.start_sample):
        cue = cue_key(sound)
        stored.setdefault(cue, 0.0)
        pred = predicted_strength(stored, cue, p)
        lam, _ = _reinforcement(sound, schedule.shocks, rate, p)
        alpha = p.alpha_acquisition if lam > pred else p.alpha_extinction
        for k in stored:
            g = generalisation(cue, k, p)
            if g > 0:
                stored[k] = min(1.0, max(0.0, stored[k] + alpha * g * (lam - pred)))
        trials.append(
            Trial(
                start_s=sound.start_sample / rate,
                stop_s=sound.stop_sample / rate,
                cue=cue,
                stimulus=sound.stimulus,
                strength=pred,
                reinforcement=lam,
                strength_after=predicted_strength(stored, cue, p),
            )
        )
        after.append(dict(stored))

    shocks = sorted(schedule.shocks, key=lambda s: s.start_sample)
    shock_t = np.array([s.start_sample / rate for s in shocks], dtype=float)
    decay = -math.log(1.0 - p.context_extinction_per_min) / 60.0
    level, last_t, levels = state.context_fear, 0.0, []
    for sh, t in zip(shocks, shock_t, strict=True):
        level *= math.exp(-decay * (t - last_t))
        level += p.context_alpha * (_shock_lambda(sh.current_ma, p) - level)
        levels.append(level)
        last_t = t
    end_context = level * math.exp(-decay * (schedule.duration_s - last_t))
    end_context *= p.context_carryover

    final_strengths = {k: round(v, 9) for k, v in stored.items()}
    final = AnimalState(
        animal_id=state.animal_id,
        strengths=final_strengths,
        context_fear=round(end_context, 9),
        sessions=state.sessions + 1,
        history=[*state.history, {**final_strengths, "context": round(end_context, 9)}],
    )
    result = SessionLearning(
        trials=tuple(trials),
        shock_times_s=shock_t,
        context_start=state.context_fear,
        context_after_shock=np.array(levels, dtype=float),
        final=final,
        params=p,
        initial_strengths=initial,
        strengths_after_trials=tuple(after),
    )
    return result


def update_state(
    state: AnimalState, schedule: OutputSchedule, params: LearningParams | None = None
) -> AnimalState:
    """The animal's state after living through ``schedule``."""
    return run_learning(state, schedule, params).final


_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def sanitise_animal_id(animal_id: str) -> str:
    """A file-name-safe form of an animal ID that cannot leave its directory.

    Safe IDs (letters, digits, ``_ . -``, not starting with a dot) are kept as they are;
    anything else is replaced by ``_`` and suffixed with a short hash of the original, so two
    different IDs never share a file.
    """
    cleaned = _SAFE.sub("_", animal_id).lstrip(".")[:64]
    if cleaned == animal_id and cleaned:
        return cleaned
    digest = hashlib.sha256(animal_id.encode("utf-8")).hexdigest()[:10]
    return f"{cleaned or 'animal'}-{digest}"


def state_path(state_dir: str | os.PathLike[str], animal_id: str) -> Path:
    """Where the state of ``animal_id`` lives inside ``state_dir``."""
    root = Path(state_dir).resolve()
    path = (root / f"{sanitise_animal_id(animal_id)}.json").resolve()
    if path.parent != root:  # belt and braces: the sanitiser already guarantees this
        raise ValueError(f"animal ID {animal_id!r} escapes the state directory")
    return path


MAX_STATE_BYTES = 16_000_000  # an animal's state grows by a line of strengths per session


def load_state(state_dir: str | os.PathLike[str], animal_id: str) -> AnimalState:
    """The stored state of ``animal_id``, or a fresh naive animal if none is stored."""
    raw = read_bounded(state_path(state_dir, animal_id), MAX_STATE_BYTES, missing_ok=True)
    if raw is None:
        return AnimalState(animal_id=animal_id)
    state = AnimalState.model_validate_json(raw)
    return state.model_copy(update={"animal_id": animal_id})


def learn_session(
    state_dir: str | os.PathLike[str],
    animal_id: str,
    schedule: OutputSchedule,
    params: LearningParams | None = None,
) -> Path:
    """Let the stored animal learn from one session: read, update and write its state as one
    step under an exclusive lock (``ID.json.lock``), so that two sessions of one animal that
    end together both count (each applies its learning to what the other stored)."""
    path = state_path(state_dir, animal_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(path.with_name(path.name + ".lock")):
        state = load_state(state_dir, animal_id)
        return save_state(state_dir, update_state(state, schedule, params))


def save_state(state_dir: str | os.PathLike[str], state: AnimalState) -> Path:
    """Write ``state`` atomically to ``state_dir`` (created if needed); returns the file."""
    path = state_path(state_dir, state.animal_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(state.model_dump(), indent=2, sort_keys=True))
    return path
