"""The disk estimate of `rig plan` (and `rig selftest`) against what a session writes, on both
shipped simulated rigs: within 10%."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SMALL_RIG

# 20 s with a CS+ and its shock: video and imaging at 30 Hz, scored at the end
PROTOCOL = """\
protocol: disk
version: 1
seed: 2
stimuli:
  cs_plus: {type: tone, frequency_hz: 7500, level_db: 75, duration_s: 6}
  shock: {type: shock, current_ma: 0.3, duration_s: 1}
phases:
  - {name: baseline, duration_s: 8}
  - name: conditioning
    trials: [{cs: cs_plus, us: shock}]
    post_s: 6
recording:
  video: {fps: 30}
  imaging: {frame_rate_hz: 30}
"""


def _written(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("rig", [SMALL_RIG, None], ids=["sim-small", "default sim rig"])
def test_the_disk_estimate_is_within_ten_percent(rig, tmp_path, cli, write_yaml):
    protocol = write_yaml(PROTOCOL, "disk.yaml")
    rig_args = ["--rig", rig] if rig else []
    plan = cli("plan", protocol, *rig_args, "--json")
    assert plan.exit_code == 0, plan.output
    estimate = json.loads(plan.stdout)["totals"]["disk_estimate_bytes"]
    run = cli("run", protocol, *rig_args, "--fast", "--out", tmp_path / "out")
    assert run.exit_code == 0, run.output
    written = _written(Path(run.stdout.strip().splitlines()[-1]))
    assert abs(estimate - written) / written < 0.10, (estimate, written)
