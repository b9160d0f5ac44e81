"""The simulated animal and brain of one session, behind the simulated cameras.

Behaviour (:mod:`sim.mouse`) and neural activity (:mod:`sim.brain`) are computed for the whole
session up front from the output schedule and the animal's learned state (:mod:`sim.learning`),
deterministically for a seed; frames are rendered on demand, so frame ``k`` depends only on
``k``. After the session, the animal's state is updated with what it actually lived through
(the schedule up to where the outputs stopped) and saved under its ID for the next day; its
neurons (:mod:`sim.neurons`) are kept beside that state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from rig.program.schedule import OutputSchedule
from sim.brain import POPULATIONS, BrainConfig, TwoPhotonRenderer, simulate_activity
from sim.learning import AnimalState, learn_session, load_state
from sim.mouse import MouseConfig, simulate_behaviour
from sim.mouse_video import MouseRenderer
from sim.neurons import load_or_draw_field

# Per-video-frame labels saved under their own names (truth/freezing, truth/grooming...).
BEHAVIOUR_LABELS = ("freezing", "grooming", "sniffing", "darting")


class SimWorld:
    """Behaviour video and two-photon frames for one simulated session, with ground truth."""

    def __init__(
        self,
        schedule: OutputSchedule,
        video_triggers: np.ndarray,
        imaging_triggers: np.ndarray | None,
        mouse: MouseConfig,
        brain: BrainConfig | None,
        seed: int,
        animal: str,
        state_dir: str | None,
    ):
        fs = schedule.sample_rate_hz
        self.schedule = schedule
        self.animal = animal
        self.state_dir = state_dir
        self.state = (
            load_state(state_dir, animal) if state_dir else AnimalState(animal_id=animal or "sim")
        )
        self.track = simulate_behaviour(schedule, video_triggers / fs, self.state, mouse, seed)
        self.mouse = MouseRenderer(mouse, self.track, seed)
        self.activity = None
        self.brain = None
        if imaging_triggers is not None and brain is not None:
            # the animal's own neurons, the same on every day (kept beside its learned state)
            field = load_or_draw_field(state_dir, self.state.animal_id, brain.geometry())
            self.activity = simulate_activity(
                schedule, imaging_triggers / fs, self.track, self.state, brain, seed, field=field
            )
            self.brain = TwoPhotonRenderer(brain, self.activity, seed)
        self._saved = False

    def render_video(self, k: int) -> np.ndarray:
        return self.mouse.render(k)

    def render_imaging(self, k: int) -> np.ndarray:
        assert self.brain is not None
        return self.brain.render(k)

    def render_imaging_frames(self, ks: Sequence[int]) -> np.ndarray:
        assert self.brain is not None
        return self.brain.render_frames(ks)

    def truth(self) -> dict[str, np.ndarray]:
        """Numeric truth arrays, flat names (``freezing``, ``grooming``, ``sniffing`` and
        ``darting`` per video frame; the rest prefixed ``behaviour_`` or ``neurons_``)."""
        out: dict[str, np.ndarray] = {}
        for key, value in self.track.truth().items():
            out[key if key in BEHAVIOUR_LABELS else f"behaviour_{key}"] = np.asarray(value)
        out["cable_region_px"] = np.asarray(self.mouse.cable_region(), np.int64)
        if self.activity is not None:
            for key, value in self.activity.truth().items():
                out[f"neurons_{key}"] = np.asarray(value)
        return {k: v for k, v in out.items() if v.dtype.kind in "biuf"}

    def truth_attrs(self) -> dict:
        return {
            "neuron_populations_order": list(POPULATIONS),
            "animal_state_before": self.state.model_dump(mode="json"),
        }

    def save_learning(self, stopped_at_sample: int | None) -> Path | None:
        """Let the animal learn from what was delivered, once; returns the state file."""
        if self._saved or not self.state_dir:
            return None
        self._saved = True
        schedule = self.schedule
        if stopped_at_sample is not None:
            schedule = replace(
                schedule,
                sounds=tuple(s for s in schedule.sounds if s.start_sample < stopped_at_sample),
                shocks=tuple(p for p in schedule.shocks if p.start_sample < stopped_at_sample),
            )
        return learn_session(self.state_dir, self.state.animal_id, schedule)
