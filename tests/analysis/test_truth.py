"""``rig analyze`` against the simulator's truth, on one animal's four short days (footprints)."""

from __future__ import annotations

import csv
import json

import numpy as np
from sklearn.metrics import roc_auc_score

from rig.analysis.pipeline import EDGE_COLUMNS, NEURON_COLUMNS
from rig.analysis.session_data import load_session

TRUE_DRIVE_HZ = 1.0  # a neuron truly responds when the stimulus raises its rate this much


def _rows(analysed) -> list[dict]:
    with open(analysed / "neurons.csv", newline="") as f:
        return list(csv.DictReader(f))


def _day(analysed, folder) -> tuple[list[dict], object]:
    return [r for r in _rows(analysed) if r["session"] == folder.name], load_session(folder)


def _arrays(analysed, folder):
    return np.load(analysed / "sessions" / f"{folder.name}.npz")


def _truth_drive(session, role: str) -> np.ndarray:
    kind = "shock" if role == "us" else "sound"
    onsets = np.array([iv.start_s for iv in session.stimuli(role)])
    return session.truth.evoked_drive_hz(onsets, kind)


def test_tables_have_the_contract_columns_and_one_row_per_session_and_neuron(
    analysed, four_days, summary
):
    rows = _rows(analysed)
    assert tuple(rows[0]) == NEURON_COLUMNS
    with open(analysed / "edges.csv", newline="") as f:
        edges = list(csv.DictReader(f))
    assert tuple(edges[0]) == EDGE_COLUMNS and all(float(e["weight"]) > 0 for e in edges)
    # sessions sorted by start time, whatever order they were given in
    assert [s["session"] for s in summary["sessions"]] == [f.name for f in four_days]
    for folder in four_days:
        day = [r for r in rows if r["session"] == folder.name]
        assert len({r["neuron"] for r in day}) == len(day) == 60
    assert summary["traces"] == "footprints" and "extraction bypassed" in summary["traces_note"]
    for name in (
        "network_fov.png",
        "us_heatmap.png",
        "ensemble_connectivity.png",
        "days.png",
        "analysis.png",
    ):
        assert (analysed / name).stat().st_size > 10_000


def test_one_identity_per_neuron_across_days(analysed, four_days):
    for folder in four_days:
        rows, session = _day(analysed, folder)
        # footprints: the ROIs are the truth's cells; identity across days must follow them
        ids = np.array([int(r["neuron"]) for r in rows])
        centres = np.array([[float(r["y_px"]), float(r["x_px"])] for r in rows])
        true_centres = session.truth.centers_px[ids]  # neuron id k is truth neuron k
        assert np.median(np.hypot(*(centres - true_centres).T)) < 1.0


def test_cs_plus_responsiveness_at_recall(analysed, four_days):
    rows, session = _day(analysed, four_days[2])
    ids = np.array([int(r["neuron"]) for r in rows])
    truth = _truth_drive(session, "cs_plus")[ids] >= TRUE_DRIVE_HZ
    found = np.array([r["cs_plus_responsive"] == "1" for r in rows])
    precision = (found & truth).sum() / found.sum()
    recall = (found & truth).sum() / truth.sum()
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)


def test_us_responsiveness_auc_at_conditioning(analysed, four_days):
    rows, session = _day(analysed, four_days[1])
    ids = np.array([int(r["neuron"]) for r in rows])
    shock = session.truth.populations[ids] == "shock"  # the footshock-answering population
    score = np.array([float(r["us_score"]) for r in rows])
    assert roc_auc_score(shock, score) >= 0.95


def test_edges_against_the_planted_coupling_at_recall(analysed, four_days):
    session = load_session(four_days[2])
    arrays = _arrays(analysed, four_days[2])
    ids = arrays["neuron"]
    coupling = session.truth.coupling[np.ix_(ids, ids)]
    planted = (coupling + coupling.T) > 0
    scores = arrays["edge_scores"]
    upper = np.triu_indices(len(ids), 1)
    assert roc_auc_score(planted[upper], scores[upper]) >= 0.85


def _cs_plus_hub_weight(analysed, folder) -> float:
    """Mean retained edge weight over every (CS+ neuron, hub) pair of the truth."""
    session = load_session(folder)
    pops = session.truth.populations
    weight = np.zeros((len(pops), len(pops)))
    with open(analysed / "edges.csv", newline="") as f:
        for e in csv.DictReader(f):
            if e["session"] == folder.name:
                a, b = int(e["neuron_a"]), int(e["neuron_b"])
                weight[a, b] = weight[b, a] = float(e["weight"])
    return float(weight[np.ix_(pops == "cs_plus", pops == "shock")].mean())


def test_cs_plus_to_hub_edges_rise_with_learning_and_fall_with_extinction(analysed, four_days):
    habituation, _, recall, extinction = (_cs_plus_hub_weight(analysed, f) for f in four_days)
    assert recall >= 3 * habituation and recall > 0.05
    assert extinction < recall


def test_the_papers_result_in_the_summary(summary):
    """US-responsive neurons of the conditioning day: more of them are hubs, and more linked to
    CS+-responsive neurons, at recall than at habituation."""
    usr = {row["label"]: row for row in summary["across_days"]["usr_network"]}
    assert usr["recall"]["usr_to_cs_plus_edges"] >= 3 * max(
        usr["habituation"]["usr_to_cs_plus_edges"], 1
    )
    assert usr["recall"]["usr_hubs"] > usr["habituation"]["usr_hubs"]
    changes = {
        (c["to_label"], c["metric"]): c for c in summary["across_days"]["changes_from_first"]
    }
    low, _high = changes[("recall", "strength")]["ci95"]
    assert low > 0  # node strength grew from habituation to recall, beyond its bootstrap CI


def test_ensemble_is_decoded_where_the_animal_froze(summary):
    by_label = {s["protocol"]: s for s in summary["sessions"]}
    assert not by_label["habituation"]["cr_model"]["fitted"]  # a naive animal hardly freezes
    assert by_label["conditioning"]["cr_model"]["cv_auc"] > 0.8
    assert by_label["recall"]["cr_model"]["ensemble_size"] > 0


def test_same_seed_same_outputs_in_any_order_on_any_number_of_processes(cli, four_days, tmp_path):
    pair = [four_days[0], four_days[2]]  # the two shortest days
    texts = []
    for k, (order, jobs) in enumerate([((1, 0), 1), ((0, 1), 2)]):
        out = tmp_path / f"out{k}"
        args = ["analyze", *(pair[i] for i in order), "--out", out, "--traces", "footprints"]
        result = cli(*args, "--shuffles", 3, "--jobs", jobs, "--json")
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert [s["session"] for s in summary["sessions"]] == [p.name for p in pair]
        texts.append((out / "neurons.csv").read_text() + (out / "edges.csv").read_text())
    assert texts[0] == texts[1]


def test_nwb_export_carries_the_analysis(cli, analysed, four_days, tmp_path):
    from pynwb import NWBHDF5IO

    result = cli("export", four_days[2], "--nwb", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    with NWBHDF5IO(str(tmp_path / "session.nwb"), "r") as io:
        nwb = io.read()
        ophys = nwb.processing["ophys"]
        rois = ophys["ImageSegmentation"]["PlaneSegmentation"]
        dff = ophys["DfOverF"]["dff"]
        assert len(rois) == 60 and dff.data.shape[1] == 60
        assert sorted(rois["neuron"].data[:]) == list(range(60))
        neurons = ophys["analysis_neurons"]
        assert len(neurons) == 60 and set(neurons["session"].data[:]) == {four_days[2].name}
        assert len(ophys["analysis_edges"]) > 0
