"""Human-readable text for ``rig info``."""

from __future__ import annotations

from typing import Any

from rig.exports.timing import timing_lines
from rig.files.inputfile import one_line
from rig.files.subject import subject_line


def _t(value: float | None) -> str:
    return f"{value:9.3f}" if value is not None else f"{'-':>9}"


def _sync_line(sync: dict[str, Any]) -> str:
    """How a stream's frames met its recorded edges, how its clock ran and its latency."""
    own = sync.get("clock") == "device"
    if sync.get("measured_rate_hz") is None:
        clock = "too few edges to measure the clock"
    else:
        clock = (
            f"{'own clock ' if own else ''}{sync['measured_rate_hz']:.4f} Hz "
            f"(protocol {sync['nominal_rate_hz']:g} Hz, {sync['drift_ppm']:+.1f} ppm), "
            f"jitter {sync['jitter_s'] * 1e6:.1f} us"
        )
    latency = ""
    if sync.get("latency_s") is not None:
        what = "start latency" if own else "latency"
        spread = sync.get("latency_sd_s")
        latency = (
            f"\n    {what} {sync['latency_s'] * 1e3:.3f} ms"
            + (f" (sd {spread * 1e3:.3f} ms)" if spread is not None else "")
            + f" after the {sync.get('latency_reference', 'reference')}"
        )
    counts = (
        f"{sync['edges_missing']} missing / {sync['edges_extra']} extra edges, "
        f"{sync['frames_without_edge']} frames without edge, "
        f"{sync['edges_without_frame']} exposures without frame"
    )
    return f"  sync {sync['line']}: {clock}{latency}\n    {counts}" + (
        "" if sync.get("consistent") else "  <- mismatch"
    )


def _s(value: Any) -> str:
    """A name from a user or a session file, printable on one line (no forged lines, no
    escape sequences reach the terminal)."""
    return one_line(str(value))


MAX_DAMAGE_LINES = 20


def damage_lines(damage: list[dict[str, Any]], indent: str = "  ") -> list[str]:
    """One line per damaged frame range (at most :data:`MAX_DAMAGE_LINES`)."""
    lines = []
    for d in damage[:MAX_DAMAGE_LINES]:
        first, last = d["first_frame"], d["last_frame"]
        span = f"frame {first}" if first == last else f"frames {first}-{last}"
        lines.append(f"{indent}{d['stream']} {span}: {d['kind']} ({_s(d['detail'])})")
    if len(damage) > MAX_DAMAGE_LINES:
        lines.append(f"{indent}... and {len(damage) - MAX_DAMAGE_LINES} more damaged ranges")
    return lines


def verify_text(report: dict[str, Any]) -> str:
    """``rig verify``'s text: per stream what was checked and every damaged range."""
    lines = [f"session   {_s(report['path'])}", f"status    {report['status']}"]
    for name, s in report["streams"].items():
        damaged = s["damaged_frames"]
        lines.append(
            f"{name:<8} {s['frames']} frames checked ({s['checksums']}): "
            + (f"{damaged} damaged" if damaged else "intact")
        )
        lines += damage_lines(s["damage"])
    for warning in report["journal_problems"]:
        lines.append(f"journal   {_s(warning)}")
    lines.append("intact" if report["intact"] else "DAMAGED")
    return "\n".join(lines)


def _metadata_lines(info: dict[str, Any]) -> list[str]:
    """The subject and who ran the session, as given (nothing for what was not)."""
    lines = []
    subject = info.get("subject")
    if subject:
        lines.append(f"subject   {_s(subject_line(subject))}")
    if info.get("experimenter"):
        lines.append("by        " + "; ".join(_s(n) for n in info["experimenter"]))
    where = [info.get("lab"), info.get("institution")]
    if any(where):
        lines.append("at        " + ", ".join(_s(w) for w in where if w))
    if info.get("notes"):
        lines.append(f"notes     {_s(info['notes'])}")
    return lines


def info_text(info: dict[str, Any]) -> str:
    p = info["protocol"]
    lines = [
        f"session   {_s(info['path'])}",
        f"status    {info['status']}"
        + (f" ({_s(info['end_reason'])})" if info.get("end_reason") else ""),
        f"rig       {_s(info['rig'])} [{_s(info['mode'])}]",
        f"protocol  {_s(p['name'])} (seed {p['seed']}, sha256 {_s(p['sha256'])[:12]}...)",
        f"animal    {_s(info['animal'])}",
        *_metadata_lines(info),
        f"started   {info['started_utc']}   ended {info['ended_utc']}",
        f"duration  {info['duration_s']:.1f} s of {info['planned_duration_s']:.1f} s planned"
        if info["duration_s"] is not None
        else "duration  -",
        f"shocks    {info['shocks_delivered']} delivered",
        "",
        f"{'#':>3}  {'phase':<14} {'CS':<10} {'US':<7} {'CS on':>9} {'CS off':>9} {'US on':>9} "
        f"{'US off':>9}",
    ]
    for t in info["trials"]:
        lines.append(
            f"{t['index'] + 1:>3}  {_s(t['phase']):<14} {_s(t['cs']):<10} {_s(t['us'] or '-'):<7} "
            f"{_t(t['cs_onset_s'])} {_t(t['cs_offset_s'])} {_t(t['us_onset_s'])} "
            f"{_t(t['us_offset_s'])}"
        )
    lines.append("")
    if info.get("timing"):
        lines += timing_lines(info["timing"])
        lines.append("")
    for name, s in info["streams"].items():
        if "frames_expected" in s:
            on_clock = s.get("frames_on_clock")
            expected = (
                f"planned {s['frames_expected']}, on its clock {on_clock}"
                if on_clock is not None
                else f"expected {s['frames_expected']}"
            )
            lines.append(
                f"{name:<8} {expected}, edges {s['edges']}, received "
                f"{s['received']}, written {s['written']}, dropped {s['dropped']}"
                + ("" if s.get("complete") else "  <- check")
            )
            if s.get("sync"):
                lines.append(_sync_line(s["sync"]))
        else:
            lines.append(f"{name:<8} written {s.get('written', 0)} (session not finalised)")
        lines += damage_lines(s.get("damage", []))
    for warning in info.get("journal_problems", []):
        lines.append(f"journal   {_s(warning)}")
    frz = info.get("freezing")
    if frz:
        auto = " (auto)" if frz["threshold_auto"] else ""
        lines.append("")
        n = len(frz.get("scorings") or [1])
        lines.append(
            f"freezing  scoring {_s(frz.get('scoring', 'original'))} (current of {n} stored; "
            "rig score --list)"
        )
        lines.append(
            f"          threshold {frz['threshold']:.4g}{auto}, min {frz['min_freeze_s']:g} s, "
            f"{frz['percent_frozen']:.1f}% of the session"
        )
        for t in frz["trials"]:
            cs = t.get("percent_cs")
            lines.append(
                f"{t['index'] + 1:>3}  {_s(t['cs']):<10} CS {cs:5.1f}%"
                if cs is not None
                else f"{t['index'] + 1:>3}  {_s(t['cs']):<10} CS     -"
            )
    for f in info["faults"]:
        lines.append(f"fault at {f['t_s']:.3f} s: {_s(f['detail'])}")
    return "\n".join(lines)
