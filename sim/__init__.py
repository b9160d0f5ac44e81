"""Simulated hardware behind the rig.ports interfaces."""
