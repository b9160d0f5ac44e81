"""One session folder: its layout, and every read and write of it outside the frame writer.

A session folder (design section 6, ``docs/format.md``) holds ``session.zarr`` and the
``journal/`` the run writes (:mod:`rig.data.journal`). Every path of the folder and every key
of ``session.zarr`` is defined in this module and nowhere else; readers (``rig info``,
``score``, ``export``, ``attach``, ``recover``, the GUI) go through :class:`SessionFolder`:

- ``SessionFolder.open(path)``: an existing session (an :class:`InputError`, exit 2, when the
  path is not one or its root attributes are malformed); ``SessionFolder.create(...)``: a new one;
- root attributes through one typed model (:class:`~rig.data.attrs.SessionAttrs`);
- the effective status (``running`` turns ``interrupted`` when its writer is gone);
- events, recorded edges, frame streams, scores and (simulated sessions) truth.

Folding the journal into ``session.zarr`` is :mod:`rig.data.finalize`; writing frames during
a run is :class:`rig.data.store.StreamWriter`, into arrays made by :func:`create_frame_array`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import zarr
from pydantic import BaseModel, ValidationError
from zarr.codecs import BloscCodec, Crc32cCodec

from rig import __version__
from rig.data.atomic import atomic_path, write_bytes_atomic, write_json_atomic
from rig.data.attrs import FORMAT, FORMAT_VERSION, SessionAttrs
from rig.data.integrity import (
    DamagedFrames,
    Depth,
    FrameDamage,
    FrameLayout,
    LayoutError,
    check_frames,
)
from rig.data.journal import Journal
from rig.data.writer_lock import LOCK_FILE, WriterLock, process_alive, writer_alive
from rig.files.inputfile import (
    InputError,
    Problem,
    error_line,
    problems_from_validation,
    read_bounded,
)
from rig.ports import Edges
from rig.program.schedule import IMAGING, STREAM_EDGE_LINE, VIDEO, expected_frames

FRAME_BLOCK_BYTES = 16 * 2**20  # frames per block read from the store (zarr needs ~3x this)

if TYPE_CHECKING:
    from rig.files.protocol import Protocol
    from rig.program.schedule import OutputSchedule

ModelT = TypeVar("ModelT", bound=BaseModel)

# ------------------------------------------------------------------------------ the layout
ZARR_STORE = "session.zarr"
JOURNAL = "journal"
METADATA = "zarr.json"  # a Zarr v3 node's metadata document (group or array)
ROOT_METADATA = METADATA  # the root group's; its "attributes" are SessionAttrs
# Frame streams (format_version 2): OME-Zarr's bioformats2raw.layout, so napari, ome-zarr-py
# and yaozarrs open session.zarr at its root. Each stream is an image group named by its series
# number holding only its frames; its per-frame arrays live in timing/STREAM. (format_version 1:
# the image group was named by the stream and held the per-frame arrays; still read.)
STREAM_IMAGE = {VIDEO: "0", IMAGING: "1"}
TIMING = "timing"
OME_GROUP, OME_XML = "OME", "METADATA.ome.xml"  # the series list and the OME-XML companion
FRAMES, DEVICE_INDEX, TIMESTAMPS = "0", "device_index", "timestamps_s"
OME, SYNC = "ome", "sync"  # stream group attributes
EDGES, EDGE_SAMPLES, EDGE_RISING, SAMPLE_RATE = "edges", "samples", "rising", "sample_rate_hz"
EVENTS = "events"  # group; its attribute of the same name holds the events
SCORES = "scores"
MOTION_INDEX, STEP_INDEX, SCORE_TIMES, FREEZING, WHEEL_SPEED = (
    "motion_index",
    "step_index",
    "times_s",
    "freezing",
    "wheel_speed_cm_s",
)
MOTION_PARAMS, FREEZING_RECORD = "motion_params", "freezing"  # scores attributes
# The scoring history (2026-12): every scoring and every motion index computed is kept, by name
MOTION_SETS, SCORINGS, CURRENT = "motion", "scorings", "current"  # scores/motion/NAME, ...
LEGACY_SCORING = "original"  # a session scored before the history: its scores/ arrays
_SCORE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# hand scorings (the GUI's Review tab): beside the automatic ones, never among them
HAND_SCORES, HAND_SCORINGS = "hand_scores", "scorings"  # group; its attribute: name -> record
TRUTH = "truth"
TRUE_FREEZING, TRUE_FREEZING_TIMES = "freezing", "behaviour_frame_times_s"

MAX_ATTRS_BYTES = 64_000_000  # zarr.json: protocol, rig and a timeline of up to MAX_TRIALS
CHUNK_SECONDS = 0.5  # a shard of frames, in seconds of stream: the most frames a crash can lose
UTC_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str, fallback: str = "x") -> str:
    """A file-name-safe version of user text: no separators, no dot-dot, bounded length."""
    cleaned = _SAFE_NAME.sub("-", text).strip(".-")[:64]
    return cleaned or fallback


def utc_now() -> str:
    """Now, as the session's UTC stamps are written (``started_utc``, ``scored_utc``...)."""
    return datetime.now(timezone.utc).strftime(UTC_FORMAT)


def parse_utc(text: str) -> datetime:
    """A UTC stamp written by :func:`utc_now`, as an aware datetime."""
    return datetime.strptime(text, UTC_FORMAT).replace(tzinfo=timezone.utc)


# ------------------------------------------------------------------ the layout of frames
def frame_compressors(dtype: np.dtype) -> tuple[BloscCodec, Crc32cCodec]:
    """The codecs after ``bytes`` on every frame (inner chunk): blosc, then a crc32c of the
    compressed bytes, so any Zarr reader refuses a damaged frame instead of returning altered
    pixels (sessions written before it have no inner crc32c and read as before)."""
    # Bit-shuffle for 8-bit video too: camera noise lives in the low bits, so the high bit
    # planes compress (1.5x on noisy 8-bit frames, where byte shuffle of 1-byte items is a no-op).
    blosc = BloscCodec(
        cname="lz4", clevel=5, shuffle="bitshuffle", typesize=np.dtype(dtype).itemsize
    )
    return blosc, Crc32cCodec()


def frames_per_shard(rate_hz: float) -> int:
    """Frames in one shard: about :data:`CHUNK_SECONDS` of the stream, 1 to 64."""
    return max(1, min(64, round(rate_hz * CHUNK_SECONDS)))


def ome_attrs(name: str, rate_hz: float, um_per_px: float | None = None) -> dict[str, Any]:
    """OME-NGFF 0.5 multiscales metadata for a (t, y, x) frame stream: seconds on t, and
    micrometres on y and x when the pixel size is known (else pixels, without a unit)."""
    space: dict[str, Any] = {"type": "space"}
    if um_per_px is not None:
        space["unit"] = "micrometer"
    size = float(um_per_px) if um_per_px is not None else 1.0
    return {
        OME: {
            "version": "0.5",
            "multiscales": [
                {
                    "name": name,
                    "axes": [
                        {"name": "t", "type": "time", "unit": "second"},
                        {"name": "y", **space},
                        {"name": "x", **space},
                    ],
                    "datasets": [
                        {
                            "path": FRAMES,
                            "coordinateTransformations": [
                                {"type": "scale", "scale": [1.0 / rate_hz, size, size]}
                            ],
                        }
                    ],
                }
            ],
        }
    }


ROOT_OME = {"version": "0.5", "bioformats2raw.layout": 3}  # the root's "ome" attribute


def create_stream(
    root: zarr.Group,
    name: str,
    n_frames: int,
    height: int,
    width: int,
    dtype: Any,
    rate_hz: float,
    um_per_px: float | None = None,
) -> zarr.Array:
    """A new frame stream's image group in ``root`` (``session.zarr``) and its frames array
    (:func:`create_frame_array`); the OME series list names it at once, so a session that
    stops now still opens in napari."""
    image = root.create_group(STREAM_IMAGE[name], attributes=ome_attrs(name, rate_hz, um_per_px))
    frames = create_frame_array(image, n_frames, height, width, dtype, rate_hz)
    write_ome_index(root)
    return frames


def write_ome_index(root: zarr.Group) -> None:
    """The bioformats2raw.layout companions of the image groups present: ``OME/zarr.json``
    (``series``: the image paths) and ``OME/METADATA.ome.xml`` (one ``Image`` per series,
    named by its stream, ``ID="Image:PATH"`` as napari-ome-zarr looks them up), rewritten
    atomically whenever a stream is added or changes length."""
    images = [
        (name, key)
        for name, key in STREAM_IMAGE.items()
        if key in root and FRAMES in root[key]  # type: ignore[operator]
    ]
    folder = Path(str(root.store_path.store.root)) / root.path / OME_GROUP
    folder.mkdir(exist_ok=True)
    series = {"version": "0.5", "series": [key for _, key in images]}
    group = {"zarr_format": 3, "node_type": "group", "attributes": {OME: series}}
    write_json_atomic(folder / METADATA, group)
    xml = _ome_xml([(name, key, root[key]) for name, key in images])  # type: ignore[misc]
    write_bytes_atomic(folder / OME_XML, xml)


def _ome_xml(images: list[tuple[str, str, zarr.Group]]) -> bytes:
    """OME-XML (2016-06 schema) describing each image: size, pixel type, pixel size, rate."""
    from xml.etree import ElementTree as ET

    ns = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
    ome = ET.Element("OME", {"xmlns": ns, "Creator": f"fear-rig {__version__}"})
    for n, (name, key, group) in enumerate(images):
        frames = group[FRAMES]
        dataset = group.attrs[OME]["multiscales"][0]  # type: ignore[index]
        scale = dataset["datasets"][0]["coordinateTransformations"][0]["scale"]
        t, height, width = frames.shape  # type: ignore[misc]
        image = ET.SubElement(ome, "Image", {"ID": f"Image:{key}", "Name": name})
        pixels = {
            "ID": f"Pixels:{n}",
            "DimensionOrder": "XYZCT",
            "Type": str(frames.dtype),  # type: ignore[union-attr]
            "SizeX": str(width),
            "SizeY": str(height),
            "SizeZ": "1",
            "SizeC": "1",
            "SizeT": str(t),
            "TimeIncrement": repr(float(scale[0])),
            "TimeIncrementUnit": "s",
        }
        if dataset["axes"][1].get("unit") == "micrometer":
            pixels.update(
                PhysicalSizeX=repr(float(scale[2])),
                PhysicalSizeXUnit="\N{MICRO SIGN}m",
                PhysicalSizeY=repr(float(scale[1])),
                PhysicalSizeYUnit="\N{MICRO SIGN}m",
            )
        element = ET.SubElement(image, "Pixels", pixels)
        ET.SubElement(element, "Channel", {"ID": f"Channel:{n}:0", "SamplesPerPixel": "1"})
        ET.SubElement(element, "MetadataOnly")
    return ET.tostring(ome, encoding="utf-8", xml_declaration=True)


def create_frame_array(
    image: zarr.Group, n_frames: int, height: int, width: int, dtype: Any, rate_hz: float
) -> zarr.Array:
    """The frames array of a (t, y, x) frame stream: one chunk per frame, one shard per
    :func:`frames_per_shard` frames, blosc-lz4 and crc32c (:func:`frame_compressors`). Every
    frame stream of a session uses it."""
    shard_t = frames_per_shard(rate_hz)
    return image.create_array(
        FRAMES,
        shape=(n_frames, height, width),
        chunks=(1, height, width),
        shards=(shard_t, height, width),
        dtype=dtype,
        compressors=frame_compressors(np.dtype(dtype)),
        fill_value=0,
        dimension_names=("t", "y", "x"),
        # an all-black frame is stored like any other: a frame absent on disk is damage
        config={"write_empty_chunks": True},
    )


def array_folder(array: zarr.Array) -> Path:
    """The folder of an array in a local (directory) store."""
    return Path(str(array.store_path.store.root)) / array.path


def array_metadata(array: zarr.Array) -> dict[str, Any]:
    """The array's ``zarr.json`` document (Zarr v3), as on disk."""
    return json.loads((array_folder(array) / METADATA).read_text(encoding="utf-8"))


def trim_frames(frames: zarr.Array, n_frames: int) -> None:
    """Cut (or grow) a frame array to ``n_frames`` frames: its metadata only.

    The new length goes into the array's ``zarr.json`` (the ``shape`` of the Zarr v3 spec,
    rewritten atomically like the root attributes). No shard file is removed: past the end
    of a run's frames there are none (the writer writes only the shards it filled), and a
    file that is there anyway holds frames that no command may delete (``rig verify`` and
    ``rig recover`` account for what is on disk). zarr-python's public ``Array.resize`` would
    visit every shard key of the old length (1.3 s for a 2-hour protocol at 100 fps aborted
    at the start). ``frames`` keeps its old shape: open the array again to read it.
    """
    meta = array_metadata(frames)
    meta["shape"][0] = n_frames
    write_json_atomic(array_folder(frames) / METADATA, meta)


# ------------------------------------------------------------------------- what is stored
@dataclass(frozen=True)
class FrameStream:
    """One stored frame stream (``video``: image ``0/``, ``imaging``: image ``1/``): an
    OME-NGFF image of (t, y, x), and the group of its per-frame arrays (``timing/STREAM``;
    the image group itself in format_version 1)."""

    name: str
    group: zarr.Group
    timing: zarr.Group | None = None

    @property
    def frames(self) -> zarr.Array:
        return self.group[FRAMES]  # type: ignore[return-value]

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def rate_hz(self) -> float:
        """The nominal frame rate, from the OME-NGFF time scale of the image."""
        dataset = self.group.attrs[OME]["multiscales"][0]["datasets"][0]  # type: ignore[index]
        return 1.0 / float(dataset["coordinateTransformations"][0]["scale"][0])

    def timestamps_s(self) -> np.ndarray | None:
        """Each frame's time on the session clock (None until the journal is folded in)."""
        return self._array(TIMESTAMPS)

    def device_index(self) -> np.ndarray | None:
        """Each frame's number on its device (None until the journal is folded in)."""
        return self._array(DEVICE_INDEX)

    @property
    def sync(self) -> dict[str, Any] | None:
        """The sync report of a recorded stream (None for an attached one)."""
        value = self.group.attrs.get(SYNC)
        return dict(value) if isinstance(value, dict) else None

    @property
    def um_per_px(self) -> float | None:
        """The pixel size in micrometres (the OME scale), None when the rig did not say."""
        dataset = self.group.attrs[OME]["multiscales"][0]  # type: ignore[index]
        if dataset["axes"][1].get("unit") != "micrometer":
            return None
        return float(dataset["datasets"][0]["coordinateTransformations"][0]["scale"][1])

    def _array(self, key: str) -> np.ndarray | None:
        group = self.timing
        return group[key][:] if group is not None and key in group else None  # type: ignore[index]

    # ------------------------------------------------------------- damage
    @property
    def frames_path(self) -> Path:
        """The folder of the frames array (``STREAM/0``)."""
        return array_folder(self.frames)

    def layout(self) -> FrameLayout:
        """The frames array's layout, read from its ``zarr.json`` (:class:`LayoutError`)."""
        return FrameLayout.read(self.frames_path)

    def check(self, depth: Depth = "index", n_frames: int | None = None) -> list[FrameDamage]:
        """The damaged frame ranges among the first ``n_frames`` (default: all): missing,
        empty or corrupt (:mod:`rig.data.integrity`). ``depth``: each shard's file and index
        (``rig info``), also each frame's header (the exports), or every byte (``rig
        verify``)."""
        try:
            layout = self.layout()
        except LayoutError as exc:
            n = self.n_frames if n_frames is None else n_frames
            return [FrameDamage(self.name, "corrupt", 0, n, f"frames metadata: {exc}", -1, -1)]
        return check_frames(self.name, layout, n_frames, depth)

    @staticmethod
    def _read_block(frames: zarr.Array, start: int, stop: int) -> np.ndarray | None:
        """Frames ``[start, stop)`` at once; None when one of them does not decode (the caller
        then reads them one by one to find which)."""
        try:
            return frames[start:stop]
        except Exception:
            return None

    def blocks(
        self,
        block_bytes: int,
        damage: list[FrameDamage],
        allow_damaged: bool = False,
    ) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, frames)`` in blocks of at most ``block_bytes`` (whole shards), for an export.

        ``damage`` holds the damaged ranges already known (:meth:`check`); a frame that cannot
        be decoded while reading is added to it. Damaged frames are never read through zarr
        (which would return zeros for a missing shard, or read a whole bogus file): without
        ``allow_damaged`` :class:`DamagedFrames` is raised, with it they are zeros."""
        if damage and not allow_damaged:
            raise DamagedFrames(damage)
        frames = self.frames
        n, shape = frames.shape[0], frames.shape[1:]
        frame_bytes = int(np.prod(shape)) * frames.dtype.itemsize
        per = frames.shards[0] if frames.shards else frames.chunks[0]
        step = max(per, max(1, block_bytes // max(frame_bytes, 1)) // per * per)
        for start in range(0, n, step):
            stop = min(n, start + step)
            bad = {i for d in damage for i in range(max(d.start, start), min(d.stop, stop))}
            if not bad:
                whole = self._read_block(frames, start, stop)
                if whole is not None:
                    yield start, whole
                    continue
            block = np.zeros((stop - start, *shape), frames.dtype)
            for i in range(start, stop):
                if i in bad:
                    continue
                try:
                    block[i - start] = frames[i]
                except Exception as exc:
                    cause, k = f"cannot be decoded: {error_line(exc)}", i // per
                    damage.append(FrameDamage(self.name, "corrupt", i, i + 1, cause, k, k))
                    if not allow_damaged:
                        raise DamagedFrames(damage) from None
            yield start, block


@dataclass(frozen=True)
class Scores:
    """What is stored under ``scores/``: the motion and step indices (per video frame, from
    the run or ``rig score``), the last scoring's series on ``times_s``, and its record."""

    device_index: np.ndarray | None  # video frame number of each motion_index value
    motion_index: np.ndarray | None
    step_index: np.ndarray | None  # None in sessions scored before it existed
    motion_params: dict[str, Any] | None  # the freezing parameters the index was computed with
    times_s: np.ndarray | None
    freezing: np.ndarray | None
    wheel_speed_cm_s: np.ndarray | None
    record: dict[str, Any] | None  # the current scoring's record
    name: str | None = None  # the current scoring (None: not scored yet)
    motion_name: str | None = None  # the motion index set the fields above come from

    def timed(self, values: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
        """``(times_s, values)`` when ``values`` is a series on ``times_s``, else None."""
        if values is None or self.times_s is None or len(values) != len(self.times_s):
            return None
        return self.times_s, values


def _read(group: zarr.Group, key: str) -> np.ndarray | None:
    return group[key][:] if key in group else None  # type: ignore[index]


def _names(group: zarr.Group) -> list[str]:
    return sorted(name for name, _ in group.groups())


def _member(scores: zarr.Group, kind: str, name: str) -> zarr.Group | None:
    if kind in scores and name in scores[kind]:  # type: ignore[operator]
        return scores[kind][name]  # type: ignore[return-value,index]
    return None


def _latest(scores: zarr.Group, kind: str) -> str | None:
    """The last member of ``scores/KIND`` made: the highest ``N`` of the ``KIND-N`` names
    (motion sets are always named so)."""
    if kind not in scores:
        return None
    names = _names(scores[kind])  # type: ignore[arg-type]
    return max(names, key=_number, default=None)


def _number(name: str) -> int:
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


# ------------------------------------------------------------------------- the folder
class SessionFolder:
    """A session folder. Get one with :meth:`open` (existing) or :meth:`create` (new)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._attrs: SessionAttrs | None = None
        self._writer: WriterLock | None = None  # this process writes the session

    def release_writer(self) -> None:
        """This process stops writing the session (its status is final, or it is left for
        ``rig recover``): other processes may now recover it."""
        if self._writer is not None:
            self._writer.release()

    @classmethod
    def open(cls, path: str | Path) -> SessionFolder:
        """The session at ``path`` (its folder or its ``session.zarr``), attributes checked.

        :class:`InputError` when it is not a session or its root attributes are malformed."""
        p = Path(path)
        if p.name == ZARR_STORE:
            p = p.parent
        folder = cls(p)
        if not os.path.lexists(folder.attrs_path):
            raise InputError(
                str(path), [Problem("", "not a fear-rig session (no session.zarr here)")]
            )
        folder.attrs  # noqa: B018 - read and check them now, not halfway through a command
        folder._check_files()
        return folder

    def _check_files(self) -> None:
        """Every file zarr or the journal reader would read whole is a regular file: a FIFO,
        a device or a link to ``/dev/zero`` in a session folder is bad input, not a hang or
        a full memory. (Frame shards are read by :mod:`rig.data.integrity`, which checks them
        itself, so their folders are not walked here.)"""
        for root, dirs, files in os.walk(self.path):
            here = Path(root)
            if here.name == FRAMES and here.parent.parent == self.zarr_path:
                dirs[:] = [d for d in dirs if d != "c"]
            for name in files + [d for d in dirs if (here / d).is_symlink()]:
                path = here / name
                try:
                    mode = os.stat(path).st_mode
                except OSError as exc:
                    if path.is_symlink():
                        continue  # a dangling link names nothing that could be read
                    raise InputError(str(path), [Problem("", f"cannot read: {exc}")]) from None
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise InputError(str(path), [Problem("", "is not a regular file")])

    @classmethod
    def create(
        cls, out_dir: str | Path, animal: str, protocol_name: str, attrs: dict[str, Any]
    ) -> SessionFolder:
        """A new session folder ``OUT/YYYYmmdd-HHMMSS_ANIMAL_PROTOCOL`` with its journal folder
        and ``session.zarr``, whose root attributes are ``attrs`` plus the format, version,
        status ``running``, start time and the writing process."""
        folder = cls(_new_folder(Path(out_dir), animal, protocol_name))
        folder.journal_path.mkdir()
        # held until the status is final: readers tell a live writer from a dead one by it
        folder._writer = WriterLock.acquire(folder.journal_path / LOCK_FILE)
        zarr.open_group(str(folder.zarr_path), mode="w-", zarr_format=3)
        folder.update_attrs(
            ome=ROOT_OME,
            format=FORMAT,
            format_version=FORMAT_VERSION,
            software_version=__version__,
            status="running",
            started_utc=utc_now(),
            ended_utc=None,
            pid=os.getpid(),
            host=socket.gethostname(),
            **attrs,
        )
        return folder

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"SessionFolder({str(self.path)!r})"

    # -------------------------------------------------------------------- paths
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def zarr_path(self) -> Path:
        return self.path / ZARR_STORE

    @property
    def attrs_path(self) -> Path:
        return self.zarr_path / ROOT_METADATA

    @property
    def journal_path(self) -> Path:
        return self.path / JOURNAL

    @property
    def journal(self) -> Journal:
        return Journal(self.journal_path)

    # --------------------------------------------------------------- attributes
    @property
    def attrs(self) -> SessionAttrs:
        """The root attributes (read once; :meth:`update_attrs` keeps them current)."""
        if self._attrs is None:
            self._attrs = self._validate(self._read_metadata().get("attributes", {}))
        return self._attrs

    def update_attrs(self, **changes: Any) -> SessionAttrs:
        """Change root attributes: checked against the model, then ``zarr.json`` is replaced
        atomically (and durably: the status is what ``rig recover`` goes by)."""
        meta = self._read_metadata()
        merged = {**meta.get("attributes", {}), **changes}
        attrs = self._validate(merged)
        meta["attributes"] = merged
        write_json_atomic(self.attrs_path, meta)
        self._attrs = attrs
        return attrs

    def attr_as(self, name: str, model: type[ModelT]) -> ModelT:
        """Root attribute ``name`` validated by ``model``: for attributes whose model lives in
        a package above this one (the freezing parameters). :class:`InputError` naming the
        field when it does not validate."""
        try:
            return model.model_validate(getattr(self.attrs, name), strict=False)
        except ValidationError as exc:
            problems = problems_from_validation(exc, prefix=(name,))
            raise InputError(str(self.attrs_path), problems) from None

    @property
    def status(self) -> str:
        """The effective status: ``running`` only while the process that writes it lives
        (:mod:`rig.data.writer_lock`: the lock it holds, else its pid and start time on this
        host); a session whose writer is gone is ``interrupted``."""
        if self.attrs.status != "running":
            return self.attrs.status
        return "interrupted" if self.writer() == "gone" else "running"

    def writer(self) -> str:
        """Whether the process that writes a ``running`` session is ``alive``, ``gone`` or
        ``unknown`` (it ran on another host and left no lock this host can test)."""
        attrs = self.attrs
        held = writer_alive(self.journal_path / LOCK_FILE)
        if held is not None:
            return "alive" if held else "gone"
        if attrs.pid is None:
            return "gone"
        if attrs.host != socket.gethostname():
            return "unknown"
        started = _parse_utc_or_none(attrs.started_utc)
        return "alive" if process_alive(attrs.pid, started) else "gone"

    def require_finalized(self) -> SessionAttrs:
        """The attributes of a session whose journal is folded in; :class:`InputError` for a
        running or interrupted one."""
        status = self.status
        if status == "running":
            raise InputError(str(self), [Problem("status", "the session is still being written")])
        if status == "interrupted":
            raise InputError(
                str(self),
                [Problem("status", f"the session was interrupted: run `rig recover {self}` first")],
            )
        return self.attrs

    def protocol(self) -> Protocol:
        """The session's protocol, validated again from the exact text it ran."""
        from rig.files.protocol import protocol_from_text

        attrs = self.attrs
        return protocol_from_text(attrs.protocol_text, attrs.protocol_file or "<protocol>").protocol

    def schedule(self) -> OutputSchedule:
        """The output schedule the session ran, compiled again from its protocol text and
        timeline (the stored protocol model does not validate again: an ITI dumps as
        ``{"fixed": ..., "uniform": ...}``, which the file format rejects)."""
        from rig.program.schedule import compile_schedule

        attrs = self.attrs
        return compile_schedule(self.protocol(), attrs.timeline, attrs.sample_rate_hz)

    def frames_expected(self, stream: str) -> int:
        """Frames ``stream`` should have delivered: stored at stream setup, or (sessions that
        did not set the stream up) from the compiled schedule."""
        stored = self.attrs.frames_expected.get(stream)
        return stored if stored is not None else expected_frames(self.schedule(), stream)

    # ----------------------------------------------------------- events and edges
    def events(self) -> list[dict[str, Any]]:
        """Every event, in order: folded into ``events/`` at the end, else from the journal."""
        root = self._root()
        if EVENTS in root:
            return list(root[EVENTS].attrs[EVENTS])  # type: ignore[arg-type]
        return self.journal.events()

    def events_stored(self) -> list[dict[str, Any]] | None:
        """The events folded into ``events/`` (None before the journal is folded in)."""
        root = self._root()
        if EVENTS not in root:
            return None
        return list(root[EVENTS].attrs.get(EVENTS, []))  # type: ignore[arg-type]

    def stored_edges(self) -> dict[str, Edges]:
        """Every line's edges folded into ``edges/`` (none before the journal is folded in)."""
        root = self._root()
        if EDGES not in root:
            return {}
        lines = [name for name, _ in root[EDGES].groups()]  # type: ignore[union-attr]
        return {line: e for line in lines if (e := self.edges(line)) is not None}

    def edges(self, line: str) -> Edges | None:
        """The edges recorded on ``line`` (folded in at the end); None if it has none."""
        root = self._root()
        if EDGES not in root or line not in root[EDGES]:  # type: ignore[operator]
            return None
        group = root[EDGES][line]  # type: ignore[index]
        return Edges(group[EDGE_SAMPLES][:], group[EDGE_RISING][:])  # type: ignore[index]

    def rising_edges(self, line: str) -> np.ndarray | None:
        """Samples of the rising edges recorded on ``line``; None if it has none stored."""
        edges = self.edges(line)
        return None if edges is None else edges.samples[edges.rising]

    # ------------------------------------------------------------------ streams
    def stream(self, name: str) -> FrameStream | None:
        """The stored frame stream ``name`` (``video``, ``imaging``); None if it has no frames
        array (not recorded, or the process was killed while setting it up)."""
        root = self._root()
        key = _image_key(root, name)
        if key is None or FRAMES not in root[key]:  # type: ignore[operator]
            return None
        image: zarr.Group = root[key]  # type: ignore[assignment]
        timing = _timing_group(root, name)
        return FrameStream(name, image, timing if timing is not None else image)

    def stream_groups(self) -> list[str]:
        """The frame streams that have a group in ``session.zarr`` (complete or not)."""
        root = self._root()
        return [name for name in STREAM_EDGE_LINE if _image_key(root, name) is not None]

    # ------------------------------------------------------------------- scores
    # Every scoring (`rig score`, the run's own) is kept under scores/scorings/NAME with its
    # record, and every motion index under scores/motion/NAME with its parameters; the
    # attribute scores.current names the scoring readers use. Nothing is overwritten.
    # Sessions scored before the history have one scoring in scores/ itself ("original").
    def scores(self) -> Scores | None:
        """The current scoring and the motion index it used (before any scoring: the latest
        motion index); None when nothing is stored."""
        root = self._root()
        if SCORES not in root:
            return None
        group: zarr.Group = root[SCORES]  # type: ignore[assignment]
        current = group.attrs.get(CURRENT)
        if current is None and MOTION_SETS not in group:  # scored before the history
            return self._legacy_scores(group)
        scoring = _member(group, SCORINGS, current) if current else None
        if scoring is None and current == LEGACY_SCORING:
            return self._legacy_scores(group)
        record = dict(scoring.attrs.get(FREEZING_RECORD, {})) if scoring is not None else None
        motion_name = (record or {}).get("motion") or _latest(group, MOTION_SETS)
        if motion_name == LEGACY_SCORING:  # a new scoring of the indices stored before
            motion: zarr.Group | None = group
        else:
            motion = _member(group, MOTION_SETS, motion_name) if motion_name else None
        return Scores(
            device_index=_read(motion, DEVICE_INDEX) if motion is not None else None,
            motion_index=_read(motion, MOTION_INDEX) if motion is not None else None,
            step_index=_read(motion, STEP_INDEX) if motion is not None else None,
            motion_params=(
                dict(motion.attrs.get(MOTION_PARAMS, {})) if motion is not None else None
            ),
            times_s=_read(scoring, SCORE_TIMES) if scoring is not None else None,
            freezing=_read(scoring, FREEZING) if scoring is not None else None,
            wheel_speed_cm_s=_read(scoring, WHEEL_SPEED) if scoring is not None else None,
            record=record,
            name=current if scoring is not None else None,
            motion_name=motion_name,
        )

    def _legacy_scores(self, group: zarr.Group) -> Scores:
        attrs = dict(group.attrs)
        record = attrs.get(FREEZING_RECORD)
        return Scores(
            device_index=_read(group, DEVICE_INDEX),
            motion_index=_read(group, MOTION_INDEX),
            step_index=_read(group, STEP_INDEX),
            motion_params=attrs.get(MOTION_PARAMS),
            times_s=_read(group, SCORE_TIMES),
            freezing=_read(group, FREEZING),
            wheel_speed_cm_s=_read(group, WHEEL_SPEED),
            record=record,
            name=LEGACY_SCORING if record is not None else None,
            motion_name=LEGACY_SCORING if MOTION_INDEX in group else None,
        )

    def freezing_record(self) -> dict[str, Any] | None:
        """The current scoring's record, or None when the session was never scored."""
        scores = self.scores()
        return scores.record if scores is not None else None

    def scorings(self) -> list[dict[str, Any]]:
        """Every scoring stored, oldest first: its record (``name``, ``scored_utc``, the
        parameters, ``motion``) and ``current`` (true for the one readers use)."""
        root = self._root()
        if SCORES not in root:
            return []
        group: zarr.Group = root[SCORES]  # type: ignore[assignment]
        current = group.attrs.get(CURRENT)
        out = []
        legacy = group.attrs.get(FREEZING_RECORD)
        if isinstance(legacy, dict):
            out.append({**legacy, "name": LEGACY_SCORING, "motion": LEGACY_SCORING})
        if SCORINGS in group:
            for name in _names(group[SCORINGS]):  # type: ignore[arg-type]
                record = group[SCORINGS][name].attrs.get(FREEZING_RECORD)  # type: ignore[index]
                if isinstance(record, dict):  # a scoring killed before its record: not one
                    out.append({**record, "name": name})
        out.sort(key=lambda r: str(r.get("scored_utc") or ""))
        effective = current or (LEGACY_SCORING if legacy is not None else None)
        return [{**r, "current": r["name"] == effective} for r in out]

    def new_scoring_name(self, kind: str = "score") -> str:
        """The next free default name, ``score-1``, ``score-2``... (``motion-N`` for motion
        index sets)."""
        root = self._root()
        where = SCORINGS if kind == "score" else MOTION_SETS
        taken: set[str] = set()
        if SCORES in root and where in root[SCORES]:  # type: ignore[operator]
            taken = set(_names(root[SCORES][where]))  # type: ignore[index,arg-type]
        n = len(taken) + 1
        while f"{kind}-{n}" in taken:
            n += 1
        return f"{kind}-{n}"

    def write_motion(
        self,
        device_index: np.ndarray,
        motion: np.ndarray,
        step: np.ndarray,
        params: dict[str, Any],
        name: str | None = None,
    ) -> str:
        """Store a new motion and step index set (per video frame) with the parameters it was
        computed with, as ``scores/motion/NAME``; returns its name. Earlier sets are kept."""
        name = name or self.new_scoring_name("motion")
        group = self._new_member(MOTION_SETS, name)
        group.create_array(DEVICE_INDEX, data=np.asarray(device_index, np.int64))
        group.create_array(MOTION_INDEX, data=np.asarray(motion, np.float32))
        group.create_array(STEP_INDEX, data=np.asarray(step, np.float32))
        self._set_group_attrs(f"{SCORES}/{MOTION_SETS}/{name}", {MOTION_PARAMS: params})
        return name

    def write_freezing(
        self,
        times_s: np.ndarray,
        freezing: np.ndarray,
        record: dict[str, Any],
        wheel_speed_cm_s: np.ndarray | None = None,
        make_current: bool = True,
    ) -> str:
        """Store a scoring as ``scores/scorings/NAME`` (``record["name"]``, else the next
        ``score-N``): its times, freezing (and wheel speed), then its record; then, unless
        ``make_current`` is false, mark it current. Returns its name. Earlier scorings are
        kept; :class:`InputError` for a name already used or not a plain name."""
        name = record.get("name") or self.new_scoring_name()
        group = self._new_member(SCORINGS, name)
        group.create_array(SCORE_TIMES, data=np.asarray(times_s, float))
        if wheel_speed_cm_s is not None:
            group.create_array(WHEEL_SPEED, data=np.asarray(wheel_speed_cm_s, np.float32))
        group.create_array(FREEZING, data=np.asarray(freezing, bool))
        self._set_group_attrs(
            f"{SCORES}/{SCORINGS}/{name}", {FREEZING_RECORD: {**record, "name": name}}
        )
        if make_current:
            self.set_current_scoring(name)
        return name

    def set_current_scoring(self, name: str) -> None:
        """Mark the stored scoring ``name`` current (what ``rig info``, the exports and the
        report use). :class:`InputError` when there is none of that name."""
        if name not in {r["name"] for r in self.scorings()}:
            known = ", ".join(r["name"] for r in self.scorings()) or "none"
            problem = Problem("scores", f"no scoring named {name!r} (stored: {known})")
            raise InputError(str(self), [problem])
        self._set_group_attrs(SCORES, {CURRENT: name})

    def _new_member(self, kind: str, name: str) -> zarr.Group:
        if not _SCORE_NAME.match(name) or name == LEGACY_SCORING:
            problem = Problem(
                "name", f"{name!r}: letters, digits, '_', '.', '-' (not {LEGACY_SCORING!r})"
            )
            raise InputError(str(self), [problem])
        parent = self._group(SCORES).require_group(kind)
        if name in parent:
            problem = Problem(
                "name",
                f"a {kind[:-1] if kind.endswith('s') else kind} named {name!r} is stored already",
            )
            raise InputError(str(self), [problem])
        return parent.create_group(name)

    # ------------------------------------------------------------ hand scorings
    def hand_scorings(self) -> dict[str, dict[str, Any]]:
        """Every stored hand scoring by name (:mod:`rig.behaviour.hand` gives them meaning)."""
        root = self._root()
        if HAND_SCORES not in root:
            return {}
        value = root[HAND_SCORES].attrs.get(HAND_SCORINGS, {})
        return {str(k): dict(v) for k, v in value.items()} if isinstance(value, dict) else {}

    def write_hand_scoring(self, name: str, record: dict[str, Any]) -> None:
        """Store hand scoring ``name`` beside the others (a scorer saving again replaces their
        own record under that name; nothing else is touched, automatic scorings included)."""
        scorings = {**self.hand_scorings(), name: record}
        self._set_group_attrs(HAND_SCORES, {HAND_SCORINGS: scorings})

    # -------------------------------------------------------------------- truth
    def truth(self, key: str) -> np.ndarray | None:
        """One array of a simulated session's ground truth; None when not stored."""
        root = self._root()
        if TRUTH not in root or key not in root[TRUTH]:  # type: ignore[operator]
            return None
        return root[TRUTH][key][:]  # type: ignore[index]

    def true_freezing(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(video frame times, frozen)`` of a simulated animal; None on a real rig."""
        times, frozen = self.truth(TRUE_FREEZING_TIMES), self.truth(TRUE_FREEZING)
        if times is None or frozen is None:
            return None
        return times, frozen.astype(bool)

    def write_truth(self, truth: dict[str, np.ndarray]) -> None:
        """Save a simulated session's ground truth (arrays; scalars are not stored)."""
        group = self._group(TRUTH)
        for key, value in truth.items():
            arr = np.asarray(value)
            if arr.ndim:
                group.create_array(key, data=arr, overwrite=True)

    # ---------------------------------------------- the fold of the journal (finalize)
    def write_edges(self, sample_rate_hz: float, edges: dict[str, Edges]) -> None:
        """Store every recorded line's edges under ``edges/``."""
        group = self._group(EDGES)
        self._set_group_attrs(EDGES, {SAMPLE_RATE: sample_rate_hz})
        for line, e in edges.items():
            g = group.require_group(line)
            g.create_array(EDGE_SAMPLES, data=e.samples, overwrite=True)
            g.create_array(EDGE_RISING, data=e.rising, overwrite=True)

    def write_events(self, events: list[dict[str, Any]]) -> None:
        """Store the events under ``events/``."""
        self._set_group_attrs(EVENTS, {EVENTS: events}, replace=True)

    def write_stream_timing(
        self,
        name: str,
        device_index: np.ndarray,
        timestamps_s: np.ndarray,
        sync: dict[str, Any] | None,
    ) -> None:
        """Store a stream's device frame numbers and timestamps (``timing/STREAM``) and its
        sync report (an attribute of its image group)."""
        root = zarr.open_group(str(self.zarr_path), mode="a")
        _write_timing(root, name, device_index, timestamps_s)
        if sync is not None:
            self._set_group_attrs(self._image(name), {SYNC: sync})
        if root.attrs.get(OME) is not None:
            write_ome_index(root)

    def trim_stream(self, name: str, n_frames: int) -> None:
        """Cut stream ``name`` to its first ``n_frames`` frames (see :func:`trim_frames`)."""
        trim_frames(self._group(self._image(name))[FRAMES], n_frames)  # type: ignore[arg-type]

    def remove_stream(self, name: str) -> None:
        """Remove a stream group that holds no frames array (set up, never written)."""
        root = zarr.open_group(str(self.zarr_path), mode="a")
        key = self._image(name)
        if FRAMES in root[key]:  # type: ignore[operator]
            raise ValueError(f"refusing to remove {name}: it holds frames")
        del root[key]
        if root.attrs.get(OME) is not None:
            write_ome_index(root)

    def _image(self, name: str) -> str:
        """The key of stream ``name``'s image group (KeyError when it has none)."""
        key = _image_key(self._root(), name)
        if key is None:
            raise KeyError(f"{self}: no {name} stream")
        return key

    # -------------------------------------------------------- a new stream (attach)
    @contextlib.contextmanager
    def adding_stream(
        self,
        name: str,
        frames_shape: tuple[int, int, int],
        dtype: Any,
        rate_hz: float,
        timestamps_s: np.ndarray,
    ) -> Iterator[zarr.Array]:
        """Make stream ``name`` (frames numbered 0..T-1 with these timestamps) beside the
        store, yield its frames array to fill, and move it into place when the block ends
        without an exception: an interrupted import leaves the session as it was."""
        root = zarr.open_group(str(self.zarr_path), mode="a")
        if _image_key(root, name) is not None:
            raise ValueError(f"{self}: {name} exists already")
        key = STREAM_IMAGE[name]
        for stale in self.zarr_path.glob(f".{key}.*.tmp"):  # left by an import that was killed
            shutil.rmtree(stale, ignore_errors=True)
        n, height, width = frames_shape
        # the timing first: a stream that is in place always has it (a killed import that
        # left only the timing is imported again over it)
        index = np.arange(n, dtype=np.int64)
        _write_timing(root, name, index, np.asarray(timestamps_s, float), frames_per_shard(rate_hz))
        with atomic_path(self.zarr_path / key) as tmp:
            image = zarr.open_group(str(tmp), mode="w", zarr_format=3)
            image.attrs.put(ome_attrs(name, rate_hz, self.attrs.pixel_size_um(name)))
            frames = create_frame_array(image, n, height, width, dtype, rate_hz)
            yield frames
        write_ome_index(root)
        if root.attrs.get(OME) is None:  # a session written before the layout: it is now mixed
            self.update_attrs(**{OME: ROOT_OME})

    # ------------------------------------------------------------ the layout
    def upgrade_layout(self) -> list[str]:
        """Move a session written in format_version 1 to the current layout (``rig upgrade``):
        each stream's image group is renamed to its series number, its ``timestamps_s`` and
        ``device_index`` move to ``timing/STREAM``, its OME scale gets the pixel size the rig
        file gave, and the OME series list is written. Folders are renamed, no frame is read
        or rewritten; run again after an interruption, it finishes the job. Returns one line
        per change (none for a current session)."""
        attrs = self.require_finalized()
        if attrs.format_version >= FORMAT_VERSION:
            return []
        done = []
        root = zarr.open_group(str(self.zarr_path), mode="a")
        for name, key in STREAM_IMAGE.items():
            if name not in root or key in root:
                continue
            timing = root.require_group(TIMING).require_group(name)
            old = self.zarr_path / name
            for array in (TIMESTAMPS, DEVICE_INDEX):
                if (old / array).is_dir() and array not in timing:
                    os.replace(old / array, self.zarr_path / TIMING / name / array)
            stream = FrameStream(name, root[name])  # type: ignore[arg-type]
            ome = ome_attrs(name, stream.rate_hz, attrs.pixel_size_um(name))
            self._set_group_attrs(name, ome)
            os.replace(old, self.zarr_path / key)
            done.append(f"{name}/ -> {key}/ (timestamps_s, device_index -> {TIMING}/{name}/)")
        write_ome_index(zarr.open_group(str(self.zarr_path), mode="a"))
        self.update_attrs(format_version=FORMAT_VERSION, **{OME: ROOT_OME})
        done.append(f"format_version {attrs.format_version} -> {FORMAT_VERSION}")
        return done

    # ------------------------------------------------------------ the frame writer
    def zarr_group(self) -> zarr.Group:
        """The root group, open for writing (the frame writer makes its streams in it)."""
        return zarr.open_group(str(self.zarr_path), mode="a")

    # ----------------------------------------------------------------- internals
    def _read_metadata(self) -> dict[str, Any]:
        file = str(self.attrs_path)
        raw = read_bounded(self.attrs_path, MAX_ATTRS_BYTES, missing_ok=True)
        if raw is None:
            raise InputError(
                str(self), [Problem("", "not a fear-rig session (no session.zarr here)")]
            )
        try:
            meta = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise InputError(file, [Problem("", f"unreadable: {exc}")]) from None
        if not isinstance(meta, dict):
            raise InputError(file, [Problem("", "expected a JSON object")])
        if not isinstance(meta.get("attributes", {}), dict):
            raise InputError(file, [Problem("attributes", "expected a JSON object")])
        return meta

    def _validate(self, attributes: dict[str, Any]) -> SessionAttrs:
        try:
            return SessionAttrs.model_validate(attributes)
        except ValidationError as exc:
            raise InputError(str(self.attrs_path), problems_from_validation(exc)) from None

    def _root(self) -> zarr.Group:
        return zarr.open_group(str(self.zarr_path), mode="r")

    def _set_group_attrs(
        self, name: str, attributes: dict[str, Any], replace: bool = False
    ) -> None:
        """Set attributes of group ``name`` (created if missing) by rewriting its ``zarr.json``
        atomically, as the root attributes are: a killed ``rig score`` or fold leaves the old
        document or the new one, never a torn one that no reader can open."""
        self._group(name)
        path = self.zarr_path / name / METADATA
        meta = json.loads(read_bounded(path, MAX_ATTRS_BYTES) or b"{}")
        meta["attributes"] = {**({} if replace else meta.get("attributes", {})), **attributes}
        write_json_atomic(path, meta)

    def _group(self, name: str) -> zarr.Group:
        """A group under the root, created if missing, open for writing."""
        return zarr.open_group(str(self.zarr_path), mode="a").require_group(name)


def _image_key(root: zarr.Group, name: str) -> str | None:
    """Where stream ``name``'s image group is: its series number (format_version 2) or its
    name (format_version 1); None when it has none."""
    for key in (STREAM_IMAGE[name], name):
        if key in root:
            return key
    return None


def _timing_group(root: zarr.Group, name: str) -> zarr.Group | None:
    """``timing/STREAM`` when it exists (format_version 2)."""
    if TIMING in root and name in root[TIMING]:  # type: ignore[operator]
        return root[TIMING][name]  # type: ignore[return-value,index]
    return None


def _write_timing(
    root: zarr.Group,
    name: str,
    device_index: np.ndarray,
    timestamps_s: np.ndarray,
    index_chunk: int | None = None,
) -> None:
    group = root.require_group(TIMING).require_group(name)
    chunks = {"chunks": (index_chunk,)} if index_chunk else {}
    group.create_array(DEVICE_INDEX, data=device_index, overwrite=True, **chunks)
    group.create_array(TIMESTAMPS, data=timestamps_s, overwrite=True)


def find_session_folders(root: str | Path) -> list[Path]:
    """Every session folder under ``root`` (``root`` itself included), sorted by path.

    A session folder is one holding ``session.zarr`` (whether it opens is for
    :meth:`SessionFolder.open` to say); its inside and hidden folders (``.sim-animals``) are not
    searched, so the walk costs one directory listing per folder that is not a session.
    :class:`InputError` when ``root`` is not a readable folder or a folder under it is not."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(str(root), [Problem("", "not a folder")])
    found: list[Path] = []

    def unreadable(exc: OSError) -> None:
        raise InputError(str(exc.filename or root), [Problem("", f"unreadable: {exc.strerror}")])

    for here, folders, _files in os.walk(root, onerror=unreadable):
        if (Path(here) / ZARR_STORE).exists():
            found.append(Path(here))
            folders.clear()
        else:
            folders[:] = sorted(f for f in folders if not f.startswith("."))
    return sorted(found)


def _new_folder(out_dir: Path, animal: str, protocol_name: str) -> Path:
    """``OUT/YYYYmmdd-HHMMSS_ANIMAL_PROTOCOL`` (made unique), always inside ``out_dir``."""
    out_dir = out_dir.resolve()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}_{safe_name(animal, 'animal')}_{safe_name(protocol_name, 'protocol')}"
    out_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        folder = out_dir / (base if n == 0 else f"{base}-{n}")
        if folder.resolve().parent != out_dir:
            raise ValueError(f"session folder would escape {out_dir}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"too many sessions named {base} in {out_dir}")


def _parse_utc_or_none(text: str | None) -> datetime | None:
    try:
        return parse_utc(text) if text else None
    except ValueError:
        return None
