"""A session's trials as run: each planned trial with its measured stimulus times.

The times come from the ``cs_on``/``cs_off``/``us_on``/``us_off`` events, which the engine
logs at the recorded loopback edges (session clock). ``rig info``, the exports and the
freezing scores all read the trials through here.
"""

from __future__ import annotations

from typing import Any

from rig.data.folder import SessionFolder
from rig.program.timeline import Timeline

# each trial time and the event that measures it
TIME_EVENTS = {
    "cs_onset_s": "cs_on",
    "cs_offset_s": "cs_off",
    "us_onset_s": "us_on",
    "us_offset_s": "us_off",
}


def measured_stimulus_times(events: list[dict[str, Any]]) -> dict[tuple[int, str], float]:
    """``(trial, event kind) -> t_s`` for every stimulus onset and offset recorded."""
    kinds = set(TIME_EVENTS.values())
    return {
        (e["trial"], e["kind"]): e["t_s"]
        for e in events
        if e.get("kind") in kinds and e.get("trial") is not None
    }


def measured_trials(timeline: Timeline, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per planned trial: ``index``, ``phase``, ``cs``, ``us``, the measured
    ``cs_onset_s``... (None when not recorded) and the ``planned`` times."""
    measured = measured_stimulus_times(events)
    return [
        {
            "index": t.index,
            "phase": t.phase,
            "cs": t.cs,
            "us": t.us,
            **{key: measured.get((t.index, kind)) for key, kind in TIME_EVENTS.items()},
            "planned": {key: getattr(t, key) for key in TIME_EVENTS},
        }
        for t in timeline.trials
    ]


def trials_table(folder: SessionFolder) -> list[dict[str, Any]]:
    """:func:`measured_trials` of a session, with planned times where a measurement is missing."""
    rows = []
    for row in measured_trials(folder.attrs.timeline, folder.events()):
        for key, planned in row["planned"].items():
            if row[key] is None:
                row[key] = planned
        rows.append(row)
    return rows
