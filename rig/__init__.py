"""fear-rig core: protocol model, timeline compiler, engine, safety, session store.

This package imports no Qt, no nidaqmx, no serial and no pymmcore: hardware lives behind the
ports in :mod:`rig.ports`, implemented by ``drivers`` (real) and ``sim`` (simulated).
"""

__version__ = "0.1.0"
