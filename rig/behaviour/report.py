"""The freezing report PNG (``rig score --plot``): per-trial freezing and a session raster."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from rig.data.folder import SessionFolder
from rig.data.trials import trials_table

CS_COLOURS = {"cs_plus": "#d62728", "cs_minus": "#1f77b4"}


def _colour(name: str, i: int) -> str:
    return CS_COLOURS.get(name, plt.cm.tab10(i % 10))


def plot_freezing(folder: SessionFolder, out: Path | None = None) -> Path:
    """Draw the report for a scored session; returns the PNG's path."""
    attrs = folder.attrs
    scores = folder.scores()
    if scores is None or scores.record is None or scores.times_s is None:
        raise ValueError("the session has not been scored: run `rig score` first")
    record = scores.record
    locomotion = record.get("measure") == "locomotion"
    motion = scores.wheel_speed_cm_s if locomotion else scores.motion_index
    frozen, times = scores.freezing, scores.times_s
    trials = trials_table(folder)

    fig, (ax_t, ax_r) = plt.subplots(
        2, 1, figsize=(12, 7), gridspec_kw={"height_ratios": [1, 1.3]}, constrained_layout=True
    )
    by_cs: dict[str, list[float]] = {}
    for t in record["results"]["trials"]:
        cs_epoch = t["epochs"].get("cs")
        if cs_epoch:
            by_cs.setdefault(t["cs"], []).append(cs_epoch["percent"])
    for i, (cs, values) in enumerate(sorted(by_cs.items())):
        ax_t.plot(np.arange(1, len(values) + 1), values, "o-", color=_colour(cs, i), label=cs)
    ax_t.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_t.set_xlabel("presentation")
    ax_t.set_ylabel("freezing during CS (%)")
    ax_t.set_ylim(-5, 105)
    ax_t.legend(frameon=False)
    ax_t.set_title(
        f"{attrs.animal} - {attrs.protocol_name} - threshold "
        f"{record['threshold']:.3g}{' (auto)' if record['threshold_auto'] else ''}, "
        f"min freeze {record['min_freeze_s']:g} s"
    )

    trace_name = "wheel speed (cm/s)" if locomotion else "motion index"
    ax_r.plot(times, motion, lw=0.6, color="0.3", label=trace_name)
    ax_r.axhline(record["threshold"], color="k", ls="--", lw=0.8, label="threshold")
    top = float(np.nanmax(motion)) if np.isfinite(motion).any() else 1.0
    ax_r.fill_between(times, 0, top, where=frozen, color="#2ca02c", alpha=0.25, label="freezing")
    seen = set()
    for i, t in enumerate(trials):
        colour = _colour(t["cs"], i)
        label = t["cs"] if t["cs"] not in seen else None
        seen.add(t["cs"])
        ax_r.axvspan(t["cs_onset_s"], t["cs_offset_s"], color=colour, alpha=0.15, label=label)
        if t["us_onset_s"] is not None:
            ax_r.axvspan(
                t["us_onset_s"],
                t["us_offset_s"],
                color="gold",
                alpha=0.9,
                label="shock" if "shock" not in seen else None,
            )
            seen.add("shock")
    ax_r.set_xlabel("session time (s, DAQ clock)")
    ax_r.set_ylabel(trace_name)
    ax_r.legend(loc="upper right", ncol=6, frameon=False, fontsize=8)
    out = out or folder.path / "freezing.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
