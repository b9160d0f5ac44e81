"""Draw docs/architecture.png from the code: rig's sub-packages in their layers (the order that
tests/test_architecture.py enforces), each with its modules, and the packages each one
imports from at run time.

Run: ``python docs/architecture_picture.py`` (``make architecture-picture``).
"""

from __future__ import annotations

import ast
import collections
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.test_architecture import LAYERS  # noqa: E402

IDEAS = {
    "rig": "driver boundary: ports, devices",
    "rig.files": "what a user writes",
    "rig.program": "protocol -> samples; safety",
    "rig.data": "the session folder",
    "rig.behaviour": "freezing",
    "rig.run": "a session on devices",
    "rig.exports": "info, tables, TIFF, NWB",
    "rig.analysis": "the study's analysis",
    "rig.cohort": "a cohort's sessions on dask",
    "rig.cli": "the command line",
}


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and (ROOT / "rig" / parts[1]).is_dir() else "rig"


def _modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / "rig").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def _edges(modules: dict[str, Path]) -> collections.Counter:
    edges: collections.Counter = collections.Counter()
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                node.body = []
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for dep in {t for t in targets if t in modules and t != name}:
                a, b = _package(name), _package(dep)
                if a != b:
                    edges[(a, b)] += 1
    return edges


def draw(out: Path) -> Path:
    modules = _modules()
    order = [layer[0] for layer in LAYERS]
    members: dict[str, list[str]] = collections.defaultdict(list)
    for name in sorted(modules):
        if name != _package(name):
            members[_package(name)].append(name.rsplit(".", 1)[-1])
    members["rig"] = ["ports", "devices"]
    uses: dict[str, list[str]] = collections.defaultdict(list)
    for (a, b), _n in sorted(_edges(modules).items(), key=lambda e: order.index(e[0][1])):
        uses[a].append("rig" if b == "rig" else b.split(".")[1])
    fig, ax = plt.subplots(figsize=(10, 1.05 * len(order) + 0.6))
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.2, len(order) * 1.05)
    ax.axis("off")
    for i, pkg in enumerate(order):
        y = i * 1.05
        label = "rig/ports.py, rig/devices.py" if pkg == "rig" else pkg.replace(".", "/") + "/"
        ax.add_patch(
            FancyBboxPatch((0.1, y), 9.8, 0.85, boxstyle="round,pad=0.03", fc="#eef3fb", ec="#345")
        )
        ax.text(0.25, y + 0.6, label, fontsize=11, weight="bold", family="monospace")
        ax.text(4.3, y + 0.6, IDEAS[pkg], fontsize=10.5, style="italic")
        ax.text(0.25, y + 0.35, "  ".join(members[pkg]), fontsize=8, color="#223")
        below = ", ".join(dict.fromkeys(uses[pkg])) or "nothing of rig at run time"
        ax.text(0.25, y + 0.1, f"imports from: {below}", fontsize=8, color="#667")
        if i:
            ax.add_patch(
                FancyArrowPatch(
                    (9.6, y + 0.02),
                    (9.6, y - 0.2),
                    arrowstyle="-|>",
                    mutation_scale=12,
                    color="#345",
                )
            )
    ax.set_title("rig/: one idea per sub-package; imports go only downwards", fontsize=12)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(draw(ROOT / "docs" / "architecture.png"))
