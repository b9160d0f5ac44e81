"""The layout is the architecture: the core imports no Qt and no hardware library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_CORE = (
    "PyQt5",
    "PyQt6",
    "PySide2",
    "PySide6",
    "pyqtgraph",
    "qtpy",
    "nidaqmx",
    "serial",
    "pymmcore",
    "pymmcore_plus",
    "drivers",
    "sim",
    "gui",
)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "rig").rglob("*.py")), ids=lambda p: p.name)
def test_core_imports_no_qt_or_hardware(path):
    assert not (_imports(path) & set(FORBIDDEN_IN_CORE))


@pytest.mark.parametrize("package", ["drivers", "sim"])
def test_drivers_and_sim_do_not_import_the_gui(package):
    for path in (ROOT / package).rglob("*.py"):
        assert "gui" not in _imports(path), path
