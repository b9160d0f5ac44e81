"""How well a session kept time: every stimulus's planned and measured onset and offset.

The measured times are the engine's ``cs_on``/``cs_off``/``us_on``/``us_off`` events, logged at
the edges the DAQ recorded on the loopback lines (never at the schedule's times): the shock gate
as played, and the tone from the envelope of the recorded sound (``lines.sound_loopback``) or
from the tone gate's loopback. The planned times are the schedule's samples (``scheduled_s``).

Tolerances: a gate is a digital output on the session's own sample clock, so its recorded
edges fall on the planned sample, or one sample late where the loopback input is sampled on
the clock edge that updates the output (NI X Series DI): an error over one sample is a timing
bug. (The simulated DAQ's loopbacks read the played samples exactly: its tests ask for 0.)
The tone's envelope is measured where it passes a threshold inside the raised-cosine ramp, so
its onset and offset may lie up to one ramp (``ramp_ms``) inside the planned ones.
"""

from __future__ import annotations

from typing import Any

import yaml

from rig.data.folder import SessionFolder
from rig.files.inputfile import one_line

KINDS = {"cs": "tone", "us": "shock gate"}


def stimulus_timing(folder: SessionFolder) -> dict[str, Any]:
    """``rig info``'s ``timing``: one row per stimulus and the worst errors."""
    attrs = folder.attrs
    fs = attrs.sample_rate_hz
    rows = stimulus_rows(folder.events(), fs)
    gates = [r for r in rows if r["kind"] == "us"]
    tones = [r for r in rows if r["kind"] == "cs"]
    stimuli = (attrs.protocol.model_extra or {}).get("stimuli") or {}
    ramps = {
        name: float(s.get("ramp_ms", 0.0)) / 1000.0
        for name, s in stimuli.items()
        if isinstance(s, dict)
    }
    worst_gate = _worst(gates)
    worst_tone = _worst(tones)
    tone_ok = all(
        abs(e) <= ramps.get(r["stimulus"], 0.0) + 1.0 / fs
        for r in tones
        for e in (r["onset_error_s"], r["offset_error_s"])
        if e is not None
    )
    return {
        "sample_rate_hz": fs,
        "tone_measured_on": tone_measurement(attrs.rig_text),
        "stimuli": rows,
        "worst_error_s": max(worst_gate, worst_tone),
        "worst_gate_error_s": worst_gate,
        "worst_gate_error_samples": round(worst_gate * fs, 3),
        "worst_tone_error_s": worst_tone,
        "gates_within_one_sample": worst_gate * fs <= 1.0 + 1e-6,
        "tones_within_ramp": tone_ok,
        "unrecorded": sum(
            1 for r in rows if r["measured_onset_s"] is None or r["measured_offset_s"] is None
        ),
    }


def stimulus_rows(events: list[dict[str, Any]], fs: float) -> list[dict[str, Any]]:
    """Per delivered stimulus: planned and measured onset and offset, and their errors."""
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for e in events:
        kind, _, edge = str(e.get("kind", "")).partition("_")
        if kind not in KINDS or edge not in ("on", "off") or e.get("trial") is None:
            continue
        row = rows.setdefault(
            (e["trial"], kind),
            {
                "trial": e["trial"],
                "kind": kind,
                "line": KINDS[kind],
                "stimulus": e.get("stimulus", ""),
                "phase": e.get("phase", ""),
                "planned_onset_s": None,
                "planned_offset_s": None,
                "measured_onset_s": None,
                "measured_offset_s": None,
            },
        )
        which = "onset" if edge == "on" else "offset"
        row[f"planned_{which}_s"] = e.get("scheduled_s")
        if e.get("recorded", True):
            row[f"measured_{which}_s"] = e["t_s"]
    out = []
    for row in sorted(rows.values(), key=lambda r: (r["planned_onset_s"] or 0.0, r["kind"])):
        for which in ("onset", "offset"):
            planned, measured = row[f"planned_{which}_s"], row[f"measured_{which}_s"]
            error = None if planned is None or measured is None else measured - planned
            row[f"{which}_error_s"] = error
            row[f"{which}_error_samples"] = None if error is None else round(error * fs, 3)
        out.append(row)
    return out


def tone_measurement(rig_text: str | None) -> str:
    """What the tone's times were measured on, from the session's rig file."""
    try:
        rig = yaml.safe_load(rig_text or "") or {}
    except yaml.YAMLError:
        rig = {}
    lines = ((rig.get("daq") or {}) if isinstance(rig, dict) else {}).get("lines") or {}
    if isinstance(lines, dict) and lines.get("sound_loopback"):
        return f"sound envelope ({lines['sound_loopback']})"
    return "tone gate loopback"


def _worst(rows: list[dict[str, Any]]) -> float:
    errors = [
        abs(e) for r in rows for e in (r["onset_error_s"], r["offset_error_s"]) if e is not None
    ]
    return max(errors, default=0.0)


def timing_lines(timing: dict[str, Any]) -> list[str]:
    """``rig info``'s text for the timing: the worst errors and the stimuli out of tolerance."""
    fs = timing["sample_rate_hz"]
    gate = timing["worst_gate_error_s"]
    lines = [
        f"timing    worst error: shock gate {gate * 1e3:.3f} ms ({gate * fs:.2f} samples)"
        + ("" if timing["gates_within_one_sample"] else "  <- over one sample")
        + f", tone {timing['worst_tone_error_s'] * 1e3:.3f} ms on the "
        + timing["tone_measured_on"]
        + ("" if timing["tones_within_ramp"] else "  <- beyond the ramp"),
    ]
    if timing["unrecorded"]:
        lines.append(f"          {timing['unrecorded']} stimuli with an edge not recorded")
    lines.append(
        f"{'#':>3}  {'stimulus':<10} {'line':<10} {'planned on':>10} {'measured':>10} "
        f"{'error ms':>8}  {'planned off':>11} {'measured':>10} {'error ms':>8}"
    )
    for r in timing["stimuli"]:
        lines.append(
            f"{r['trial'] + 1:>3}  {one_line(r['stimulus']):<10} {r['line']:<10} "
            f"{_t(r['planned_onset_s'], 10)} {_t(r['measured_onset_s'], 10)} "
            f"{_ms(r['onset_error_s'])}  {_t(r['planned_offset_s'], 11)} "
            f"{_t(r['measured_offset_s'], 10)} {_ms(r['offset_error_s'])}"
        )
    return lines


def _t(value: float | None, width: int) -> str:
    return f"{value:{width}.4f}" if value is not None else f"{'-':>{width}}"


def _ms(value: float | None) -> str:
    return f"{value * 1e3:+8.3f}" if value is not None else f"{'-':>8}"
