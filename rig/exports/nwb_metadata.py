"""The NWB file's metadata: subject, experimenter, devices, optical channel and imaging plane.

From the session's root attributes: ``subject`` (a subject file, :mod:`rig.files.subject`),
``experimenter``, ``institution``, ``lab``, and ``devices`` (what each rig-file section said
about its hardware, :mod:`rig.files.device_info`). Sessions recorded before these attributes
existed get what can be said without them (the animal's id, the driver names).
"""

from __future__ import annotations

from datetime import datetime, time, timezone
from typing import Any

from pynwb import NWBFile
from pynwb.device import Device
from pynwb.file import Subject as NWBSubject
from pynwb.ophys import ImagingPlane, OpticalChannel

from rig.data.attrs import SessionAttrs
from rig.files.subject import DEFAULT_SPECIES, Subject

# the NWB device of each rig-file section, and what it is when the rig file does not say
DEVICE_NAMES = {
    "daq": ("daq", "data acquisition device: hardware-timed outputs and the session clock"),
    "shocker": ("shock_generator", "footshock generator (current set by serial, gated by the DAQ)"),
    "camera": ("behaviour_camera", "behaviour camera (each exposure triggered by the DAQ)"),
    "imaging": ("microscope", "two-photon microscope (its frame clock recorded by the DAQ)"),
}
PLANE = "imaging_plane"


def nwb_subject(attrs: SessionAttrs, start: datetime) -> NWBSubject:
    """The NWB subject: the subject file's, or (without one) just the animal's id."""
    if attrs.subject is None:
        return NWBSubject(
            subject_id=str(attrs.animal or "unknown"), species=DEFAULT_SPECIES, sex="U"
        )
    s = Subject.model_validate(attrs.subject, strict=False)
    born = (
        datetime.combine(s.date_of_birth, time(), tzinfo=timezone.utc)
        if s.date_of_birth is not None
        else None
    )
    return NWBSubject(
        subject_id=s.subject_id,
        species=s.species,
        sex=s.sex,
        age=s.age_at(start.date()),
        age__reference="birth",
        date_of_birth=born,
        genotype=s.genotype,
        strain=s.strain,
        weight=f"{s.weight_g:g} g" if s.weight_g is not None else None,
        description=s.description,
    )


def file_metadata(attrs: SessionAttrs) -> dict[str, Any]:
    """NWBFile keyword arguments: experimenter, institution, lab (those given)."""
    meta: dict[str, Any] = {"experimenter": attrs.experimenters or None}
    meta.update(institution=attrs.institution, lab=attrs.lab)
    return {k: v for k, v in meta.items() if v}


def _device_info(attrs: SessionAttrs, section: str) -> dict[str, Any]:
    return dict((attrs.devices or {}).get(section) or {})


def add_devices(nwb: NWBFile, attrs: SessionAttrs) -> dict[str, Device]:
    """One NWB device per device the session's rig had (by section)."""
    known = _known_sections(attrs)
    out = {}
    mode = "simulated" if attrs.simulated else "real"
    for section, (name, what) in DEVICE_NAMES.items():
        if section not in known:
            continue
        info = _device_info(attrs, section)
        driver = info.get("driver")
        description = info.get("description") or what
        description += f" ({mode}; fear-rig driver {driver})" if driver else f" ({mode})"
        out[section] = nwb.create_device(
            name=name, description=description, manufacturer=info.get("manufacturer")
        )
    return out


def _known_sections(attrs: SessionAttrs) -> set[str]:
    if attrs.devices:
        return set(attrs.devices)
    return {"daq", "shocker", "camera", *(["imaging"] if attrs.imaging_rate_hz else [])}


def microscope(attrs: SessionAttrs) -> dict[str, Any]:
    """What the rig file said about the microscope (``imaging`` section), possibly nothing."""
    return _device_info(attrs, "imaging")


def imaging_plane(nwb: NWBFile, attrs: SessionAttrs, rate_hz: float) -> ImagingPlane:
    """The file's one imaging plane, with its microscope (made the first time it is asked)."""
    if PLANE in nwb.imaging_planes:
        return nwb.imaging_planes[PLANE]
    device = nwb.devices.get("microscope") or add_devices(nwb, attrs).get("imaging")
    if device is None:
        device = nwb.create_device(name="microscope", description=DEVICE_NAMES["imaging"][1])
    info = microscope(attrs)
    nan = float("nan")
    um = info.get("um_per_px")
    depth = info.get("depth_um")
    where = info.get("location") or "unknown"
    description = f"the imaged plane in {where}" + (
        f", {depth:g} um below the surface" if depth is not None else ""
    )
    extra: dict[str, Any] = {}
    if um:
        extra.update(grid_spacing=[float(um), float(um)], grid_spacing_unit="micrometers")
    return nwb.create_imaging_plane(
        name=PLANE,
        optical_channel=OpticalChannel(
            name="channel",
            description=f"{info.get('indicator') or 'indicator'} fluorescence",
            emission_lambda=float(info.get("emission_nm") or nan),
        ),
        description=description,
        device=device,
        excitation_lambda=float(info.get("excitation_nm") or nan),
        indicator=info.get("indicator") or "unknown",
        location=where,
        imaging_rate=rate_hz or nan,
        **extra,
    )


def field_of_view_m(attrs: SessionAttrs, height: int, width: int) -> list[float] | None:
    """The imaged area (width, height) in metres, as TwoPhotonSeries ``field_of_view``."""
    um = attrs.pixel_size_um("imaging")
    return None if um is None else [width * um * 1e-6, height * um * 1e-6]
