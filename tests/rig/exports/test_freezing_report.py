"""The freezing report says what it shows: CS colours from the stimuli's roles, the trace
interval of trace conditioning, SIMULATED for a simulated session, and which scoring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.colors import to_hex

from rig.cli import main
from rig.data.folder import SessionFolder
from rig.exports.csv_tiff import trial_records
from rig.exports.frame_table import CS_MINUS, CS_PLUS
from rig.exports.freezing_report import ROLE_COLOURS, cs_colours, freezing_figure
from tests.conftest import SMALL_RIG

# Trace conditioning with stimuli not named cs_plus/cs_minus, the unpaired tone first: the
# paired one is the CS+ whatever its name or trial number; the shock comes 2 s after its tone.
TRACE = """\
protocol: trace
version: 1
seed: 5
stimuli:
  low:  {type: tone, frequency_hz: 2000, level_db: 75, duration_s: 3}
  high: {type: tone, frequency_hz: 7500, level_db: 75, duration_s: 3}
  zap:  {type: shock, current_ma: 0.3, duration_s: 0.5}
phases:
  - {name: baseline, duration_s: 4}
  - name: conditioning
    trials:
      - {cs: low}
      - {cs: high, us: zap, us_onset_s: 5}
      - {cs: low}
    order: sequential
    iti_s: 3
    post_s: 2
recording:
  video: {fps: 30}
"""


@pytest.fixture(scope="module")
def trace_session(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trace")
    protocol = out / "trace.yaml"
    protocol.write_text(TRACE, encoding="utf-8")
    args = ["run", protocol, "--fast", "--rig", SMALL_RIG, "--out", out / "s"]
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


def test_colours_come_from_roles_not_names_or_trial_numbers():
    colours = cs_colours({"low": CS_MINUS, "high": CS_PLUS})
    assert colours["high"] == (ROLE_COLOURS[CS_PLUS], "high (CS+)")
    assert colours["low"] == (ROLE_COLOURS[CS_MINUS], "low (CS-)")
    unknown = cs_colours({"a": "cs", "b": "cs"})
    assert unknown["a"][0] != unknown["b"][0] and unknown["a"][1] == "a"


def test_the_report_of_a_trace_session(trace_session, tmp_path, cli):
    fig = freezing_figure(SessionFolder.open(trace_session))
    top, raster = fig.axes
    assert top.get_title().startswith("[SIMULATED] sim-mouse - trace - scoring score-1")
    assert any(t.get_text() == "SIMULATED" for t in fig.texts)
    lines = {line.get_label(): to_hex(line.get_color()) for line in top.get_lines()}
    assert lines == {"high (CS+)": ROLE_COLOURS[CS_PLUS], "low (CS-)": ROLE_COLOURS[CS_MINUS]}
    legend = [t.get_text() for t in raster.get_legend().get_texts()]
    assert "trace interval" in legend and "high (CS+)" in legend
    png = cli("score", trace_session, "--plot")
    assert png.exit_code == 0 and png.stdout.startswith("[SIMULATED] scoring score-2")


def test_the_trace_interval_is_an_epoch_of_its_own(trace_session):
    rows = {r["cs"]: r for r in trial_records(SessionFolder.open(trace_session))}
    assert rows["low"]["percent_trace"] is None  # no US, no trace
    assert 0 <= rows["high"]["percent_trace"] <= 100
    assert {r["mode"] for r in rows.values()} == {"SIMULATED"}
    epochs = SessionFolder.open(trace_session).freezing_record()["results"]["trials"][1]["epochs"]
    trace = epochs["trace"]
    assert trace["end_s"] - trace["start_s"] == pytest.approx(2.0, abs=0.01)
    assert np.isclose(trace["start_s"], epochs["cs"]["end_s"])
