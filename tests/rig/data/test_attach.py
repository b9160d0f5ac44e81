"""``rig attach``: microscope-written TIFFs become the two-photon stream of a session whose
microscope is known only by its frame clock (``drivers/frame_clock.py``)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaozarrs

from rig.data.folder import SessionFolder
from rig.exports.frame_table import build_frame_table

HEIGHT, WIDTH = 32, 48


@pytest.fixture
def session(frame_clock_session, tmp_path) -> Path:
    copy = tmp_path / frame_clock_session.name
    shutil.copytree(frame_clock_session, copy)
    return copy


def _edges_s(folder: Path) -> np.ndarray:
    session = SessionFolder.open(folder)
    return session.rising_edges("frame_clock") / session.attrs.sample_rate_hz


def _movie(n: int, seed: int = 0) -> np.ndarray:
    """Calcium-like uint16 frames, each different (frame i carries i in its corner)."""
    rng = np.random.default_rng(seed)
    movie = rng.poisson(300, (n, HEIGHT, WIDTH)).astype(np.uint16)
    movie[:, 0, 0] = np.arange(n)
    return movie


def _scanimage_files(folder: Path, movie: np.ndarray, split: list[int]) -> list[Path]:
    """Multi-page TIFFs as a microscope writes them: consecutive files of consecutive frames."""
    folder.mkdir(exist_ok=True)
    paths, start = [], 0
    for k, n in enumerate(split):
        path = folder / f"file_{k + 1:05d}.tif"
        with tifffile.TiffWriter(path) as tif:
            for frame in movie[start : start + n]:
                tif.write(frame, contiguous=True)
        paths.append(path)
        start += n
    return paths


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_matching_tiffs_become_the_imaging_stream(session, tmp_path, cli):
    n = len(_edges_s(session))
    assert n == 151  # 5 s of a resonant microscope's 30.03 Hz frame clock (30 Hz planned)
    movie = _movie(n)
    files = _scanimage_files(tmp_path / "scanimage", movie, [60, 60, 31])
    result = cli("attach", session, *files)
    assert result.exit_code == 0, result.output
    assert f"attached {n} frames from 3 file(s) to {n} frame-clock edges" in result.stdout

    folder = SessionFolder.open(session)
    image = folder.stream("imaging")
    np.testing.assert_array_equal(image.frames[:], movie)
    np.testing.assert_array_equal(image.timestamps_s(), _edges_s(session))
    np.testing.assert_array_equal(image.device_index(), np.arange(n))
    yaozarrs.validate_zarr_store(str(session / "session.zarr" / "1"))  # the format itself
    assert image.group.attrs["ome"]["multiscales"][0]["axes"][0]["name"] == "t"

    attrs = folder.attrs
    source = attrs.imaging_source
    assert source["frames"] == source["edges"] == n and source["mismatch"] is None
    assert [f["name"] for f in source["files"]] == [p.name for p in files]
    assert [f["frames"] for f in source["files"]] == [60, 60, 31]
    for f, p in zip(source["files"], files, strict=True):
        assert f["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
        assert f["size_bytes"] == p.stat().st_size
    stream = attrs.streams["imaging"]
    assert stream["written"] == stream["edges"] == stream["frames_on_clock"] == n
    assert stream["frames_expected"] == 150  # planned at 30 Hz
    assert stream["complete"]
    assert not list((session / "session.zarr").glob(".*"))  # no half-written group left

    table = build_frame_table(folder)
    assert table.stream == "imaging" and len(table) == n
    export = cli("export", session, "--tiff", "--out", tmp_path / "out")
    assert export.exit_code == 0, export.output
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out" / "imaging.tif"), movie)


@pytest.mark.parametrize("frames", [140, 152])
def test_a_count_mismatch_changes_nothing(session, tmp_path, cli, frames):
    files = _scanimage_files(tmp_path / "scanimage", _movie(frames), [frames])
    before = _tree(session)
    result = cli("attach", session, *files)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert f"{frames} frames in the TIFF files, 151 frame-clock edges recorded" in result.stderr
    assert "--allow-mismatch" in result.stderr
    assert _tree(session) == before


def test_allow_mismatch_keeps_the_alignment_from_the_start(session, tmp_path, cli):
    movie = _movie(153)
    files = _scanimage_files(tmp_path / "scanimage", movie, [100, 53])
    result = cli("attach", session, *files, "--allow-mismatch")
    assert result.exit_code == 0, result.output
    assert "MISMATCH: 153 frames in the TIFF files, 151 frame-clock edges" in result.stdout
    folder = SessionFolder.open(session)
    image = folder.stream("imaging")
    stamps = image.timestamps_s()
    np.testing.assert_array_equal(stamps[:151], _edges_s(session))
    assert np.isnan(stamps[151:]).all()
    np.testing.assert_array_equal(image.frames[:], movie)
    mismatch = folder.attrs.imaging_source["mismatch"]
    assert mismatch["frames_without_edge"] == 2 and mismatch["edges_without_frame"] == 0
    stream = folder.attrs.streams["imaging"]
    assert stream["without_edge"] == 2 and not stream["complete"]


def test_allow_mismatch_with_fewer_frames(session, tmp_path, cli):
    files = _scanimage_files(tmp_path / "scanimage", _movie(120), [120])
    assert cli("attach", session, *files, "--allow-mismatch").exit_code == 0
    folder = SessionFolder.open(session)
    assert folder.attrs.imaging_source["mismatch"]["edges_without_frame"] == 31
    assert folder.attrs.streams["imaging"]["edges_without_frame"] == 31
    table = build_frame_table(folder)
    np.testing.assert_array_equal(table.columns["time_s"], _edges_s(session)[:120])


def test_bad_input_is_a_one_line_error(session, tmp_path, cli):
    before = _tree(session)
    not_tiff = tmp_path / "notes.tif"
    not_tiff.write_text("not a tiff")
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((HEIGHT, WIDTH, 3), np.uint8), photometric="rgb")
    cases = [
        (not_tiff, "not a readable TIFF"),
        (tmp_path / "missing.tif", "no such file"),
        (rgb, "single-channel"),
    ]
    for path, message in cases:
        result = cli("attach", session, path)
        assert result.exit_code == 2, path
        assert result.stderr.count("\n") == 1 and message in result.stderr
    a = _scanimage_files(tmp_path / "a", _movie(75), [75])
    b = tmp_path / "b.tif"
    tifffile.imwrite(b, np.zeros((75, 16, 16), np.uint16))
    result = cli("attach", session, *a, b)
    assert result.exit_code == 2 and "frames differ" in result.stderr
    assert _tree(session) == before


def test_a_session_with_frames_or_without_a_frame_clock_is_refused(imaging_session, tmp_path, cli):
    files = _scanimage_files(tmp_path / "scanimage", _movie(10), [10])
    result = cli("attach", imaging_session, *files)
    assert result.exit_code == 2 and "already has a two-photon stream" in result.stderr
    result = cli("attach", tmp_path, *files)
    assert result.exit_code == 2 and "not a fear-rig session" in result.stderr
