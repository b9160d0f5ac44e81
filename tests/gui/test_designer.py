"""The designer: edits reach the preview, problems mark their field, saved files validate."""

from __future__ import annotations

import pytest
from PyQt5.QtWidgets import QAbstractSpinBox

from gui.document import ProtocolDocument
from rig.files.protocol import load_protocol, protocol_from_text
from rig.files.rigfile import rig_from_text
from tests.conftest import PROTOCOLS, SMALL_RIG, drop_section


def _box(window, path: str) -> QAbstractSpinBox:
    return window.designer.marks.widgets[path]


def test_editing_a_field_updates_the_preview_and_totals(make_window):
    window = make_window(PROTOCOLS / "demo.yaml")
    designer = window.designer
    before = designer.preview.timeline
    assert before is not None and before.phases[1].start_s == 10
    duration_text = designer.totals_labels["duration"].text()

    _box(window, "phases[0].duration_s").setValue(40)  # the baseline: 10 s -> 40 s

    after = designer.preview.timeline
    assert after.phases[1].start_s == 40
    assert after.duration_s == pytest.approx(before.duration_s + 30)
    assert [t.cs_onset_s for t in after.trials] == pytest.approx(
        [t.cs_onset_s + 30 for t in before.trials]
    )
    assert designer.totals_labels["duration"].text() != duration_text
    assert window.document.dirty and window.windowTitle().split(" · ")[1].endswith("*")
    # the hover read-out names the trial under the cursor
    first = after.trials[0]
    assert f"trial 1/{len(after.trials)}" in designer.preview.describe(first.cs_onset_s + 1)


def test_an_invalid_value_marks_the_field_and_disables_save_and_run(make_window):
    window = make_window(PROTOCOLS / "demo.yaml")
    current = _box(window, "stimuli.shock.current_ma")
    assert window.save_action.isEnabled() and window.run_action.isEnabled()
    assert window.console.start_button.isEnabled()

    current.setValue(1.5)  # the small rig's limit is 1 mA

    assert current.property("invalid") is True
    assert "above this rig's limit of 1 mA" in current.toolTip()
    assert not window.save_action.isEnabled()
    assert not window.save_as_action.isEnabled()
    assert not window.run_action.isEnabled()
    assert not window.console.start_button.isEnabled()
    problems = [
        window.designer.problem_list.item(i).text()
        for i in range(window.designer.problem_list.count())
    ]
    assert problems == [
        "stimuli.shock.current_ma: 1.5 mA is above this rig's limit of 1 mA (safety.max_current_ma)"
    ]
    assert not window.save()  # the shortcut cannot write an invalid file either

    current.setValue(0.8)
    assert current.property("invalid") is False
    assert window.save_action.isEnabled() and window.console.start_button.isEnabled()


def test_a_cross_field_rule_marks_the_field_it_names(make_window):
    window = make_window(PROTOCOLS / "demo.yaml")
    on_s = _box(window, "stimuli.cs_plus.pips.on_s")
    on_s.setValue(1.0)  # a pip as long as its 1-s period
    assert on_s.property("invalid") is True
    assert "shorter than the pip period" in on_s.toolTip()
    assert not window.run_action.isEnabled()


def test_a_saved_protocol_round_trips_through_rig_validate(make_window, cli, tmp_path):
    window = make_window(PROTOCOLS / "conditioning.yaml")
    _box(window, "seed").setValue(12345)
    _box(window, "phases[1].iti_s.uniform.1").setValue(150)
    target = tmp_path / "edited.yaml"

    assert window.save_as(target)

    result = cli("validate", target, "--rig", SMALL_RIG)
    assert result.exit_code == 0, result.output
    assert f"{target}: valid" in result.stdout
    saved = load_protocol(target).protocol
    assert saved == window.designer.check.plan.protocol
    assert saved.seed == 12345 and saved.phases[1].iti_s.uniform == [60, 150]
    assert not window.document.dirty


@pytest.mark.parametrize("path", sorted(PROTOCOLS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_library_protocol_survives_the_designer_unchanged(path):
    doc = ProtocolDocument.from_file(path)
    assert protocol_from_text(doc.text()).protocol == load_protocol(path).protocol


def test_structural_edits_rebuild_the_form(make_window, qtbot):
    window = make_window(PROTOCOLS / "demo.yaml")
    designer = window.designer
    n_phases = len(designer.preview.timeline.phases)
    designer._structural(lambda: designer.data["phases"].append({"name": "post", "duration_s": 30}))
    qtbot.waitUntil(lambda: "phases[2].duration_s" in designer.marks.widgets)
    assert len(designer.preview.timeline.phases) == n_phases + 1
    assert designer.check.ok


def test_a_sound_the_rig_cannot_play_marks_its_field(make_window):
    """The designer checks sounds with rig validate's own function as you type."""
    window = make_window(PROTOCOLS / "demo.yaml")
    frequency = _box(window, "stimuli.cs_plus.frequency_hz")
    frequency.setValue(9000)  # the small rig plays tones up to 0.4 x 20 kHz
    assert frequency.property("invalid") is True
    assert "above this rig's highest tone, 8000 Hz" in frequency.toolTip()
    assert not window.run_action.isEnabled()
    level = _box(window, "stimuli.cs_minus.level_db")
    level.setValue(90)
    assert "(safety.max_level_db)" in level.toolTip()
    frequency.setValue(7500)
    level.setValue(75)
    assert window.designer.check.ok and window.run_action.isEnabled()


def test_recording_must_match_the_rigs_microscope(make_window):
    window = make_window(PROTOCOLS / "demo.yaml")
    designer = window.designer
    imaging = designer.marks.widgets["recording"]  # the "two-photon imaging" check box
    assert designer.warning_label.isHidden()

    imaging.setChecked(False)  # allowed on a microscope rig, but said loudly
    assert designer.check.ok and window.run_action.isEnabled()
    assert not designer.warning_label.isHidden()
    assert "NO IMAGING WILL BE RECORDED" in designer.warning_label.text()

    no_microscope = drop_section(SMALL_RIG.read_text(), "imaging")
    designer.set_rig(rig_from_text(no_microscope, "no-microscope.yaml"))
    assert designer.check.ok and designer.warning_label.isHidden()
    imaging.setChecked(True)  # imaging on a rig without a microscope: an error on the box
    assert imaging.property("invalid") is True
    assert "has no microscope" in imaging.toolTip()
    assert not window.run_action.isEnabled()
