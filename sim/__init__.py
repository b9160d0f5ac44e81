"""Simulated hardware behind the ports of :mod:`rig.ports`, and the simulated animal."""
