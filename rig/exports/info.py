"""What ``rig info`` reports about a session folder, as one JSON-ready dict."""

from __future__ import annotations

from typing import Any

from rig.behaviour.rescore import freezing_summary
from rig.data.folder import SessionFolder
from rig.data.integrity import LayoutError
from rig.data.trials import measured_trials
from rig.exports.timing import stimulus_timing


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
        "subject": attrs.subject,
        "experimenter": attrs.experimenters,
        "institution": attrs.institution,
        "lab": attrs.lab,
        "notes": attrs.notes,
        "started_utc": attrs.started_utc,
        "ended_utc": attrs.ended_utc,
        "software_version": attrs.software_version,
        "duration_s": _duration(events),
        "planned_duration_s": attrs.timeline.duration_s,
        "trials": measured_trials(attrs.timeline, events),
        "shocks_delivered": sum(1 for e in events if e.get("kind") == "us_on"),
        "timing": stimulus_timing(folder),
        "streams": _streams(folder),
        "journal_problems": (
            folder.journal.read_events().warnings if attrs.streams is None else []
        ),
        "freezing": _freezing(folder),
        "faults": [e for e in events if e.get("kind") == "fault"],
        "events": events,
    }


def _streams(folder: SessionFolder) -> dict[str, Any]:
    """Per stream, its frame accounting (from the journal while the session is not final)
    and the damaged frame ranges its shard files show (``damage``; checked without reading
    the frames: ``rig verify`` reads them all)."""
    attrs = folder.attrs
    streams = {k: dict(v) for k, v in (attrs.streams or {}).items()}
    if attrs.streams is None:  # a running or interrupted session: frames on disk so far
        progress = folder.journal.progress_by_stream()
        streams = {s: {"written": p.written} for s, p in progress.items()}
    for name in streams:
        stream = folder.stream(name)
        if stream is not None:
            n = None if attrs.streams is not None else streams[name]["written"]
            streams[name]["damage"] = [d.to_dict() for d in stream.check(n_frames=n)]
    return streams


def verify_session(folder: SessionFolder) -> dict[str, Any]:
    """What ``rig verify`` reports: every frame of every stream read and checked (its own
    checksum where the session has them, else its shard's index and blosc header), and the
    journal's lines that could not be read. ``intact`` when nothing is damaged."""
    status = folder.status
    final = status not in ("running", "interrupted")
    streams: dict[str, Any] = {}
    for name in folder.stream_groups():
        stream = folder.stream(name)
        if stream is None:
            continue
        n = stream.n_frames if final else len(folder.journal.index(name))
        try:
            checked = (
                "each frame's crc32c"
                if stream.layout().frame_crc
                else "shard indexes and frame headers (no crc32c per frame: an older session)"
            )
        except LayoutError:
            checked = "nothing: the frames' layout cannot be read"
        damage = stream.check("full", n_frames=n)
        streams[name] = {
            "frames": n,
            "checksums": checked,
            "damaged_frames": sum(d.frames for d in damage),
            "damage": [d.to_dict() for d in damage],
        }
    journal = folder.journal.read_events().warnings
    return {
        "path": str(folder),
        "status": status,
        "streams": streams,
        "journal_problems": journal,
        "intact": not any(s["damage"] for s in streams.values()),
    }


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
        "scoring": record.get("name") or "original",
        "scorings": [r["name"] for r in folder.scorings()],
        "scored_utc": record.get("scored_utc"),
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
