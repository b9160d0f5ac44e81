"""``rig gui`` is a plugin command (entry-point group ``rig.commands``) with the CLI's exit codes."""

from __future__ import annotations

import click
from click.testing import CliRunner

import rig.cli
from rig.cli import main
from tests.conftest import PROTOCOLS


def test_rig_gui_is_found_through_the_entry_point_group():
    assert "gui" in main.commands
    result = CliRunner().invoke(main, ["--help"])
    assert "gui" in result.output


def test_a_bad_protocol_argument_is_bad_input(cli, write_yaml):
    bad = write_yaml(
        (PROTOCOLS / "demo.yaml").read_text().replace("current_ma: 0.5", "current_ma: -1"),
        "bad.yaml",
    )
    result = cli("gui", bad)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{bad}: stimuli.shock.current_ma: Input should be greater than 0 (got -1)"
    )


def test_without_a_display_it_says_so_in_one_line(cli, monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    result = cli("gui", PROTOCOLS / "demo.yaml")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("rig gui: no display")


def test_a_plugin_that_fails_to_load_reports_itself_and_spares_the_rest(monkeypatch):
    class Broken:
        name = "broken"

        def load(self):
            raise ImportError("no module named 'lab_tools'")

    monkeypatch.setattr(rig.cli, "entry_points", lambda group: [Broken()])
    group = click.Group(commands={"validate": main.commands["validate"]})
    rig.cli.add_plugin_commands(group)
    assert set(group.commands) == {"validate", "broken"}
    result = CliRunner().invoke(group, ["broken", "x"])
    assert result.exit_code == 1
    assert "the 'broken' command could not be loaded: no module named 'lab_tools'" in result.stderr
