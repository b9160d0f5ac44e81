"""The PyQt5 + pyqtgraph front end: protocol designer and run console (``rig gui``).

Uses the core's public API only; the core never imports this package.
"""

import os

# pymmcore-plus picks Qt signals when a QApplication exists, which needs qtpy and would tie
# the camera's core, created in the session's worker thread, to Qt's threading rules. The
# session follows psygnal signals everywhere (CLI and GUI alike).
os.environ.setdefault("PYMM_SIGNALS_BACKEND", "psygnal")
