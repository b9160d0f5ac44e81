"""Freezing of a recorded session, scored again from what it stored (``rig score``).

The session stores each video frame's motion and step indices under ``scores/`` as it ends
(:func:`rig.behaviour.live.write_live_scores`), so re-scoring with another threshold or
minimum bout never touches the video; another ROI or other exclusions recompute the indices
from the stored frames. The rule is :func:`rig.behaviour.freezing.score_motion` (or the
wheel's, for ``measure: locomotion``); the result, per trial and per phase epoch, is stored as
the ``scores/`` record ``freezing``. Everything goes through the session folder's API
(:class:`rig.data.folder.SessionFolder`).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pydantic import ValidationError

from rig.behaviour.freezing import calibration_window, freezing_by_epoch, score_motion
from rig.behaviour.locomotion import WheelBins, score_locomotion_freezing, wheel_speed
from rig.behaviour.motion import motion_indices
from rig.data.folder import FrameStream, SessionFolder, utc_now
from rig.data.trials import trials_table
from rig.files.freezing import FreezingParams
from rig.files.inputfile import InputError, problems_from_validation
from rig.program.schedule import VIDEO, WHEEL
from rig.program.timeline import PhaseSpan


def motion_params_record(
    params: FreezingParams, cutoff_grey: float | None, n_blocks: int
) -> dict[str, Any]:
    """What is stored with the indices: the parameters, the cutoff measured and the number of
    blocks an index counts."""
    return {
        **params.model_dump(mode="json"),
        "noise_cutoff_measured_grey": cutoff_grey,
        "blocks": n_blocks,
    }


def _video_times(video: FrameStream, device_index: np.ndarray) -> np.ndarray:
    stamps, frame_dev = video.timestamps_s(), video.device_index()
    if stamps is None or frame_dev is None:
        raise ValueError("the video has no timestamps: run `rig recover` on this session first")
    lookup = dict(zip(frame_dev.tolist(), stamps.tolist(), strict=False))
    return np.array([lookup.get(int(k), np.nan) for k in device_index], float)


def _params(folder: SessionFolder, changes: dict[str, Any]) -> FreezingParams:
    """The rig file's freezing parameters with the user's changes; when the stored indices are
    reused, the regions they were computed with."""
    params = folder.attr_as("freezing_params", FreezingParams).model_dump(mode="json")
    stored = folder.scores()
    motion_params = stored.motion_params if stored is not None else None
    if motion_params and "roi" not in changes and "exclude" not in changes:
        params = {**params, "roi": motion_params["roi"], "exclude": motion_params["exclude"]}
    try:
        return FreezingParams.model_validate({**params, **changes}, strict=False)
    except ValidationError as exc:  # a region given on the command line: one line each
        option = "--roi/--exclude" if "roi" in changes or "exclude" in changes else "--min-freeze-s"
        raise InputError(option, problems_from_validation(exc)) from None


def score_session(
    folder: SessionFolder,
    threshold: float | None = None,
    min_freeze_s: float | None = None,
    roi: Any = None,
    exclude: list[Any] | None = None,
    name: str | None = None,
    make_current: bool = True,
) -> dict[str, Any]:
    """(Re-)score a session's freezing; stores the result as a new named scoring under
    ``scores/`` (earlier ones are kept), marks it current unless ``make_current`` is false,
    and returns its record (with its ``name``).

    ``threshold``/``min_freeze_s`` override the rig file's values and reuse the current
    scoring's indices; ``roi``/``exclude`` (regions in pixels) compute a new index set from
    the stored video (the earlier sets are kept).
    """
    changes: dict[str, Any] = {}
    if min_freeze_s is not None:
        changes["min_freeze_s"] = min_freeze_s
    if roi is not None:
        changes["roi"] = roi
    if exclude is not None:
        changes["exclude"] = exclude
    folder.require_finalized()  # a running or interrupted one has no timestamps yet
    params = _params(folder, changes)
    if params.threshold != "auto" and threshold is None:
        threshold = float(params.threshold)
    timeline = folder.attrs.timeline
    trials = trials_table(folder)
    phases = [_phase(p) for p in timeline.phases]
    if params.measure == "locomotion":
        return _score_locomotion(folder, params, threshold, trials, phases, name, make_current)
    video = folder.stream(VIDEO)
    if video is None:
        raise ValueError("this session has no behaviour video to score")
    fps = folder.attrs.video_fps
    stored = folder.scores()
    if (
        roi is not None
        or exclude is not None
        or stored is None
        or stored.motion_index is None
        or stored.step_index is None  # scored before the step index existed
    ):
        device_index = video.device_index()
        if device_index is None:
            raise ValueError("the video has no frame numbers: run `rig recover` first")
        found = motion_indices(video.frames, fps, params)
        record = motion_params_record(params, found.cutoff_grey, found.n_blocks)
        motion_name = folder.write_motion(device_index, found.motion, found.step, record)
        motion, step = found.motion.astype(float), found.step.astype(float)
    else:
        assert stored.device_index is not None
        device_index, motion_name = stored.device_index, stored.motion_name
        motion, step = stored.motion_index.astype(float), stored.step_index.astype(float)
    times = _video_times(video, device_index)
    window = calibration_window(params, timeline)
    result = score_motion(motion, fps, params, times, threshold, step, window)
    dumped = params.model_dump(mode="json")
    record = {
        "name": name,
        "scored_utc": utc_now(),
        "simulated": bool(folder.attrs.simulated),
        "motion": motion_name,
        "measure": "motion",
        "threshold": result.threshold,
        "step_threshold": result.step_threshold,
        "threshold_auto": result.auto,
        "calibration_s": list(window) if result.auto else None,
        "min_freeze_s": params.min_freeze_s,
        "gap_s": params.gap_s,
        "roi": json.loads(json.dumps(dumped["roi"])),
        "exclude": dumped["exclude"],
        "percent_frozen": _percent(result.frozen),
        "results": freezing_by_epoch(times, result.frozen, trials, phases),
    }
    record["name"] = folder.write_freezing(times, result.frozen, record, make_current=make_current)
    return record


def _score_locomotion(
    folder: SessionFolder,
    params: FreezingParams,
    threshold: float | None,
    trials: list[dict],
    phases: list[dict],
    name: str | None,
    make_current: bool,
) -> dict[str, Any]:
    """Wheel speed per bin from the recorded encoder edges (centred window), and freezing."""
    if threshold is not None:
        params = params.model_copy(update={"speed_threshold_cm_s": threshold})
    attrs = folder.attrs
    bins = WheelBins(attrs.sample_rate_hz, attrs.timeline.duration_s)
    wheel = folder.edges(WHEEL)
    if wheel is not None:
        bins.add(wheel.samples)
    speed = wheel_speed(bins, params, centred=True)
    frozen = score_locomotion_freezing(
        speed, bins.rate_hz, params.speed_threshold_cm_s, params.min_freeze_s
    )
    times = bins.times_s()
    record = {
        "name": name,
        "scored_utc": utc_now(),
        "simulated": bool(attrs.simulated),
        "motion": None,
        "measure": "locomotion",
        "threshold": params.speed_threshold_cm_s,
        "step_threshold": None,
        "threshold_auto": False,
        "calibration_s": None,
        "min_freeze_s": params.min_freeze_s,
        "gap_s": 0.0,
        "roi": None,
        "exclude": [],
        "percent_frozen": _percent(frozen),
        "results": freezing_by_epoch(times, frozen, trials, phases),
    }
    record["name"] = folder.write_freezing(
        times, frozen, record, wheel_speed_cm_s=speed, make_current=make_current
    )
    return record


def _percent(frozen: np.ndarray) -> float | None:
    return float(100 * frozen.mean()) if len(frozen) else None


def _phase(p: PhaseSpan) -> dict:
    return {"name": p.name, "start_s": p.start_s, "end_s": p.end_s}


def freezing_summary(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-trial percentages for ``rig info`` and the CSV export."""
    out = []
    for t in record["results"]["trials"]:
        row = {"index": t["index"], "phase": t["phase"], "cs": t["cs"], "us": t["us"]}
        for epoch, value in t["epochs"].items():
            row[f"percent_{epoch}"] = value["percent"] if value else None
        out.append(row)
    return out
