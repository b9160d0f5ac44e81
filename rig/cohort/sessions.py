"""The sessions of a cohort folder, by animal and day.

Every session folder under the cohort's folder is opened through the session-folder API
(:class:`rig.data.folder.SessionFolder`), so a malformed one is reported as
``FILE: field: message`` before anything runs. An animal's sessions are numbered in the order
they started (day 1, 2, ...); a session's *stage* is its protocol's name (``habituation``,
``differential-conditioning``, ...), with `` #2`` added when the animal ran that protocol
before, so days of the same kind line up across animals whatever their dates.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from rig.data.folder import SessionFolder, find_session_folders
from rig.files.inputfile import InputError, Problem


@dataclass(frozen=True)
class CohortSession:
    """One session of the cohort."""

    path: Path
    animal: str
    day: int  # 1, 2, ... in the order the animal's sessions started
    stage: str  # the protocol's name, `` #k`` for the animal's k-th run of it
    protocol: str
    started_utc: str
    status: str  # complete, aborted or recovered
    imaging: bool  # the protocol recorded two-photon imaging
    fingerprint: str  # sha256 of the session's root attributes: changes when the session does

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Cohort:
    """The sessions found under ``root``, ordered by animal then day."""

    root: Path
    sessions: tuple[CohortSession, ...]
    still_running: tuple[Path, ...] = ()  # sessions being written now: left for a later run

    @property
    def animals(self) -> dict[str, list[CohortSession]]:
        out: dict[str, list[CohortSession]] = {}
        for s in self.sessions:
            out.setdefault(s.animal, []).append(s)
        return out

    @property
    def stages(self) -> list[str]:
        """The stages in the order the animals went through them (median day, then name)."""
        days: dict[str, list[int]] = {}
        for s in self.sessions:
            days.setdefault(s.stage, []).append(s.day)
        return sorted(days, key=lambda stage: (median(days[stage]), stage))


class CohortInputError(InputError):
    """Several sessions are unusable: one ``FILE: field: message`` line per problem."""

    def __init__(self, errors: Sequence[InputError]):
        self.errors = list(errors)
        super().__init__(errors[0].file, [p for e in errors for p in e.problems])

    def report(self) -> str:
        return "\n".join(e.report() for e in self.errors)


def fingerprint(folder: SessionFolder) -> str:
    """A hash of the session's root attributes: its identity, status, protocol, rig and
    timeline; recovering or attaching frames changes it, scoring and analysing do not."""
    attrs = folder.attrs.model_dump(mode="json")
    text = json.dumps(attrs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def find_cohort(root: str | Path) -> Cohort:
    """Every finalised session under ``root``, by animal and day.

    :class:`InputError` when ``root`` holds no session, or (all at once) for every session
    that cannot be used: malformed attributes, interrupted (``rig recover`` it first), no
    animal. Sessions still being written are left out and listed in ``still_running``."""
    root = Path(root)
    errors: list[InputError] = []
    running: list[Path] = []
    found: list[tuple[SessionFolder, str]] = []
    for path in find_session_folders(root):
        try:
            folder = SessionFolder.open(path)
            status = folder.status
            if status == "running":
                running.append(path)
                continue
            folder.require_finalized()
            if not folder.attrs.animal:
                raise InputError(str(folder.attrs_path), [Problem("animal", "no animal ID")])
            found.append((folder, status))
        except InputError as exc:
            errors.append(exc)
    if errors:
        raise CohortInputError(errors)
    if not found:
        why = "no sessions here" if not running else "every session here is still being written"
        raise InputError(str(root), [Problem("", f"{why} (a cohort folder holds session folders)")])
    return Cohort(root, _by_animal_and_day(found), tuple(running))


def _by_animal_and_day(found: list[tuple[SessionFolder, str]]) -> tuple[CohortSession, ...]:
    by_animal: dict[str, list[tuple[SessionFolder, str]]] = {}
    for folder, status in found:
        by_animal.setdefault(str(folder.attrs.animal), []).append((folder, status))
    sessions = []
    for animal in sorted(by_animal):
        ordered = sorted(by_animal[animal], key=lambda f: (f[0].attrs.started_utc or "", f[0].name))
        runs: Counter[str] = Counter()
        for day, (folder, status) in enumerate(ordered, start=1):
            attrs = folder.attrs
            protocol = attrs.protocol_name or "protocol"
            runs[protocol] += 1
            stage = protocol if runs[protocol] == 1 else f"{protocol} #{runs[protocol]}"
            sessions.append(
                CohortSession(
                    path=folder.path.resolve(),
                    animal=animal,
                    day=day,
                    stage=stage,
                    protocol=protocol,
                    started_utc=attrs.started_utc or "",
                    status=status,
                    imaging=attrs.protocol.recording.imaging is not None,
                    fingerprint=fingerprint(folder),
                )
            )
    return tuple(sessions)
