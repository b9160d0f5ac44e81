"""What ``rig analyze`` prints: one line per session and where the outputs are."""

from __future__ import annotations

from pathlib import Path


def summary_text(summary: dict, out: Path) -> str:
    """A table of the sessions and the across-days network, then the output folder."""
    lines = [
        f"animal {summary['animal']}: {summary['neurons']} neurons across "
        f"{len(summary['sessions'])} sessions; traces: {summary['traces_note']}",
        f"{'session':<44} {'ROIs':>4} {'CS+':>4} {'CS-':>4} {'US':>4} {'ens':>4} "
        f"{'CR AUC':>6} {'edges':>5} {'hubs':>4}",
    ]
    for s in summary["sessions"]:
        cr = s["cr_model"]
        auc = f"{cr['cv_auc']:.2f}" if cr["cv_auc"] is not None else "-"
        net = s["network"]
        r = s["responsive"]
        lines.append(
            f"{s['session'][:44]:<44} {s['rois']:>4} {r['cs_plus']:>4} {r['cs_minus']:>4} "
            f"{r['us']:>4} {cr['ensemble_size']:>4} {auc:>6} {net['edges']:>5} {net['hubs']:>4}"
        )
    lines.append("")
    lines.append("US-responsive neurons of the conditioning day (USR) against the CS+-responsive:")
    for row in summary["across_days"]["usr_network"]:
        lines.append(
            f"  {row['label']:<28} {row['usr_to_cs_plus_edges']:>4} edges, "
            f"{row['usr_hubs']}/{row['usr']} USR are hubs"
        )
    lines.append(f"outputs: {out}")
    return "\n".join(lines)
