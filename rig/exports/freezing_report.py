"""The freezing report PNG (``rig score --plot``): per-trial freezing and a session raster."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rig.data.folder import SessionFolder
from rig.data.trials import trials_table
from rig.exports.frame_table import CS_MINUS, CS_PLUS, cs_roles

ROLE_COLOURS = {CS_PLUS: "#d62728", CS_MINUS: "#1f77b4"}  # CS+ red, CS- blue
ROLE_LABELS = {CS_PLUS: "CS+", CS_MINUS: "CS-"}
OTHER_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
TRACE_COLOUR = "#ff7f0e"


def cs_colours(roles: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Each CS's colour and legend label, from its role in the protocol (paired with a US:
    CS+, red; never paired: CS-, blue), never from its name or trial number. CSs whose role
    cannot be told get other colours, one per stimulus; so does a second CS of the same role."""
    out: dict[str, tuple[str, str]] = {}
    used: set[str] = set()
    spare = iter(OTHER_COLOURS * 4)
    for name, role in roles.items():
        colour = ROLE_COLOURS.get(role)
        if colour is None or colour in used:
            colour = next(spare)
        used.add(colour)
        label = f"{name} ({ROLE_LABELS[role]})" if role in ROLE_LABELS else name
        out[name] = (colour, label)
    return out


def plot_freezing(folder: SessionFolder, out: Path | None = None) -> Path:
    """Draw the report for a scored session (its current scoring); returns the PNG's path."""
    fig = freezing_figure(folder)
    out = out or folder.path / "freezing.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def freezing_figure(folder: SessionFolder) -> Figure:
    """The report's figure: CS freezing per presentation, and the session's trace under the
    stimulus bands (each CS coloured by its role), marked SIMULATED for a simulated session."""
    attrs = folder.attrs
    scores = folder.scores()
    if scores is None or scores.record is None or scores.times_s is None:
        raise ValueError("the session has not been scored: run `rig score` first")
    record = scores.record
    locomotion = record.get("measure") == "locomotion"
    motion = scores.wheel_speed_cm_s if locomotion else scores.motion_index
    frozen, times = scores.freezing, scores.times_s
    trials = trials_table(folder)
    colours = cs_colours(cs_roles(folder.protocol()))

    fig, (ax_t, ax_r) = plt.subplots(
        2, 1, figsize=(12, 7), gridspec_kw={"height_ratios": [1, 1.3]}, constrained_layout=True
    )
    by_cs: dict[str, list[float]] = {}
    for t in record["results"]["trials"]:
        cs_epoch = t["epochs"].get("cs")
        if cs_epoch:
            by_cs.setdefault(t["cs"], []).append(cs_epoch["percent"])
    for cs, values in by_cs.items():
        colour, label = colours[cs]
        ax_t.plot(np.arange(1, len(values) + 1), values, "o-", color=colour, label=label)
    ax_t.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_t.set_xlabel("presentation")
    ax_t.set_ylabel("freezing during CS (%)")
    ax_t.set_ylim(-5, 105)
    ax_t.legend(frameon=False)
    mode = "SIMULATED" if attrs.simulated else "LIVE"
    ax_t.set_title(
        f"[{mode}] {attrs.animal} - {attrs.protocol_name} - scoring "
        f"{record.get('name') or 'original'}: threshold "
        f"{record['threshold']:.3g}{' (auto)' if record['threshold_auto'] else ''}, "
        f"min freeze {record['min_freeze_s']:g} s"
    )
    if attrs.simulated:  # a figure that travels alone still says what it is
        fig.text(
            0.5,
            0.5,
            "SIMULATED",
            fontsize=80,
            color="0.5",
            alpha=0.15,
            ha="center",
            va="center",
            rotation=20,
            zorder=0,
        )

    trace_name = "wheel speed (cm/s)" if locomotion else "motion index"
    ax_r.plot(times, motion, lw=0.6, color="0.3", label=trace_name)
    ax_r.axhline(record["threshold"], color="k", ls="--", lw=0.8, label="threshold")
    top = float(np.nanmax(motion)) if np.isfinite(motion).any() else 1.0
    ax_r.fill_between(times, 0, top, where=frozen, color="#2ca02c", alpha=0.25, label="freezing")
    seen = set()
    for t in trials:
        colour, label = colours[t["cs"]]
        ax_r.axvspan(
            t["cs_onset_s"],
            t["cs_offset_s"],
            color=colour,
            alpha=0.15,
            label=label if t["cs"] not in seen else None,
        )
        seen.add(t["cs"])
        us_onset = t["us_onset_s"]
        if us_onset is not None and us_onset > t["cs_offset_s"]:  # trace conditioning
            ax_r.axvspan(
                t["cs_offset_s"],
                us_onset,
                color=TRACE_COLOUR,
                alpha=0.15,
                hatch="//",
                label="trace interval" if "trace" not in seen else None,
            )
            seen.add("trace")
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
    return fig
