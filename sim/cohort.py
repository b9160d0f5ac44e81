"""A cohort dry run: several simulated animals through habituation, conditioning, recall and
extinction, printing each day's freezing to the CS+ and the CS- (scored from the video, and the
simulated truth beside it).

    python -m sim.cohort --animals 3 --out cohort-sessions      # or: make cohort
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rig.data.folder import SessionFolder
from rig.data.trials import trials_table
from rig.program.schedule import VIDEO
from rig.run.session import prepare_session, run_session

ROOT = Path(__file__).resolve().parent.parent
DAYS = ("habituation", "conditioning", "recall", "extinction")


def cs_freezing(path: Path) -> dict[str, dict[str, float]]:
    """Mean percent freezing during CS+ and CS- trials: scored and true."""
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


def run_cohort(
    animals: int, out: Path, rig: Path | None, protocols: Path = ROOT / "protocols"
) -> dict[str, dict[str, dict]]:
    """Run every day for every animal; returns results[animal][day] = cs_freezing(...)."""
    results: dict[str, dict[str, dict]] = {}
    state_dir = str(out / ".sim-animals")
    for a in range(animals):
        animal = f"mouse-{a + 1:02d}"
        results[animal] = {}
        for day in DAYS:
            plan = prepare_session(protocols / f"{day}.yaml", rig)
            # Each animal gets its own behaviour: vary the seed by animal, keep days reproducible.
            folder, result = run_session(
                _reseeded(plan, a), out / animal, animal, None, state_dir=state_dir
            )
            if result.status != "complete":
                raise RuntimeError(f"{animal} {day}: {result.status}: {result.reason}")
            results[animal][day] = cs_freezing(folder)
    return results


def _reseeded(plan, animal_index: int):
    from dataclasses import replace

    protocol = plan.loaded.protocol.model_copy(update={"seed": plan.protocol.seed + animal_index})
    return replace(plan, loaded=replace(plan.loaded, protocol=protocol))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--animals", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("cohort-sessions"))
    parser.add_argument("--rig", type=Path, default=ROOT / "docs" / "rigs" / "sim-small.yaml")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    results = run_cohort(args.animals, args.out, args.rig)
    print("percent freezing during the CS per day: scored from the video (simulated truth)")
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
