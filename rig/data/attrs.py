"""The root attributes of a session (``session.zarr/zarr.json``), as one typed model.

Every attribute the code reads is a typed field here, so a damaged or hand-edited
``zarr.json`` (a truncated file, a wrong type, a non-numeric pid) is reported as
``FILE: field: message`` with exit code 2 when the folder is opened, never a traceback later.
Attributes this version does not know are kept (``extra="allow"``) and written back unchanged,
so an older fear-rig can read, recover and score a newer session. ``docs/format.md`` has the
meaning of each field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from rig.program.timeline import Timeline

FORMAT = "fear-rig-session"
FORMAT_VERSION = 2
"""1: stream images named video/ and imaging/ with their per-frame arrays inside; 2 (2026-12):
OME-Zarr bioformats2raw.layout (images 0/ and 1/, per-frame arrays in timing/). Both are read."""
Status = Literal["running", "complete", "aborted", "interrupted", "recovered"]


class _Open(BaseModel):
    """A model that keeps what it does not know (for forward compatibility)."""

    model_config = ConfigDict(extra="allow")


class VideoAttrs(_Open):
    fps: float = Field(gt=0)


class ImagingAttrs(_Open):
    frame_rate_hz: float = Field(gt=0)


class RecordingAttrs(_Open):
    video: VideoAttrs
    imaging: ImagingAttrs | None = None


class ProtocolAttrs(_Open):
    """The parts of the stored protocol model (``protocol``) that readers use; the rest is
    kept as it was written. The exact protocol is :meth:`SessionFolder.protocol`."""

    description: str | None = None
    recording: RecordingAttrs


class SessionAttrs(_Open):
    """The root attributes of ``session.zarr``."""

    format: Literal["fear-rig-session"]
    format_version: int
    software_version: str | None = None
    status: Status
    started_utc: str | None = None
    ended_utc: str | None = None
    pid: StrictInt | None = None  # a bool is not a process id
    host: str | None = None
    simulated: bool | None = None
    mode: str | None = None
    animal: str | None = None
    experimenter: list[str] | str | None = None  # a str in sessions before subject metadata
    institution: str | None = None
    lab: str | None = None
    notes: str | None = None
    subject: dict[str, Any] | None = None  # rig.files.subject.Subject, dumped as JSON
    subject_file: str | None = None
    devices: dict[str, dict[str, Any]] | None = None  # per rig-file section: driver, description
    ome: dict[str, Any] | None = None  # {"version": "0.5", "bioformats2raw.layout": 3} (v2)
    protocol_name: str | None = None
    protocol: ProtocolAttrs
    protocol_text: str
    protocol_sha256: str | None = None
    protocol_file: str | None = None
    seed: int | None = None
    rig_name: str | None = None
    rig_file: str | None = None
    rig_text: str | None = None
    speed: Literal["fast"] | float | None = None
    sample_rate_hz: float = Field(gt=0)
    timeline: Timeline
    safety: dict[str, Any] = Field(default_factory=dict)
    freezing_params: dict[str, Any] = Field(default_factory=dict)
    frames_expected: dict[str, int] = Field(default_factory=dict)
    end_reason: str | None = None
    streams: dict[str, dict[str, Any]] | None = None
    imaging_source: dict[str, Any] | None = None
    recovery: dict[str, Any] | None = None  # what rig recover rebuilt or skipped

    @property
    def experimenters(self) -> list[str]:
        """Who ran the session (an older session's one string becomes one name)."""
        if isinstance(self.experimenter, str):
            return [self.experimenter] if self.experimenter.strip() else []
        return list(self.experimenter or [])

    def pixel_size_um(self, stream: str) -> float | None:
        """The size of one pixel of ``stream`` (``video`` or ``imaging``) in micrometres, as
        the rig file gave it (``camera.mm_per_px``, ``imaging.um_per_px``); None when it did
        not (or the session predates ``devices``)."""
        devices = self.devices or {}
        if stream == "imaging":
            um = (devices.get("imaging") or {}).get("um_per_px")
            return float(um) if um else None
        mm = (devices.get("camera") or {}).get("mm_per_px")
        return float(mm) * 1000.0 if mm else None

    @property
    def video_fps(self) -> float:
        """The behaviour video's nominal frame rate (protocol ``recording.video.fps``)."""
        return self.protocol.recording.video.fps

    @property
    def imaging_rate_hz(self) -> float | None:
        """The two-photon frame rate the protocol asked for (None without imaging)."""
        imaging = self.protocol.recording.imaging
        return imaging.frame_rate_hz if imaging is not None else None
