"""The cohort's figures: freezing to the CS+ and CS- across stages, and the network metrics
of ``rig analyze`` across stages; each animal a thin line, the group mean with its SEM on top,
the mixed model's Holm-adjusted contrasts marked."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rig.cohort.stats import GroupModel
from rig.cohort.tables import Table

COLOURS = {"cs_plus": "#c0392b", "cs_minus": "#2e6da4"}
LABELS = {"cs_plus": "CS+", "cs_minus": "CS-"}
NETWORK_PANELS = (
    ("usr_to_cs_plus_weight", "USR-to-CS+ weight per pair"),
    ("usr_hub_fraction", "fraction of USR that are hubs"),
    ("edges", "edges in the network"),
    ("ensemble", "CR ensemble size (neurons)"),
)


def _series(
    table: Table, stages: Sequence[str], value: str, role: str | None = None
) -> dict[str, np.ndarray]:
    """Per animal, ``value`` at each stage (NaN where missing)."""
    out: dict[str, np.ndarray] = {}
    for r in table.rows:
        if role is not None and r.get("role") != role:
            continue
        v = r.get(value)
        if r["stage"] not in stages or v is None or not math.isfinite(float(v)):
            continue
        row = out.setdefault(r["animal"], np.full(len(stages), np.nan))
        row[list(stages).index(r["stage"])] = float(v)
    return out


def _mean_sem(series: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    if not series:
        return np.full(n, np.nan), np.full(n, np.nan)
    values = np.array(list(series.values()))
    count = np.sum(np.isfinite(values), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(np.where(np.isfinite(values), values, np.nan), axis=0)
        sd = np.array(
            [
                np.nanstd(col, ddof=1) if c > 1 else np.nan
                for col, c in zip(values.T, count, strict=True)
            ]
        )
        sem = sd / np.sqrt(np.maximum(count, 1))
    return mean, sem


def _stage_labels(stages: Sequence[str]) -> list[str]:
    return [s.replace("-", "-\n") for s in stages]


def _draw(ax, series: dict[str, np.ndarray], colour: str, label: str) -> np.ndarray:
    """Each animal thin, the mean ± SEM thick; returns the top of the mean's bar per stage."""
    n = len(next(iter(series.values())))
    x = np.arange(n)
    for values in series.values():
        ax.plot(x, values, color=colour, alpha=0.3, linewidth=1, marker="o", markersize=3)
    mean, sem = _mean_sem(series, n)
    ax.errorbar(
        x, mean, yerr=sem, color=colour, linewidth=2.5, marker="o", markersize=7, capsize=4,
        label=label,
    )  # fmt: skip
    return np.nan_to_num(mean + np.nan_to_num(sem), nan=0.0)


def _mark(ax, x: float, y: float, contrast_stars: str) -> None:
    ax.annotate(contrast_stars, (x, y), ha="center", va="bottom", fontsize=10)


def freezing_figure(freezing: Table, model: GroupModel, stages: Sequence[str], path: Path) -> Path:
    """Percent freezing during the CS+ and the CS- per stage; CS+ vs CS- marked per stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.8 * len(stages) + 3, 4.8), constrained_layout=True)
    top = np.zeros(len(stages))
    animals = set()
    for role in ("cs_plus", "cs_minus"):
        series = _series(freezing, stages, "cs_percent", role)
        animals |= set(series)
        if series:
            top = np.maximum(top, _draw(ax, series, COLOURS[role], f"{LABELS[role]}: mean ± SEM"))
    contrasts = {c.name: c for c in model.contrasts}
    for k, stage in enumerate(stages):
        c = contrasts.get(f"CS+ vs CS- at {stage}")
        if c is not None:
            _mark(ax, k, min(top[k], 100) + 4, c.stars)
    ax.plot([], [], color="grey", alpha=0.4, linewidth=1, label="thin lines: each animal")
    ax.set_xticks(range(len(stages)), _stage_labels(stages))
    ax.set_xlim(-0.4, len(stages) - 0.6)
    ax.set_ylim(-2, 112)
    ax.set_ylabel("freezing during the CS (%)")
    ax.set_title(f"Freezing to the CS+ and CS- across days ({len(animals)} animals)")
    ax.legend(loc="upper left", frameon=False, fontsize=8)
    ax.set_xlabel(_footnote(model, "CS+ vs CS- on each day"), fontsize=7, color="#555555")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def network_figure(
    network: Table, models: Sequence[GroupModel], stages: Sequence[str], path: Path
) -> Path:
    """The network metrics per stage; each modelled metric's change from the first stage
    marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_column = {m.column.split(": ")[-1]: m for m in models}
    fig, axes = plt.subplots(
        1, len(NETWORK_PANELS), figsize=(4.2 * len(NETWORK_PANELS), 4.2), constrained_layout=True
    )
    for ax, (column, title) in zip(axes, NETWORK_PANELS, strict=True):
        series = _series(network, stages, column)
        if not series:
            ax.set_axis_off()
            ax.set_title(f"{title}\n(no analysed sessions)", fontsize=9)
            continue
        tops = _draw(ax, series, "#6c3483", "mean ± SEM")
        highest = max(float(np.nanmax(v)) for v in series.values() if np.isfinite(v).any())
        highest = max(highest, float(tops.max()), 1e-9)
        model = by_column.get(column)
        if model is not None:
            contrasts = {c.name: c for c in model.contrasts}
            for k, stage in enumerate(stages[1:], start=1):
                c = contrasts.get(f"{stage} vs {stages[0]}")
                if c is not None:
                    _mark(ax, k, highest * 1.04, c.stars)
            ax.set_ylim(top=highest * 1.18)
        ax.set_xticks(range(len(stages)), _stage_labels(stages), fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlim(-0.4, len(stages) - 0.6)
    axes[0].plot([], [], color="#6c3483", alpha=0.4, linewidth=1, label="each animal")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper right", ncols=2, frameon=False, fontsize=8)
    animals = len(_series(network, stages, "edges"))
    fig.suptitle(f"rig analyze across days ({animals} animals)", fontsize=11)
    marked = next((m for m in by_column.values() if not m.skipped), None)
    note = _footnote(marked, f"each day against {stages[0]} (first two panels)") if marked else ""
    fig.supxlabel(note or "group statistics: not fitted", fontsize=7, color="#555555")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _footnote(model: GroupModel, what: str) -> str:
    if model.skipped:
        return f"group statistics: not fitted ({model.skipped})"
    return (
        f"marks: {what}; linear mixed model (random intercept per animal), Wald z, "
        "Holm-adjusted: * p<0.05, ** p<0.01, *** p<0.001, n.s. not significant"
    )
