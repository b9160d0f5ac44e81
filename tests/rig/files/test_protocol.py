"""The protocol format: the library validates; every kind of bad input exits 2 with a path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PROTOCOLS

GOOD = (PROTOCOLS / "demo.yaml").read_text()


@pytest.mark.parametrize("name", ["habituation", "conditioning", "recall", "extinction", "demo"])
def test_library_protocols_validate(cli, name):
    result = cli("validate", PROTOCOLS / f"{name}.yaml")
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout
    assert "sha256" in result.stdout


def _bad(cli, write_yaml, text: str, *extra: str):
    path = write_yaml(text, "bad.yaml")
    result = cli("validate", path, *extra)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return path, result.stderr


@pytest.mark.parametrize(
    ("old", "new", "where", "words"),
    [
        ("frequency_hz: 7500", "frequncy_hz: 7500", "stimuli.cs_plus.frequncy_hz", "unknown key"),
        (
            "duration_s: 10\n  - name: cond",
            "duration_s: -10\n  - name: cond",
            "phases[0].duration_s",
            "greater than 0",
        ),
        (
            "{cs: cs_minus, repeat: 2}",
            "{cs: cs_minnus, repeat: 2}",
            "phases[1].trials[1].cs",
            "unknown stimulus",
        ),
        (
            "level_db: 75, duration_s: 10, ramp_ms: 5,\n",
            "level_db: .nan, duration_s: 10, ramp_ms: 5,\n",
            "stimuli.cs_plus.level_db",
            "finite",
        ),
        ("seed: 7", "seed: '7'", "seed", "valid integer"),
        (
            "iti_s: {uniform: [10, 15]}",
            "iti_s: {uniform: [15, 10]}",
            "phases[1].iti_s",
            "low <= high",
        ),
        ("max_consecutive: 2", "max_consecutive: 0", "phases[1].max_consecutive", "greater than"),
        (
            "{cs: cs_plus, us: shock, repeat: 2}",
            "{cs: cs_plus, us: cs_minus, repeat: 2}",
            "phases[1].trials[0].us",
            "a US is a shock",
        ),
    ],
)
def test_field_errors_name_the_path(cli, write_yaml, old, new, where, words):
    assert old in GOOD
    path, err = _bad(cli, write_yaml, GOOD.replace(old, new, 1))
    line = next(line for line in err.splitlines() if where in line)
    assert line.startswith(f"{path}: {where}: ")
    assert words in line


def test_shock_over_the_rigs_limit(cli, write_yaml):
    path, err = _bad(cli, write_yaml, GOOD.replace("current_ma: 0.5", "current_ma: 1.5"))
    assert f"{path}: stimuli.shock.current_ma: 1.5 mA is above this rig's limit of 1 mA" in err


def test_too_many_shocks_for_the_rig(cli, write_yaml, tmp_path):
    rig = tmp_path / "rig.yaml"
    small = Path(__file__).parents[3] / "docs" / "rigs" / "sim-small.yaml"
    rig.write_text(small.read_text().replace("max_shocks: 20", "max_shocks: 1"))
    _, err = _bad(cli, write_yaml, GOOD, "--rig", str(rig))
    assert "phases: 2 shocks in the session; this rig allows 1" in err


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("protocol: [unclosed", "invalid YAML"),
        ("", "the file is empty"),
        ("- just\n- a list\n", "expected a mapping"),
        ("protocol: a\nprotocol: b\n", "duplicate key"),
        ("protocol: !!python/object/apply:os.system ['echo hi']\n", "invalid YAML"),
    ],
)
def test_broken_files(cli, write_yaml, text, words):
    path, err = _bad(cli, write_yaml, text)
    assert err.startswith(f"{path}: ")
    assert words in err


def test_missing_file(cli, tmp_path):
    result = cli("validate", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"{tmp_path / 'nope.yaml'}: file not found"


def test_bad_rig_file_names_its_path(cli, write_yaml, tmp_path):
    small = Path(__file__).parents[3] / "docs" / "rigs" / "sim-small.yaml"
    rig = tmp_path / "rig.yaml"
    rig.write_text(small.read_text().replace("width: 160", "widht: 160"))
    result = cli("validate", PROTOCOLS / "demo.yaml", "--rig", rig)
    assert result.exit_code == 2
    assert f"{rig}: camera.widht: unknown key" in result.stderr


def test_schema_is_json_schema(cli):
    import json

    result = cli("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["additionalProperties"] is False
    assert {"protocol", "stimuli", "phases"} <= set(schema["properties"])
