"""The animal's neurons: who they are, where they sit, and how they are wired.

A :class:`NeuronField` belongs to the simulated animal, not to a session: positions,
populations, per-cell parameters, the constant background wiring and the hub wiring that
learning will strengthen are all drawn from the animal ID (and the field's geometry), and
persisted beside the animal's learned state (``STATE_DIR/ID.neurons.npz``), so the same cells
are imaged on every day. What changes from day to day is the activity, the learned coupling
strength, and the rigid offset of the field of view (:func:`day_offset_px`): the microscope is
never put back on exactly the same spot.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from sim.learning import state_path

POPULATIONS = ("cs_plus", "cs_minus", "shock", "locomotion", "unrelated", "fear")
"""Population names; ``population_code`` in the truth indexes this tuple. ``shock`` neurons
answer the footshock and become the hubs; ``fear`` is the conditioned-response population."""

REFERENCE_PIXELS = 512 * 512
"""Photon numbers in :class:`sim.brain.BrainConfig` are per pixel of a 512x512 image of the
field of view; a smaller image of the same field has bigger pixels that collect more."""


def animal_seed(animal_id: str) -> int:
    """A stable 63-bit seed from an animal ID (the same on every machine and Python)."""
    return int.from_bytes(hashlib.sha256(animal_id.encode("utf-8")).digest()[:8], "little") >> 1


@dataclass(frozen=True)
class FieldGeometry:
    """What the field's cells depend on besides the animal: a field drawn for another
    geometry is drawn again (deterministically) rather than reused."""

    width: int
    height: int
    neurons: int
    radius_px: float
    fractions: tuple[float, ...]  # cs_plus, cs_minus, shock, locomotion, fear
    hub_to_cs_plus: float
    hub_to_fear: float
    background_density: float
    tau_decay_s: tuple[float, float]
    dff_per_spike: tuple[float, float]

    def key(self) -> np.ndarray:
        return np.array(
            [
                self.width,
                self.height,
                self.neurons,
                self.radius_px,
                *self.fractions,
                self.hub_to_cs_plus,
                self.hub_to_fear,
                self.background_density,
                *self.tau_decay_s,
                *self.dff_per_spike,
            ],
            float,
        )


@dataclass(frozen=True)
class NeuronField:
    """The animal's cells (index k is the neuron's identity on every day)."""

    populations: np.ndarray  # (N,) str, one of POPULATIONS
    centers_px: np.ndarray  # (N, 2) y, x in the reference (unshifted) imaging frame
    radii_px: np.ndarray  # (N,)
    brightness: np.ndarray  # (N,) resting brightness, relative (0.6 .. 1.4)
    tau_decay_s: np.ndarray  # (N,)
    dff_per_spike: np.ndarray  # (N,)
    baseline_factor: np.ndarray  # (N,) times the configured baseline rate
    tone_gain_hz: np.ndarray  # (N,) rate at a full tone response
    drive_weight: np.ndarray  # (N,) weight of population drives
    us_kick: np.ndarray  # (N,) fraction of the hubs' footshock drive a non-hub neuron gets
    fear_gain_hz: np.ndarray  # (N,) rate of a fear neuron while the animal freezes to the CS+
    coupling_background: np.ndarray  # (N, N) float32 [post, pre], constant across days
    coupling_learned: np.ndarray  # (N, N) float32 [post, pre] hub -> CS+/fear, scaled by learning
    seed: int

    def __len__(self) -> int:
        return len(self.populations)

    def index(self, population: str) -> np.ndarray:
        return np.flatnonzero(self.populations == population)

    @property
    def population_code(self) -> np.ndarray:
        """(N,) int8 index into :data:`POPULATIONS`."""
        return np.array([POPULATIONS.index(p) for p in self.populations], dtype=np.int8)


def draw_field(animal_id: str, geometry: FieldGeometry) -> NeuronField:
    """The cells of ``animal_id`` for ``geometry`` (deterministic)."""
    seed = animal_seed(animal_id)
    rng = np.random.default_rng([seed, 0x4E455552])
    n = geometry.neurons
    pops = _assign(n, geometry.fractions, rng)
    centers = _place(n, geometry, rng)
    hubs = pops == "shock"
    us_kick = np.where(hubs, 0.0, 0.1 * rng.beta(1.0, 3.0, n))
    fear_gain = np.where(pops == "fear", rng.uniform(4.0, 8.0, n), 0.0)
    background = _background_coupling(n, geometry.background_density, rng)
    learned = np.zeros((n, n), np.float32)
    for post_pop, p in (("cs_plus", geometry.hub_to_cs_plus), ("fear", geometry.hub_to_fear)):
        post = np.flatnonzero(pops == post_pop)
        pre = np.flatnonzero(hubs)
        if len(post) and len(pre):
            linked = rng.random((len(post), len(pre))) < p
            weights = rng.uniform(0.8, 1.5, linked.shape) * linked
            learned[np.ix_(post, pre)] = weights
    return NeuronField(
        populations=pops,
        centers_px=centers,
        radii_px=geometry.radius_px * rng.uniform(0.85, 1.15, n),
        brightness=rng.uniform(0.6, 1.4, n),
        tau_decay_s=rng.uniform(*geometry.tau_decay_s, n),
        dff_per_spike=rng.uniform(*geometry.dff_per_spike, n),
        baseline_factor=rng.uniform(0.5, 1.5, n),
        tone_gain_hz=rng.uniform(3.0, 8.0, n),
        drive_weight=rng.uniform(0.5, 1.5, n),
        us_kick=us_kick,
        fear_gain_hz=fear_gain,
        coupling_background=background,
        coupling_learned=learned,
        seed=seed,
    )


def day_offset_px(animal_id: str, session_number: int, max_shift_px: float) -> np.ndarray:
    """The rigid (dy, dx) offset of the field of view on the animal's ``session_number``-th
    session (0 on the first: it is the reference), uniform in a disc of ``max_shift_px``."""
    if session_number <= 0 or max_shift_px <= 0:
        return np.zeros(2, np.int64)
    rng = np.random.default_rng([animal_seed(animal_id), 0x534849, session_number])
    r = max_shift_px * math.sqrt(rng.random())
    a = rng.uniform(0, 2 * math.pi)
    return np.array([round(r * math.sin(a)), round(r * math.cos(a))], np.int64)


def field_path(state_dir: str | os.PathLike[str], animal_id: str) -> Path:
    """Where the cells of ``animal_id`` are kept: beside its learned state."""
    return state_path(state_dir, animal_id).with_suffix(".neurons.npz")


def load_or_draw_field(
    state_dir: str | os.PathLike[str] | None, animal_id: str, geometry: FieldGeometry
) -> NeuronField:
    """The animal's stored cells when they were drawn for this geometry; otherwise drawn now
    (and stored, when there is a state directory)."""
    path = field_path(state_dir, animal_id) if state_dir else None
    if path is not None and path.exists():
        with np.load(path, allow_pickle=False) as data:
            if np.array_equal(data["geometry"], geometry.key()):
                return NeuronField(
                    **{
                        f.name: (int(data[f.name]) if f.name == "seed" else data[f.name])
                        for f in fields(NeuronField)
                    }
                )
    field = draw_field(animal_id, geometry)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp, geometry=geometry.key(), **{f.name: getattr(field, f.name) for f in fields(field)}
        )
        os.replace(tmp, path)
    return field


def _assign(n: int, fractions: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    named = ("cs_plus", "cs_minus", "shock", "locomotion", "fear")
    counts = [round(n * f) for f in fractions]
    while sum(counts) > n:
        counts[int(np.argmax(counts))] -= 1
    labels = [p for p, c in zip(named, counts, strict=True) for _ in range(c)]
    labels += ["unrelated"] * (n - len(labels))
    return rng.permutation(np.array(labels, dtype="U10"))


def _place(n: int, geometry: FieldGeometry, rng: np.random.Generator) -> np.ndarray:
    r = geometry.radius_px
    margin = r + 1
    centers: list[tuple[float, float]] = []
    for _ in range(n):
        for _attempt in range(200):
            c = (
                rng.uniform(margin, geometry.height - margin),
                rng.uniform(margin, geometry.width - margin),
            )
            if all((c[0] - a) ** 2 + (c[1] - b) ** 2 > (2.3 * r) ** 2 for a, b in centers):
                break
        centers.append(c)  # crowded field: accept an overlap rather than loop forever
    return np.array(centers, dtype=float).reshape(-1, 2)


def _background_coupling(n: int, density: float, rng: np.random.Generator) -> np.ndarray:
    """Weak, sparse, constant wiring between any two neurons (directed, no self-loops)."""
    linked = rng.random((n, n)) < density
    np.fill_diagonal(linked, False)
    return (rng.uniform(0.3, 0.6, (n, n)) * linked).astype(np.float32)
