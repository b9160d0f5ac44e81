"""The protocol format (design section 4): strict pydantic models and the file loader.

Units are in key names. Unknown keys, wrong types, NaN/infinity and out-of-range values are
errors naming the field path. Cross-field rules (references between stimuli and trials, the
feasibility of a pseudorandom order) are checked here too; what depends on the rig (its safety
limits, the sounds it can play, the devices it records with) is checked by
:func:`rig.run.session.plan_from_loaded` once the schedule is compiled.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rig.files.inputfile import (
    InputError,
    Problem,
    parse_yaml_text,
    problems_from_validation,
    read_yaml_file,
)

FORMAT_VERSION = 1
DEFAULT_MAX_CONSECUTIVE = 2  # pseudorandom order without max_consecutive (rig.program.timeline)
MAX_TRIALS = 10_000
"""Trials in one session, summed over its phases: a trial every 8.6 s for 24 hours. Checked
before the timeline is compiled, so a short file cannot ask for millions of trials."""
STIMULUS_TYPES = ("tone", "white_noise", "shock")


class StrictModel(BaseModel):
    """Base for every user-file model: unknown keys and coercions are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


Seconds = Annotated[float, Field(ge=0, le=86_400)]
PositiveSeconds = Annotated[float, Field(gt=0, le=86_400)]


class Pips(StrictModel):
    """A pip train: ``on_s`` of sound at the start of every ``1/rate_hz`` period."""

    rate_hz: float = Field(gt=0, le=1000)
    on_s: float = Field(gt=0, le=60)

    @model_validator(mode="after")
    def _pip_fits_period(self) -> Pips:
        if self.on_s >= 1.0 / self.rate_hz:
            raise ValueError(
                f"on_s ({self.on_s}) must be shorter than the pip period 1/rate_hz "
                f"({1.0 / self.rate_hz:g} s)"
            )
        return self


class Tone(StrictModel):
    """A pure tone, optionally as a pip train."""

    type: Literal["tone"]
    frequency_hz: float = Field(ge=20, le=100_000)
    level_db: float = Field(ge=0, le=120)
    duration_s: PositiveSeconds
    ramp_ms: float = Field(default=5.0, ge=0, le=1000)
    pips: Pips | None = None


class WhiteNoise(StrictModel):
    """Broadband noise."""

    type: Literal["white_noise"]
    level_db: float = Field(ge=0, le=120)
    duration_s: PositiveSeconds
    ramp_ms: float = Field(default=5.0, ge=0, le=1000)


class Shock(StrictModel):
    """A footshock: the current is set on the shock generator, the duration by the DAQ gate."""

    type: Literal["shock"]
    current_ma: float = Field(gt=0, le=5.0)
    duration_s: float = Field(gt=0, le=10.0)


Stimulus = Annotated[Tone | WhiteNoise | Shock, Field(discriminator="type")]


class ExponentialParams(StrictModel):
    mean: PositiveSeconds
    min: Seconds = 0.0
    max: PositiveSeconds

    @model_validator(mode="after")
    def _ordered(self) -> ExponentialParams:
        if not self.min <= self.mean <= self.max:
            raise ValueError("needs min <= mean <= max")
        return self


class Iti(StrictModel):
    """Inter-trial interval: a number, ``{uniform: [lo, hi]}`` or ``{exponential: {...}}``."""

    fixed: Seconds | None = None
    uniform: list[Seconds] | None = Field(default=None, min_length=2, max_length=2)
    exponential: ExponentialParams | None = None

    @model_validator(mode="before")
    @classmethod
    def _number_is_fixed(cls, data: Any) -> Any:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return {"fixed": data}
        if isinstance(data, dict) and "fixed" in data:
            raise ValueError("write a fixed ITI as a plain number")
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Iti:
        given = [k for k in ("fixed", "uniform", "exponential") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give a number, {uniform: [lo, hi]} or {exponential: {...}}")
        if self.uniform is not None and self.uniform[0] > self.uniform[1]:
            raise ValueError(f"uniform: [low, high] needs low <= high (got {list(self.uniform)})")
        return self

    @property
    def max_s(self) -> float:
        if self.fixed is not None:
            return self.fixed
        if self.uniform is not None:
            return self.uniform[1]
        assert self.exponential is not None
        return self.exponential.max

    def describe(self) -> str:
        if self.fixed is not None:
            return f"{self.fixed:g} s"
        if self.uniform is not None:
            return f"uniform {self.uniform[0]:g}-{self.uniform[1]:g} s"
        e = self.exponential
        assert e is not None
        return f"exponential mean {e.mean:g} s in [{e.min:g}, {e.max:g}]"


class TrialEntry(StrictModel):
    """A kind of trial: a CS, an optional US and how often it occurs."""

    cs: str = Field(min_length=1, max_length=64)
    us: str | None = Field(default=None, min_length=1, max_length=64)
    us_onset_s: float | None = Field(default=None, ge=0, le=3600)
    """US onset from CS onset; default: the US co-terminates with the CS."""
    repeat: int = Field(default=1, ge=1, le=1000)


class Phase(StrictModel):
    """A block of the session: either trials, or ``duration_s`` with nothing delivered."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\- ]+$")
    duration_s: PositiveSeconds | None = None
    trials: list[TrialEntry] | None = Field(default=None, min_length=1, max_length=100)
    order: Literal["sequential", "pseudorandom", "shuffled"] = "sequential"
    max_consecutive: int | None = Field(default=None, ge=1, le=1000)
    iti_s: Iti | None = None
    pre_s: Seconds = 0.0
    post_s: Seconds = 0.0

    @model_validator(mode="after")
    def _shape(self) -> Phase:
        if self.trials is None and self.duration_s is None:
            raise ValueError("a phase needs either trials or duration_s")
        if self.trials is not None and self.duration_s is not None:
            raise ValueError("a phase has either trials or duration_s, not both")
        if self.trials is None:
            for key in ("iti_s", "max_consecutive"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} only applies to a phase with trials")
            if self.order != "sequential":
                raise ValueError("order only applies to a phase with trials")
        if self.max_consecutive is not None and self.order != "pseudorandom":
            raise ValueError("max_consecutive applies only to order: pseudorandom")
        if self.trials is not None and self.n_trials > 1 and self.iti_s is None:
            raise ValueError("iti_s is required for a phase with more than one trial")
        return self

    @property
    def n_trials(self) -> int:
        return sum(t.repeat for t in self.trials or [])


class VideoRecording(StrictModel):
    fps: float = Field(gt=0, le=500)


class ImagingRecording(StrictModel):
    frame_rate_hz: float = Field(gt=0, le=500)


class Recording(StrictModel):
    video: VideoRecording = VideoRecording(fps=30.0)
    imaging: ImagingRecording | None = None


class Protocol(StrictModel):
    """A whole protocol file."""

    protocol: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.\-]+$")
    version: int = Field(ge=1, le=FORMAT_VERSION)
    description: str = Field(default="", max_length=2000)
    seed: int = Field(ge=0, le=2**32 - 1)
    stimuli: dict[str, Stimulus] = Field(min_length=1, max_length=50)
    phases: list[Phase] = Field(min_length=1, max_length=100)
    recording: Recording = Recording()

    def stimulus(self, name: str) -> Tone | WhiteNoise | Shock:
        return self.stimuli[name]


def _reference_problems(p: Protocol) -> list[Problem]:
    """Cross-field rules pydantic cannot express per field."""
    problems: list[Problem] = []
    names = set(p.stimuli)
    for name in p.stimuli:
        if not name.replace("_", "").replace("-", "").isalnum():
            problems.append(Problem(f"stimuli.{name}", "use letters, digits, _ and - in names"))
    problems += _size_problems(p)
    seen: set[str] = set()
    for i, phase in enumerate(p.phases):
        if phase.name in seen:
            problems.append(Problem(f"phases[{i}].name", f"duplicate phase name {phase.name!r}"))
        seen.add(phase.name)
        for j, entry in enumerate(phase.trials or []):
            where = f"phases[{i}].trials[{j}]"
            problems += _entry_problems(p, entry, where, names)
        if phase.order == "pseudorandom" and phase.trials:
            # without max_consecutive the timeline allows DEFAULT_MAX_CONSECUTIVE in a row
            max_run = phase.max_consecutive or DEFAULT_MAX_CONSECUTIVE
            counts = [t.repeat for t in phase.trials]
            others = sum(counts) - max(counts)
            if max(counts) > max_run * (others + 1):
                problems.append(
                    Problem(
                        f"phases[{i}].max_consecutive",
                        f"no order of these trials has at most {max_run} of a kind in a row"
                        + ("" if phase.max_consecutive else " (the default)"),
                    )
                )
    return problems


def _size_problems(p: Protocol) -> list[Problem]:
    """A session of at most :data:`MAX_TRIALS` trials (the phase where the count passes it
    is named)."""
    total = 0
    for i, phase in enumerate(p.phases):
        total += phase.n_trials
        if total > MAX_TRIALS:
            whole = sum(ph.n_trials for ph in p.phases)
            return [
                Problem(
                    f"phases[{i}].trials",
                    f"the protocol has {whole} trials; a session has at most {MAX_TRIALS}",
                )
            ]
    return []


def _entry_problems(p: Protocol, entry: TrialEntry, where: str, names: set[str]) -> list[Problem]:
    problems = []
    cs = p.stimuli.get(entry.cs)
    if cs is None:
        problems.append(
            Problem(f"{where}.cs", f"unknown stimulus {entry.cs!r}; defined: {sorted(names)}")
        )
    elif cs.type == "shock":
        problems.append(Problem(f"{where}.cs", f"{entry.cs!r} is a shock; a CS is a sound"))
    if entry.us is None:
        if entry.us_onset_s is not None:
            problems.append(Problem(f"{where}.us_onset_s", "given without a us"))
        return problems
    us = p.stimuli.get(entry.us)
    if us is None:
        problems.append(
            Problem(f"{where}.us", f"unknown stimulus {entry.us!r}; defined: {sorted(names)}")
        )
    elif us.type != "shock":
        problems.append(Problem(f"{where}.us", f"{entry.us!r} is a {us.type}; a US is a shock"))
    elif (
        cs is not None
        and cs.type != "shock"
        and entry.us_onset_s is None
        and us.duration_s > cs.duration_s
    ):
        problems.append(
            Problem(
                f"{where}.us",
                f"the US ({us.duration_s:g} s) is longer than the CS ({cs.duration_s:g} s) "
                "and cannot co-terminate with it; give us_onset_s",
            )
        )
    return problems


def _fix_loc(loc: tuple) -> tuple:
    # Drop pydantic's union tags: stimuli.cs_plus.tone.frequency_hz -> stimuli.cs_plus.frequency_hz
    if len(loc) > 2 and loc[0] == "stimuli" and loc[2] in STIMULUS_TYPES:
        loc = loc[:2] + loc[3:]
    if "iti_s" in loc:  # the fixed/uniform/exponential union is one field to the user
        i = loc.index("iti_s")
        rest = tuple(p for p in loc[i + 1 :] if p not in ("fixed",))
        loc = loc[: i + 1] + rest
    return loc


def protocol_from_data(data: dict[str, Any], file: str) -> Protocol:
    """Validate parsed YAML; raises :class:`InputError` listing every problem."""
    if isinstance(data.get("stimuli"), dict):
        for name, value in data["stimuli"].items():
            if isinstance(value, dict) and "type" not in value:
                raise InputError(
                    file,
                    [Problem(f"stimuli.{name}.type", f"required: {' | '.join(STIMULUS_TYPES)}")],
                )
    try:
        protocol = Protocol.model_validate(data)
    except ValidationError as exc:
        raise InputError(file, problems_from_validation(exc, fix_loc=_fix_loc)) from None
    problems = _reference_problems(protocol)
    if problems:
        raise InputError(file, problems)
    return protocol


@dataclass(frozen=True)
class LoadedProtocol:
    """A validated protocol with the exact text it came from and that text's sha256.

    ``text`` is the file's bytes decoded as UTF-8 (strictly, nothing normalised: a byte-order
    mark, CRLF line ends and trailing spaces are kept), so :attr:`data` is the file byte for
    byte and :attr:`sha256` is what ``sha256sum FILE`` prints."""

    protocol: Protocol
    text: str
    file: str

    @property
    def data(self) -> bytes:
        """The protocol file's bytes, as read."""
        return self.text.encode("utf-8")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def load_protocol(path: str | Path) -> LoadedProtocol:
    """Read and validate a protocol file. Raises :class:`InputError`."""
    data, text = read_yaml_file(path)
    return LoadedProtocol(protocol_from_data(data, str(path)), text, str(path))


def protocol_from_bytes(data: bytes, file: str) -> LoadedProtocol:
    """Validate a protocol file's bytes (what the GUI runs: the file it saved, as on disk).
    :class:`InputError` for bytes that are not UTF-8 or not a valid protocol."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(file, [Problem("", "is not UTF-8 text")]) from None
    return protocol_from_text(text, file)


def protocol_from_text(text: str, file: str = "<protocol>") -> LoadedProtocol:
    """Validate protocol YAML text (the GUI's editor uses this)."""
    return LoadedProtocol(protocol_from_data(parse_yaml_text(text, file), file), text, file)


def protocol_json_schema() -> dict[str, Any]:
    """JSON Schema of the protocol format (``rig schema``)."""
    schema = Protocol.model_json_schema()
    schema["title"] = "fear-rig protocol"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
