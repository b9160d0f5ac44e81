"""Real hardware behind the rig.ports interfaces."""
