"""What the rig file says about its hardware for the record (NWB devices, pixel sizes).

Every device section of a rig file (``daq``, ``shocker``, ``camera``, ``imaging``) may carry,
besides its driver's own keys, these core keys, read here and never passed to the driver::

    camera:  {driver: micromanager, ..., description: top-view behaviour camera,
              manufacturer: Basler, mm_per_px: 0.1}
    imaging: {driver: frame-clock, description: resonant-galvo 2P microscope,
              manufacturer: Bruker, um_per_px: 1.2, indicator: GCaMP6s,
              excitation_nm: 920, emission_nm: 510, location: Prelimbic area, depth_um: 250}

They name the devices in the NWB export, give the physical pixel size in the OME-Zarr scale,
the TIFF tags and NWB, and describe the optical channel and imaging plane. Absent keys fall
back to a description made from the driver's name (see :meth:`DeviceInfo.described`).
"""

from __future__ import annotations

from pydantic import Field

from rig.files.protocol import StrictModel

Name = Field(default=None, min_length=1, max_length=500)


class DeviceInfo(StrictModel):
    """Any device: what it is and who made it (NWB ``Device``)."""

    description: str | None = Name
    manufacturer: str | None = Name

    def described(self, fallback: str) -> str:
        """The description, or ``fallback`` when the rig file gives none."""
        return self.description or fallback


class CameraInfo(DeviceInfo):
    """The behaviour camera."""

    mm_per_px: float | None = Field(default=None, gt=0, le=100)
    """The size of one pixel in the arena (mm): the OME scale of ``video/`` and the TIFF and
    NWB resolution."""


class MicroscopeInfo(DeviceInfo):
    """The two-photon microscope and what it images (NWB optical channel and imaging plane)."""

    um_per_px: float | None = Field(default=None, gt=0, le=1000)
    """The size of one pixel in the imaging plane (micrometres)."""
    indicator: str | None = Name
    """The calcium indicator, e.g. GCaMP6s."""
    excitation_nm: float | None = Field(default=None, ge=200, le=2000)
    emission_nm: float | None = Field(default=None, ge=200, le=2000)
    location: str | None = Name
    """The imaged brain area: an Allen Mouse Brain CCF name or acronym (``Prelimbic area``,
    ``PL``), as DANDI asks."""
    depth_um: float | None = Field(default=None, ge=0, le=5000)
    """The imaging plane's depth below the surface (or the prism face)."""


INFO_MODELS: dict[str, type[DeviceInfo]] = {
    "daq": DeviceInfo,
    "shocker": DeviceInfo,
    "camera": CameraInfo,
    "imaging": MicroscopeInfo,
}


def info_keys(section: str) -> frozenset[str]:
    """The core keys a device section may carry besides its driver's."""
    return frozenset(INFO_MODELS[section].model_fields)
