"""Open a session's ``session.zarr`` at its root with napari's readers, as napari does.

napari is not a test dependency (it brings Qt, vispy and ~60 packages; installing it took
minutes here): this script checks the layout in an environment that has napari, e.g.::

    python -m venv /tmp/napari && /tmp/napari/bin/pip install napari==0.9.2 napari-ome-zarr==0.10.0
    /tmp/napari/bin/python bench/napari_open.py SESSION_FOLDER

It runs napari's built-in zarr reader and the napari-ome-zarr plugin's reader (the functions
napari calls on ``viewer.open(path)``; no window is needed) on ``SESSION/session.zarr`` and
prints, per layer, its name, shape, scale and axis units. Exit code 1 when either reader finds
no image or finds an array that is not a stream's frames.
"""

from __future__ import annotations

import sys
from pathlib import Path


def builtin_layers(path: str) -> list[tuple]:
    """napari's built-in reader (npe2 plugin ``napari``): the first image group's arrays."""
    from napari_builtins.io import napari_get_reader

    reader = napari_get_reader(path)
    return reader(path) if reader is not None else []


def ome_zarr_layers(path: str) -> list[tuple]:
    """The napari-ome-zarr plugin's reader (the bioformats2raw collection, one layer each)."""
    import contextlib
    import io

    from napari_ome_zarr._reader import napari_get_reader

    reader = napari_get_reader(path)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the root's attributes
        return reader(path) if reader is not None else []


def describe(layer: tuple) -> str:
    data = layer[0]
    meta = layer[1] if len(layer) > 1 else {}
    levels = data if isinstance(data, list) else [data]
    shape = tuple(levels[0].shape)
    return (
        f"{meta.get('name', '-')!s:<10} shape {shape} dtype {levels[0].dtype} "
        f"levels {len(levels)} scale {meta.get('scale')} units {meta.get('units')}"
    )


def main(session: str) -> int:
    path = str(Path(session) / "session.zarr") if not session.endswith(".zarr") else session
    ok = True
    for name, read in (("napari built-in", builtin_layers), ("napari-ome-zarr", ome_zarr_layers)):
        try:
            layers = read(path)
        except Exception as exc:  # what napari would show the user
            print(f"{name:<16} FAILED: {type(exc).__name__}: {exc}")
            ok = False
            continue
        print(f"{name:<16} {len(layers)} layer(s)")
        for layer in layers:
            print(f"    {describe(layer)}")
            data = layer[0] if isinstance(layer[0], list) else [layer[0]]
            ok &= all(len(level.shape) == 3 for level in data)  # (t, y, x) frames only
        ok &= bool(layers)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
