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


def _rig_modules() -> dict[str, Path]:
    modules = {}
    for path in (ROOT / "rig").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    return modules


def _rig_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``rig`` that ``path`` imports, anywhere in it (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found & set(modules)


def test_rig_has_no_import_circle():
    modules = _rig_modules()
    graph = {name: _rig_imports(path, modules) - {name} for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            pytest.fail("import circle: " + " -> ".join([*trail[trail.index(name) :], name]))
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


SESSION_LAYOUT_NAMES = {"session.zarr", "zarr.json", "journal", "events.jsonl"}
ZARR_OPENERS = {"open_group", "open_array", "open", "open_consolidated", "create_array"}


@pytest.mark.parametrize(
    "path",
    sorted(p for d in ("rig", "gui", "sim") for p in (ROOT / d).rglob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_only_the_session_folder_api_knows_the_layout(path):
    """No module outside ``rig/data`` opens a Zarr store or names a path of the session folder:
    they all go through :class:`rig.data.folder.SessionFolder`."""
    if (ROOT / "rig" / "data") in path.parents:
        return
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            assert not (node.value.id == "zarr" and node.attr in ZARR_OPENERS), (
                f"{path.name}:{node.lineno} calls zarr.{node.attr}"
            )
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert node.value not in SESSION_LAYOUT_NAMES, f"{path.name}:{node.lineno}"
