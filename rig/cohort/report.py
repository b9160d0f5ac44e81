"""What ``rig cohort`` prints: the tasks, freezing per stage, the group statistics, the
network per stage, what failed, and where the outputs are."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rig.cohort.pipeline import CohortRun
from rig.cohort.stats import GroupModel
from rig.cohort.tables import Table


def _mean_sem(values: Sequence[float]) -> str:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    if not kept:
        return "-"
    mean = sum(kept) / len(kept)
    if len(kept) < 2:
        return f"{mean:.3g}"
    sd = math.sqrt(sum((v - mean) ** 2 for v in kept) / (len(kept) - 1))
    return f"{mean:.3g} ± {sd / math.sqrt(len(kept)):.2g}"


def _by_stage(table: Table, stage: str, column: str, role: str | None = None) -> list[float]:
    return [
        r[column]
        for r in table.rows
        if r["stage"] == stage
        and (role is None or r.get("role") == role)
        and r.get(column) is not None
    ]


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def model_lines(model: GroupModel) -> list[str]:
    """A model's contrasts, one line each."""
    head = f"{model.outcome} ({model.animals} animals, {model.observations} values): "
    if model.skipped:
        return [head + f"not fitted: {model.skipped}"]
    lines = [
        head + f"animal SD {math.sqrt(max(model.var_animal or 0, 0)):.3g}, "
        f"residual SD {math.sqrt(model.var_residual or 0):.3g}",
        f"  {'contrast':<44} {'difference [95% CI]':>26} {'z':>6} {'p (Holm)':>9}      "
        f"{'d [95% CI]':>18}",
    ]
    for c in model.contrasts:
        diff = f"{c.estimate:+.3g} [{c.ci_low:.3g}, {c.ci_high:.3g}]"
        d = f"{c.d:+.2f} [{c.d_low:.2f}, {c.d_high:.2f}]"
        lines.append(
            f"  {c.name[:44]:<44} {diff:>26} {c.z:6.2f} {_p(c.p_holm):>9} {c.stars:<4} {d:>18}"
        )
    lines += [f"  note: {n}" for n in model.notes]
    return lines


def cohort_text(run: CohortRun) -> str:
    """The run's report (module docstring)."""
    o, cohort = run.outcome, run.cohort
    lines = [
        f"cohort {cohort.root}: {len(cohort.animals)} animals, {len(cohort.sessions)} sessions, "
        f"stages: {', '.join(run.stages)}",
        f"tasks: {len(run.tasks)} ({len(o.ran)} run, {len(o.cached)} cached"
        + (f", {len(o.resumed)} resumed after an interrupted run" if o.resumed else "")
        + (f", {len(o.failed)} failed" if o.failed else "")
        + (f", {len(o.not_run)} not run" if o.not_run else "")
        + ")",
        "",
        "percent freezing during the CS (mean ± SEM over animals)",
        f"  {'stage':<30} {'CS+':>14} {'CS-':>14} {'animals':>8}",
    ]
    freezing = run.tables.freezing
    for stage in run.stages:
        plus = _by_stage(freezing, stage, "cs_percent", "cs_plus")
        minus = _by_stage(freezing, stage, "cs_percent", "cs_minus")
        animals = len({r["animal"] for r in freezing.rows if r["stage"] == stage})
        lines.append(
            f"  {stage[:30]:<30} {_mean_sem(plus):>14} {_mean_sem(minus):>14} {animals:>8}"
        )
    lines += ["", f"group statistics: {run.models[0].test}"]
    for model in run.models:
        lines += model_lines(model)
    network = run.tables.network
    if network.rows:
        lines += [
            "",
            "rig analyze per stage (mean ± SEM over animals; USR: US-responsive on the "
            "conditioning day)",
            f"  {'stage':<30} {'USR-CS+ weight':>16} {'USR hub frac.':>14} {'edges':>12} "
            f"{'ensemble':>12}",
        ]
        for stage in run.stages:
            cells = [
                _mean_sem(_by_stage(network, stage, c))
                for c in ("usr_to_cs_plus_weight", "usr_hub_fraction", "edges", "ensemble")
            ]
            lines.append(
                f"  {stage[:30]:<30} {cells[0]:>16} {cells[1]:>14} {cells[2]:>12} {cells[3]:>12}"
            )
    by_key = {t.key: t for t in run.tasks}
    problems = [(by_key[k].spec.label, f"FAILED: {why}") for k, why in o.failed.items()]
    problems += [(by_key[k].spec.label, f"not run: {why}") for k, why in o.not_run.items()]
    if problems:
        lines += ["", "what did not finish (run `rig cohort` again to retry only these):"]
        lines += [f"  {label}: {why}" for label, why in sorted(problems)]
    lines += ["", f"outputs: {run.out} ({', '.join(p.name for p in run.files)}, animals/)"]
    return "\n".join(lines)
