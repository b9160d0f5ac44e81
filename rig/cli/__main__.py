"""``python -m rig.cli`` is ``rig``."""

from rig.cli import main

main()
