"""Hostile input (issue 8, part 3): fuzzed protocol and rig files never give a traceback, never
execute anything, and always exit 2 with ``FILE: field.path: message`` or ``FILE: message``
lines; an animal ID cannot write outside ``--out``.

``rig validate`` runs in-process through click's CliRunner with ``catch_exceptions=False``, so
any exception that escapes the CLI fails the test with its traceback.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rig.cli import main
from tests.conftest import PROTOCOLS, SMALL_RIG

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
LIBRARY = sorted(PROTOCOLS.glob("*.yaml"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


def validate(*args: str | Path):
    return CliRunner().invoke(main, ["validate", *map(str, args)], catch_exceptions=False)


def assert_bad_input(result, file: Path, *others: Path) -> None:
    """Exit 2; every stderr line is ``FILE: ...``; no traceback; nothing on stdout.

    ``others``: files a line may also name (a rig file's lower limits make the protocol fail).
    """
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines, "no message"
    for line in lines:
        prefix = next((f"{f}: " for f in (file, *others) if line.startswith(f"{f}: ")), None)
        assert prefix is not None and len(line) > len(prefix), line
    assert result.stdout == ""


def assert_clean_outcome(result, file: Path) -> None:
    """A mutation may still be valid (exit 0); if not, it is bad input, reported as such."""
    if result.exit_code == 0:
        assert result.stdout.startswith(f"{file}: valid")
    else:
        assert_bad_input(result, file)


# ------------------------------------------------------------------ generated YAML documents

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["tone", "shock", "white_noise", "sim", "nidaq", "Dev1", ".nan", "-.inf"]),
)
KEYS = st.one_of(
    st.sampled_from(
        [
            "protocol",
            "version",
            "seed",
            "stimuli",
            "phases",
            "recording",
            "trials",
            "cs",
            "us",
            "type",
            "current_ma",
            "duration_s",
            "iti_s",
            "name",
            "rig",
            "daq",
            "shocker",
            "camera",
            "imaging",
            "safety",
            "driver",
            "faults",
            "at_s",
            "kind",
            "max_current_ma",
            "speaker",
        ]
    ),
    st.text(max_size=12),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(KEYS, inner, max_size=6)),
    max_leaves=30,
)


def _dump(doc) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@FUZZ
@given(doc=documents)
def test_generated_protocols_are_bad_input_never_a_crash(workdir, doc):
    path = workdir / "protocol.yaml"
    path.write_text(_dump(doc), encoding="utf-8")
    assert_bad_input(validate(path, "--rig", SMALL_RIG), path)


@FUZZ
@given(doc=documents)
def test_generated_rig_files_are_bad_input_never_a_crash(workdir, doc):
    path = workdir / "rig.yaml"
    path.write_text(_dump(doc), encoding="utf-8")
    assert_bad_input(validate(PROTOCOLS / "demo.yaml", "--rig", path), path)


@FUZZ
@given(text=st.text(max_size=200))
def test_random_text_is_bad_input_never_a_crash(workdir, text):
    path = workdir / "text.yaml"
    path.write_text(text, encoding="utf-8")
    result = validate(path)
    assert_bad_input(result, path)


# ------------------------------------------------------------------ mutated library files


def _paths(node, here=()):
    """Every (path, value) in a parsed document."""
    yield here, node
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in items:
        yield from _paths(value, (*here, key))


WEIRD_VALUES = st.one_of(
    st.sampled_from(
        [
            None,
            True,
            "",
            "x" * 10_000,
            -1,
            0,
            10**30,
            -(10**30),
            1e308,
            math.nan,
            math.inf,
            -math.inf,
            [],
            {},
            [[[[]]]],
            {"a": {"b": {}}},
            "\u202e\U0001f600\x85",
            "../../x",
        ]
    ).map(copy.deepcopy),  # a fresh container each time: later mutations may change it
    scalars,
)


@st.composite
def mutations(draw, text: str):
    doc = yaml.safe_load(text)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p, _ in _paths(doc) if p]
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        action = draw(st.sampled_from(["drop", "rename", "retype"]))
        if action == "drop":
            del parent[key]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(KEYS)] = parent.pop(key)
        else:
            parent[key] = draw(WEIRD_VALUES)
        if not doc:
            break
    return doc


@pytest.mark.parametrize("library", LIBRARY, ids=[p.stem for p in LIBRARY])
def test_mutated_library_protocols_are_bad_input_never_a_crash(workdir, library):
    @FUZZ
    @given(doc=mutations(library.read_text(encoding="utf-8")))
    def check(doc):
        path = workdir / f"mutated-{library.name}"
        path.write_text(_dump(doc), encoding="utf-8")
        assert_clean_outcome(validate(path, "--rig", SMALL_RIG), path)

    check()


@FUZZ
@given(doc=mutations(SMALL_RIG.read_text(encoding="utf-8")))
def test_mutated_rig_files_are_bad_input_never_a_crash(workdir, doc):
    path = workdir / "mutated-rig.yaml"
    path.write_text(_dump(doc), encoding="utf-8")
    result = validate(PROTOCOLS / "demo.yaml", "--rig", path)
    if result.exit_code == 0:
        assert "valid" in result.stdout
    else:
        assert_bad_input(result, path, PROTOCOLS / "demo.yaml")


# ------------------------------------------------------------------ hand-written attacks


def _bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


ATTACKS = {
    "10,000 [": "[" * 10_000,
    "deep phases": "protocol: p\nphases: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep mapping": "stimuli: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
    "os.system tag": 'protocol: !!python/object/apply:os.system ["touch {marker}"]\n',
    "top-level tag": '!!python/object/apply:os.system ["touch {marker}"]\n',
    "python/name tag": "protocol: !!python/name:os.system\n",
    "python/module tag": "protocol: !!python/module:os\n",
    "subprocess tag": (
        'seed: !!python/object/apply:subprocess.check_output [["touch", "{marker}"]]\n'
    ),
    "alias bomb": _bomb(),
    "alias bomb in phases": _bomb(8) + "phases: [*a7, *a7, *a7]\nstimuli: *a7\n",
    "nan and infinity": (
        "protocol: p\nversion: 1\nseed: .nan\nstimuli: {s: {type: shock, current_ma: .inf,"
        " duration_s: -.inf}}\nphases: [{name: a, duration_s: .nan}]\n"
    ),
    "huge numbers": "protocol: p\nversion: 1e400\nseed: " + "9" * 5000 + "\n",
    "unicode and controls": (
        'protocol: "\\u202e\\U0001F600"\n"k\\u2028\\u2029\\x85ey": 1\n"a\\nb": 2\n'
        '"\\r\\n": 3\nstimuli: {"\\u00e9": {type: tone}}\n'
    ),
    "non-string keys": "? [a, b]\n: 1\n",
    "int, null and float keys": "1: a\n~: b\n.nan: c\nprotocol: p\n",
    "duplicate keys": "protocol: a\nprotocol: b\n",
    "merge key": "base: &b {protocol: p}\n<<: *b\n",
    "binary, set, omap, timestamp": (
        "protocol: 2001-12-14\nversion: !!binary aGVsbG8=\nseed: !!set {a, b}\n"
        "stimuli: !!omap [a: 1]\nphases: [1]\n"
    ),
    "a list": "- protocol: p\n",
    "a scalar": "42\n",
    "empty": "",
    "only a comment": "# nothing\n",
    "two documents": "protocol: a\n---\nprotocol: b\n",
    "NUL byte": "protocol: a\x00\n",
    "tabs": "protocol:\tp\n\tversion: 1\n",
}


@pytest.mark.parametrize("as_rig", [False, True], ids=["protocol", "rig"])
@pytest.mark.parametrize("text", list(ATTACKS.values()), ids=list(ATTACKS))
def test_hostile_files_are_bad_input(tmp_path, text, as_rig):
    marker = tmp_path / "PWNED"
    path = tmp_path / "hostile.yaml"
    path.write_text(text.replace("{marker}", str(marker)), encoding="utf-8")
    result = validate(PROTOCOLS / "demo.yaml", "--rig", path) if as_rig else validate(path)
    assert_bad_input(result, path)
    assert not marker.exists()


def test_binary_and_oversized_files_are_bad_input(tmp_path):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    assert_bad_input(validate(binary), binary)
    big = tmp_path / "big.yaml"
    big.write_text("description: " + "x" * 2_000_000 + "\n", encoding="utf-8")
    assert_bad_input(validate(big), big)
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    assert_bad_input(validate(folder), folder)
    missing = tmp_path / "missing.yaml"
    assert_bad_input(validate(missing), missing)


def test_a_pseudorandom_phase_of_one_kind_is_bad_input_not_a_crash(tmp_path):
    """Found by the mutation fuzzer: the default max_consecutive (2) cannot order 4 of a kind;
    the timeline compiler crashed with a numpy ValueError."""
    path = tmp_path / "one-kind.yaml"
    path.write_text(
        SHORT.format(name="one-kind").replace(
            "trials: [{cs: tone}]", "trials: [{cs: tone, repeat: 4}], order: pseudorandom, iti_s: 1"
        ),
        encoding="utf-8",
    )
    result = validate(path)
    assert_bad_input(result, path)
    assert "phases[0].max_consecutive" in result.stderr


# ------------------------------------------------------------------ names that are paths

SHORT = """
protocol: {name}
version: 1
seed: 1
stimuli:
  tone: {{type: tone, frequency_hz: 5000, level_db: 70, duration_s: 1}}
phases:
  - {{name: only, trials: [{{cs: tone}}]}}
"""


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize(
    "animal", ["../../x", "../x", "/tmp/x", "..", ".", "a/../../b", "\u202e../x", "x\x00y"]
)
def test_an_animal_id_cannot_write_outside_out(tmp_path, cli, animal):
    protocol = tmp_path / "short.yaml"
    protocol.write_text(SHORT.format(name=".."), encoding="utf-8")
    out = tmp_path / "a" / "b" / "out"
    before = _files_under(tmp_path)
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(protocol),
            "--fast",
            "--rig",
            str(SMALL_RIG),
            "--out",
            str(out),
            "--animal",
            animal,
        ],
        catch_exceptions=False,
    )
    assert "Traceback" not in result.output
    created = _files_under(tmp_path) - before
    outside = {p for p in created if out != p and out not in p.parents}
    assert outside <= {tmp_path / "a", tmp_path / "a" / "b"}
    if result.exit_code == 0:
        folder = Path(result.stdout.strip().splitlines()[-1])
        assert folder.parent == out
    else:  # refused as bad input, with the option named
        assert result.exit_code == 2
        assert "animal" in result.stderr
