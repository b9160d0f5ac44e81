"""A session run with a subject file and experimenter: stored, shown, and an NWB file that
nwbinspector's DANDI configuration finds nothing critical or against best practice in."""

from __future__ import annotations

from pathlib import Path

import pynwb
import pytest
from click.testing import CliRunner
from nwbinspector import Importance, inspect_nwbfile, load_config

from rig.cli import main
from tests.conftest import SMALL_RIG, SUBJECT, info_json


@pytest.fixture(scope="module")
def metadata_session(tmp_path_factory, short_protocol) -> Path:
    """The short protocol run with a subject file, a second experimenter and notes."""
    out = tmp_path_factory.mktemp("metadata-session")
    subject = out / "M0123.yaml"
    subject.write_text(SUBJECT, encoding="utf-8")
    args = ["run", short_protocol, "--fast", "--rig", SMALL_RIG, "--out", out / "s"]
    args += ["--subject", subject, "--experimenter", "Roe, Rick", "--notes", "day 1, calm"]
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


def test_rig_info_shows_the_subject_and_who_ran_it(metadata_session, cli):
    assert metadata_session.name.split("_")[1] == "M0123"  # the animal is the subject's id
    text = cli("info", metadata_session).stdout
    assert "subject   M0123: sex F, born 2026-06-01, Mus musculus, C57BL/6J" in text
    assert "by        Roe, Rick" in text  # the command line over the file's default
    assert "at        Fear Lab, Example University" in text
    data = info_json(cli, metadata_session)
    assert data["subject"]["weight_g"] == 24.5 and data["notes"] == "day 1, calm"


def test_the_nwb_file_carries_the_metadata_and_dandi_finds_nothing_critical(
    metadata_session, tmp_path, cli
):
    result = cli("export", metadata_session, "--nwb", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    path = tmp_path / "session.nwb"
    messages = list(inspect_nwbfile(nwbfile_path=str(path), config=load_config("dandi")))
    serious = [
        m
        for m in messages
        if m.importance in (Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION)
    ]
    assert serious == [], [f"{m.check_function_name}: {m.message}" for m in serious]
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        s = nwb.subject
        assert (s.subject_id, s.sex, s.species, s.strain) == (
            "M0123",
            "F",
            "Mus musculus",
            "C57BL/6J",
        )
        assert s.age.startswith("P") and s.age.endswith("D") and s.weight == "24.5 g"
        assert list(nwb.experimenter) == ["Roe, Rick"] and nwb.lab == "Fear Lab"
        assert {"daq", "shock_generator", "behaviour_camera", "microscope"} <= set(nwb.devices)
        plane = nwb.imaging_planes["imaging_plane"]
        assert (plane.indicator, plane.location, plane.excitation_lambda) == (
            "GCaMP6s",
            "Prelimbic area",
            920.0,
        )
        assert list(plane.grid_spacing) == [3.3, 3.3] and plane.grid_spacing_unit == "micrometers"
        assert list(nwb.acquisition["two_photon"].field_of_view) == pytest.approx(
            [64 * 3.3e-6, 64 * 3.3e-6]
        )
        assert "day 1, calm" in nwb.notes


def test_without_a_subject_file_dandi_says_what_is_missing(imaging_session, tmp_path, cli):
    """The check above can fail: a session without metadata is reported CRITICAL."""
    assert cli("export", imaging_session, "--nwb", "--out", tmp_path).exit_code == 0
    messages = inspect_nwbfile(
        nwbfile_path=str(tmp_path / "session.nwb"), config=load_config("dandi")
    )
    critical = {m.check_function_name for m in messages if m.importance == Importance.CRITICAL}
    assert "check_subject_age" in critical


def test_a_subject_that_is_not_the_animal_is_bad_input(tmp_path, short_protocol, cli):
    subject = tmp_path / "M0123.yaml"
    subject.write_text(SUBJECT, encoding="utf-8")
    args = ["run", short_protocol, "--fast", "--rig", SMALL_RIG, "--out", tmp_path / "s"]
    result = cli(*args, "--subject", subject, "--animal", "M9")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"{subject}: subject_id: 'M0123' is not --animal 'M9'"
    bad = cli(*args, "--subject", subject, "--experimenter", " ")
    assert bad.exit_code == 2 and bad.stderr.startswith("command line: experimenter: ")
    assert not (tmp_path / "s").exists()  # nothing was started
