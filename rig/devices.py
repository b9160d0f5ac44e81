"""Driver resolution: a rig file names a driver per section; entry points provide it.

A driver package registers :class:`DriverSpec` objects under the ``rig.drivers`` entry-point
group, e.g. in its ``pyproject.toml``::

    [project.entry-points."rig.drivers"]
    my-shocker = "my_lab_rig.shocker:SPEC"

``SPEC.sections`` says which rig-file sections it can serve (``daq``, ``shocker``, ``camera``,
``imaging``); ``SPEC.config_model`` is a strict pydantic model of the section's other keys
(everything but ``driver``), or a dict of one model per section; ``SPEC.build(section, config,
context)`` makes the device. The core never imports a driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel

SECTIONS = ("daq", "shocker", "camera", "imaging")
ENTRY_POINT_GROUP = "rig.drivers"


@dataclass
class BuildContext:
    """What a driver may need when it builds its device."""

    rig: Any  # rig.files.rigfile.RigFile
    built: dict[str, Any] = field(default_factory=dict)  # devices built so far, by section
    speed: float | None = 1.0  # None: as fast as possible (simulated devices only)
    seed: int = 0
    animal: str = ""
    protocol: Any = None  # rig.files.protocol.Protocol, when building for a session
    state_dir: str | None = None  # where simulated animals keep their learned state


@dataclass(frozen=True)
class DriverSpec:
    """One driver: the sections it serves, its config model and its factory."""

    name: str
    sections: tuple[str, ...]
    config_model: type[BaseModel] | dict[str, type[BaseModel]]
    """One model for every section, or one per section (e.g. the ``sim`` driver)."""
    build: Callable[[str, BaseModel, BuildContext], Any]
    simulated: bool = False
    sample_frames: Callable[[str, BaseModel], Any] | None = None
    """Optional, for a frame section: ``(section, config)`` -> a few ``(n, y, x)`` frames like
    those the device will deliver (a simulated device renders them), or None; the disk
    estimate then measures how its frames compress instead of assuming a ratio."""

    def model_for(self, section: str) -> type[BaseModel]:
        if isinstance(self.config_model, dict):
            return self.config_model[section]
        return self.config_model


def available_drivers() -> dict[str, DriverSpec]:
    """Every driver installed in this environment, by name."""
    found: dict[str, DriverSpec] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        loaded = ep.load()
        specs = loaded() if callable(loaded) and not isinstance(loaded, DriverSpec) else loaded
        if isinstance(specs, DriverSpec):
            specs = [specs]
        for spec in specs:
            found[spec.name] = spec
    return found
