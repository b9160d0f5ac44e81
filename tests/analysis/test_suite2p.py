"""The suite2p path: reading suite2p's files (numpy only), identity across days on a real
suite2p run's output (the committed fixture, tests/data/suite2p/README.md), and ``rig analyze
--traces suite2p:DIR`` end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rig.analysis.identity import match_sessions
from rig.analysis.traces import read_suite2p
from rig.files.inputfile import InputError

FIXTURE = Path(__file__).resolve().parent.parent / "data" / "suite2p"
DAYS = ("habituation", "conditioning", "recall", "extinction")


def _truth_ids(traces, truth) -> np.ndarray:
    """Each ROI's truth neuron: its nearest truth centre once the day's translation between
    suite2p's frame and the truth's is taken out (estimated from the centres themselves, so
    this does not lean on the registration under test); -1 for none within 2 px."""
    centres = traces.centroids
    true = truth["centers_px"]
    shift = np.zeros(2)
    for _ in range(3):
        d = np.linalg.norm(centres[:, None] + shift - true[None], axis=2)
        nearest = d.argmin(axis=1)
        shift = np.median(true[nearest] - centres, axis=0)
    d = np.linalg.norm(centres[:, None] + shift - true[None], axis=2)
    return np.where(d.min(axis=1) < 2.0, d.argmin(axis=1), -1)


def test_identity_across_days_on_suite2p_output():
    traces = [read_suite2p(FIXTURE / d / "plane0") for d in DAYS]
    truths = [np.load(FIXTURE / d / "truth.npz") for d in DAYS]
    identity = match_sessions(traces)
    first_id: dict[int, int] = {}
    correct = total = 0
    for day, (t, truth) in enumerate(zip(traces, truths, strict=True)):
        for roi, true_id in enumerate(_truth_ids(t, truth)):
            given = int(identity.neuron_ids[day][roi])
            if true_id < 0:
                continue
            if day > 0:
                total += 1
                seen = first_id.get(true_id)
                correct += given == seen if seen is not None else given not in first_id.values()
            first_id.setdefault(true_id, given)
    assert total >= 30  # enough ROIs seen again to measure
    assert correct / total >= 0.95, (correct, total)


def test_reading_suite2p_keeps_the_cells_and_their_traces():
    t = read_suite2p(FIXTURE / "recall")  # the folder above plane0 works too
    iscell = np.load(FIXTURE / "recall" / "plane0" / "iscell.npy")
    assert len(t) == int(iscell[:, 0].sum()) == t.F.shape[0] == t.Fneu.shape[0]
    assert t.mean_image.shape == (96, 96) and t.source == "suite2p"


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda d: (d / "F.npy").unlink(), "F.npy: missing"),
        (lambda d: np.save(d / "Fneu.npy", np.zeros((2, 3))), "Fneu.npy: shape (2, 3) differs"),
        (lambda d: (d / "stat.npy").write_bytes(b"not numpy"), "not a readable .npy file"),
        (lambda d: np.save(d / "iscell.npy", np.zeros((1, 2))), "iscell.npy: shape (1, 2)"),
    ],
)
def test_a_damaged_suite2p_folder_is_reported_by_file(tmp_path, damage, expected):
    folder = tmp_path / "plane0"
    shutil.copytree(FIXTURE / "recall" / "plane0", folder)
    damage(folder)
    with pytest.raises(InputError) as err:
        read_suite2p(folder)
    assert expected in err.value.report() and str(folder) in err.value.report()


def test_frame_count_must_match_the_session():
    with pytest.raises(InputError, match="but the session has 5 imaging frames"):
        read_suite2p(FIXTURE / "recall" / "plane0", n_frames=5)


def test_analyze_on_suite2p_output(cli, fixture_days, tmp_path):
    # suite2p:DIR looks for DIR/<session folder name>
    traces = tmp_path / "s2p"
    for folder, day in zip(fixture_days, DAYS, strict=True):
        shutil.copytree(FIXTURE / day, traces / folder.name)
    out = tmp_path / "out"
    args = ["analyze", *fixture_days, "--out", out, "--traces", f"suite2p:{traces}"]
    result = cli(*args, "--shuffles", 3, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["traces"] == "suite2p" and len(summary["sessions"]) == 4
    assert summary["neurons"] < sum(s["rois"] for s in summary["sessions"])  # matched across days
    assert (out / "neurons.csv").read_text().count("\n") == 1 + sum(
        s["rois"] for s in summary["sessions"]
    )
