"""What ``rig info`` reports about a session folder, as one JSON-ready dict."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from rig.session import read_events
from rig.store import read_root_attrs


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_status(attrs: dict[str, Any]) -> str:
    """``running`` only while the writing process lives; a dead writer means ``interrupted``."""
    status = attrs.get("status", "interrupted")
    if status != "running":
        return status
    same_host = attrs.get("host") == socket.gethostname()
    if same_host and not _process_alive(int(attrs.get("pid", -1))):
        return "interrupted"
    return status


def trials_table(folder: Path, attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """Trials with measured stimulus times (planned times where a measurement is missing)."""
    rows = []
    for t in _trials(attrs, read_events(folder)):
        row = dict(t)
        for key, planned in t["planned"].items():
            if row[key] is None:
                row[key] = planned
        rows.append(row)
    return rows


def _trials(attrs: dict[str, Any], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    measured: dict[tuple[int, str], float] = {}
    for e in events:
        if e.get("kind") in ("cs_on", "cs_off", "us_on", "us_off") and e.get("trial") is not None:
            measured[(e["trial"], e["kind"])] = e["t_s"]
    out = []
    for t in attrs["timeline"]["trials"]:
        i = t["index"]
        out.append(
            {
                "index": i,
                "phase": t["phase"],
                "cs": t["cs"],
                "us": t["us"],
                "cs_onset_s": measured.get((i, "cs_on")),
                "cs_offset_s": measured.get((i, "cs_off")),
                "us_onset_s": measured.get((i, "us_on")),
                "us_offset_s": measured.get((i, "us_off")),
                "planned": {
                    k: t[k] for k in ("cs_onset_s", "cs_offset_s", "us_onset_s", "us_offset_s")
                },
            }
        )
    return out


def _streams_in_progress(folder: Path) -> dict[str, Any]:
    streams = {}
    for f in (folder / "journal").glob("progress-*.json"):
        try:
            data = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        streams[f.stem.removeprefix("progress-")] = {"written": data.get("written", 0)}
    return streams


def session_info(folder: Path) -> dict[str, Any]:
    """Everything ``rig info --json`` prints."""
    zpath = folder / "session.zarr"
    attrs = read_root_attrs(zpath)
    events = read_events(folder)
    trials = _trials(attrs, events)
    return {
        "path": str(folder),
        "status": effective_status(attrs),
        "end_reason": attrs.get("end_reason"),
        "simulated": attrs.get("simulated"),
        "mode": attrs.get("mode"),
        "rig": attrs.get("rig_name"),
        "protocol": {
            "name": attrs.get("protocol_name"),
            "sha256": attrs.get("protocol_sha256"),
            "seed": attrs.get("seed"),
            "file": attrs.get("protocol_file"),
        },
        "animal": attrs.get("animal"),
        "started_utc": attrs.get("started_utc"),
        "ended_utc": attrs.get("ended_utc"),
        "software_version": attrs.get("software_version"),
        "duration_s": _duration(events, attrs),
        "planned_duration_s": attrs["timeline"]["duration_s"],
        "trials": trials,
        "shocks_delivered": sum(1 for e in events if e.get("kind") == "us_on"),
        "streams": attrs.get("streams") or _streams_in_progress(folder),
        "freezing": _freezing(folder),
        "faults": [e for e in events if e.get("kind") == "fault"],
        "events": events,
    }


def _duration(events: list[dict[str, Any]], attrs: dict[str, Any]) -> float | None:
    ends = [e["t_s"] for e in events if e.get("kind") == "session_end"]
    if ends:
        return ends[-1]
    times = [e["t_s"] for e in events if isinstance(e.get("t_s"), (int, float))]
    return max(times) if times else None


def _freezing(folder: Path) -> dict[str, Any] | None:
    from rig.scoring import freezing_summary, stored_freezing

    record = stored_freezing(folder)
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
