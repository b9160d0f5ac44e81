"""``rig export --nwb``: a session as one NWB file (pynwb), for the NWB ecosystem.

What goes where (``docs/format.md`` has the full list):

- ``acquisition/two_photon`` (TwoPhotonSeries) and ``acquisition/behaviour_video``
  (ImageSeries): the frames, streamed from the Zarr store in blocks (memory stays bounded),
  stored as NWB's ``(frame, x, y)``, i.e. each frame transposed from the store's ``(t, y, x)``;
  timestamps are the session-clock (DAQ) timestamps. A frame-clock-only microscope without
  attached frames gets ``acquisition/frame_clock``: the edge times, frames numbered.
- ``trials``: one row per planned trial with CS, role, US, phase and percent freezing.
- ``intervals/stimuli`` (TimeIntervals): every delivered stimulus; ``epochs``: the phases.
- ``processing/behavior``: motion index, wheel speed, scored freezing, true freezing.
- ``processing/ophys`` (when ``rig analyze`` has analysed the session): the ROIs with their
  neuron ids, dF/F, and the session's rows of the analysis tables (``rig.exports.nwb_ophys``).

The file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from hdmf.data_utils import DataChunkIterator
from pynwb import NWBHDF5IO, H5DataIO, NWBFile, TimeSeries
from pynwb.epoch import TimeIntervals
from pynwb.image import ImageSeries
from pynwb.ophys import TwoPhotonSeries

from rig import __version__
from rig.data.atomic import atomic_path
from rig.data.folder import FRAME_BLOCK_BYTES, FrameStream, SessionFolder, parse_utc
from rig.data.integrity import FrameDamage
from rig.exports.csv_tiff import (
    FrameExport,
    checked_streams,
    export_folder,
    freezing_tables,
    trial_records,
    write_damage_list,
)
from rig.exports.frame_table import cs_roles, frame_times, stimulus_intervals
from rig.exports.nwb_metadata import (
    add_devices,
    field_of_view_m,
    file_metadata,
    imaging_plane,
    nwb_subject,
)
from rig.program.schedule import IMAGING, VIDEO

NWB_NAME = "session.nwb"


def _datetime(text: str | None) -> datetime:
    return parse_utc(text) if text else datetime.now(timezone.utc)


@dataclass
class _Frames:
    """How the frames of an export are read: the damage found so far, and whether damaged
    frames may be written (as zeros)."""

    damage: list[FrameDamage]
    allow_damaged: bool
    compress: bool


def _streamed(stream: FrameStream, how: _Frames) -> H5DataIO:
    """Frames as an iterator over blocks, written chunk by chunk, transposed to (t, x, y)."""
    frames = stream.frames
    n, height, width = frames.shape
    frame_bytes = height * width * frames.dtype.itemsize
    buffer = max(1, min(n, FRAME_BLOCK_BYTES // max(frame_bytes, 1)))

    def each() -> Iterator[np.ndarray]:
        for _start, block in stream.blocks(FRAME_BLOCK_BYTES, how.damage, how.allow_damaged):
            for frame in block:
                yield np.ascontiguousarray(frame.T)

    chunk_t = max(1, min(n, frames.chunks[0]))
    return H5DataIO(
        DataChunkIterator(
            data=each(), maxshape=(n, width, height), dtype=frames.dtype, buffer_size=buffer
        ),
        chunks=(chunk_t, width, height),
        **({"compression": "gzip", "compression_opts": 4} if how.compress else {}),
    )


def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _add_imaging(nwb: NWBFile, folder: SessionFolder, how: _Frames) -> None:
    attrs = folder.attrs
    rate = attrs.imaging_rate_hz or 0.0
    image = folder.stream(IMAGING)
    if image is not None and image.n_frames:
        plane = imaging_plane(nwb, attrs, rate)
        source = attrs.imaging_source or {}
        _, height, width = image.frames.shape
        fov = field_of_view_m(attrs, height, width)
        nwb.add_acquisition(
            TwoPhotonSeries(
                name="two_photon",
                data=_streamed(image, how),
                imaging_plane=plane,
                unit="n.a.",
                timestamps=image.timestamps_s(),
                description=(
                    "frames in NWB (frame, x, y) order; timestamps from the frame-clock edges "
                    "on the DAQ clock"
                    + (f"; attached from {len(source.get('files', []))} file(s)" if source else "")
                ),
                **({"field_of_view": fov} if fov else {}),
            )
        )
        return
    stream, times = frame_times(folder)
    if stream == "frame_clock":
        nwb.add_acquisition(
            TimeSeries(
                name="frame_clock",
                data=np.arange(len(times), dtype=np.int64),
                unit="frame",
                timestamps=times,
                description="two-photon frame-clock edges; the frames stay in the microscope's "
                "files (import them with `rig attach`)",
            )
        )


def _add_video(nwb: NWBFile, folder: SessionFolder, how: _Frames) -> None:
    video = folder.stream(VIDEO)
    if video is None or video.n_frames == 0:
        return
    um = folder.attrs.pixel_size_um(VIDEO)
    size = f"; one pixel is {um / 1000:g} mm in the arena" if um else ""
    nwb.add_acquisition(
        ImageSeries(
            name="behaviour_video",
            data=_streamed(video, how),
            unit="n.a.",
            format="raw",
            timestamps=video.timestamps_s(),
            description="behaviour camera frames in NWB (frame, x, y) order; timestamps from "
            "the camera exposure edges on the DAQ clock" + size,
            device=nwb.devices.get("behaviour_camera"),
        )
    )


TRIAL_COLUMNS = {
    "phase": "protocol phase",
    "phase_trial": "0-based trial number within its phase",
    "cs": "CS stimulus name in the protocol",
    "cs_role": "cs_plus (paired with a US in this protocol), cs_minus, or cs (role unknown)",
    "us": "US stimulus name ('' without a US)",
    "delivered": "the CS onset was recorded (False: the session ended before this trial)",
    "cs_onset_s": "measured CS onset (NaN if not delivered)",
    "cs_offset_s": "measured CS offset",
    "us_onset_s": "measured US onset (NaN without a US)",
    "us_offset_s": "measured US offset",
}


def _add_trials(nwb: NWBFile, folder: SessionFolder) -> None:
    records = trial_records(folder)
    if not records:
        return
    percent = [k for k in records[0] if "percent_" in k]
    for name, text in TRIAL_COLUMNS.items():
        nwb.add_trial_column(name=name, description=text)
    for name in percent:
        source = "simulated truth" if name.startswith("true_") else "scored freezing"
        epoch = name.rsplit("_", 1)[-1]
        nwb.add_trial_column(
            name=name, description=f"percent freezing in the trial's {epoch} epoch ({source})"
        )
    for r in records:
        start = r["cs_onset_s"] if r["delivered"] else r["planned_cs_onset_s"]
        ends = [r[k] for k in ("cs_offset_s", "us_offset_s") if r[k] is not None]
        if not ends:
            ends = [r[k] for k in ("planned_cs_offset_s", "planned_us_offset_s") if r[k]]
        row = {
            "start_time": float(start),
            "stop_time": float(max(ends)),
            "phase": r["phase"],
            "phase_trial": int(r["phase_trial"]),
            "cs": r["cs"],
            "cs_role": r["cs_role"],
            "us": r["us"],
            "delivered": bool(r["delivered"]),
        }
        for k in ("cs_onset_s", "cs_offset_s", "us_onset_s", "us_offset_s", *percent):
            row[k] = _nan(r[k])
        nwb.add_trial(**row)


def _add_intervals(nwb: NWBFile, folder: SessionFolder) -> None:
    timeline = folder.attrs.timeline
    roles = cs_roles(folder.protocol())
    stimuli = TimeIntervals(name="stimuli", description="every delivered stimulus (measured)")
    for name, text in (
        ("stimulus", "stimulus name in the protocol"),
        ("kind", "cs or us"),
        ("role", "cs_plus, cs_minus, cs (role unknown) or us"),
        ("trial", "0-based trial index across the session"),
        ("phase", "protocol phase"),
    ):
        stimuli.add_column(name=name, description=text)
    intervals = stimulus_intervals(folder.events(), timeline, roles)
    for iv in intervals:
        stimuli.add_interval(
            start_time=iv.start_s,
            stop_time=iv.stop_s if math.isfinite(iv.stop_s) else iv.start_s,
            stimulus=iv.stimulus,
            kind=iv.kind,
            role=iv.role,
            trial=iv.trial,
            phase=iv.phase,
        )
    if intervals:
        nwb.add_time_intervals(stimuli)
    phases = freezing_tables(folder)["phases"]
    keys = sorted({k for row in phases.values() for k in row})
    for key in keys:
        nwb.add_epoch_column(name=key, description=f"{key.replace('_', ' ')} in the phase")
    for p in timeline.phases:
        extra = {k: _nan(phases.get(p.name, {}).get(k)) for k in keys}
        nwb.add_epoch(start_time=p.start_s, stop_time=p.end_s, tags=[p.name], **extra)


MOTION_UNIT = "fraction of ROI pixels changed"


def _add_behaviour(nwb: NWBFile, folder: SessionFolder) -> None:
    series = []
    scores = folder.scores()
    if scores is not None:
        record = scores.record or {}
        scored = (
            f"scored freezing (1 frozen), {record.get('measure', '')} threshold "
            f"{record.get('threshold')}, min freeze {record.get('min_freeze_s')} s"
        )
        freezing = scores.freezing.astype(np.uint8) if scores.freezing is not None else None
        candidates = [  # (values, NWB name, unit, description)
            (scores.motion_index, "motion_index", MOTION_UNIT, "per-frame motion index"),
            (
                scores.wheel_speed_cm_s,
                "wheel_speed",
                "cm/s",
                "wheel speed from the rotary encoder edges",
            ),
            (freezing, "freezing", "n.a.", scored),
        ]
        for values, name, unit, text in candidates:
            timed = scores.timed(values)
            if timed is not None:
                times, data = timed
                series.append(
                    TimeSeries(name=name, data=data, unit=unit, timestamps=times, description=text)
                )
    truth = folder.true_freezing()
    if truth is not None:
        series.append(
            TimeSeries(
                name="true_freezing",
                data=truth[1].astype(np.uint8),
                unit="n.a.",
                timestamps=truth[0],
                description="the simulated animal's true freezing (1 frozen)",
            )
        )
    if series:
        module = nwb.create_processing_module("behavior", "freezing and what it is scored from")
        for s in series:
            module.add(s)


def build_nwbfile(
    folder: SessionFolder, compress: bool, damage: list[FrameDamage], allow_damaged: bool = False
) -> NWBFile:
    """The in-memory NWBFile of a session (frames stay iterators until written): damaged
    frames found while they are written are added to ``damage`` (see :func:`export_nwb`)."""
    how = _Frames(damage, allow_damaged, compress)
    attrs = folder.attrs
    start = _datetime(attrs.started_utc)
    nwb = NWBFile(
        session_description=("[SIMULATED] " if attrs.simulated else "")
        + (attrs.protocol.description or attrs.protocol_name or ""),
        identifier=str(uuid.uuid5(uuid.NAMESPACE_URL, f"fear-rig:{folder.name}")),
        session_start_time=start,
        session_id=folder.name,
        experiment_description=f"fear-rig protocol {attrs.protocol_name} "
        f"(sha256 {attrs.protocol_sha256}), status {attrs.status}",
        protocol=attrs.protocol_text or "",
        notes=f"{'SIMULATED' if attrs.simulated else 'LIVE'} rig {attrs.rig_name}; "
        f"end: {attrs.end_reason}; fear-rig {__version__}"
        + (f"\n{attrs.notes}" if attrs.notes else ""),
        source_script="fear-rig rig export --nwb",
        source_script_file_name="rig/exports/nwb.py",
        subject=nwb_subject(attrs, start),
        keywords=["fear conditioning", "freezing", "two-photon calcium imaging"],
        **file_metadata(attrs),
    )
    add_devices(nwb, attrs)
    _add_imaging(nwb, folder, how)
    _add_video(nwb, folder, how)
    _add_trials(nwb, folder)
    _add_intervals(nwb, folder)
    _add_behaviour(nwb, folder)
    from rig.exports.nwb_ophys import add_analysis

    # when `rig analyze` has analysed this session
    add_analysis(nwb, folder.path, lambda: imaging_plane(nwb, attrs, attrs.imaging_rate_hz or 0))
    return nwb


def export_nwb(
    folder: SessionFolder,
    out: Path | None = None,
    compress: bool = False,
    allow_damaged: bool = False,
) -> FrameExport:
    """Write ``session.nwb`` (atomically). ``compress``: gzip the frames. Damaged frames
    raise :class:`DamagedFrames` (nothing is written) unless ``allow_damaged``: then they are
    zeros and listed in ``session.damaged.csv`` beside the file."""
    folder.require_finalized()
    streams = [s for s in (folder.stream(IMAGING), folder.stream(VIDEO)) if s is not None]
    damage = checked_streams(folder, streams, allow_damaged)
    path = export_folder(folder, out) / NWB_NAME
    with atomic_path(path) as tmp, NWBHDF5IO(str(tmp), "w") as io:
        io.write(build_nwbfile(folder, compress, damage, allow_damaged))
    return FrameExport(path, damage, write_damage_list(path, damage))
