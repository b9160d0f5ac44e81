"""Recording matches the rig (issue 14, item 5; rig.program.recording).

Imaging asked of a rig with no microscope does not validate. A behaviour-only protocol on a
microscope rig validates, every summary says loudly that no imaging will be recorded, and the
microscope's frame clock is recorded all the same, even from a microscope someone started by
hand, without the session mistaking it for a stalled stream.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rig.data.folder import SessionFolder
from rig.program.schedule import FRAME_CLOCK
from sim.clocks import MicroscopeClock
from sim.rig import SimImagingConfig
from tests.conftest import SMALL_RIG, drop_section, info_json, make_rig

MICROSCOPE = "imaging: {driver: sim, width: 64, height: 64, neurons: 20,"
# 12 s with a shock: behaviour only unless IMAGING is filled in.
PROTOCOL = """\
protocol: recording
version: 1
seed: 4
stimuli:
  cs_plus: {{type: tone, frequency_hz: 7500, level_db: 75, duration_s: 4}}
  shock: {{type: shock, current_ma: 0.3, duration_s: 1}}
phases:
  - name: baseline
    duration_s: 2
  - name: conditioning
    trials: [{{cs: cs_plus, us: shock}}, {{cs: cs_plus}}]
    iti_s: 1
    post_s: 1
recording:
  video: {{fps: 30}}{imaging}
"""
WITH_IMAGING = PROTOCOL.format(imaging="\n  imaging: {frame_rate_hz: 30}")
BEHAVIOUR_ONLY = PROTOCOL.format(imaging="")
WARNING = "NO IMAGING WILL BE RECORDED"


def _rig_without_microscope(tmp_path: Path) -> Path:
    rig = make_rig(tmp_path, name="no-microscope.yaml")
    rig.write_text(drop_section(rig.read_text(), "imaging"))
    return rig


def test_imaging_on_a_rig_without_a_microscope_does_not_validate(cli, write_yaml, tmp_path):
    protocol = write_yaml(WITH_IMAGING, "recording.yaml")
    rig = _rig_without_microscope(tmp_path)
    for command in ("validate", "plan"):
        result = cli(command, protocol, "--rig", rig)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == (
            f"{protocol}: recording.imaging: rig 'simulated-small' has no microscope (its rig "
            "file has no imaging: section); remove recording.imaging for a behaviour-only "
            "session, or use the rig file of a rig with one"
        )
    result = cli("run", protocol, "--fast", "--rig", rig, "--out", tmp_path / "out")
    assert result.exit_code == 2 and not (tmp_path / "out").exists()
    behaviour = write_yaml(BEHAVIOUR_ONLY, "behaviour.yaml")
    result = cli("validate", behaviour, "--rig", rig)
    assert result.exit_code == 0 and WARNING not in result.output


def test_every_summary_says_loudly_that_no_imaging_will_be_recorded(cli, write_yaml):
    behaviour = write_yaml(BEHAVIOUR_ONLY, "behaviour.yaml")
    imaging = write_yaml(WITH_IMAGING, "imaging.yaml")

    validate = cli("validate", behaviour, "--rig", SMALL_RIG)
    assert validate.exit_code == 0, validate.output
    assert validate.stdout.splitlines()[1].startswith(f"  WARNING   {WARNING}")
    table = cli("plan", behaviour, "--rig", SMALL_RIG)
    assert table.stdout.splitlines()[-1].startswith(f"WARNING         {WARNING}")
    plan = json.loads(cli("plan", behaviour, "--json", "--rig", SMALL_RIG).stdout)
    assert plan["imaging_recorded"] is False
    assert plan["warnings"][0].startswith(WARNING)

    for command in ("validate", "plan"):  # nothing to say when imaging is recorded
        assert WARNING not in cli(command, imaging, "--rig", SMALL_RIG).output
    plan = json.loads(cli("plan", imaging, "--json", "--rig", SMALL_RIG).stdout)
    assert plan["imaging_recorded"] is True and plan["warnings"] == []


def test_the_frame_clock_is_recorded_without_imaging(cli, write_yaml, tmp_path):
    """A microscope started by hand on a behaviour-only session: its frame clock is stored on
    the session clock; no imaging stream is expected or taken, and the session completes (before,
    its frames were expected from the frame clock and it ended as a stalled stream)."""
    rig = make_rig(tmp_path)
    rig.write_text(rig.read_text().replace(MICROSCOPE, MICROSCOPE + " free_running_hz: 15,"))
    protocol = write_yaml(BEHAVIOUR_ONLY, "behaviour.yaml")
    result = cli("run", protocol, "--fast", "--rig", rig, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert f"WARNING: {WARNING}" in result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    info = info_json(cli, folder)
    assert info["status"] == "complete"
    assert set(info["streams"]) == {"video"}
    session = SessionFolder.open(folder)
    assert session.stream_groups() == ["video"]  # no imaging/ group
    fs = session.attrs.sample_rate_hz
    n_samples = round(info["duration_s"] * fs)
    # the microscope's own clock: 15 Hz on its oscillator, which drifts against the DAQ's
    drift = SimImagingConfig.model_fields["drift_ppm"].default
    clock = MicroscopeClock(fs, n_samples, 15.0, drift, free_running=True)
    np.testing.assert_array_equal(session.edges(FRAME_CLOCK).samples, clock.predict(0))
