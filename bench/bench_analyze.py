"""How long does ``rig analyze`` take on one 30-minute session with 100 neurons, and does its
memory stay flat in the session's length? And its connectivity beside scikit-learn's
``GraphicalLassoCV`` on the same data: time and edge AUC against the planted coupling.

Runs protocols/conditioning.yaml for one simulated animal on docs/rigs/sim-analysis.yaml
(100 neurons, 128x128), the session cut at 10 minutes and whole (about 32 minutes), then a
recall session (where the hubs are wired). Traces come from the truth footprints and are
extracted before the clock starts (extraction excluded, as the target says); then the analysis
of one session (dF/F, responsiveness, CR and RS models, the network with its shuffle null,
hubs) is timed, with its peak of traced memory. Prints a table, writes
bench/results/analyze.json.

    python bench/bench_analyze.py [--shuffles 100] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from sklearn.covariance import GraphicalLassoCV
from sklearn.metrics import roc_auc_score

from rig.analysis.connectivity import binarise, covariates, functional_network
from rig.analysis.ensemble import decode
from rig.analysis.hubs import find_hubs
from rig.analysis.responses import dff, responsiveness, zscore
from rig.analysis.session_data import load_session
from rig.analysis.traces import footprint_traces
from rig.files.protocol import load_protocol
from rig.files.rigfile import load_rig
from rig.run.session import plan_from_loaded, run_session

ROOT = Path(__file__).resolve().parent.parent
RIG = ROOT / "docs" / "rigs" / "sim-analysis.yaml"
TARGET_S = 60.0


def simulate(protocol: str, out: Path, minutes: float | None, state_dir: Path) -> Path:
    plan = plan_from_loaded(load_protocol(ROOT / "protocols" / f"{protocol}.yaml"), load_rig(RIG))
    limit = (minutes or 1e9) * 60

    def on_runner(runner) -> None:
        def watch(p) -> None:
            if limit <= p.t_s < plan.timeline.duration_s:
                runner.abort("benchmark limit")

        runner.signals.progress.connect(watch)

    folder, _ = run_session(plan, out, "bench-mouse", None, on_runner, str(state_dir))
    return folder


def analyse_once(folder: Path, shuffles: int, jobs: int) -> dict:
    session = load_session(folder)
    t0 = time.perf_counter()
    traces = footprint_traces(session)
    extract_s = time.perf_counter() - t0
    tracemalloc.start()
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    z = zscore(dff(traces.F, traces.Fneu, session.frame_rate_hz))
    resp = responsiveness(z, session, rng)
    t_resp = time.perf_counter()
    decode(z, session, rng)
    t_dec = time.perf_counter()
    net = functional_network(z, session, seed=0, shuffles=shuffles, n_jobs=jobs)
    find_hubs(net, resp.responsive["us"], resp.responsive["cs_plus"])
    t_end = time.perf_counter()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    truth = session.truth
    ids = traces.truth_ids
    coupling = truth.coupling[np.ix_(ids, ids)]
    planted = (coupling + coupling.T) > 0
    upper = np.triu_indices(len(ids), 1)
    return {
        "session": folder.name,
        "session_min": round(session.n_frames / session.frame_rate_hz / 60, 1),
        "neurons": len(traces),
        "extract_s": round(extract_s, 2),
        "analyse_s": round(t_end - t0, 2),
        "responses_s": round(t_resp - t0, 2),
        "decoders_s": round(t_dec - t_resp, 2),
        "network_s": round(t_end - t_dec, 2),
        "peak_traced_mb": round(peak / 1e6, 1),
        "traces_mb": round((traces.F.nbytes + traces.Fneu.nbytes) / 1e6, 1),
        "edge_auc": _auc(planted[upper], net.scores[upper]),
        "z": z,
        "session_obj": session,
        "planted": planted,
    }


def _auc(truth: np.ndarray, score: np.ndarray) -> float | None:
    return round(float(roc_auc_score(truth, score)), 3) if 0 < truth.sum() < len(truth) else None


def glasso(row: dict) -> dict:
    """GraphicalLassoCV on the same binarised activity and covariates (as extra variables)."""
    session, z = row["session_obj"], row["z"]
    X, per_bin = binarise(z, session.frame_rate_hz)
    cov = covariates(session, len(X), per_bin)
    data = np.hstack([X, cov]).astype(float)
    data = (data - data.mean(0)) / np.where(data.std(0) > 0, data.std(0), 1)
    n = X.shape[1]
    t0 = time.perf_counter()
    model = GraphicalLassoCV(n_jobs=1).fit(data)
    seconds = time.perf_counter() - t0
    precision = model.precision_[:n, :n]
    d = np.sqrt(np.outer(np.diag(precision), np.diag(precision)))
    partial = -precision / d
    upper = np.triu_indices(n, 1)
    return {
        "glasso_s": round(seconds, 2),
        "glasso_auc": _auc(row["planted"][upper], partial[upper]),
    }


def ours_network_only(row: dict, shuffles: int, jobs: int) -> float:
    t0 = time.perf_counter()
    functional_network(row["z"], row["session_obj"], seed=0, shuffles=shuffles, n_jobs=jobs)
    return round(time.perf_counter() - t0, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shuffles", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "analyze.json")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench-analyze-"))
    rows = []
    try:
        # conditioning cut at 10 min and whole; then a recall day (the hubs are wired there)
        for protocol, minutes in (("conditioning", 10.0), ("conditioning", None), ("recall", None)):
            state = out / f"animals-{protocol}-{minutes}"
            if protocol == "recall":  # the animal must have been conditioned first
                shutil.copytree(out / "animals-conditioning-None", state)
            folder = simulate(protocol, out / "sessions", minutes, state)
            row = analyse_once(folder, args.shuffles, args.jobs)
            row["protocol"] = protocol
            row.update(glasso(row))
            row["network_s_20_shuffles"] = ours_network_only(row, 20, args.jobs)
            rows.append(row)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    for row in rows:
        for key in ("z", "session_obj", "planted"):
            row.pop(key)
    print(
        f"{'protocol':<13} {'min':>5} {'N':>4} {'extract s':>9} {'analyse s':>9} {'target':>6} "
        f"{'net s':>6} {'peak MB':>8} {'traces MB':>9} {'AUC':>6} {'GLassoCV s':>10} "
        f"{'GLasso AUC':>10} {'net s (20 sh.)':>14}"
    )
    for r in rows:
        print(
            f"{r['protocol']:<13} {r['session_min']:>5} {r['neurons']:>4} {r['extract_s']:>9} "
            f"{r['analyse_s']:>9} {TARGET_S:>6.0f} {r['network_s']:>6} {r['peak_traced_mb']:>8} "
            f"{r['traces_mb']:>9} {r['edge_auc']!s:>6} {r['glasso_s']:>10} {r['glasso_auc']!s:>10} "
            f"{r['network_s_20_shuffles']:>14}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"shuffles": args.shuffles, "jobs": args.jobs, "rows": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
