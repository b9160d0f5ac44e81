"""A simulated externally triggered camera: a pure-Python device on pymmcore-plus's UniMMCore.

The simulated rig runs the real Micro-Manager driver (:class:`drivers.mm_camera.MMCamera`) on a
``UniMMCore`` with a :class:`SimCameraDevice` loaded. In ``TriggerMode=External`` (what the
driver's ``trigger_properties`` set) the device exposes frame ``k`` only when told that trigger
``k`` happened: the simulated DAQ calls :meth:`SimCameraDevice.trigger` as it plays camera
trigger pulses. Frame ``k``'s pixels are ``render(k)`` (binned, then cropped to the ROI), so
they depend only on ``k``. ``k`` counts triggers from 0 at each sequence start and is written
to the metadata tag ``FrameNumber``, like a camera's hardware frame counter; frames told to
:meth:`SimCameraDevice.drop` leave a gap there, as a real camera's dropped frames do.

How the trigger wait fits UniMMCore: the core runs the device's ``start_sequence`` generator
on its acquisition thread. The generator blocks on a condition until a trigger arrives, waking
every few milliseconds to see whether the core asked the acquisition to stop (the thread's
``stop_event``, set by ``stopSequenceAcquisition`` and device unloading), so stopping never
waits for a trigger that will not come.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pymmcore_plus.experimental.unicore import CameraDevice, UniMMCore, pymm_property

from drivers.mm_camera import MMCamera, MMCameraConfig

FRAME_NUMBER_KEY = "FrameNumber"
_POLL_S = 0.005  # how often a waiting acquisition checks for a stop request
_BINNINGS = (1, 2, 4)
_ADAPTER_DIR = Path(__file__).resolve().parent


class SimCameraDevice(CameraDevice):
    """A camera that renders ``render(k)`` for trigger ``k``.

    ``render(k)`` must return a ``(height, width)`` array (full sensor, unbinned). Properties:
    ``TriggerMode`` (``Internal``: free-running, one frame per exposure time, used by snaps;
    ``External``: one frame per :meth:`trigger`), ``Binning`` (1, 2, 4; averaging), exposure
    and a software ROI in binned pixels. Triggers arriving while no sequence is running, or in
    internal mode, are ignored (counted in :attr:`ignored_triggers`), as on a real camera.
    """

    def __init__(
        self,
        render: Callable[[int], np.ndarray],
        width: int,
        height: int,
        dtype: Any = "uint8",
        *,
        exposure_ms: float = 10.0,
    ) -> None:
        super().__init__()
        self._render = render
        self._sensor = (int(height), int(width))
        self._dtype = np.dtype(dtype)
        self._exposure_ms = float(exposure_ms)
        self._binning = 1
        self._roi: tuple[int, int, int, int] | None = None
        self._trigger_mode = "Internal"
        self._cond = threading.Condition()
        self._armed = False
        self._idle = True  # the last frame claimed has reached the core
        self._pending = 0  # triggers received, not yet exposed
        self._next_frame = 0
        self._limit = 0  # exposures in the current sequence
        # The core's acquisition thread, held weakly: a finished thread keeps the core alive
        # through its callbacks, and a core destroyed at interpreter exit aborts the process.
        self._thread: weakref.ref[threading.Thread] | None = None
        self._drops: set[int] = set()
        self.ignored_triggers = 0
        self.set_property_allowed_values("Binning", _BINNINGS)

    # -- what the simulated DAQ calls ---------------------------------------------------

    def trigger(self, count: int = 1) -> None:
        """``count`` trigger pulses reached the camera. Thread-safe, non-blocking.

        Pulses count only while a sequence is running in external mode and has exposures
        left; the rest are ignored (and counted in :attr:`ignored_triggers`)."""
        with self._cond:
            room = self._limit - self._next_frame - self._pending
            if not self._running() or self._trigger_mode != "External":
                room = 0
            accepted = max(0, min(count, room))
            self._pending += accepted
            self.ignored_triggers += count - accepted
            self._cond.notify_all()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every accepted trigger has become a frame in the core's buffer (or the
        sequence ended). Returns False on timeout. Lets a simulated run be deterministic."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self._flushed():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, _POLL_S))
            return True

    def _running(self) -> bool:
        # The core's thread ends without resuming the generator once it has its n frames.
        thread = self._thread() if self._thread is not None else None
        return self._armed and (self._thread is None or (thread is not None and thread.is_alive()))

    def _flushed(self) -> bool:
        if not self._running():
            return True
        return self._pending == 0 and self._idle

    def drop(self, frame_indices: Iterable[int]) -> None:
        """Never deliver these frame numbers (counted from 0 at each sequence start)."""
        with self._cond:
            self._drops.update(int(k) for k in frame_indices)

    @property
    def frames_exposed(self) -> int:
        """Frame numbers used so far in the current sequence (delivered or dropped)."""
        return self._next_frame

    # -- camera device API --------------------------------------------------------------

    def get_exposure(self) -> float:
        return self._exposure_ms

    def set_exposure(self, exposure: float) -> None:
        self._exposure_ms = float(exposure)

    def get_binning(self) -> int:
        return self._binning

    def set_binning(self, value: int) -> None:
        value = int(value)
        if value not in _BINNINGS:
            raise ValueError(f"binning {value} not in {_BINNINGS}")
        self._binning = value
        self._roi = None  # as on real cameras, binning resets the ROI

    @pymm_property(allowed_values=("Internal", "External"), name="TriggerMode")
    def trigger_mode(self) -> str:
        return self._trigger_mode

    @trigger_mode.setter
    def trigger_mode(self, value: str) -> None:
        with self._cond:
            self._trigger_mode = str(value)
            self._cond.notify_all()

    def _binned_shape(self) -> tuple[int, int]:
        h, w = self._sensor
        return h // self._binning, w // self._binning

    def shape(self) -> tuple[int, int]:
        if self._roi is not None:
            return self._roi[3], self._roi[2]
        return self._binned_shape()

    def dtype(self) -> np.dtype:
        return self._dtype

    def get_roi(self) -> tuple[int, int, int, int]:
        if self._roi is not None:
            return self._roi
        h, w = self._binned_shape()
        return (0, 0, w, h)

    def set_roi(self, x: int, y: int, width: int, height: int) -> None:
        h, w = self._binned_shape()
        if min(x, y) < 0 or width <= 0 or height <= 0 or x + width > w or y + height > h:
            raise ValueError(f"ROI {(x, y, width, height)} outside the {w}x{h} sensor")
        self._roi = (int(x), int(y), int(width), int(height))

    def clear_roi(self) -> None:
        self._roi = None

    def image(self, k: int) -> np.ndarray:
        """Frame ``k`` as the camera is set now: ``render(k)`` binned, then cropped."""
        full = np.asarray(self._render(k))
        if full.shape != self._sensor:
            raise ValueError(f"render({k}) returned {full.shape}, expected {self._sensor}")
        b = self._binning
        if b > 1:
            h, w = self._binned_shape()
            blocks = full[: h * b, : w * b].reshape(h, b, w, b).astype(np.float64)
            full = blocks.mean(axis=(1, 3))
        x, y, w, h = self.get_roi()
        return full[y : y + h, x : x + w].astype(self._dtype, copy=False)  # copied into the buffer

    def start_sequence(
        self, n: int | None, get_buffer: Callable[[Sequence[int], Any], np.ndarray]
    ) -> Iterator[Mapping]:
        """Arm now (so triggers right after the core's start call count) and return the
        generator the core's acquisition thread runs: up to ``n`` exposures, one per
        trigger in external mode."""
        with self._cond:
            self._armed = True
            self._idle = True
            self._pending = 0
            self._next_frame = 0
            self._limit = n if n is not None else 2**63
            self._thread = None
        return self._frames(get_buffer)

    def shutdown(self) -> None:
        with self._cond:
            self._armed = False
            self._cond.notify_all()

    # -- acquisition loop ---------------------------------------------------------------

    def _frames(self, get_buffer: Callable[[Sequence[int], Any], np.ndarray]) -> Iterator[Mapping]:
        thread = threading.current_thread()
        stop_event = getattr(thread, "stop_event", None)
        with self._cond:
            self._thread = weakref.ref(thread)
        try:
            while True:
                k = self._next_exposure(stop_event)
                if k is None:
                    return
                if k in self._drops:
                    continue
                image = self.image(k)
                buffer = get_buffer(image.shape, image.dtype)
                buffer[...] = image
                yield {FRAME_NUMBER_KEY: str(k), "Exposure-ms": f"{self._exposure_ms:g}"}
        finally:
            with self._cond:
                self._armed = False
                self._idle = True
                self._pending = 0
                self._cond.notify_all()

    def _next_exposure(self, stop_event: threading.Event | None) -> int | None:
        """Claim the next frame number, waiting for a trigger; None when the sequence ends."""
        with self._cond:
            self._idle = True
            if self._pending == 0:  # a flush waits for the last pending frame only
                self._cond.notify_all()
            while True:
                if not self._armed or self._next_frame >= self._limit:
                    return None
                if stop_event is not None and stop_event.is_set():
                    return None
                if self._trigger_mode == "Internal":
                    self._cond.wait(self._exposure_ms / 1000.0)
                    break
                if self._pending > 0:
                    self._pending -= 1
                    break
                self._cond.wait(_POLL_S)
            k = self._next_frame
            self._next_frame += 1
            self._idle = False
            return k


def make_sim_camera(
    render: Callable[[int], np.ndarray],
    width: int,
    height: int,
    dtype: Any = "uint8",
    *,
    rate_hz: float = 30.0,
    label: str = "Camera",
    camera_type: type[MMCamera] = MMCamera,
    **config: Any,
) -> tuple[MMCamera, SimCameraDevice]:
    """The real Micro-Manager driver on a ``UniMMCore`` holding a :class:`SimCameraDevice`.

    ``config`` holds further :class:`MMCameraConfig` keys (``exposure_ms``, ``roi``,
    ``binning``, ``buffer_mb``...); ``trigger_properties`` defaults to the simulated device's
    ``{"TriggerMode": "External"}`` and ``frame_number_key`` to its ``FrameNumber`` tag.
    The driver owns the core: ``camera.close()`` unloads the device. The simulated DAQ calls
    ``device.trigger(n)`` for every ``n`` camera trigger pulses it plays (and
    ``device.flush()`` when it must be sure the frames are in the buffer).
    """
    device = SimCameraDevice(render, width, height, dtype)
    config.setdefault("buffer_mb", 64)
    config.setdefault("trigger_properties", {"TriggerMode": "External"})
    config.setdefault("frame_number_key", FRAME_NUMBER_KEY)
    cfg = MMCameraConfig(device=label, **config)
    # An adapter search path with no adapters: spares the search for a Micro-Manager install.
    core = UniMMCore(mm_path=str(_ADAPTER_DIR))
    try:
        core.loadPyDevice(label, device)
        core.initializeDevice(label)
    except Exception:
        core.unloadAllDevices()
        raise
    return camera_type(cfg, core, rate_hz=rate_hz, simulated=True), device
