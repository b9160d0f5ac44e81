"""How long does ``rig cohort`` take on one worker and on two, against the same tasks run one
after another in one process without dask; and is a worker's memory flat in session length?

Part 1 (wall): a simulated cohort (``--animals`` x the four days, ``sim.cohort``'s ``--preset``
protocols on ``--rig``) is made once; then its tasks (every session scored again, every animal
through ``rig analyze`` on the truth footprints) are run three ways, each from nothing into a
fresh output folder: a plain loop in this process (``run_task`` in the graph's order: the best
alternative, no scheduler, no worker processes), ``rig cohort --workers 1`` and
``rig cohort --workers 2``, ``--repeats`` times each, each way first in turn (the minimum
is kept). Ratios are against the loop. The machine's load average is
recorded beside the times (the cores are shared).

Part 2 (memory): one animal's conditioning and recall days at ``--lengths`` multiples of the
preset's ITIs and baselines (the same trials; the session length grows), each through
``rig cohort --workers 1``; the peak resident memory of the worker during each task (VmHWM,
reset when the task starts) by kind, and the frames per session.

Prints two tables and writes bench/results/cohort.json.

    python bench/bench_cohort.py [--animals 4] [--preset tiny] [--shuffles 5] [--lengths 1 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from rig.cohort.execute import Outcome
from rig.cohort.graph import Settings, plan_tasks
from rig.cohort.pipeline import TASKS_FOLDER, conclude, run_cohort
from rig.cohort.sessions import find_cohort
from rig.cohort.steps import run_task
from rig.data.folder import SessionFolder
from sim.cohort import DAYS, PRESETS, shortened_protocols, simulate_cohort

ROOT = Path(__file__).resolve().parent.parent
SMALL_RIG = ROOT / "docs" / "rigs" / "sim-small.yaml"


def loop(sessions: Path, out: Path, settings: Settings) -> float:
    """The cohort's tasks one after another in this process, then its tables, statistics and
    figures as ``rig cohort`` writes them; wall seconds."""
    t0 = time.perf_counter()
    cohort = find_cohort(sessions)
    out.mkdir(parents=True)
    out = out.resolve()
    tasks = plan_tasks(cohort, settings, out, out / TASKS_FOLDER)
    outcome = Outcome()
    for task in tasks:
        outcome.entries[task.key] = run_task(task.spec)
        outcome.ran.add(task.key)
    conclude(cohort, settings, tasks, outcome, out)
    return time.perf_counter() - t0


def on_cluster(sessions: Path, out: Path, settings: Settings, workers: int) -> float:
    t0 = time.perf_counter()
    run = run_cohort(sessions, out, settings, None, workers)
    if not run.outcome.ok:
        raise RuntimeError(f"tasks failed: {run.outcome.failed}")
    return time.perf_counter() - t0


def same_tables(a: Path, b: Path) -> bool:
    names = ("sessions.csv", "trials.csv", "freezing.csv", "network.csv", "statistics.csv")
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def peaks(out: Path) -> dict[str, float]:
    """The highest per-task peak memory (MB) of each kind of task in a run."""
    found: dict[str, float] = {}
    for path in (out / "tasks").glob("*/*.json"):
        entry = json.loads(path.read_text())
        found[entry["kind"]] = max(found.get(entry["kind"], 0.0), entry["peak_memory_mb"])
    return found


def frames(sessions: Path) -> dict[str, int]:
    """The largest number of frames of a session, per stream (imaging, video)."""
    most: dict[str, int] = {}
    for s in find_cohort(sessions).sessions:
        folder = SessionFolder.open(s.path)
        for name in ("imaging", "video"):
            stream = folder.stream(name)
            if stream is not None:
                most[name] = max(most.get(name, 0), int(stream.frames.shape[0]))
    return most


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--animals", type=int, default=4)
    parser.add_argument("--preset", choices=list(PRESETS), default="tiny")
    parser.add_argument("--rig", type=Path, default=SMALL_RIG)
    parser.add_argument("--shuffles", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each way (min kept)")
    parser.add_argument("--lengths", type=float, nargs="+", default=[1, 4])
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "cohort.json")
    args = parser.parse_args()
    settings = Settings(traces="footprints", shuffles=args.shuffles)
    work = Path(tempfile.mkdtemp(prefix="bench-cohort-"))
    try:
        how = PRESETS[args.preset]
        protocols = shortened_protocols(work / "protocols", how)
        t0 = time.perf_counter()
        simulate_cohort(args.animals, work / "sessions", args.rig, protocols, jobs=2)
        simulate_s = time.perf_counter() - t0
        load_before = os.getloadavg()[0]
        runs = {
            "loop": lambda out: loop(work / "sessions", out, settings),
            "workers_1": lambda out: on_cluster(work / "sessions", out, settings, 1),
            "workers_2": lambda out: on_cluster(work / "sessions", out, settings, 2),
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        order = list(runs)
        for k in range(args.repeats):  # each way first in turn: the load drifts
            for name in order[k % 3 :] + order[: k % 3]:
                out = work / f"{name}-{k}"
                times[name].append(runs[name](out))
        walls = {name: min(t) for name, t in times.items()}
        identical = all(
            same_tables(work / "workers_1-0", work / f"{name}-{k}")
            for name in runs
            for k in range(args.repeats)
        )
        wall = {
            "animals": args.animals,
            "sessions": 4 * args.animals,
            "preset": args.preset,
            "rig": args.rig.name,
            "shuffles": args.shuffles,
            "frames_per_session_max": frames(work / "sessions"),
            "simulate_s": round(simulate_s, 1),
            **{f"{k}_s": round(v, 1) for k, v in walls.items()},
            "all_runs_s": {k: [round(x, 1) for x in v] for k, v in times.items()},
            "workers_1_vs_loop": round(walls["workers_1"] / walls["loop"], 2),
            "workers_2_vs_loop": round(walls["workers_2"] / walls["loop"], 2),
            "workers_2_vs_workers_1": round(walls["workers_2"] / walls["workers_1"], 2),
            "identical_tables": identical,
            "cpus": os.cpu_count(),
            "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        }
        memory = []
        for k in args.lengths:
            longer = replace(
                how,
                iti_s=(how.iti_s[0] * k, how.iti_s[1] * k),
                baseline_s=how.baseline_s * k,
                post_s=how.post_s * k,
            )
            folder = work / f"length-{k:g}"
            protocols = shortened_protocols(folder / "protocols", longer)
            days = ("conditioning", "recall")
            simulate_cohort(1, folder / "sessions", args.rig, protocols, days=days)
            run_cohort(folder / "sessions", folder / "out", settings, None, 1)
            memory.append(
                {
                    "length_x": k,
                    "frames_per_session_max": frames(folder / "sessions"),
                    "peak_mb": {kind: round(mb, 1) for kind, mb in peaks(folder / "out").items()},
                }
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"{wall['animals']} animals x {len(DAYS)} days ({args.preset} preset, {args.rig.name}, "
        f"frames per session up to {wall['frames_per_session_max']}), {args.shuffles} shuffles; "
        f"load average {wall['load_average_1min']} on {wall['cpus']} CPUs"
    )
    print(f"{'run':<22} {'wall s (min)':>12} {'vs loop':>8}  every run")
    for name, key in (
        ("loop (no dask)", "loop"),
        ("--workers 1", "workers_1"),
        ("--workers 2", "workers_2"),
    ):
        ratio = walls[key] / walls["loop"]
        every = ", ".join(f"{x:.1f}" for x in times[key])
        print(f"{name:<22} {walls[key]:>12.1f} {ratio:>8.2f}  {every}")
    print(
        f"2 workers / 1 worker: {wall['workers_2_vs_workers_1']:.2f}; tables identical: {identical}"
    )
    print()
    head = ("session length", "imaging frames", "video frames", "score MB", "analyze MB")
    print(f"{head[0]:<15} {head[1]:>15} {head[2]:>13} {head[3]:>9} {head[4]:>11}")
    for m in memory:
        f, p = m["frames_per_session_max"], m["peak_mb"]
        print(
            f"{m['length_x']:>13g}x {f.get('imaging', 0):>15} {f.get('video', 0):>13} "
            f"{p.get('score', 0):>9.0f} {p.get('analyze', 0):>11.0f}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"wall": wall, "memory": memory}, indent=2))


if __name__ == "__main__":
    main()
