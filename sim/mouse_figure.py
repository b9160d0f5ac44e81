"""A picture of the simulated mouse: freezing and grooming, two frames apart and what changed.

``python -m sim.mouse_figure [--rig FILE] [--out PNG]`` simulates a recall day of a conditioned
animal on the rig's simulated camera (the default simulated rig without ``--rig``), picks a
frame in the middle of a long freezing bout and one in a grooming bout, and draws for each a
close-up of two consecutive frames and their difference (grey: no change). It is the figure in
``docs/simulation.md``; use it to look at what a rig file's camera settings give.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from rig.files.protocol import load_protocol
from rig.files.rigfile import DEFAULT_SIM_RIG, rig_from_text
from rig.program.schedule import frame_trigger_samples
from rig.run.session import plan_from_loaded
from sim.learning import AnimalState, save_state, update_state
from sim.mouse import GROOM, MouseConfig
from sim.world import SimWorld

ROOT = Path(__file__).resolve().parents[1]
HALF = 56  # close-up half-size, pixels


def _middle_of_longest(mask: np.ndarray) -> int:
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if len(starts) == 0:
        raise ValueError("the simulated session has no such bout: try another seed")
    k = int(np.argmax(ends - starts))
    return int((starts[k] + ends[k]) // 2)


def _close_up(frame: np.ndarray, centre: tuple[int, int]) -> np.ndarray:
    x, y = centre
    padded = np.pad(frame, HALF, mode="edge")
    return padded[y : y + 2 * HALF, x : x + 2 * HALF]


def draw(rig_text: str, out: Path, seed: int = 1, minutes: float = 12.0) -> Path:
    rig = rig_from_text(rig_text, "rig")
    conditioning = plan_from_loaded(load_protocol(ROOT / "protocols" / "conditioning.yaml"), rig)
    plan = plan_from_loaded(load_protocol(ROOT / "protocols" / "recall.yaml"), rig)
    sched = plan.schedule
    triggers = frame_trigger_samples(sched.n_samples, sched.sample_rate_hz, sched.camera_rate_hz)
    triggers = triggers[triggers < minutes * 60 * sched.sample_rate_hz]
    state_dir = tempfile.mkdtemp(prefix="mouse-figure-")
    save_state(state_dir, update_state(AnimalState(animal_id="m1"), conditioning.schedule))
    camera = MouseConfig.model_validate(rig.device("camera").config.model_dump())
    world = SimWorld(sched, triggers, None, camera, None, seed, "m1", state_dir)
    track, renderer = world.track, world.mouse
    rows = [
        ("freezing", _middle_of_longest(track.freezing)),
        ("grooming", _middle_of_longest(track.state == GROOM)),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(7.8, 5.6), constrained_layout=True)
    for (label, i), row in zip(rows, axes, strict=True):
        centre = (round(track.x_px[i]), round(track.y_px[i]))
        a, b = (_close_up(renderer.render(k), centre).astype(int) for k in (i, i + 1))
        row[0].imshow(a, cmap="gray", vmin=0, vmax=255)
        row[1].imshow(b, cmap="gray", vmin=0, vmax=255)
        row[2].imshow(b - a, cmap="gray", vmin=-40, vmax=40)
        row[0].set_title(f"{label}: frame {i}", fontsize=10)
        row[1].set_title(f"frame {i + 1} (+{1000 / sched.camera_rate_hz:.0f} ms)", fontsize=10)
        row[2].set_title("difference (+-40 grey levels)", fontsize=10)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(
        f"simulated mouse, {camera.width}x{camera.height} {camera.view} view, "
        f"breathing {camera.breath_rate_hz:g} Hz, noise {camera.noise_sigma:g} grey levels",
        fontsize=11,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=72)
    plt.close(fig)
    with Image.open(out) as img:  # all grey: one channel is a third of the bytes
        img.convert("L").save(out, optimize=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rig", type=Path, default=None, help="a simulated rig file")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "mouse-freeze-groom.png")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    text = args.rig.read_text(encoding="utf-8") if args.rig else DEFAULT_SIM_RIG
    print(draw(text, args.out, args.seed))


if __name__ == "__main__":
    main()
