"""``rig analyze``: one animal's sessions, from traces to the hub network across days.

:func:`analyze` loads the sessions (any order; sorted by start time), gets each session's
traces (suite2p output, or the truth footprints of a simulated session), gives every neuron one
id across days, and per session computes dF/F and responsiveness, the CR ensemble, the
functional network and its hubs; then the changes across days. :func:`write_outputs` writes
``neurons.csv``, ``edges.csv``, ``summary.json``, the per-session arrays NWB export uses, and the
figures. Deterministic for a seed.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rig.analysis import days as across
from rig.analysis.connectivity import SHUFFLES, functional_network
from rig.analysis.ensemble import decode
from rig.analysis.hubs import find_hubs
from rig.analysis.identity import Identity, match_sessions
from rig.analysis.responses import ROLES, dff, responsiveness, zscore
from rig.analysis.result import Analysis, SessionResult
from rig.analysis.session_data import SessionData, load_session
from rig.analysis.traces import Traces, TraceSource, footprint_traces, read_suite2p
from rig.data.analysis_pointer import POINTER
from rig.data.atomic import write_json_atomic
from rig.data.folder import utc_now
from rig.files.inputfile import InputError, Problem

NEURON_COLUMNS = (
    "session",
    "neuron",
    "y_px",
    "x_px",
    "cs_plus_score",
    "cs_minus_score",
    "us_score",
    "cs_plus_responsive",
    "cs_minus_responsive",
    "us_responsive",
    "ensemble",
    "strength",
    "degree",
    "hub",
    # extensions of the contract's columns
    "cross_degree",
    "cs_plus_p",
    "cs_minus_p",
    "us_p",
    "ensemble_selection",
)
EDGE_COLUMNS = ("session", "neuron_a", "neuron_b", "weight")


def load_sessions(paths: Sequence[str | Path]) -> list[SessionData]:
    """The sessions of one animal, oldest first."""
    sessions = [load_session(p) for p in paths]
    names = [s.folder.resolve() for s in sessions]
    if len(set(names)) != len(names):
        raise InputError("SESSION", [Problem("", "the same session is given twice")])
    animals = sorted({s.animal for s in sessions})
    if len(animals) > 1:
        raise InputError(
            str(sessions[0].folder),
            [Problem("animal", f"sessions of one animal only (got {', '.join(animals)})")],
        )
    return sorted(sessions, key=lambda s: (s.started_utc, s.name))


def session_traces(session: SessionData, source: TraceSource, sessions: int) -> Traces:
    if source.kind == "footprints":
        return footprint_traces(session)
    return read_suite2p(source.suite2p_folder(session, sessions), session.n_frames)


def analyze(
    paths: Sequence[str | Path],
    source: TraceSource,
    seed: int = 0,
    shuffles: int = SHUFFLES,
    n_jobs: int = 1,
    progress: Callable[[str], None] | None = None,
) -> Analysis:
    """Analyse one animal's sessions (module docstring)."""
    say = progress or (lambda _text: None)
    sessions = load_sessions(paths)
    # per session only its dF/F is kept (the raw traces are released once it is computed) and
    # its z-score exists while that session is analysed: what is held across sessions is half
    # the size of their F and Fneu
    traces, dffs = [], []
    for s in sessions:
        say(f"{s.name}: traces ({source.kind})")
        t = session_traces(s, source, len(sessions))
        dffs.append(dff(t.F, t.Fneu, s.frame_rate_hz))
        traces.append(t.without_raw())
        del t
    identity = match_sessions(traces)
    results = []
    for k, (s, t, d) in enumerate(zip(sessions, traces, dffs, strict=True)):
        say(f"{s.name}: responses, ensemble, network ({len(t)} neurons)")
        rng = np.random.default_rng([seed, k])
        z = zscore(d)
        resp = responsiveness(z, s, rng)
        cr, rs = decode(z, s, rng, n_jobs)
        net = functional_network(z, s, seed=seed * 1000 + k, shuffles=shuffles, n_jobs=n_jobs)
        hubs = find_hubs(net, resp.responsive["us"], resp.responsive["cs_plus"])
        del z
        results.append(
            SessionResult(
                s,
                s.protocol,
                t,
                identity.neuron_ids[k],
                identity.shifts_px[k],
                d,
                resp,
                cr,
                rs,
                net,
                hubs,
            )
        )
    summary = _summary(results, identity, source, seed, shuffles)
    return Analysis(results, identity, source, seed, summary)


def _day_table(r: SessionResult) -> across.DayTable:
    return across.DayTable(
        name=r.session.name,
        label=r.label,
        neuron=r.neuron,
        values={
            "cs_plus_score": r.responses.score["cs_plus"],
            "us_score": r.responses.score["us"],
            "strength": r.hubs.strength,
            "degree": r.hubs.degree.astype(float),
        },
        cs_plus_responsive=r.responses.responsive["cs_plus"],
        us_responsive=r.responses.responsive["us"],
        hub=r.hubs.hub,
        weights=r.network.weights,
        us_trials=r.responses.trials["us"],
    )


def reference_ensemble(results: Sequence[SessionResult]) -> tuple[str | None, set[int]]:
    """The CR ensemble the figures follow across days: that of the first session after the
    first one with a US whose CR model could be fitted (the recall day); else the first fitted."""
    shock = next((i for i, r in enumerate(results) if r.responses.trials["us"] > 0), None)
    order = list(range(len(results)))
    if shock is not None:
        order = order[shock + 1 :] + order[: shock + 1]
    for i in order:
        r = results[i]
        if r.cr.fitted:
            return r.session.name, set(r.neuron[r.cr.positive].tolist())
    return None, set()


def _summary(
    results: list[SessionResult], identity: Identity, source: TraceSource, seed: int, shuffles: int
) -> dict:
    tables = [_day_table(r) for r in results]
    ens_session, ens_ids = reference_ensemble(results)
    return {
        "created_utc": utc_now(),
        "animal": results[0].session.animal if results else None,
        "traces": source.kind,
        "traces_note": source.label,
        "seed": seed,
        "shuffles": shuffles,
        "neurons": identity.n_neurons,
        "sessions": [_session_summary(r) for r in results],
        "ensemble_followed": {"session": ens_session, "neurons": sorted(ens_ids)},
        "across_days": {
            "changes_from_first": across.changes(tables, seed),
            "usr_network": across.usr_network(tables),
            "ensemble_connectivity": across.ensemble_connectivity(tables, ens_ids),
        },
    }


def _session_summary(r: SessionResult) -> dict:
    resp = r.responses
    net = r.network
    return {
        "session": r.session.name,
        "protocol": r.label,
        "started_utc": r.session.started_utc,
        "frames": r.session.n_frames,
        "rois": len(r.traces),
        "shift_to_reference_px": [round(float(v), 2) for v in r.shift_px],
        "trials": resp.trials,
        "responsive": {role: int(resp.responsive[role].sum()) for role in ROLES},
        "cr_model": r.cr.summary(),
        "rs_model": r.rs.summary(),
        "cr_rs_overlap": int((r.cr.positive & (r.rs.positive | r.rs.negative)).sum()),
        "network": {
            "C": net.c,
            "bins": net.bins,
            "edges": int((net.weights > 0).sum() // 2),
            "density": round(net.density, 4),
            "edge_threshold": round(net.edge_threshold, 5),
            "hub_threshold": round(r.hubs.threshold, 5),
            "hubs": int(r.hubs.hub.sum()),
            "us_responsive_hubs": int((r.hubs.hub & resp.responsive["us"]).sum()),
        },
    }


# ----------------------------------------------------------------------------- outputs


def write_outputs(analysis: Analysis, out: Path, figures: bool = True) -> list[Path]:
    """Write the tables, the summary, the per-session arrays and the figures into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = [
        _write_neurons(analysis, out / "neurons.csv"),
        _write_edges(analysis, out / "edges.csv"),
    ]
    arrays = out / "sessions"
    arrays.mkdir(exist_ok=True)
    for r in analysis.results:
        written.append(_write_arrays(r, arrays / f"{r.session.name}.npz"))
    summary = out / "summary.json"
    write_json_atomic(summary, analysis.summary)
    written.append(summary)
    if figures:
        from rig.analysis.figures import draw_figures

        written += draw_figures(analysis, out)
    for r in analysis.results:
        _write_pointer(r.session, out, analysis)
    return written


def _fmt(x: float) -> str:
    return "" if not np.isfinite(x) else f"{x:.5g}"


def _write_neurons(analysis: Analysis, path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(NEURON_COLUMNS)
        for r in analysis.results:
            resp, cent = r.responses, r.centroids_ref
            for k in np.argsort(r.neuron, kind="stable"):
                w.writerow(
                    [
                        r.session.name,
                        int(r.neuron[k]),
                        f"{cent[k, 0]:.2f}",
                        f"{cent[k, 1]:.2f}",
                        *(_fmt(resp.score[role][k]) for role in ROLES),
                        *(int(resp.responsive[role][k]) for role in ROLES),
                        int(r.cr.positive[k]),
                        _fmt(r.hubs.strength[k]),
                        int(r.hubs.degree[k]),
                        int(r.hubs.hub[k]),
                        int(r.hubs.cross_degree[k]),
                        *(_fmt(resp.p_value[role][k]) for role in ROLES),
                        _fmt(r.cr.selection[k]) if len(r.cr.selection) else "",
                    ]
                )
    return path


def _write_edges(analysis: Analysis, path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(EDGE_COLUMNS)
        for r in analysis.results:
            W = r.network.weights
            rows = []
            for i, j in zip(*np.nonzero(np.triu(W, 1)), strict=True):
                a, b = sorted((int(r.neuron[i]), int(r.neuron[j])))
                rows.append((a, b, W[i, j]))
            for a, b, weight in sorted(rows):
                w.writerow([r.session.name, a, b, f"{weight:.5g}"])
    return path


def _write_arrays(r: SessionResult, path: Path) -> Path:
    """What ``rig export --nwb`` adds (ROI pixels, dF/F, frame times, the neuron ids), and the
    network's symmetrised coefficients of every pair (edge scores, for ranking against truth)."""
    lengths = np.array([len(roi.ypix) for roi in r.traces.rois], np.int64)
    np.savez_compressed(
        path,
        neuron=r.neuron.astype(np.int64),
        roi_lengths=lengths,
        roi_ypix=np.concatenate([roi.ypix for roi in r.traces.rois])
        if len(lengths)
        else np.zeros(0),
        roi_xpix=np.concatenate([roi.xpix for roi in r.traces.rois])
        if len(lengths)
        else np.zeros(0),
        roi_lam=np.concatenate([roi.lam for roi in r.traces.rois]) if len(lengths) else np.zeros(0),
        image_shape=np.array(r.traces.mean_image.shape, np.int64),
        dff=r.dff.astype(np.float32),
        frame_times_s=r.session.frame_times_s,
        edge_scores=r.network.scores.astype(np.float32),
    )
    return path


def _write_pointer(session: SessionData, out: Path, analysis: Analysis) -> None:
    path = session.folder / POINTER
    path.parent.mkdir(exist_ok=True)
    write_json_atomic(
        path,
        {
            "analysis_dir": str(out.resolve()),
            "arrays": str((out / "sessions" / f"{session.name}.npz").resolve()),
            "traces": analysis.source.kind,
            "written_utc": analysis.summary["created_utc"],
        },
    )
