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

The file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from hdmf.data_utils import DataChunkIterator
from pynwb import NWBHDF5IO, H5DataIO, NWBFile, TimeSeries
from pynwb.epoch import TimeIntervals
from pynwb.file import Subject
from pynwb.image import ImageSeries
from pynwb.ophys import OpticalChannel, TwoPhotonSeries

from rig import __version__
from rig.export import (
    FRAME_BLOCK_BYTES,
    export_folder,
    freezing_tables,
    iter_frame_blocks,
    trial_records,
)
from rig.frame_table import (
    cs_roles,
    frame_times,
    require_finalized,
    session_protocol,
    stimulus_intervals,
)
from rig.session import read_events

NWB_NAME = "session.nwb"


def _datetime(text: str | None) -> datetime:
    if not text:
        return datetime.now(timezone.utc)
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def _streamed(frames: zarr.Array, compress: bool) -> H5DataIO:
    """Frames as an iterator over blocks, written chunk by chunk, transposed to (t, x, y)."""
    n, height, width = frames.shape
    frame_bytes = height * width * frames.dtype.itemsize
    buffer = max(1, min(n, FRAME_BLOCK_BYTES // max(frame_bytes, 1)))

    def each() -> Iterator[np.ndarray]:
        for _start, block in iter_frame_blocks(frames):
            for frame in block:
                yield np.ascontiguousarray(frame.T)

    chunk_t = max(1, min(n, frames.chunks[0]))
    return H5DataIO(
        DataChunkIterator(
            data=each(), maxshape=(n, width, height), dtype=frames.dtype, buffer_size=buffer
        ),
        chunks=(chunk_t, width, height),
        **({"compression": "gzip", "compression_opts": 4} if compress else {}),
    )


def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _add_imaging(nwb: NWBFile, root: zarr.Group, attrs: dict, compress: bool) -> None:
    protocol = attrs["protocol"]
    rate = float((protocol.get("recording", {}).get("imaging") or {}).get("frame_rate_hz") or 0)
    if "imaging" in root and "0" in root["imaging"] and root["imaging"]["0"].shape[0]:
        image = root["imaging"]
        device = nwb.create_device(
            name="microscope",
            description=f"two-photon microscope of rig {attrs.get('rig_name')}",
        )
        plane = nwb.create_imaging_plane(
            name="imaging_plane",
            optical_channel=OpticalChannel(
                name="channel", description="the recorded channel", emission_lambda=float("nan")
            ),
            description="the imaged plane",
            device=device,
            excitation_lambda=float("nan"),
            indicator="unknown",
            location="unknown",
            imaging_rate=rate or float("nan"),
        )
        source = attrs.get("imaging_source") or {}
        nwb.add_acquisition(
            TwoPhotonSeries(
                name="two_photon",
                data=_streamed(image["0"], compress),
                imaging_plane=plane,
                unit="n.a.",
                timestamps=image["timestamps_s"][:],
                description=(
                    "frames in NWB (frame, x, y) order; timestamps from the frame-clock edges "
                    "on the DAQ clock"
                    + (f"; attached from {len(source.get('files', []))} file(s)" if source else "")
                ),
            )
        )
        return
    stream, times = frame_times(root, attrs)
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


def _add_video(nwb: NWBFile, root: zarr.Group, compress: bool) -> None:
    if "video" not in root or root["video"]["0"].shape[0] == 0:
        return
    video = root["video"]
    nwb.add_acquisition(
        ImageSeries(
            name="behaviour_video",
            data=_streamed(video["0"], compress),
            unit="n.a.",
            format="raw",
            timestamps=video["timestamps_s"][:],
            description="behaviour camera frames in NWB (frame, x, y) order; timestamps from "
            "the camera exposure edges on the DAQ clock",
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


def _add_trials(nwb: NWBFile, folder: Path, attrs: dict) -> None:
    records = trial_records(folder, attrs)
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


def _add_intervals(nwb: NWBFile, folder: Path, attrs: dict) -> None:
    roles = cs_roles(session_protocol(attrs))
    stimuli = TimeIntervals(name="stimuli", description="every delivered stimulus (measured)")
    for name, text in (
        ("stimulus", "stimulus name in the protocol"),
        ("kind", "cs or us"),
        ("role", "cs_plus, cs_minus, cs (role unknown) or us"),
        ("trial", "0-based trial index across the session"),
        ("phase", "protocol phase"),
    ):
        stimuli.add_column(name=name, description=text)
    intervals = stimulus_intervals(read_events(folder), attrs, roles)
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
    phases = freezing_tables(folder, attrs)["phases"]
    keys = sorted({k for row in phases.values() for k in row})
    for key in keys:
        nwb.add_epoch_column(name=key, description=f"{key.replace('_', ' ')} in the phase")
    for p in attrs["timeline"]["phases"]:
        extra = {k: _nan(phases.get(p["name"], {}).get(k)) for k in keys}
        nwb.add_epoch(start_time=p["start_s"], stop_time=p["end_s"], tags=[p["name"]], **extra)


# scores/ arrays exported as TimeSeries: (array, NWB name, unit, description)
SCORE_SERIES = (
    ("motion_index", "motion_index", "fraction of ROI pixels changed", "per-frame motion index"),
    ("wheel_speed_cm_s", "wheel_speed", "cm/s", "wheel speed from the rotary encoder edges"),
    ("freezing", "freezing", "n.a.", "scored freezing (1 frozen)"),
)


def _add_behaviour(nwb: NWBFile, root: zarr.Group) -> None:
    series = []
    scores = root.get("scores")
    if scores is not None and "times_s" in scores:
        times = scores["times_s"][:]
        record = dict(scores.attrs).get("freezing") or {}
        for key, name, unit, text in SCORE_SERIES:
            if key not in scores or scores[key].shape[0] != len(times):
                continue
            data = scores[key][:]
            if key == "freezing":
                data = data.astype(np.uint8)
                text += (
                    f", {record.get('measure', '')} threshold {record.get('threshold')}, "
                    f"min freeze {record.get('min_freeze_s')} s"
                )
            series.append(
                TimeSeries(name=name, data=data, unit=unit, timestamps=times, description=text)
            )
    truth = root.get("truth")
    if truth is not None and "freezing" in truth and "behaviour_frame_times_s" in truth:
        series.append(
            TimeSeries(
                name="true_freezing",
                data=truth["freezing"][:].astype(np.uint8),
                unit="n.a.",
                timestamps=truth["behaviour_frame_times_s"][:],
                description="the simulated animal's true freezing (1 frozen)",
            )
        )
    if series:
        module = nwb.create_processing_module("behavior", "freezing and what it is scored from")
        for s in series:
            module.add(s)


def build_nwbfile(folder: Path, root: zarr.Group, attrs: dict, compress: bool) -> NWBFile:
    """The in-memory NWBFile of a session (frames stay iterators until written)."""
    protocol = attrs["protocol"]
    nwb = NWBFile(
        session_description=protocol.get("description") or attrs.get("protocol_name") or "",
        identifier=str(uuid.uuid5(uuid.NAMESPACE_URL, f"fear-rig:{folder.name}")),
        session_start_time=_datetime(attrs.get("started_utc")),
        session_id=folder.name,
        experiment_description=f"fear-rig protocol {attrs.get('protocol_name')} "
        f"(sha256 {attrs.get('protocol_sha256')}), status {attrs.get('status')}",
        protocol=attrs.get("protocol_text") or "",
        notes=f"{'SIMULATED' if attrs.get('simulated') else 'LIVE'} rig {attrs.get('rig_name')}; "
        f"end: {attrs.get('end_reason')}; fear-rig {__version__}",
        source_script="fear-rig rig export --nwb",
        source_script_file_name="rig/nwb.py",
        subject=Subject(subject_id=str(attrs.get("animal") or "unknown"), species="Mus musculus"),
    )
    _add_imaging(nwb, root, attrs, compress)
    _add_video(nwb, root, compress)
    _add_trials(nwb, folder, attrs)
    _add_intervals(nwb, folder, attrs)
    _add_behaviour(nwb, root)
    return nwb


def export_nwb(folder: Path, out: Path | None = None, compress: bool = False) -> Path:
    """Write ``session.nwb`` (atomically); returns its path. ``compress``: gzip the frames."""
    attrs = require_finalized(folder)
    root = zarr.open_group(str(folder / "session.zarr"), mode="r")
    target = export_folder(folder, out)
    path = target / NWB_NAME
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")  # pynwb wants the .nwb suffix
    try:
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(build_nwbfile(folder, root, attrs, compress))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
