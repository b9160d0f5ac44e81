"""session.zarr opens at its root in the OME-Zarr tools (yaozarrs, ome-zarr-py; napari in
bench/napari_open.py), with seconds and micrometres on the axes; sessions written in the old
layout still read, and ``rig upgrade`` moves them."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaozarrs
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader
from ome_zarr.utils import find_multiscales

from rig.data.folder import SessionFolder

STREAMS = {"video": ("0", 2900.0), "imaging": ("1", 3.3)}  # sim-small: camera 2.9 mm, 2P 3.3 um


def test_yaozarrs_validates_the_root_as_a_collection_of_the_streams(imaging_session):
    root = yaozarrs.validate_zarr_store(str(imaging_session / "session.zarr"))
    assert type(root.ome_metadata()).__name__ == "Bf2Raw"
    series = json.loads((imaging_session / "session.zarr" / "OME" / "zarr.json").read_text())
    assert series["attributes"]["ome"]["series"] == ["0", "1"]  # each validated as an image


def test_ome_zarr_finds_both_images_with_seconds_and_micrometres(imaging_session):
    found = find_multiscales(imaging_session / "session.zarr")
    assert [(Path(p).name, name) for p, name, _ in found] == [("0", "video"), ("1", "imaging")]
    folder = SessionFolder.open(imaging_session)
    for path, name, _ in found:
        (node,) = list(Reader(parse_url(str(path)))())
        _, um = STREAMS[name]
        units = [a.get("unit") for a in node.metadata["axes"]]
        assert units == ["second", "micrometer", "micrometer"]
        scale = node.metadata["coordinateTransformations"][0][0]["scale"]
        stream = folder.stream(name)
        assert scale == pytest.approx([1 / stream.rate_hz, um, um])
        assert node.data[0].shape == stream.frames.shape  # only the frames: no other arrays
        assert list(zarr.open_group(str(path), mode="r").array_keys()) == ["0"]


def _as_format_1(session: Path, target: Path) -> Path:
    """A copy of ``session`` laid out as fear-rig wrote sessions before the OME-Zarr layout
    (format_version 1): ``video/`` and ``imaging/`` hold their timestamps_s and device_index,
    no OME series, no root "ome" attribute, no devices and no pixel size."""
    shutil.copytree(session, target)
    store = target / "session.zarr"
    for name, (key, _) in STREAMS.items():
        os.replace(store / key, store / name)
        for array in ("timestamps_s", "device_index"):
            os.replace(store / "timing" / name / array, store / name / array)
        meta = json.loads((store / name / "zarr.json").read_text())
        for axis in meta["attributes"]["ome"]["multiscales"][0]["axes"][1:]:
            axis.pop("unit")
        meta["attributes"]["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0][
            "scale"
        ][1:] = [1.0, 1.0]
        (store / name / "zarr.json").write_text(json.dumps(meta))
    shutil.rmtree(store / "timing")
    shutil.rmtree(store / "OME")
    root = json.loads((store / "zarr.json").read_text())
    root["attributes"].pop("ome")
    root["attributes"].pop("devices")  # nor did it record its devices
    root["attributes"]["format_version"] = 1
    (store / "zarr.json").write_text(json.dumps(root))
    return target


def test_an_old_session_reads_and_upgrades_without_rewriting_a_frame(
    imaging_session, tmp_path, cli
):
    new = SessionFolder.open(imaging_session)
    old_path = _as_format_1(imaging_session, tmp_path / imaging_session.name)
    old = SessionFolder.open(old_path)
    for name in STREAMS:  # read as they are
        np.testing.assert_array_equal(
            old.stream(name).timestamps_s(), new.stream(name).timestamps_s()
        )
        np.testing.assert_array_equal(
            old.stream(name).device_index(), new.stream(name).device_index()
        )
    assert cli("info", old_path).exit_code == 0
    assert cli("export", old_path, "--csv", "--out", tmp_path / "csv").exit_code == 0
    shards = sorted((old_path / "session.zarr" / "imaging" / "0" / "c").rglob("*"))
    inodes = {p.relative_to(old_path / "session.zarr" / "imaging"): p.stat().st_ino for p in shards}

    result = cli("upgrade", old_path)
    assert result.exit_code == 0, result.output
    assert "imaging/ -> 1/" in result.stdout and "format_version 1 -> 2" in result.stdout
    for rel, ino in inodes.items():  # the same files, moved
        assert (old_path / "session.zarr" / "1" / rel).stat().st_ino == ino
    upgraded = SessionFolder.open(old_path)
    for name in STREAMS:
        np.testing.assert_array_equal(upgraded.stream(name).frames[:], new.stream(name).frames[:])
        np.testing.assert_array_equal(
            upgraded.stream(name).timestamps_s(), new.stream(name).timestamps_s()
        )
        assert upgraded.stream(name).um_per_px is None  # the old session never said
    yaozarrs.validate_zarr_store(str(old_path / "session.zarr"))
    again = cli("upgrade", old_path)
    assert again.exit_code == 0 and "already current" in again.stdout


def test_the_tiff_carries_the_pixel_size(imaging_session, tmp_path, cli):
    assert cli("export", imaging_session, "--tiff", "--out", tmp_path).exit_code == 0
    with tifffile.TiffFile(tmp_path / "imaging.tif") as tif:
        page = tif.pages[0]
        x_per_cm = page.tags["XResolution"].value
        assert page.tags["ResolutionUnit"].value == 3  # centimetre
        assert 1e4 / (x_per_cm[0] / x_per_cm[1]) == pytest.approx(3.3, rel=1e-6)
        assert tif.shaped_metadata[0]["PhysicalSizeX"] == 3.3
