"""``rig plan`` and ``rig validate``: the compiled timeline and its totals, before any run."""

from __future__ import annotations

from typing import Any

from rig.files.protocol import Shock
from rig.program.recording import no_imaging_warning
from rig.program.schedule import expected_frames
from rig.run.session import SessionPlan

# Stored fraction of the raw frame bytes for a driver that cannot show sample frames (real
# cameras and microscopes: their content is unknown before the session). A planning estimate.
COMPRESSION = {"video": 0.8, "imaging": 0.75}
# Everything but the frames, per frame of a stream: its journal index (8 B), timestamps and
# device number (compressed), its two recorded edges, and (video) the scores of one scoring.
OVERHEAD_PER_FRAME = {"video": 80, "imaging": 40}
SECTION = {"video": "camera", "imaging": "imaging"}


def _frame_bytes(plan: SessionPlan, section: str) -> int:
    device = plan.rig.device(section)
    width = getattr(device.config, "width", None) if device else None
    height = getattr(device.config, "height", None) if device else None
    if width is None or height is None:
        width, height = (640, 480) if section == "camera" else (512, 512)
    return int(width * height * (1 if section == "camera" else 2))


def stored_frame_bytes(plan: SessionPlan, stream: str) -> float:
    """Bytes one frame of ``stream`` takes in the session: measured by compressing sample
    frames as the session does when the driver can render some (the simulated rig), else the
    raw size times :data:`COMPRESSION`."""
    section = SECTION[stream]
    device = plan.rig.device(section)
    rate = plan.schedule.camera_rate_hz if stream == "video" else plan.schedule.imaging_rate_hz
    if device is not None and device.spec.sample_frames is not None and rate:
        key = (device.driver, section, device.config.model_dump_json(), float(rate))
        measured = _measured(key, device.spec.sample_frames, device.config)
        if measured is not None:
            return measured
    return _frame_bytes(plan, section) * COMPRESSION[stream]


_MEASURED: dict[tuple, float | None] = {}  # a driver's sample, measured once per process


def _measured(key: tuple, sample: Any, config: Any) -> float | None:
    if key not in _MEASURED:
        from rig.data.shards import stored_frame_bytes as measure

        frames = sample(key[1], config)
        _MEASURED[key] = None if frames is None else measure(frames, key[3])
    return _MEASURED[key]


def totals(plan: SessionPlan) -> dict[str, Any]:
    tl, sched = plan.timeline, plan.schedule
    video = expected_frames(sched, "video")
    imaging = expected_frames(sched, "imaging")
    imaging_dev = plan.rig.device("imaging")
    imaging_stored = (
        imaging
        if imaging_dev
        and getattr(imaging_dev.config, "delivers_frames", imaging_dev.driver != "frame-clock")
        else 0
    )
    disk = video * (stored_frame_bytes(plan, "video") + OVERHEAD_PER_FRAME["video"])
    if imaging_stored:
        disk += imaging_stored * (
            stored_frame_bytes(plan, "imaging") + OVERHEAD_PER_FRAME["imaging"]
        )
    currents = sorted({plan.protocol.stimuli[t.us].current_ma for t in tl.shocks})  # type: ignore[union-attr]
    return {
        "duration_s": tl.duration_s,
        "trials": len(tl.trials),
        "trials_per_phase": {p.name: p.n_trials for p in tl.phases},
        "cs_counts": _counts([t.cs for t in tl.trials]),
        "shocks": len(tl.shocks),
        "shock_currents_ma": currents,
        "video_frames": video,
        "imaging_frames": imaging,
        "disk_estimate_bytes": int(disk),
    }


def _counts(names: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in names:
        out[n] = out.get(n, 0) + 1
    return out


def warnings(plan: SessionPlan) -> list[str]:
    """What the user must know before running: each summary shows these first."""
    warning = no_imaging_warning(plan.protocol, plan.rig)
    return [warning] if warning else []


def plan_dict(plan: SessionPlan) -> dict[str, Any]:
    """Everything ``rig plan --json`` prints. Deterministic for a file and seed."""
    return {
        "protocol": plan.protocol.protocol,
        "seed": plan.protocol.seed,
        "sha256": plan.loaded.sha256,
        "rig": plan.rig.name,
        "mode": plan.rig.mode,
        "imaging_recorded": plan.schedule.imaging_rate_hz is not None,
        "warnings": warnings(plan),
        "totals": totals(plan),
        "phases": [
            {"name": p.name, "start_s": p.start_s, "end_s": p.end_s, "trials": p.n_trials}
            for p in plan.timeline.phases
        ],
        "trials": [
            {
                "index": t.index,
                "phase": t.phase,
                "cs": t.cs,
                "us": t.us,
                "cs_onset_s": t.cs_onset_s,
                "cs_offset_s": t.cs_offset_s,
                "us_onset_s": t.us_onset_s,
                "us_offset_s": t.us_offset_s,
                "iti_after_s": t.iti_after_s,
            }
            for t in plan.timeline.trials
        ],
    }


def fmt_duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def summary_lines(plan: SessionPlan) -> list[str]:
    """The one-screen summary ``rig validate`` prints."""
    p, t = plan.protocol, totals(plan)
    lines = [f"  WARNING   {w}" for w in warnings(plan)]
    lines += [
        f"  protocol  {p.protocol} (version {p.version}, seed {p.seed})",
        f"  rig       {plan.rig.name} [{plan.rig.mode}]",
        f"  duration  {fmt_duration(t['duration_s'])} ({t['duration_s']:.1f} s)",
    ]
    for span in plan.timeline.phases:
        trials = f"{span.n_trials} trials" if span.n_trials else "no stimuli"
        lines.append(
            f"  phase     {span.name}: {fmt_duration(span.end_s - span.start_s)}, {trials}"
        )
    for name, stim in p.stimuli.items():
        if isinstance(stim, Shock):
            desc = f"shock {stim.current_ma:g} mA for {stim.duration_s:g} s"
        elif stim.type == "tone":
            desc = f"tone {stim.frequency_hz:g} Hz, {stim.level_db:g} dB, {stim.duration_s:g} s"
            if stim.pips:
                desc += f", pips {stim.pips.rate_hz:g}/s of {stim.pips.on_s:g} s"
        else:
            desc = f"white noise {stim.level_db:g} dB, {stim.duration_s:g} s"
        lines.append(f"  stimulus  {name}: {desc}")
    limits = plan.rig.safety
    lines.append(
        f"  shocks    {t['shocks']} (rig limits: {limits.max_current_ma:g} mA, "
        f"{limits.max_shock_s:g} s, {limits.max_shocks} per session)"
    )
    lines.append(f"  sha256    {plan.loaded.sha256}")
    return lines


def plan_table(plan: SessionPlan) -> str:
    """The human-readable ``rig plan`` output."""
    t = totals(plan)
    rows = [
        f"{'#':>3}  {'phase':<14} {'CS':<12} {'US':<8} {'CS on':>9} {'CS off':>9} "
        f"{'US on':>9} {'ITI':>7}"
    ]
    for tr in plan.timeline.trials:
        us_on = f"{tr.us_onset_s:9.2f}" if tr.us_onset_s is not None else f"{'-':>9}"
        iti = f"{tr.iti_after_s:7.1f}" if tr.iti_after_s is not None else f"{'-':>7}"
        rows.append(
            f"{tr.index + 1:>3}  {tr.phase:<14} {tr.cs:<12} {tr.us or '-':<8} "
            f"{tr.cs_onset_s:9.2f} {tr.cs_offset_s:9.2f} {us_on} {iti}"
        )
    rows.append("")
    rows.append(
        f"protocol {plan.protocol.protocol}, seed {plan.protocol.seed}, rig {plan.rig.name} "
        f"[{plan.rig.mode}]"
    )
    rows.append(f"duration        {fmt_duration(t['duration_s'])} ({t['duration_s']:.1f} s)")
    per_phase = ", ".join(f"{k}: {v}" for k, v in t["trials_per_phase"].items())
    rows.append(f"trials          {t['trials']} ({per_phase})")
    rows.append(
        f"shocks          {t['shocks']}"
        + (f" at {', '.join(f'{c:g}' for c in t['shock_currents_ma'])} mA" if t["shocks"] else "")
    )
    rows.append(f"video frames    {t['video_frames']}")
    rows.append(f"imaging frames  {t['imaging_frames']}")
    rows.append(f"disk (estimate) {fmt_bytes(t['disk_estimate_bytes'])}")
    rows += [f"WARNING         {w}" for w in warnings(plan)]
    return "\n".join(rows)
