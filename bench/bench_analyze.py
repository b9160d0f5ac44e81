"""How long does ``rig analyze`` take on one 30-minute session with 100 neurons, how much memory
does it hold, and does that stay flat in the session's length? Side by side with an older
checkout's analysis (``--previous``) on the same sessions, and our connectivity beside
scikit-learn's ``GraphicalLassoCV`` on the same data (time and edge AUC against the planted
coupling).

Runs protocols/conditioning.yaml for one simulated animal on docs/rigs/sim-analysis.yaml
(100 neurons, 128x128 at 30 Hz), the session cut at 10 minutes and whole (about 32 minutes),
then a recall session (where the hubs are wired). Each analysis runs in its own process
(``--worker``) with the checkout's ``rig`` on its path: the traces are extracted from the truth
footprints first (extraction excluded, as the target says), then ``rig.analysis.pipeline.
analyze`` is timed on the one session as ``rig analyze`` runs it: wall time, CPU time (the
process and its worker processes) and the peak resident memory of the process that holds the
traces, above what it held before the analysis (Linux: ``VmHWM`` after resetting it). The two
codes' results are compared: responsive neurons, ensemble, edges, hubs, thresholds, and the
edge AUC against the truth.

    python bench/bench_analyze.py [--jobs 2] [--shuffles N] [--previous DIR] [--sessions DIR]

``--previous DIR``: a checkout of the code to compare with (``git worktree add DIR main``),
analysed with its own defaults (``--shuffles`` sets ours only). ``--only TAG`` runs one of the
sessions (conditioning-10.0, conditioning-whole, recall-whole). ``--sessions DIR`` keeps the
simulated sessions there and reuses them on the next run. Prints a table, writes
bench/results/analyze.json.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RIG = ROOT / "docs" / "rigs" / "sim-analysis.yaml"
TARGET_S = 60.0
DAYS = (("conditioning", 10.0), ("conditioning", None), ("recall", None))


# ----------------------------------------------------------------------------- sessions


def simulate(protocol: str, out: Path, minutes: float | None, state_dir: Path) -> Path:
    from rig.files.protocol import load_protocol
    from rig.files.rigfile import load_rig
    from rig.run.session import plan_from_loaded, run_session

    plan = plan_from_loaded(load_protocol(ROOT / "protocols" / f"{protocol}.yaml"), load_rig(RIG))
    limit = (minutes or 1e9) * 60

    def on_runner(runner) -> None:
        def watch(p) -> None:
            if limit <= p.t_s < plan.timeline.duration_s:
                runner.abort("benchmark limit")

        runner.signals.progress.connect(watch)

    folder, _ = run_session(plan, out, "bench-mouse", None, on_runner, str(state_dir))
    return folder


def sessions(where: Path) -> list[tuple[str, Path]]:
    """The three sessions, simulated into ``where`` unless they are there already."""
    found = []
    for protocol, minutes in DAYS:
        tag = f"{protocol}-{minutes or 'whole'}"
        out = where / tag
        done = sorted(out.glob("2*")) if out.exists() else []
        if not done:
            state = where / f"animals-{tag}"
            if protocol == "recall":  # the animal must have been conditioned first
                shutil.rmtree(state, ignore_errors=True)
                shutil.copytree(where / "animals-conditioning-whole", state)
            done = [simulate(protocol, out, minutes, state)]
        found.append((tag, done[0]))
    return found


# ----------------------------------------------------------------------------- one analysis


def _cpu_s() -> float:
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Give freed heap back to the system (glibc), then reset this process's peak resident
    memory (Linux >= 4.0); False where it cannot."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except (OSError, AttributeError):
        return False


def worker(folder: Path, out: Path, shuffles: int | None, jobs: int, glasso: bool) -> None:
    """Analyse one session with the ``rig`` on ``sys.path``; results into ``out`` (npz)."""
    from rig.analysis import pipeline
    from rig.analysis.session_data import load_session
    from rig.analysis.traces import TraceSource, footprint_traces

    session = load_session(folder)
    t0 = time.perf_counter()
    traces = footprint_traces(session)
    extract_s = time.perf_counter() - t0
    pipeline.session_traces = lambda *_args: traces  # extracted above: not timed
    kwargs = {"shuffles": shuffles} if shuffles is not None else {}
    peak_ok = _reset_peak()
    before_kb = _status_kb("VmRSS")
    c0, t0 = _cpu_s(), time.perf_counter()
    analysis = pipeline.analyze([folder], TraceSource.parse("footprints"), n_jobs=jobs, **kwargs)
    wall = time.perf_counter() - t0
    peak_kb = _status_kb("VmHWM")
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)  # its workers' CPU time counts once reaped
    cpu = _cpu_s() - c0
    r = analysis.results[0]
    net, resp = r.network, r.responses
    extra = {}
    if glasso:
        extra = _glasso(r)
    np.savez(
        out,
        wall_s=wall,
        cpu_s=cpu,
        extract_s=extract_s,
        peak_above_mb=(peak_kb - before_kb) / 1e3 if peak_ok and peak_kb and before_kb else -1.0,
        peak_mb=peak_kb / 1e3 if peak_ok and peak_kb else -1.0,
        traces_mb=(traces.F.nbytes + traces.Fneu.nbytes) / 1e6,
        minutes=session.n_frames / session.frame_rate_hz / 60,
        neurons=len(traces),
        truth_ids=traces.truth_ids,
        cs_plus=resp.responsive["cs_plus"],
        us=resp.responsive["us"],
        us_score=resp.score["us"],
        ensemble=r.cr.positive,
        weights=net.weights,
        scores=net.scores,
        edge_threshold=net.edge_threshold,
        hub_threshold=r.hubs.threshold,
        hub=r.hubs.hub,
        shuffles=net.shuffles,
        c=net.c,
        **extra,
    )


def _glasso(r) -> dict:
    """GraphicalLassoCV on the same binarised activity and covariates (as extra variables)."""
    from sklearn.covariance import GraphicalLassoCV

    from rig.analysis.connectivity import binarise, covariates
    from rig.analysis.responses import zscore

    X, per_bin = binarise(zscore(r.dff), r.session.frame_rate_hz)
    cov = covariates(r.session, len(X), per_bin)
    data = np.hstack([X, cov]).astype(float)
    data = (data - data.mean(0)) / np.where(data.std(0) > 0, data.std(0), 1)
    n = X.shape[1]
    t0 = time.perf_counter()
    with np.errstate(invalid="ignore"):  # its CV scores are -inf where an alpha diverges
        model = GraphicalLassoCV(n_jobs=1).fit(data)
    seconds = time.perf_counter() - t0
    precision = model.precision_[:n, :n]
    d = np.sqrt(np.outer(np.diag(precision), np.diag(precision)))
    return {"glasso_s": seconds, "glasso_partial": -precision / d}


def run_worker(
    code: Path, folder: Path, shuffles: int | None, jobs: int, glasso: bool, tmp: Path
) -> dict:
    out = tmp / f"{code.name}-{folder.name}.npz"
    cmd = [sys.executable, __file__, "--worker", str(folder), "--worker-out", str(out)]
    cmd += ["--jobs", str(jobs)] + (["--glasso"] if glasso else [])
    cmd += ["--shuffles", str(shuffles)] if shuffles is not None else []
    env = {**os.environ, "PYTHONPATH": str(code)}
    subprocess.run(cmd, check=True, env=env, cwd=tmp)
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


# ----------------------------------------------------------------------------- comparison


def _auc(truth: np.ndarray, score: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(truth, score)), 3) if 0 < truth.sum() < len(truth) else None


def planted_pairs(folder: Path, truth_ids: np.ndarray) -> np.ndarray:
    from rig.analysis.session_data import load_session

    coupling = load_session(folder).truth.coupling[np.ix_(truth_ids, truth_ids)]
    planted = (coupling + coupling.T) > 0
    return planted[np.triu_indices(len(truth_ids), 1)]


def row_of(tag: str, code: str, res: dict, planted: np.ndarray, planted_on: bool) -> dict:
    upper = np.triu_indices(int(res["neurons"]), 1)
    row = {
        "session": tag,
        "code": code,
        "min": round(float(res["minutes"]), 1),
        "neurons": int(res["neurons"]),
        "shuffles": int(res["shuffles"]),
        "extract_s": round(float(res["extract_s"]), 1),
        "analyse_s": round(float(res["wall_s"]), 1),
        "cpu_s": round(float(res["cpu_s"]), 1),
        "peak_mb": round(float(res["peak_mb"]), 1),
        "peak_above_mb": round(float(res["peak_above_mb"]), 1),
        "traces_mb": round(float(res["traces_mb"]), 1),
        "edges": int((res["weights"][upper] > 0).sum()),
        "hubs": int(res["hub"].sum()),
        "edge_threshold": round(float(res["edge_threshold"]), 4),
        "hub_threshold": round(float(res["hub_threshold"]), 3),
        "edge_auc": _auc(planted, res["scores"][upper]) if planted_on else None,
    }
    if "glasso_s" in res:
        row["glasso_s"] = round(float(res["glasso_s"]), 1)
        row["glasso_auc"] = _auc(planted, res["glasso_partial"][upper]) if planted_on else None
    return row


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return round(float(np.corrcoef(a, b)[0, 1]), 4)


def agreement(ours: dict, theirs: dict) -> dict:
    """How far two analyses of one session agree (same neurons, same order)."""
    n = len(ours["cs_plus"])
    upper = np.triu_indices(n, 1)
    a, b = ours["weights"][upper] > 0, theirs["weights"][upper] > 0

    def same(key: str) -> str:
        return f"{int((ours[key] == theirs[key]).sum())}/{n}"

    return {
        "cs_plus_same": same("cs_plus"),
        "us_same": same("us"),
        "ensemble_same": same("ensemble"),
        "hub_same": same("hub"),
        "edges_jaccard": round(float((a & b).sum() / max((a | b).sum(), 1)), 3),
        "score_corr": _corr(ours["scores"][upper], theirs["scores"][upper]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shuffles", type=int, default=None, help="default: each code's own")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--previous", type=Path, default=None)
    parser.add_argument("--sessions", type=Path, default=None)
    parser.add_argument("--only", default=None, help="one session: conditioning-10.0, ...")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "analyze.json")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--glasso", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.worker_out, args.shuffles, args.jobs, args.glasso)
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-analyze-"))
    where = args.sessions or tmp / "sessions"
    where.mkdir(parents=True, exist_ok=True)
    rows, agree = [], []
    try:
        for tag, folder in sessions(where):
            if args.only is not None and tag != args.only:
                continue
            ours = run_worker(ROOT, folder, args.shuffles, args.jobs, True, tmp)
            planted = planted_pairs(folder, ours["truth_ids"])
            recall = tag.startswith("recall")  # conditioning has no learned wiring to find
            rows.append(row_of(tag, "this", ours, planted, recall))
            if args.previous is not None:
                theirs = run_worker(args.previous, folder, None, args.jobs, False, tmp)
                rows.append(row_of(tag, "previous", theirs, planted, recall))
                agree.append({"session": tag, **agreement(ours, theirs)})
                rows[-2]["time_ratio"] = round(rows[-1]["analyse_s"] / rows[-2]["analyse_s"], 2)
                rows[-2]["cpu_ratio"] = round(rows[-1]["cpu_s"] / rows[-2]["cpu_s"], 2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    columns = [
        ("session", 18), ("code", 8), ("min", 5), ("shuffles", 8), ("analyse_s", 9),
        ("cpu_s", 7), ("time_ratio", 10), ("cpu_ratio", 9), ("peak_mb", 7), ("peak_above_mb", 13),
        ("traces_mb", 9), ("edges", 5), ("hubs", 4), ("edge_threshold", 14),
        ("hub_threshold", 13), ("edge_auc", 8), ("glasso_s", 8), ("glasso_auc", 10),
    ]  # fmt: skip
    print(f"target: {TARGET_S:.0f} s per session; ratios: previous / this; load {os.getloadavg()}")
    print(" ".join(f"{name:>{w}}" for name, w in columns))
    for r in rows:
        print(" ".join(f"{r.get(name, '')!s:>{w}}" for name, w in columns))
    for a in agree:
        print("agreement", json.dumps(a))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "jobs": args.jobs,
                "shuffles": args.shuffles,
                "previous": str(args.previous) if args.previous else None,
                "load_after": os.getloadavg(),
                "rows": rows,
                "agreement": agree,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
