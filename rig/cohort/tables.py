"""The cohort's tables, made from the finished tasks' results (CSV, one row per record).

- ``sessions.csv``: one row per session: animal, day, stage, status, the scoring.
- ``trials.csv``: one row per trial: percent freezing before the CS, during it, during the US
  and in the interval after it (``rig score``'s epochs).
- ``freezing.csv``: one row per session and CS role (``cs_plus``, ``cs_minus``): the mean over
  its trials of percent freezing during the CS (and before it). The group statistics use it.
- ``network.csv``: one row per analysed session: ``rig analyze``'s counts and network metrics
  (responsive neurons, ensemble, edges, hubs, the conditioning day's US-responsive neurons
  (USR) and their links to CS+-responsive ones).

Every table is sorted by animal and day, numbers written to 6 significant digits, so the same
results give byte-identical files however the tasks were spread over workers.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig.cohort.graph import ANALYZE, SCORE, Task
from rig.cohort.sessions import Cohort, CohortSession
from rig.cohort.steps import EPOCHS
from rig.data.atomic import open_atomic

KEYS = ("animal", "day", "stage", "session")
ROLES = ("cs_plus", "cs_minus")
SCORING_COLUMNS = ("percent_frozen", "threshold", "threshold_auto", "min_freeze_s")
SESSION_COLUMNS = (
    *KEYS,
    "protocol",
    "status",
    "started_utc",
    "trials",
    *SCORING_COLUMNS,
)
TRIAL_COLUMNS = (*KEYS, "trial", "phase", "cs", "role", "us", *(f"{e}_percent" for e in EPOCHS))
FREEZING_COLUMNS = (*KEYS, "role", "trials", "cs_percent", "pre_percent")
NETWORK_COLUMNS = (
    *KEYS,
    "neurons",
    "cs_plus_responsive",
    "cs_minus_responsive",
    "us_responsive",
    "ensemble",
    "cr_auc",
    "edges",
    "density",
    "hubs",
    "usr",
    "usr_hubs",
    "usr_hub_fraction",
    "usr_to_cs_plus_edges",
    "usr_to_cs_plus_weight",
)


@dataclass(frozen=True)
class Table:
    name: str  # the file name
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]

    def column(self, name: str) -> list[Any]:
        return [r.get(name) for r in self.rows]


@dataclass(frozen=True)
class CohortTables:
    sessions: Table
    trials: Table
    freezing: Table
    network: Table

    def all(self) -> list[Table]:
        return [self.sessions, self.trials, self.freezing, self.network]


def build_tables(
    cohort: Cohort, tasks: Sequence[Task], entries: dict[str, dict[str, Any]]
) -> CohortTables:
    """The tables from the entries of the finished tasks (a session whose scoring failed has
    no rows, an animal whose analysis failed none in ``network.csv``)."""
    scores: dict[str, dict[str, Any]] = {}
    analyses: dict[str, dict[str, Any]] = {}
    for task in tasks:
        entry = entries.get(task.key)
        if entry is None:
            continue
        if task.kind == SCORE:
            scores[task.spec.sessions[0]] = entry["result"]
        elif task.kind == ANALYZE:
            analyses[task.spec.subject] = entry["result"]["summary"]
    sessions, trials, freezing = [], [], []
    for s in cohort.sessions:
        score = scores.get(str(s.path))
        if score is None:
            continue
        keys = _keys(s)
        sessions.append(
            {
                **keys,
                "protocol": s.protocol,
                "status": s.status,
                "started_utc": s.started_utc,
                "trials": len(score["trials"]),
                **{k: score[k] for k in SCORING_COLUMNS},
            }
        )
        trials += [{**keys, **t} for t in score["trials"]]
        freezing += _freezing_rows(keys, score["trials"])
    network = []
    by_name = {s.name: s for s in cohort.sessions}
    for animal in sorted(analyses):
        network += _network_rows(analyses[animal], by_name)
    return CohortTables(
        Table("sessions.csv", SESSION_COLUMNS, sessions),
        Table("trials.csv", TRIAL_COLUMNS, trials),
        Table("freezing.csv", FREEZING_COLUMNS, freezing),
        Table("network.csv", NETWORK_COLUMNS, network),
    )


def _keys(s: CohortSession) -> dict[str, Any]:
    return {"animal": s.animal, "day": s.day, "stage": s.stage, "session": s.name}


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return sum(kept) / len(kept) if kept else None


def _freezing_rows(keys: dict[str, Any], trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for role in ROLES:
        mine = [t for t in trials if t["role"] == role]
        if mine:
            rows.append(
                {
                    **keys,
                    "role": role,
                    "trials": len(mine),
                    "cs_percent": _mean([t["cs_percent"] for t in mine]),
                    "pre_percent": _mean([t["pre_percent"] for t in mine]),
                }
            )
    return rows


def _network_rows(
    summary: dict[str, Any], by_name: dict[str, CohortSession]
) -> list[dict[str, Any]]:
    usr = {row["session"]: row for row in summary["across_days"]["usr_network"]}
    rows = []
    for s in summary["sessions"]:
        session = by_name.get(s["session"])
        if session is None:
            continue
        u = usr.get(s["session"], {})
        n_usr = u.get("usr", 0)
        rows.append(
            {
                **_keys(session),
                "neurons": s["rois"],
                **{f"{role}_responsive": s["responsive"][role] for role in ("cs_plus", "cs_minus")},
                "us_responsive": s["responsive"]["us"],
                "ensemble": s["cr_model"]["ensemble_size"],
                "cr_auc": s["cr_model"]["cv_auc"],
                "edges": s["network"]["edges"],
                "density": s["network"]["density"],
                "hubs": s["network"]["hubs"],
                "usr": n_usr,
                "usr_hubs": u.get("usr_hubs"),
                "usr_hub_fraction": u["usr_hubs"] / n_usr if n_usr else None,
                "usr_to_cs_plus_edges": u.get("usr_to_cs_plus_edges"),
                "usr_to_cs_plus_weight": u.get("usr_to_cs_plus_weight"),
            }
        )
    return rows


def cell(value: Any) -> str:
    """A value as the tables write it: 6 significant digits, empty for missing or NaN."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else ""
    return str(value)


def write_table(table: Table, folder: Path) -> Path:
    """Write ``table`` as ``folder/NAME`` (atomically)."""
    path = folder / table.name
    with open_atomic(path, durable=False) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(table.columns)
        for row in table.rows:
            w.writerow([cell(row.get(c)) for c in table.columns])
    return path
