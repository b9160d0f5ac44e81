"""Reading the files users write: strict YAML, and errors as ``FILE: field.path: message``.

Every problem with a protocol or rig file becomes an :class:`InputError` carrying one
:class:`Problem` per offending field, which the CLI prints one per line and exits 2 on.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

MAX_FILE_BYTES = 1_000_000  # a protocol or rig file is a page of YAML, not a data set


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: where (a field path) and why."""

    path: str
    message: str


class InputError(Exception):
    """A user-written file is invalid. ``str()`` is the ``FILE: path: message`` report."""

    def __init__(self, file: str, problems: Sequence[Problem]):
        self.file = file
        self.problems = list(problems)
        super().__init__(self.report())

    def report(self) -> str:
        """One ``FILE: path: message`` line per problem (never more lines than problems)."""
        file = one_line(self.file)
        return "\n".join(
            f"{file}: {one_line(p.path)}: {one_line(p.message)}"
            if p.path
            else f"{file}: {one_line(p.message)}"
            for p in self.problems
        )


def fmt_against(value: float, limit: float) -> tuple[str, str]:
    """``value`` and ``limit`` for a limit message, with just enough significant digits (at
    least 3) to tell them apart: (1.0000000001, 1), (9000, 8000), never 9e+03."""
    for digits in range(3, 18):
        a, b = _significant(value, digits), _significant(limit, digits)
        if a != b or value == limit:
            return a, b
    return repr(value), repr(limit)


def _significant(x: float, digits: int) -> str:
    """``x`` to ``digits`` significant digits, its whole part never in exponent form."""
    whole = len(str(int(abs(x)))) if abs(x) >= 1 else 1
    return f"{x:.{max(digits, whole)}g}"


def one_line(text: str) -> str:
    """``text`` safe to print as part of one line: line breaks, control and other invisible
    characters (a key named ``"\\r"``, a right-to-left override) are shown escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def error_line(error: BaseException | str) -> str:
    """An error (or its message) as one printable line: whitespace runs, line breaks included,
    become one space; an exception with no message is named by its type."""
    text = " ".join(str(error).split())
    if not text and isinstance(error, BaseException):
        text = type(error).__name__
    return one_line(text)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that also rejects duplicate keys (a silently overwritten key is a typo)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    mapping: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            ) from exc
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)


def parse_yaml_text(text: str, file: str) -> dict[str, Any]:
    """Parse ``text`` as one YAML mapping with safe, duplicate-free loading."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        raise InputError(file, [Problem(where, f"invalid YAML: {exc.problem}")]) from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise InputError(file, [Problem("", f"invalid YAML: {exc}")]) from None
    if data is None:
        raise InputError(file, [Problem("", "the file is empty")])
    if not isinstance(data, dict):
        raise InputError(
            file, [Problem("", f"expected a mapping of keys, got {type(data).__name__}")]
        )
    return data


_KINDS = (
    (stat.S_ISDIR, "is a directory, not a file"),
    (stat.S_ISFIFO, "is a pipe (FIFO), not a regular file"),
    (stat.S_ISCHR, "is a character device, not a regular file"),
    (stat.S_ISBLK, "is a block device, not a regular file"),
    (stat.S_ISSOCK, "is a socket, not a regular file"),
)


def read_bounded(path: str | Path, limit: int, missing_ok: bool = False) -> bytes | None:
    """The bytes of the regular file ``path``, at most ``limit`` of them; :class:`InputError`
    (``FILE: message``) for anything else. ``missing_ok``: None for a missing file.

    The file is opened without blocking and checked on the open descriptor, so a FIFO, a
    device (``/dev/zero``), a pipe on standard input (``/dev/stdin``) or a link to one is
    refused at once instead of hanging or filling memory; the read itself stops after
    ``limit`` bytes, for a file that grows while it is read."""
    file = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        if missing_ok:
            return None
        raise InputError(file, [Problem("", "file not found")]) from None
    except IsADirectoryError:
        raise InputError(file, [Problem("", "is a directory, not a file")]) from None
    except OSError as exc:
        raise InputError(file, [Problem("", f"cannot read: {exc.strerror}")]) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        message = next((m for is_kind, m in _KINDS if is_kind(st.st_mode)), None)
        raise InputError(file, [Problem("", message or "is not a regular file")])
    with os.fdopen(fd, "rb") as f:
        size = st.st_size
        if size > limit:
            raise InputError(file, [Problem("", f"file is {size} bytes; the limit is {limit}")])
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise InputError(file, [Problem("", f"cannot read: {exc.strerror}")]) from None
    if len(data) > limit:
        raise InputError(file, [Problem("", f"file is over {limit} bytes (the limit)")])
    return data


def read_text_file(path: str | Path, limit: int = MAX_FILE_BYTES) -> str:
    """A UTF-8 text file a user gave, read through :func:`read_bounded`."""
    data = read_bounded(path, limit)
    assert data is not None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(str(path), [Problem("", "is not UTF-8 text")]) from None


def read_yaml_file(path: str | Path) -> tuple[dict[str, Any], str]:
    """Read and parse a YAML file (a regular file of at most :data:`MAX_FILE_BYTES`);
    returns (data, text). Raises :class:`InputError`."""
    text = read_text_file(path)
    return parse_yaml_text(text, str(path)), text


def format_loc(loc: Iterable[Any]) -> str:
    """``('phases', 1, 'trials', 0, 'cs')`` -> ``phases[1].trials[0].cs``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# the patterns of the formats' names, in words (a user is never shown a regular expression)
PATTERN_WORDS = {
    r"^[A-Za-z0-9_.\-]+$": "letters, digits, '-', '_' and '.' (no spaces)",
    r"^[A-Za-z0-9_.\- ]+$": "letters, digits, spaces, '-', '_' and '.'",
}


def _message(error: dict) -> str:
    msg = error["msg"]
    if error["type"] == "extra_forbidden":
        return "unknown key (not part of the format; check the spelling)"
    if error["type"] == "missing":
        return "required key is missing"
    if error["type"] == "string_pattern_mismatch":
        allowed = PATTERN_WORDS.get(str(error.get("ctx", {}).get("pattern")))
        msg = f"use only {allowed}" if allowed else "has characters this field does not allow"
    msg = msg.removeprefix("Value error, ")
    value = error.get("input")
    if error["type"] not in ("model_type", "dict_type") and _is_scalar(value):
        msg += f" (got {_short(value)})"
    return msg


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _short(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def problems_from_validation(
    exc: ValidationError,
    prefix: Sequence[Any] = (),
    fix_loc: Callable[[tuple], tuple] | None = None,
) -> list[Problem]:
    """Turn a pydantic error into problems; ``fix_loc`` may rewrite a path (union tags)."""
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if fix_loc is not None:
            loc = fix_loc(loc)
        problems.append(Problem(format_loc((*prefix, *loc)), _message(err)))
    return problems
