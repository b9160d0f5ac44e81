"""What ``rig info`` reports about a session folder, as one JSON-ready dict."""

from __future__ import annotations

from typing import Any

from rig.behaviour.rescore import freezing_summary
from rig.data.folder import SessionFolder
from rig.data.trials import measured_trials


def session_info(folder: SessionFolder) -> dict[str, Any]:
    """Everything ``rig info --json`` prints."""
    attrs = folder.attrs
    events = folder.events()
    return {
        "path": str(folder),
        "status": folder.status,
        "end_reason": attrs.end_reason,
        "simulated": attrs.simulated,
        "mode": attrs.mode,
        "rig": attrs.rig_name,
        "protocol": {
            "name": attrs.protocol_name,
            "sha256": attrs.protocol_sha256,
            "seed": attrs.seed,
            "file": attrs.protocol_file,
        },
        "animal": attrs.animal,
        "started_utc": attrs.started_utc,
        "ended_utc": attrs.ended_utc,
        "software_version": attrs.software_version,
        "duration_s": _duration(events),
        "planned_duration_s": attrs.timeline.duration_s,
        "trials": measured_trials(attrs.timeline, events),
        "shocks_delivered": sum(1 for e in events if e.get("kind") == "us_on"),
        "streams": attrs.streams or _streams_in_progress(folder),
        "freezing": _freezing(folder),
        "faults": [e for e in events if e.get("kind") == "fault"],
        "events": events,
    }


def _streams_in_progress(folder: SessionFolder) -> dict[str, Any]:
    """Frames on disk per stream, from the journal (a running or interrupted session)."""
    return {s: {"written": p.written} for s, p in folder.journal.progress_by_stream().items()}


def _duration(events: list[dict[str, Any]]) -> float | None:
    ends = [e["t_s"] for e in events if e.get("kind") == "session_end"]
    if ends:
        return ends[-1]
    times = [e["t_s"] for e in events if isinstance(e.get("t_s"), (int, float))]
    return max(times) if times else None


def _freezing(folder: SessionFolder) -> dict[str, Any] | None:
    record = folder.freezing_record()
    if record is None:
        return None
    return {
        "threshold": record["threshold"],
        "threshold_auto": record["threshold_auto"],
        "min_freeze_s": record["min_freeze_s"],
        "percent_frozen": record["percent_frozen"],
        "trials": freezing_summary(record),
        "phases": [
            {
                "name": p["name"],
                **{k: (v["percent"] if v else None) for k, v in p["epochs"].items()},
            }
            for p in record["results"]["phases"]
        ],
    }
