"""The analysis's figures, after the paper's: the network on the field of view per day, the
US-aligned responses, ensemble against non-ensemble connectivity, and the day-to-day changes.
``analysis.png`` puts the four together (the README shows it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from rig.analysis.responses import zscore

if TYPE_CHECKING:
    from rig.analysis.result import Analysis, SessionResult

US_COLOUR, CS_COLOUR, BOTH_COLOUR, OTHER_COLOUR = "#d62728", "#1f77b4", "#9467bd", "#bbbbbb"
PRE_S, POST_S = 2.0, 4.0


def draw_figures(analysis: Analysis, out: Path) -> list[Path]:
    """Write every figure into ``out``; returns their paths."""
    paths = []
    for name, draw in (
        ("network_fov.png", _network_figure),
        ("us_heatmap.png", _us_figure),
        ("ensemble_connectivity.png", _ensemble_figure),
        ("days.png", _days_figure),
        ("analysis.png", _overview),
    ):
        fig = draw(analysis)
        path = out / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


def _title(analysis: Analysis) -> str:
    s = analysis.summary
    note = " [truth footprints: extraction bypassed]" if s["traces"] == "footprints" else ""
    return f"animal {s['animal']}: {s['neurons']} neurons, {len(s['sessions'])} sessions{note}"


def _node_colours(r: SessionResult) -> list[str]:
    us, cs = r.responses.responsive["us"], r.responses.responsive["cs_plus"]
    usr_ids = _usr_ids(r)
    out = []
    for k in range(len(r.neuron)):
        is_us = us[k] or int(r.neuron[k]) in usr_ids
        out.append(
            BOTH_COLOUR
            if is_us and cs[k]
            else US_COLOUR
            if is_us
            else CS_COLOUR
            if cs[k]
            else OTHER_COLOUR
        )
    return out


_USR: dict[int, set[int]] = {}


def _usr_ids(r: SessionResult) -> set[int]:
    return _USR.get(id(r), set())


def _remember_usr(analysis: Analysis) -> None:
    """The neurons US-responsive on the first session with a US, coloured so on every day."""
    shock = next((x for x in analysis.results if x.responses.trials["us"] > 0), None)
    ids = set(shock.neuron[shock.responses.responsive["us"]].tolist()) if shock else set()
    for r in analysis.results:
        _USR[id(r)] = ids


def _draw_network(ax: plt.Axes, r: SessionResult) -> None:
    img = r.traces.mean_image
    lo, hi = np.percentile(img, [1, 99.5])
    ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
    cent = r.traces.centroids
    W = r.network.weights
    top = W.max() if W.size and W.max() > 0 else 1.0
    shown = np.triu(W, 1)
    if (shown > 0).any():  # the stronger half of the edges, as the paper's figure shows them
        shown = np.where(shown >= np.median(shown[shown > 0]), shown, 0)
    for i, j in zip(*np.nonzero(shown), strict=True):
        ax.plot(
            [cent[i, 1], cent[j, 1]], [cent[i, 0], cent[j, 0]],
            color="#ffd54f", lw=0.4 + 1.6 * W[i, j] / top, alpha=0.25 + 0.6 * W[i, j] / top,
        )  # fmt: skip
    strength = r.hubs.strength
    size = 12 + 60 * strength / max(float(strength.max(initial=0)), 1e-9)
    ax.scatter(
        cent[:, 1],
        cent[:, 0],
        s=size,
        c=_node_colours(r),
        edgecolors="white",
        linewidths=0.4,
        zorder=3,
    )
    hubs = r.hubs.hub
    ax.scatter(
        cent[hubs, 1],
        cent[hubs, 0],
        s=size[hubs] * 2.2,
        facecolors="none",
        edgecolors="black",
        linewidths=1.2,
        zorder=4,
    )
    title = (
        f"{r.label}\n{int((W > 0).sum() // 2)} edges (stronger half drawn), {int(hubs.sum())} hubs"
    )
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _legend(ax: plt.Axes) -> None:
    from matplotlib.lines import Line2D

    items = [
        Line2D([], [], marker="o", ls="", color=US_COLOUR, label="US-responsive (conditioning)"),
        Line2D([], [], marker="o", ls="", color=CS_COLOUR, label="CS+-responsive"),
        Line2D([], [], marker="o", ls="", color=BOTH_COLOUR, label="both"),
        Line2D([], [], marker="o", ls="", color=OTHER_COLOUR, label="other"),
        Line2D([], [], marker="o", ls="", mfc="none", mec="black", label="hub"),
    ]
    ax.legend(handles=items, loc="lower left", fontsize=7, framealpha=0.8)


def _network_figure(analysis: Analysis) -> plt.Figure:
    _remember_usr(analysis)
    n = len(analysis.results)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.4), squeeze=False)
    for ax, r in zip(axes[0], analysis.results, strict=True):
        _draw_network(ax, r)
    _legend(axes[0][0])
    fig.suptitle("Functional network on the field of view " + _title(analysis), fontsize=10)
    return fig


def _us_session(analysis: Analysis) -> SessionResult | None:
    return next((r for r in analysis.results if r.responses.trials["us"] > 0), None)


def _us_aligned(r: SessionResult) -> tuple[np.ndarray, np.ndarray]:
    times = r.session.frame_times_s
    rate = r.session.frame_rate_hz
    lags = np.arange(-round(PRE_S * rate), round(POST_S * rate))
    z = zscore(r.dff)  # what the analysis tested, for this one session
    stack = []
    for iv in r.session.stimuli("us"):
        at = int(np.searchsorted(times, iv.start_s))
        idx = at + lags
        if idx[0] >= 0 and idx[-1] < len(times):
            stack.append(z[:, idx])
    mean = np.mean(stack, axis=0) if stack else np.zeros((len(r.neuron), len(lags)))
    return lags / rate, mean


def _draw_us(ax_map: plt.Axes, ax_mean: plt.Axes | None, r: SessionResult | None) -> None:
    if r is None:
        ax_map.text(0.5, 0.5, "no session with a US", ha="center", va="center")
        return
    t, mean = _us_aligned(r)
    order = np.argsort(-np.nan_to_num(r.responses.score["us"], nan=-np.inf))
    im = ax_map.imshow(
        mean[order], aspect="auto", cmap="magma", vmin=-1, vmax=4,
        extent=(t[0], t[-1], len(order), 0), interpolation="nearest",
    )  # fmt: skip
    ax_map.axvline(0, color="#2ca02c", ls=":", lw=1)
    ax_map.set_ylabel("neuron (by US score)")
    ax_map.set_title(
        f"US-aligned z(dF/F), {r.label} ({r.responses.trials['us']} trials)", fontsize=9
    )
    plt.colorbar(im, ax=ax_map, fraction=0.04, label="z")
    if ax_mean is not None:
        us = r.responses.responsive["us"]
        for sel, colour, label in ((us, US_COLOUR, "US-responsive"), (~us, OTHER_COLOUR, "others")):
            if sel.any():
                m = mean[sel].mean(axis=0)
                se = mean[sel].std(axis=0) / np.sqrt(sel.sum())
                ax_mean.plot(t, m, color=colour, label=f"{label} ({int(sel.sum())})")
                ax_mean.fill_between(t, m - se, m + se, color=colour, alpha=0.3)
        ax_mean.axvspan(0, 1, color="#ffeb3b", alpha=0.4)
        ax_mean.set_xlabel("time from US onset (s)")
        ax_mean.set_ylabel("mean z")
        ax_mean.legend(fontsize=7)


def _us_figure(analysis: Analysis) -> plt.Figure:
    fig, (a, b) = plt.subplots(
        2, 1, figsize=(5, 6), gridspec_kw={"height_ratios": [3, 1]}, sharex=True
    )
    _draw_us(a, b, _us_session(analysis))
    fig.suptitle(_title(analysis), fontsize=8)
    return fig


def _labels(rows: list[dict]) -> list[str]:
    return [row["label"].replace("-", "-\n") for row in rows]


def _draw_ensemble(ax: plt.Axes, analysis: Analysis) -> None:
    rows = analysis.summary["across_days"]["ensemble_connectivity"]
    followed = analysis.summary["ensemble_followed"]
    x = np.arange(len(rows))
    ens = [row["ensemble_strength"] or 0 for row in rows]
    other = [row["other_strength"] or 0 for row in rows]
    ax.bar(x - 0.2, ens, 0.4, color="#e6550d", label=f"CR ensemble ({len(followed['neurons'])})")
    ax.bar(x + 0.2, other, 0.4, color=OTHER_COLOUR, label="non-ensemble")
    ax.set_xticks(x, _labels(rows), fontsize=8)
    ax.set_ylabel("mean node strength")
    ax.set_title("Ensemble vs non-ensemble connectivity", fontsize=9)
    ax.legend(fontsize=7)


def _ensemble_figure(analysis: Analysis) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    _draw_ensemble(ax, analysis)
    fig.suptitle(_title(analysis), fontsize=8)
    return fig


def _draw_days(ax: plt.Axes, analysis: Analysis) -> None:
    rows = analysis.summary["across_days"]["usr_network"]
    x = np.arange(len(rows))
    weight = [row["usr_to_cs_plus_weight"] or 0 for row in rows]
    ax.bar(x, weight, 0.5, color=BOTH_COLOUR, label="USR - CS+-responsive: weight per pair")
    for k, row in enumerate(rows):
        ax.text(
            k,
            weight[k],
            f"{row['usr_to_cs_plus_edges']} edges",
            ha="center",
            va="bottom",
            fontsize=7,
        )
    ax.set_xticks(x, _labels(rows), fontsize=7, rotation=20)
    ax.set_ylim(0, 1.5 * max(max(weight), 1e-6))  # room for the legend above the bars
    ax.set_ylabel("mean edge weight per pair")
    twin = ax.twinx()
    frac = [row["usr_hubs"] / row["usr"] if row["usr"] else 0 for row in rows]
    twin.plot(x, frac, "o-", color=US_COLOUR, label="fraction of USR that are hubs")
    twin.set_ylim(0, 1.05)
    twin.set_ylabel("USR that are hubs", color=US_COLOUR)
    ax.set_title("Day to day: the US-responsive neurons' network", fontsize=9)
    lines = ax.get_legend_handles_labels()
    lines2 = twin.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="upper left")


def _days_figure(analysis: Analysis) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    _draw_days(ax, analysis)
    fig.suptitle(_title(analysis), fontsize=8)
    return fig


def _overview(analysis: Analysis) -> plt.Figure:
    _remember_usr(analysis)
    n = len(analysis.results)
    fig = plt.figure(figsize=(max(12, 3.2 * n), 8))
    grid = fig.add_gridspec(2, max(n, 3), height_ratios=[1.1, 1])
    for k, r in enumerate(analysis.results):
        _draw_network(fig.add_subplot(grid[0, k]), r)
    if n:
        _legend(fig.axes[0])
    cols = max(n, 3)
    third = max(1, cols // 3)
    _draw_us(fig.add_subplot(grid[1, :third]), None, _us_session(analysis))
    _draw_days(fig.add_subplot(grid[1, third : 2 * third]), analysis)
    _draw_ensemble(fig.add_subplot(grid[1, 2 * third :]), analysis)
    fig.suptitle(_title(analysis), fontsize=11)
    fig.tight_layout()
    return fig
