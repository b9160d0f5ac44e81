"""Real hardware behind the ports of :mod:`rig.ports`: one module per device family."""
