"""Crash-safe replacement: a reader sees the old file or the new one, never half, and a failed
write leaves no temporary behind."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rig.data.atomic import atomic_path, open_atomic, write_bytes_atomic, write_json_atomic


def _hidden(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("durable", [True, False])
def test_a_write_that_fails_leaves_the_old_file(tmp_path, durable):
    path = tmp_path / "data.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), open_atomic(path, durable=durable) as f:
        f.write("half of the new")
        raise RuntimeError("killed")
    assert path.read_text() == "old\n" and _hidden(tmp_path) == []
    with open_atomic(path, durable=durable) as f:
        f.write("new\r\n")  # written as given
    assert path.read_bytes() == b"new\r\n" and _hidden(tmp_path) == []


def test_the_temporary_keeps_the_suffix_and_is_hidden(tmp_path):
    with atomic_path(tmp_path / "session.nwb") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".session.")
        assert tmp.suffix == ".nwb" and not tmp.exists()
        tmp.write_bytes(b"x")
    assert (tmp_path / "session.nwb").read_bytes() == b"x"


def test_a_folder_is_moved_into_place_whole_or_not_at_all(tmp_path):
    with pytest.raises(ValueError), atomic_path(tmp_path / "imaging") as tmp:
        (tmp / "0").mkdir(parents=True)
        (tmp / "0" / "chunk").write_bytes(b"frames")
        raise ValueError("a bad TIFF page")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(tmp_path / "imaging") as tmp:
        (tmp / "0").mkdir(parents=True)
        (tmp / "0" / "chunk").write_bytes(b"frames")
    assert (tmp_path / "imaging" / "0" / "chunk").read_bytes() == b"frames"
    assert _hidden(tmp_path) == []


def test_json_and_bytes(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"n": np.int64(3), "x": np.arange(2)})
    assert json.loads((tmp_path / "a.json").read_text()) == {"n": 3, "x": [0, 1]}
    write_bytes_atomic(tmp_path / "b", b"\x00\x01", durable=False)
    assert (tmp_path / "b").read_bytes() == b"\x00\x01"
