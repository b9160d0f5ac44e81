"""Subject files and the rig file's device descriptions: strict, with the field in each error."""

from __future__ import annotations

from datetime import date

import pytest

from rig.files.inputfile import InputError
from rig.files.rigfile import DEFAULT_SIM_RIG, rig_from_text
from rig.files.subject import SessionMetadata, age_days, load_subject, subject_from_text
from tests.conftest import SUBJECT


def test_a_subject_file_loads_with_its_session_defaults(tmp_path):
    path = tmp_path / "M0123.yaml"
    path.write_text(SUBJECT)
    loaded = load_subject(path)
    s = loaded.subject
    assert (s.subject_id, s.species, s.sex, s.weight_g) == ("M0123", "Mus musculus", "F", 24.5)
    assert s.age_at(date(2026, 8, 30)) == "P90D"
    assert loaded.session.experimenter == ["Doe, Jane"]
    assert loaded.attrs()["subject"]["date_of_birth"] == "2026-06-01"
    assert "M0123: sex F, born 2026-06-01" in s.summary()


def test_the_command_line_overrides_the_subject_files_defaults():
    defaults = subject_from_text(SUBJECT).session
    merged = defaults.merged(experimenter=["Roe, Rick"], notes="day 2", lab=None)
    assert merged == SessionMetadata(
        experimenter=["Roe, Rick"], institution="Example University", lab="Fear Lab", notes="day 2"
    )


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("subject_id: M1\nsex: X\nage: P90D\n", "sex"),
        ("subject_id: M1\nsex: F\nage: 90 days\n", "age"),
        ("subject_id: M1\nsex: F\n", "give date_of_birth or age"),
        ("subject_id: M 1\nsex: F\nage: P9W\n", "subject_id"),
        ("subject_id: M1\nsex: F\nage: P9W\nweight: 20\n", "weight: unknown key"),
        ("subject_id: M1\nsex: F\nage: P9W\nweight_g: -2\n", "weight_g"),
        ("subject_id: M1\nsex: F\ndate_of_birth: June\n", "date_of_birth"),
        ("subject_id: M1\nsex: F\nage: P9W\nspecies: mouse\n", "species"),
        (
            "subject_id: M1\nsex: F\nage: P9W\nsession: {experimenter: Doe}\n",
            "session.experimenter",
        ),
    ],
)
def test_bad_subject_files_name_the_field(tmp_path, text, where):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_subject(path)
    assert all(line.startswith(f"{path}: ") for line in info.value.report().splitlines())
    assert where in info.value.report()


def test_iso_durations():
    assert age_days("P90D") == 90
    assert age_days("P2W") == 14
    with pytest.raises(ValueError):
        age_days("P")


def test_device_sections_describe_the_hardware_and_the_driver_never_sees_it():
    rig = rig_from_text(DEFAULT_SIM_RIG)  # the sim driver's models forbid unknown keys
    assert rig.microscope_info.um_per_px == 0.7
    assert rig.microscope_info.indicator == "GCaMP6s"
    assert rig.microscope_info.location == "Prelimbic area"
    assert rig.camera_info.mm_per_px == 0.72
    assert rig.device("daq").info.description is None


def test_a_bad_device_description_names_its_field():
    for old, new, where in [
        ("um_per_px: 0.7", "um_per_px: 0", "imaging.um_per_px"),
        ("mm_per_px: 0.72", "mm_per_px: 0.72, manufacturr: X", "camera.manufacturr"),
    ]:
        with pytest.raises(InputError, match=rf"<rig>: {where}: "):
            rig_from_text(DEFAULT_SIM_RIG.replace(old, new))
