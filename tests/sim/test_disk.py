"""The simulated disk faults reach the store: a slow disk makes the writer drop (and count)
frames while the acquisition runs on; a full disk ends the session (see also
``tests/reliability/test_ways_out.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from rig.data.folder import STREAM_IMAGE
from tests.conftest import PROTOCOLS, info_json, make_rig


def test_a_slow_disk_drops_frames_counts_them_and_the_session_completes(cli, tmp_path):
    # 2 s of session time per shard write (0.5 s of frames) for 80 s: the writer keeps up with
    # a quarter of the frames, and the 8 MB queues (1000 imaging frames, 416 video) fill.
    rig = make_rig(
        tmp_path,
        "storage: {queue_mb: 8}\nfaults: [{at_s: 5, kind: slow_disk, delay_s: 2, duration_s: 80}]\n",
    )
    demo = PROTOCOLS / "demo.yaml"
    result = cli("run", demo, "--fast", "--rig", rig, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output  # the acquisition never blocked
    assert "frames lost: writer queue full" in result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    info = info_json(cli, folder)
    assert info["status"] == "complete"
    root = zarr.open_group(str(folder / "session.zarr"), mode="r")
    for name, acc in info["streams"].items():
        assert acc["dropped_by_queue"] > 0 and not acc["complete"], name
        assert acc["written"] + acc["dropped_by_queue"] == acc["received"] == acc["edges"]
        assert acc["sync"]["edges_without_frame"] == acc["dropped_by_queue"]
        index = root["timing"][name]["device_index"][:]
        assert len(index) == acc["written"] == root[STREAM_IMAGE[name]]["0"].shape[0]
        assert np.isfinite(
            root["timing"][name]["timestamps_s"][:]
        ).all()  # kept frames keep their time
    assert info["streams"]["video"]["sync"]["mismatches"][0]["kind"] == "frame_missing"


def test_disk_faults_need_a_time_and_validate(cli, tmp_path):
    rig = make_rig(tmp_path, "faults: [{at_s: 1, kind: slow_disk, delay_s: -1}]\n")
    result = cli("validate", PROTOCOLS / "demo.yaml", "--rig", rig)
    assert result.exit_code == 2
    assert "faults[0].delay_s" in result.stderr
