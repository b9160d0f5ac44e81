"""Subject files: who the animal is, one YAML per animal, reused across its sessions.

``rig run --subject FILE`` (and the GUI) read it with :func:`load_subject`, validated as
strictly as a protocol: an unknown key, a sex other than M/F/U/O, an age that is not an ISO 8601
duration is ``FILE: field.path: message`` (exit code 2). The session stores the subject (root
attribute ``subject``), ``rig info`` shows it and the NWB export writes it as the NWB
``Subject``, in the terms DANDI asks for (``docs/format.md``)::

    subject_id: M0123
    species: Mus musculus          # default; a Latin binomial or an NCBI taxonomy URL
    strain: C57BL/6J
    genotype: Thy1-GCaMP6s +/-
    sex: F                         # M, F, U (unknown) or O (other)
    date_of_birth: 2026-06-01      # or age: P90D (an ISO 8601 duration at the session)
    weight_g: 24.5
    description: implanted microprism, dmPFC, right hemisphere
    session:                       # optional: defaults for every session of this animal
      experimenter: ["Doe, Jane"]
      institution: Example University
      lab: Fear Lab

The session metadata (:class:`SessionMetadata`: experimenter, institution, lab, notes) may also
come from the command line or the GUI, which override the subject file's defaults
(:meth:`SessionMetadata.merged`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from rig.files.inputfile import (
    InputError,
    parse_yaml_text,
    problems_from_validation,
    read_yaml_file,
)
from rig.files.protocol import StrictModel

Sex = Literal["M", "F", "U", "O"]
DEFAULT_SPECIES = "Mus musculus"
_ISO_DURATION = re.compile(
    r"^P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$"
)
_SUBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # DANDI puts it in file names
Text = Field(default=None, min_length=1, max_length=500)


def _iso_date(value: Any) -> Any:
    """A YAML date (unquoted) or an ISO date string; anything else is left to the model."""
    if isinstance(value, datetime):
        raise ValueError("a date without a time of day, e.g. 2026-06-01")
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError("an ISO 8601 date, e.g. 2026-06-01") from None
    return value


def age_days(age: str) -> float:
    """An ISO 8601 duration (``P90D``, ``P12W``, ``P3M``, ``P1Y2M``) in days (a month as
    30.44 days, a year as 365.25)."""
    m = _ISO_DURATION.match(age)
    if m is None:
        raise ValueError(f"not an ISO 8601 duration: {age!r}")
    y, mo, w, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return y * 365.25 + mo * 30.44 + w * 7 + d + (h * 3600 + mi * 60 + s) / 86_400


class Subject(StrictModel):
    """The animal (NWB ``Subject``)."""

    subject_id: str = Field(min_length=1, max_length=80)
    species: str = Field(default=DEFAULT_SPECIES, min_length=1, max_length=200)
    sex: Sex
    date_of_birth: date | None = None
    age: str | None = Field(default=None, max_length=40)
    """ISO 8601 duration at the session, e.g. ``P90D``; or give ``date_of_birth``."""
    genotype: str | None = Text
    strain: str | None = Text
    weight_g: float | None = Field(default=None, gt=0, le=10_000)
    description: str | None = Field(default=None, min_length=1, max_length=2000)

    @field_validator("subject_id")
    @classmethod
    def _id_is_a_name(cls, value: str) -> str:
        if not _SUBJECT_ID.match(value):
            raise ValueError(
                "letters, digits, '_', '.' and '-' only, starting with a letter or digit "
                "(it becomes part of file names)"
            )
        return value

    @field_validator("date_of_birth", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        return _iso_date(value)

    @field_validator("age")
    @classmethod
    def _age_is_duration(cls, value: str | None) -> str | None:
        if value is not None and not _ISO_DURATION.match(value):
            raise ValueError("an ISO 8601 duration, e.g. P90D (90 days), P12W, P3M")
        return value

    @field_validator("species")
    @classmethod
    def _species_form(cls, value: str) -> str:
        if value.startswith("http"):
            return value
        words = value.split()
        if len(words) < 2 or not words[0][:1].isupper() or not words[1].islower():
            raise ValueError("a Latin binomial such as 'Mus musculus', or an NCBI taxonomy URL")
        return value

    @model_validator(mode="after")
    def _age_known(self) -> Subject:
        if self.age is None and self.date_of_birth is None:
            raise ValueError("give date_of_birth or age (ISO 8601 duration, e.g. P90D)")
        return self

    def age_at(self, when: date) -> str:
        """The age as an ISO 8601 duration in days at ``when``: ``age`` if given, else from
        ``date_of_birth``."""
        if self.age is not None:
            return self.age
        assert self.date_of_birth is not None
        return f"P{max(0, (when - self.date_of_birth).days)}D"

    def born_after(self, when: date) -> bool:
        """Whether ``date_of_birth`` is after ``when`` (a session before the animal's birth)."""
        return self.date_of_birth is not None and self.date_of_birth > when

    def summary(self) -> str:
        """One line for ``rig info``: id, sex, age or birth date, strain, genotype, weight."""
        parts = [f"{self.subject_id}: sex {self.sex}"]
        parts.append(f"age {self.age}" if self.age else f"born {self.date_of_birth}")
        parts += [p for p in (self.species, self.strain, self.genotype) if p]
        if self.weight_g is not None:
            parts.append(f"{self.weight_g:g} g")
        return ", ".join(parts)


class SessionMetadata(StrictModel):
    """Who ran the session, where, and the experimenter's notes (NWB file metadata)."""

    experimenter: list[str] = Field(default_factory=list, max_length=20)
    """Names as 'Last, First' (the form DANDI asks for)."""
    institution: str | None = Text
    lab: str | None = Text
    notes: str | None = Field(default=None, min_length=1, max_length=10_000)

    @field_validator("experimenter")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not name.strip() or len(name) > 200:
                raise ValueError("each experimenter is a name of 1 to 200 characters")
        return names

    def merged(self, **overrides: Any) -> SessionMetadata:
        """These defaults with ``overrides`` given (None and empty values are not overrides):
        the command line and the GUI over the subject file. :class:`ValueError` (a
        pydantic ``ValidationError``) for a bad override."""
        given = {k: v for k, v in overrides.items() if v not in (None, "", [], ())}
        return SessionMetadata.model_validate({**self.model_dump(), **given})


@dataclass(frozen=True)
class LoadedSubject:
    """A validated subject file: the subject, its session defaults, its text and name."""

    subject: Subject
    session: SessionMetadata
    text: str
    file: str

    def attrs(self) -> dict[str, Any]:
        """What a session stores of it (root attributes ``subject``, ``subject_file``)."""
        return {"subject": self.subject.model_dump(mode="json"), "subject_file": self.file}


def subject_line(stored: dict[str, Any]) -> str:
    """A stored subject (root attribute ``subject``) as one line; a subject that does not
    validate (hand-edited, or from a newer fear-rig) is shown as stored."""
    try:
        return Subject.model_validate(stored, strict=False).summary()
    except ValidationError:
        return ", ".join(f"{k} {v}" for k, v in stored.items() if v is not None)


def session_metadata(
    subject: LoadedSubject | None, source: str = "command line", **given: Any
) -> SessionMetadata:
    """The session's metadata: the subject file's defaults with ``given`` over them (the
    command line's or the GUI's). :class:`InputError` naming ``source`` for a bad value."""
    defaults = subject.session if subject is not None else SessionMetadata()
    try:
        return defaults.merged(**given)
    except ValidationError as exc:
        raise InputError(source, problems_from_validation(exc)) from None


def metadata_attrs(subject: LoadedSubject | None, metadata: SessionMetadata) -> dict[str, Any]:
    """The root attributes a session stores of its subject and metadata (``docs/format.md``):
    ``subject``, ``subject_file``, ``experimenter`` (a list), ``institution``, ``lab``,
    ``notes``; None for what was not given."""
    attrs: dict[str, Any] = {"subject": None, "subject_file": None}
    if subject is not None:
        attrs.update(subject.attrs())
    attrs.update(metadata.model_dump(mode="json"))
    return attrs


def subject_from_data(data: dict[str, Any], text: str, file: str) -> LoadedSubject:
    """Validate a parsed subject file. :class:`InputError` listing every problem."""
    fields = {k: v for k, v in data.items() if k != "session"}
    problems = []
    subject = session = None
    try:
        subject = Subject.model_validate(fields)
    except ValidationError as exc:
        problems += problems_from_validation(exc)
    try:
        session = SessionMetadata.model_validate(data.get("session") or {})
    except ValidationError as exc:
        problems += problems_from_validation(exc, prefix=("session",))
    if problems:
        raise InputError(file, problems)
    assert subject is not None and session is not None
    return LoadedSubject(subject, session, text, file)


def load_subject(path: str | Path) -> LoadedSubject:
    """Read and validate a subject file. :class:`InputError` (``FILE: field: message``)."""
    data, text = read_yaml_file(path)
    return subject_from_data(data, text, str(path))


def subject_from_text(text: str, file: str = "<subject>") -> LoadedSubject:
    """Validate subject YAML text (the GUI's form, a test)."""
    return subject_from_data(parse_yaml_text(text, file), text, file)


__all__ = [
    "DEFAULT_SPECIES",
    "LoadedSubject",
    "SessionMetadata",
    "Sex",
    "Subject",
    "age_days",
    "load_subject",
    "metadata_attrs",
    "session_metadata",
    "subject_from_text",
]
