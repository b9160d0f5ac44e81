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


def test_an_invalid_protocol_opens_in_the_designer_with_its_problems(
    cli, write_yaml, monkeypatch, styled_app
):
    """``rig gui bad.yaml`` opens the file (issue 20), prints its problems, and the designer
    marks them; it is not refused as bad input."""
    import gui.app

    bad = write_yaml(
        (PROTOCOLS / "demo.yaml").read_text().replace("current_ma: 0.5", "current_ma: -1"),
        "bad.yaml",
    )
    opened = []

    def fake_run_app(protocol, rig):
        window, problem = gui.app.make_window(protocol, rig)
        opened.append((window, problem))
        return 0

    monkeypatch.setattr(gui.app, "run_app", fake_run_app)
    result = cli("gui", bad)
    assert result.exit_code == 0
    assert f"{bad}: stimuli.shock.current_ma: Input should be greater than 0" in result.stderr
    window, problem = opened[0]
    assert problem is None and window.document.path == bad
    problems = [(p.path, p.message) for p in window.designer.check.problems]
    assert ("stimuli.shock.current_ma", "Input should be greater than 0 (got -1)") in problems
    assert not window.run_action.isEnabled()
    window.confirm_discard = lambda: True
    window.close()


def test_a_protocol_that_is_not_yaml_opens_a_blank_designer_saying_why(write_yaml, styled_app):
    import gui.app
    from rig.files.rigfile import load_rig

    broken = write_yaml("protocol: [unclosed\n", "broken.yaml")
    window, problem = gui.app.make_window(broken, load_rig(None))
    assert problem is not None and problem.startswith(str(broken))
    assert window.document.path is None
    window.confirm_discard = lambda: True
    window.close()


def test_a_missing_protocol_file_is_still_bad_input(cli, tmp_path):
    result = cli("gui", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert str(tmp_path / "nope.yaml") in result.stderr


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
