"""Whatever starts a session records the protocol file exactly: its bytes (kept as the text
they decode to) and their sha256, the one `sha256sum FILE` prints, so days compare by hash."""

from __future__ import annotations

import hashlib

from rig.data.folder import SessionFolder
from rig.files.protocol import protocol_from_bytes
from rig.files.rigfile import load_rig
from rig.run.session import plan_from_loaded, run_session
from tests.conftest import SHORT_PROTOCOL, SMALL_RIG

# a byte-order mark, CRLF line ends, a tab-free comment, trailing spaces and non-ASCII text:
# everything a re-serialisation would change
ODD = ("\ufeff# Jour 1 — conditionnement   \r\n" + SHORT_PROTOCOL.replace("\n", "  \r\n")).encode()


def _recorded(folder) -> tuple[bytes, str | None]:
    attrs = SessionFolder.open(folder).attrs
    return attrs.protocol_text.encode("utf-8"), attrs.protocol_sha256


def test_rig_run_records_the_file_byte_for_byte(tmp_path, cli):
    path = tmp_path / "odd.yaml"
    path.write_bytes(ODD)
    result = cli("run", path, "--fast", "--rig", SMALL_RIG, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    text, sha = _recorded(result.stdout.strip().splitlines()[-1])
    assert text == ODD and sha == hashlib.sha256(ODD).hexdigest()


def test_the_api_the_gui_runs_takes_the_files_bytes(tmp_path):
    loaded = protocol_from_bytes(ODD, str(tmp_path / "saved.yaml"))
    assert loaded.data == ODD and loaded.sha256 == hashlib.sha256(ODD).hexdigest()
    plan = plan_from_loaded(loaded, load_rig(SMALL_RIG))
    folder, result = run_session(plan, tmp_path / "out", "m1", speed=None)
    assert result.status == "complete"
    assert _recorded(folder) == (ODD, hashlib.sha256(ODD).hexdigest())
    assert SessionFolder.open(folder).attrs.protocol_file == str(tmp_path / "saved.yaml")
