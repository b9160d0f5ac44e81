"""A simulated cohort: several animals through habituation, conditioning, recall and
extinction on the simulated rig, for ``rig cohort`` (``make cohort``) and its tests.

    python -m sim.cohort --animals 4 --out cohort-sessions --preset demo --jobs 2
    rig cohort cohort-sessions --traces footprints

Each animal runs the four days in order (it remembers what it learned between them) with the
protocol seeds moved by its index, so animals differ in trial order and behaviour. ``--preset``
shortens the library's protocols (``protocols/``) to minutes (``demo``: 15-s tones, 20-30 s
apart, as the analysis tests; ``test``: 10-s tones, at most four trials of a kind, lower frame
rates). Prints each day's freezing to the CS+ and the CS- as scored from the video, with the
simulated truth beside it.
"""

from __future__ import annotations

import argparse
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import yaml

from rig.data.folder import SessionFolder
from rig.data.trials import trials_table
from rig.program.schedule import VIDEO
from rig.run.session import prepare_session, run_session

ROOT = Path(__file__).resolve().parent.parent
DAYS = ("habituation", "conditioning", "recall", "extinction")
SOUNDS = ("tone", "white_noise")


@dataclass(frozen=True)
class Shortening:
    """How the library's protocols are cut down (every field in the protocol's units)."""

    tone_s: float
    iti_s: tuple[float, float]
    baseline_s: float
    post_s: float
    max_repeat: int
    video_fps: float
    imaging_hz: float


PRESETS = {
    "demo": Shortening(15, (20, 30), 120, 30, 10, 30, 15),
    "test": Shortening(10, (8, 12), 30, 10, 4, 15, 10),
    "tiny": Shortening(6, (5, 7), 20, 6, 3, 10, 8),
}


def shorten(text: str, how: Shortening) -> str:
    """A library protocol's YAML with short sounds, ITIs, baseline and post, capped repeats,
    and the given frame rates (trials, order, stimuli and seed unchanged)."""
    protocol = yaml.safe_load(text)
    for stimulus in protocol["stimuli"].values():
        if stimulus["type"] in SOUNDS:
            stimulus["duration_s"] = how.tone_s
    for phase in protocol["phases"]:
        if not phase.get("trials"):
            phase["duration_s"] = how.baseline_s
            continue
        for trial in phase["trials"]:
            trial["repeat"] = min(trial.get("repeat", 1), how.max_repeat)
            if "us_onset_s" in trial:
                us = protocol["stimuli"][trial["us"]]["duration_s"]
                trial["us_onset_s"] = max(0.0, how.tone_s - us)
        phase["iti_s"] = {"uniform": list(how.iti_s)}
        phase["post_s"] = how.post_s
    protocol["recording"]["video"]["fps"] = how.video_fps
    if protocol["recording"].get("imaging"):
        protocol["recording"]["imaging"]["frame_rate_hz"] = how.imaging_hz
    protocol["description"] = (
        f"The library's {protocol['protocol']} protocol shortened for a dry run: "
        f"{how.tone_s:g}-s sounds {how.iti_s[0]:g}-{how.iti_s[1]:g} s apart, at most "
        f"{how.max_repeat} trials of a kind."
    )
    return yaml.safe_dump(protocol, sort_keys=False)


def shortened_protocols(folder: Path, how: Shortening, library: Path = ROOT / "protocols") -> Path:
    """The four days of the library, shortened, written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for day in DAYS:
        (folder / f"{day}.yaml").write_text(shorten((library / f"{day}.yaml").read_text(), how))
    return folder


def animal_name(index: int) -> str:
    return f"mouse-{index + 1:02d}"


def simulate_animal(
    index: int, out: Path, rig: Path | None, protocols: Path, days: Sequence[str] = DAYS
) -> list[Path]:
    """One animal's days (all four by default), in order; the session folders."""
    animal = animal_name(index)
    folders = []
    for day in days:
        plan = prepare_session(protocols / f"{day}.yaml", rig)
        folder, result = run_session(
            _reseeded(plan, index), out / animal, animal, None, state_dir=str(out / ".sim-animals")
        )
        if result.status != "complete":
            raise RuntimeError(f"{animal} {day}: {result.status}: {result.reason}")
        folders.append(Path(folder))
    return folders


def simulate_cohort(
    animals: int,
    out: Path,
    rig: Path | None,
    protocols: Path,
    jobs: int = 1,
    days: Sequence[str] = DAYS,
) -> dict[str, list[Path]]:
    """Every animal's days (``jobs`` animals at a time); session folders by animal."""
    indices = range(animals)
    simulate = partial(simulate_animal, out=out, rig=rig, protocols=protocols, days=tuple(days))
    if jobs <= 1:
        runs = [simulate(i) for i in indices]
    else:
        # spawned, not forked: a fork of a process that runs threads (a GUI, an earlier
        # analysis's worker pool, zarr's) can copy a lock another thread held, and hang
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            runs = list(pool.map(simulate, indices))
    return {animal_name(i): folders for i, folders in zip(indices, runs, strict=True)}


def _reseeded(plan, animal_index: int):
    """The plan with its protocol's seed moved by the animal's index."""
    protocol = plan.loaded.protocol.model_copy(update={"seed": plan.protocol.seed + animal_index})
    return replace(plan, loaded=replace(plan.loaded, protocol=protocol))


# ------------------------------------------------------------ scored against the truth


def cs_freezing(path: Path) -> dict[str, dict[str, float]]:
    """Mean percent freezing during CS+ and CS- trials: scored (as the run left it) and true."""
    folder = SessionFolder.open(path)
    scores, truth, video = folder.scores(), folder.true_freezing(), folder.stream(VIDEO)
    if scores is None or scores.freezing is None or truth is None or video is None:
        raise ValueError(f"{folder}: not a scored simulated session with video")
    scored = np.asarray(scores.freezing, bool)
    times = video.timestamps_s()
    times = times if times is not None else np.empty(0)
    n = min(len(scored), len(truth[1]), len(times))
    out: dict[str, dict[str, float]] = {}
    for cs in ("cs_plus", "cs_minus"):
        sel = np.zeros(n, bool)
        for t in trials_table(folder):
            if t["cs"] == cs:
                sel |= (times[:n] >= t["cs_onset_s"]) & (times[:n] < t["cs_offset_s"])
        if sel.any():
            out[cs] = {
                "scored": float(100 * scored[:n][sel].mean()),
                "true": float(100 * truth[1][:n][sel].mean()),
            }
    return out


def _cell(r: dict | None) -> str:
    return f"{r['scored']:5.0f} ({r['true']:3.0f})" if r else f"{'-':>11}"


def table(results: dict[str, dict[str, dict]]) -> str:
    """Percent freezing during CS+ and CS- per animal and day: scored (true)."""
    rows = [f"{'':<10}" + "".join(f"{d:^25}" for d in DAYS)]
    rows.append(f"{'animal':<10}" + f"{'CS+':>11} {'CS-':>11}  " * len(DAYS))
    for animal, days in results.items():
        cells = "".join(
            f"{_cell(days[d].get('cs_plus'))} {_cell(days[d].get('cs_minus'))}  " for d in DAYS
        )
        rows.append(f"{animal:<10}{cells}")
    mean = ""
    for d in DAYS:
        for cs in ("cs_plus", "cs_minus"):
            vals = [days[d][cs] for days in results.values() if cs in days[d]]
            avg = (
                {k: float(np.mean([v[k] for v in vals])) for k in ("scored", "true")}
                if vals
                else None
            )
            mean += _cell(avg) + " "
        mean += " "
    rows.append(f"{'mean':<10}{mean}")
    return "\n".join(rows)


def freezing_by_day(cohort: dict[str, list[Path]]) -> dict[str, dict[str, dict]]:
    """results[animal][day] = :func:`cs_freezing` of that day's session."""
    return {
        animal: {day: cs_freezing(f) for day, f in zip(DAYS, folders, strict=True)}
        for animal, folders in cohort.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--animals", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("cohort-sessions"))
    parser.add_argument("--rig", type=Path, default=ROOT / "docs" / "rigs" / "sim-cohort.yaml")
    parser.add_argument("--preset", choices=[*PRESETS, "none"], default="demo")
    parser.add_argument("--jobs", type=int, default=1, help="animals simulated at once")
    args = parser.parse_args()
    protocols = ROOT / "protocols"
    if args.preset != "none":
        protocols = shortened_protocols(args.out / ".protocols", PRESETS[args.preset])
    cohort = simulate_cohort(args.animals, args.out, args.rig, protocols, max(1, args.jobs))
    print("percent freezing during the CS per day: scored from the video (simulated truth)")
    print(table(freezing_by_day(cohort)))
    print(f"{sum(len(v) for v in cohort.values())} sessions in {args.out}")


if __name__ == "__main__":
    main()
