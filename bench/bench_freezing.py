"""Freezing scorers side by side on the harder simulated video: fear-rig and ezTrack.

The video is a recall session (``protocols/recall.yaml``: 3-min baseline, 4 CS+ and 4 CS-) of
the default simulated rig (``docs/rigs/sim.yaml``, 640x480 at 30 fps, IR top view of a grid
floor) for an animal conditioned the day before with ``protocols/conditioning.yaml``: the
mouse breathes while it freezes, grooms and sniffs in place, darts at some tone onsets; the
camera adds temporal and row noise, flicker, slow drift and a swinging cable (and MJPEG
compression with ``--jpeg``). The frames come from the simulated rig's own renderer
(:class:`sim.world.SimWorld`), the truth from its behaviour model.

On the same frames, in one pass, pinned to one core (OpenCV limited to one thread):

- ``fear-rig``: :class:`rig.behaviour.motion.MotionScorer` pushed frame by frame as the live
  session does, scored with :func:`rig.behaviour.freezing.score_motion` and the rig file's
  parameters (automatic cutoff and threshold, the cable excluded);
- ``fear-rig, no cable mask``: the same without the rig file's exclusion;
- ``ezTrack``: the faithful re-implementation in ``bench/eztrack_baseline.py``: cutoff
  calibrated on 300 frames of the empty arena, the frame cropped to the chamber (which leaves
  the cable out) before a sigma-1 blur, FreezeThresh 200 px (its default) and MinDuration 15
  frames; ``ezTrack, tuned`` with the FreezeThresh that best matches the truth on the first
  half of the session.

Agreement is reported on the whole session and on the held-out second half (where the tuned
FreezeThresh was not chosen): frame agreement, Cohen's kappa, the worst and mean error of
percent freezing per CS epoch, and the fraction of true bouts whose onset was found within 2
frames. Speed: frames per second of each scorer's per-frame work on decoded grey frames, and
end to end: ezTrack reading an MJPEG AVI of the session (decode, grey, crop, blur, count, then
freezing), fear-rig reading the session's own Zarr store (both indices, then freezing), and
fear-rig re-scoring from its stored indices. Speeds are CPU time (the machines these run on
are shared: wall time adds the other users' load; the JSON has both).

Run: ``python bench/bench_freezing.py [--minutes M] [--jpeg Q] [--no-end-to-end] [--previous
DIR]``; writes ``bench/results/freezing.json`` (``freezing-jpegQ.json`` with ``--jpeg``).
``--previous DIR`` also scores with the motion index and rule of an older checkout (``git
worktree add DIR 03f1f68``: fear-rig before issue 21).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import eztrack_baseline as ez  # noqa: E402

from rig.behaviour.agreement import bout_spans, compare  # noqa: E402
from rig.behaviour.freezing import calibration_window, score_motion  # noqa: E402
from rig.behaviour.motion import MotionScorer, motion_indices  # noqa: E402
from rig.data.store import create_frame_array  # noqa: E402
from rig.files.freezing import FreezingParams  # noqa: E402
from rig.files.protocol import load_protocol  # noqa: E402
from rig.files.rigfile import DEFAULT_SIM_RIG, rig_from_text  # noqa: E402
from rig.program.schedule import frame_trigger_samples  # noqa: E402
from rig.run.session import plan_from_loaded  # noqa: E402
from sim.learning import AnimalState, save_state, update_state  # noqa: E402
from sim.mouse import MouseConfig  # noqa: E402
from sim.world import SimWorld  # noqa: E402

cv2 = ez.cv2
CHUNK = 256


@dataclass
class Session:
    world: SimWorld
    times: np.ndarray
    fps: float
    params: FreezingParams
    cs_epochs: list[tuple[float, float]]
    window: tuple[float, float]
    arena: tuple[int, int, int, int]


def recall_session(rig_text: str, minutes: float | None, jpeg: int | None, seed: int) -> Session:
    """The recall day of an animal conditioned the day before, on the given simulated rig."""
    rig = rig_from_text(rig_text, "rig")
    conditioning = plan_from_loaded(load_protocol(ROOT / "protocols" / "conditioning.yaml"), rig)
    plan = plan_from_loaded(load_protocol(ROOT / "protocols" / "recall.yaml"), rig)
    sched = plan.schedule
    triggers = frame_trigger_samples(sched.n_samples, sched.sample_rate_hz, sched.camera_rate_hz)
    if minutes is not None:
        triggers = triggers[triggers < minutes * 60 * sched.sample_rate_hz]
    camera = rig.device("camera").config.model_dump(exclude={"backend"})
    mouse = MouseConfig.model_validate({**camera, "jpeg_quality": jpeg})
    state_dir = tempfile.mkdtemp(prefix="bench-freezing-")
    state = update_state(AnimalState(animal_id="m1"), conditioning.schedule)
    save_state(state_dir, state)
    world = SimWorld(sched, triggers, None, mouse, None, seed, "m1", state_dir)
    times = triggers / sched.sample_rate_hz
    trials = [(t.cs_onset_s, t.cs_offset_s) for t in plan.timeline.trials]
    return Session(
        world=world,
        times=times,
        fps=sched.camera_rate_hz,
        params=rig.freezing,
        cs_epochs=[(a, b) for a, b in trials if a < times[-1]],
        window=calibration_window(rig.freezing, plan.timeline),
        arena=world.mouse.arena_region(),
    )


def previous_scorer(checkout: Path):
    """The motion scorer and scoring call of fear-rig before issue 21 (rig/motion.py and
    rig/freezing.py of an older checkout), to compare on the same frames."""
    import importlib.util

    def load(name: str, path: Path):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    motion = load("rig.motion", checkout / "rig" / "motion.py")  # its freezing imports it
    freezing = load("previous_freezing", checkout / "rig" / "freezing.py")
    return motion, freezing


def pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cv2.setNumThreads(1)


def run(
    minutes: float | None,
    jpeg: int | None,
    end_to_end: bool,
    seed: int,
    previous: Path | None = None,
) -> dict:
    pin_one_core()
    s = recall_session(DEFAULT_SIM_RIG, minutes, jpeg, seed)
    n, fps = len(s.times), s.fps
    truth = s.world.track.freezing
    h, w = s.world.mouse.config.height, s.world.mouse.config.width
    rng = np.random.default_rng(seed)
    empty = (s.world.mouse.render(i, animal=False) for i in range(n - ez.CAL_FRAMES, n))
    cutoff = ez.calibrate_cutoff(empty, rng)
    unmasked = s.params.model_copy(update={"exclude": []})
    scorers = {
        "fear-rig": MotionScorer(w, h, fps, s.params),
        "fear-rig, no cable mask": MotionScorer(w, h, fps, unmasked),
        "ezTrack": ez.EzTrackMotion(cutoff, s.arena),
    }
    if previous is not None:
        old_motion, old_freezing = previous_scorer(previous)
        old_params = old_freezing.FreezingParams.model_validate(
            {
                "exclude": s.params.model_dump(mode="json")["exclude"],
                "calibration_s": list(s.window),
            }
        )
        scorers["fear-rig before issue 21"] = old_motion.MotionScorer(w, h, fps, old_params)
    values = {name: np.full((n, 2), np.nan) for name in scorers}
    seconds = dict.fromkeys(scorers, 0.0)  # CPU time of this thread: what the scorer costs
    wall = dict.fromkeys(scorers, 0.0)  # on a shared machine, wall time adds the others' load
    work = Path(tempfile.mkdtemp(prefix="bench-freezing-video-"))
    avi = zarr_frames = writer = None
    if end_to_end:
        avi = work / "session.avi"
        writer = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
        group = zarr.open_group(str(work / "session.zarr"), mode="w")
        zarr_frames = create_frame_array(group, n, h, w, np.uint8, fps)
    for start in range(0, n, CHUNK):
        chunk = np.stack([s.world.render_video(i) for i in range(start, min(n, start + CHUNK))])
        for name, scorer in scorers.items():
            c0, t0 = time.thread_time(), time.perf_counter()
            pushed = [scorer.push(f) for f in chunk]
            seconds[name] += time.thread_time() - c0
            wall[name] += time.perf_counter() - t0
            rows = np.array(pushed, float).reshape(len(chunk), -1)  # (motion, step) or count
            values[name][start : start + len(chunk)] = rows
        if writer is not None:
            for f in chunk:
                writer.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
            zarr_frames[start : start + len(chunk)] = chunk
    if writer is not None:
        writer.release()

    half = n // 2
    rows: dict[str, dict] = {}
    for name in ("fear-rig", "fear-rig, no cable mask"):
        scorer = scorers[name]
        motion, step = values[name][:, 0].copy(), values[name][:, 1].copy()
        early = scorer.early_values()
        motion[: len(early[0])], step[: len(early[1])] = early
        result = score_motion(motion, fps, scorer.params, s.times, step=step, window=s.window)
        rows[name] = {
            "threshold": result.threshold,
            "step_threshold": result.step_threshold,
            "cutoff_grey": scorer.cutoff_grey,
            **_agreement(result.frozen, truth, s, half),
        }
    if previous is not None:
        name = "fear-rig before issue 21"
        old_scorer = scorers[name]
        result = old_freezing.score_motion(values[name][:, 0], fps, old_scorer.params, s.times)
        rows[name] = {"threshold": result.threshold, **_agreement(result.frozen, truth, s, half)}
    ez_motion = values["ezTrack"][:, 0]
    frozen = ez.measure_freezing(ez_motion, ez.FREEZE_THRESH_DEFAULT, ez.MIN_DURATION_DEFAULT)
    rows["ezTrack"] = {
        "freeze_thresh_px": ez.FREEZE_THRESH_DEFAULT,
        "cutoff_grey": cutoff,
        **_agreement(frozen, truth, s, half),
    }
    candidates = np.unique(np.round(np.geomspace(1, 5000, 120)))
    tuned = ez.tune_freeze_thresh(
        ez_motion[:half], truth[:half], ez.MIN_DURATION_DEFAULT, candidates
    )
    frozen = ez.measure_freezing(ez_motion, tuned, ez.MIN_DURATION_DEFAULT)
    rows["ezTrack, tuned"] = {
        "freeze_thresh_px": tuned,
        "cutoff_grey": cutoff,
        **_agreement(frozen, truth, s, half),
    }
    for name in scorers:
        rows[name]["frames_per_s"] = n / seconds[name]
        rows[name]["frames_per_wall_s"] = n / wall[name]
    for key in ("frames_per_s", "frames_per_wall_s"):
        rows["ezTrack, tuned"][key] = rows["ezTrack"][key]
    speed = {"per_frame_ratio": rows["fear-rig"]["frames_per_s"] / rows["ezTrack"]["frames_per_s"]}
    if end_to_end:
        speed.update(_end_to_end(avi, zarr_frames, s, cutoff, n))
    return {
        "benchmark": "freezing",
        "video": {
            "session": "recall (protocols/recall.yaml), default simulated rig",
            "frames": n,
            "size": [h, w],
            "fps": fps,
            "jpeg_quality": jpeg,
            "truth_freezing": float(truth.mean()),
            "truth_grooming": float(s.world.track.grooming.mean()),
            "truth_sniffing": float(s.world.track.sniffing.mean()),
            "true_bouts": len(bout_spans(truth)[0]),
        },
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "cpu": platform.processor() or platform.machine(),
            "one_core": True,
        },
        "results": rows,
        "speed": speed,
    }


def _agreement(frozen: np.ndarray, truth: np.ndarray, s: Session, half: int) -> dict:
    whole = compare(frozen, truth, s.times, s.cs_epochs)
    held = compare(frozen[half:], truth[half:], s.times[half:], s.cs_epochs)
    return {
        "frame_agreement": whole.frame_agreement,
        "kappa": whole.kappa,
        "cs_error_pp_max": whole.epoch_error_pp_max,
        "cs_error_pp_mean": float(np.mean(whole.epoch_error_pp)),
        "onsets_within_2": whole.onsets_within_tolerance,
        "onset_median_frames": whole.onset_error_median_frames,
        "bouts": whole.bouts,
        "held_out_agreement": held.frame_agreement,
        "held_out_kappa": held.kappa,
        "scored_freezing": float(frozen.mean()),
        "grooming_scored_freezing": _fraction(frozen, s.world.track.grooming),
        "sniffing_scored_freezing": _fraction(frozen, s.world.track.sniffing),
    }


def _fraction(frozen: np.ndarray, where: np.ndarray) -> float | None:
    return float(frozen[where].mean()) if where.any() else None


def _end_to_end(avi: Path, frames: zarr.Array, s: Session, cutoff: float, n: int) -> dict:
    """From a stored video to freezing per frame, each tool from its own input."""
    t0 = time.process_time()
    motion = ez.measure_motion_file(avi, cutoff, s.arena)
    ez.measure_freezing(motion, ez.FREEZE_THRESH_DEFAULT, ez.MIN_DURATION_DEFAULT)
    ez_s = time.process_time() - t0
    t0 = time.process_time()
    found = motion_indices(frames, s.fps, s.params)
    score_motion(found.motion, s.fps, s.params, s.times, step=found.step, window=s.window)
    rig_s = time.process_time() - t0
    t0 = time.process_time()
    score_motion(found.motion, s.fps, s.params, s.times, step=found.step, window=s.window)
    rescore_s = time.process_time() - t0
    return {
        "eztrack_avi_frames_per_s": len(motion) / ez_s,
        "fear_rig_zarr_frames_per_s": n / rig_s,
        "end_to_end_ratio": ez_s / rig_s * n / len(motion),
        "fear_rig_rescore_ms": 1000 * rescore_s,
    }


def print_table(r: dict) -> None:
    v = r["video"]
    print(
        f"freezing benchmark: {v['frames']} frames of {v['size'][1]}x{v['size'][0]} at "
        f"{v['fps']:g} fps ({v['session']}), JPEG {v['jpeg_quality'] or 'off'}; truth: "
        f"{100 * v['truth_freezing']:.1f}% freezing in {v['true_bouts']} bouts, "
        f"{100 * v['truth_grooming']:.1f}% grooming, {100 * v['truth_sniffing']:.1f}% sniffing"
    )
    head = (
        f"{'scorer':<26}{'frames/s':>9}{'agree%':>8}{'kappa':>7}{'held%':>7}{'CS max':>8}"
        f"{'CS mean':>8}{'onset<=2':>9}{'groom F%':>9}{'sniff F%':>9}"
    )
    print(head)
    print("-" * len(head))
    for name, row in r["results"].items():
        pct = [row["grooming_scored_freezing"], row["sniffing_scored_freezing"]]
        print(
            f"{name:<26}{row['frames_per_s']:>9.0f}{100 * row['frame_agreement']:>8.2f}"
            f"{row['kappa']:>7.3f}{100 * row['held_out_agreement']:>7.2f}"
            f"{row['cs_error_pp_max']:>8.1f}{row['cs_error_pp_mean']:>8.2f}"
            f"{100 * row['onsets_within_2']:>8.1f}%"
            + "".join(f"{'-' if p is None else f'{100 * p:.1f}':>9}" for p in pct)
        )
    sp = r["speed"]
    ratio = sp["per_frame_ratio"]
    print(f"per frame (decoded grey frames, one core, CPU time): fear-rig {ratio:.1f}x ezTrack")
    if "end_to_end_ratio" in sp:
        print(
            f"end to end (CPU): ezTrack from MJPEG AVI {sp['eztrack_avi_frames_per_s']:.0f} "
            "frames/s, "
            f"fear-rig from its Zarr store {sp['fear_rig_zarr_frames_per_s']:.0f} frames/s "
            f"({sp['end_to_end_ratio']:.1f}x); re-scoring from the stored indices "
            f"{sp['fear_rig_rescore_ms']:.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=None, help="only the first M minutes")
    parser.add_argument("--jpeg", type=int, default=None, help="MJPEG compression quality")
    parser.add_argument("--no-end-to-end", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--previous", type=Path, default=None, help="also score with an older checkout's code"
    )
    args = parser.parse_args()
    if cv2 is None:
        sys.exit("bench_freezing needs OpenCV: pip install opencv-python-headless")
    result = run(args.minutes, args.jpeg, not args.no_end_to_end, args.seed, args.previous)
    print_table(result)
    name = "freezing.json" if args.jpeg is None else f"freezing-jpeg{args.jpeg}.json"
    out = args.out or ROOT / "bench" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
