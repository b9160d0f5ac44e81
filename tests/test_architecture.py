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


# Each sub-package of rig/ is one idea, and the ideas stack: a module imports (at run time)
# only from its own layer or the layers below it. Imports for type annotations alone (under
# ``if TYPE_CHECKING:``) do not count. docs/architecture.md draws these layers.
LAYERS = (
    ("rig", "rig.ports", "rig.devices"),  # the driver boundary: nothing of rig at run time
    ("rig.files",),  # what a user writes: protocol, rig file, subject; strict models
    ("rig.program",),  # the protocol compiled to samples, and the safety verifier on them
    ("rig.data",),  # the session folder: its one API, the frame writer, sync
    ("rig.behaviour",),  # freezing: motion indices, the rule, live and re-scoring
    ("rig.run",),  # a session on devices: runner, engine, sinks, self-test
    ("rig.exports",),  # a finished session as rig info, tables, TIFF, NWB
    ("rig.analysis",),  # the study's analysis across days
    ("rig.cohort",),  # a cohort's sessions and animals as tasks on dask.distributed
    ("rig.cli",),  # the command line
)


def _layer(module: str) -> int:
    best = -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and prefix != "rig":
                best = i
    return max(best, 0)


def _runtime_rig_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Like :func:`_rig_imports`, without the imports under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found & set(modules)


def test_every_rig_module_has_a_layer():
    names = {prefix for layer in LAYERS for prefix in layer}
    for name in _rig_modules():
        top = ".".join(name.split(".")[:2])
        assert top in names, f"{name}: add its package to LAYERS (and to docs/architecture.md)"


def test_packages_import_only_downwards():
    modules = _rig_modules()
    upward = [
        f"{name} (layer {_layer(name)}) imports {dep} (layer {_layer(dep)})"
        for name, path in sorted(modules.items())
        for dep in sorted(_runtime_rig_imports(path, modules))
        if _layer(dep) > _layer(name)
    ]
    assert not upward, "\n".join(upward)


# The modules that sequence hardware during a session never write a file: the session store is
# a sink they are handed (rig.run.runner.SessionRecorder), and everything on disk is rig.data's.
SEQUENCERS = (
    "rig.run.engine",
    "rig.run.runner",
    "rig.run.shock_current",
    "rig.run.stimuli",
    "rig.program.output_stream",
)
FILE_WRITERS = ("rig.data.folder", "rig.data.store", "rig.data.journal", "rig.data.atomic")
FILE_CALLS = {"open", "write_text", "write_bytes", "mkdir", "unlink", "replace", "rename"}


@pytest.mark.parametrize("name", SEQUENCERS)
def test_hardware_sequencing_writes_no_file(name):
    modules = _rig_modules()
    path = modules[name]
    writers = {m for m in _rig_imports(path, modules) if m.startswith(FILE_WRITERS)}
    assert not writers, f"{name} imports {sorted(writers)}"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            assert called not in FILE_CALLS, f"{path.name}:{node.lineno} calls {called}()"
