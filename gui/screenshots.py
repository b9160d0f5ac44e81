"""Render the docs' screenshots at 1920x1080, off screen: ``python -m gui.screenshots``.

``docs/designer.png``: the conditioning protocol in the designer. ``docs/console.png``: the
console mid-run on the small simulated rig (demo protocol at 10x real time), with video, trace
and log populated; the session is then aborted and its folder deleted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt5.QtGui import QImage
from PyQt5.QtWidgets import QApplication

from gui.document import ProtocolDocument
from gui.main_window import MainWindow
from gui.style import apply_style
from rig.files.rigfile import load_rig

ROOT = Path(__file__).resolve().parent.parent
SIZE = (1920, 1080)
CONSOLE_AT_S = 52.0  # demo protocol: during the second CS+, after the first shock


def _settle(app: QApplication, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def _save(window: MainWindow, path: Path) -> None:
    from PIL import Image  # Pillow comes with matplotlib

    raw = path.with_suffix(".raw.png")
    window.grab().toImage().convertToFormat(QImage.Format_RGB32).save(str(raw), "PNG")
    # 128 colours without dithering keep a UI screenshot sharp and the PNG small
    with Image.open(raw) as image:
        quantised = image.convert("RGB").quantize(colors=128, dither=Image.Dither.NONE)
        quantised.save(path, optimize=True)
    raw.unlink()
    print(f"{path}: {path.stat().st_size // 1000} kB")


def _window(app: QApplication, protocol: Path, rig: Path) -> MainWindow:
    window = MainWindow(ProtocolDocument.from_file(protocol), load_rig(rig))
    window.resize(*SIZE)
    window.show()
    _settle(app)
    return window


def designer(app: QApplication, out: Path, rig: Path) -> None:
    window = _window(app, ROOT / "protocols" / "conditioning.yaml", rig)
    designer = window.designer
    trial = designer.preview.timeline.trials[2]
    designer.hover_label.setText(designer.preview.describe(trial.cs_onset_s + 12))
    designer.preview._cursor.setValue(trial.cs_onset_s + 12)
    designer.preview._cursor.show()
    _settle(app)
    _save(window, out / "designer.png")
    window.confirm_discard = lambda: True
    window.close()


def console(app: QApplication, out: Path, rig: Path) -> None:
    window = _window(app, ROOT / "protocols" / "demo.yaml", rig)
    sessions = Path(tempfile.mkdtemp(prefix="rig-screenshot-"))
    c = window.console
    try:
        c.out_edit.setText(str(sessions))
        c.animal_edit.setText("m042")
        c.experimenter_edit.setText("J. Doe")
        c.notes_edit.setPlainText("Day 2 conditioning; head-fixed, 2P FOV 3.")
        c.speed_box.setCurrentIndex(c.speed_box.findData(10.0))
        window.go_run()
        c.start()
        while not c.ended:
            app.processEvents()
            p = c.last_progress
            if p is not None and p.t_s >= CONSOLE_AT_S:
                break
            time.sleep(0.005)
        if c.ended:
            raise RuntimeError(f"the session ended before the screenshot: {c.result}")
        _settle(app, 0.4)
        _save(window, out / "console.png")
        c.abort("screenshot taken")
        while not c.ended:
            app.processEvents()
            time.sleep(0.01)
    finally:
        window.close()
        shutil.rmtree(sessions, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--rig", type=Path, default=ROOT / "docs" / "rigs" / "sim-small.yaml")
    args = parser.parse_args(argv)
    if args.rig.is_absolute() and args.rig.is_relative_to(Path.cwd()):
        args.rig = args.rig.relative_to(Path.cwd())  # the banner shows the path as typed
    app = QApplication.instance() or QApplication(["rig gui screenshots"])
    apply_style(app)
    args.out.mkdir(parents=True, exist_ok=True)
    designer(app, args.out, args.rig)
    console(app, args.out, args.rig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
