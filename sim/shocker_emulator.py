"""A shock generator emulated behind a real pseudo-terminal.

:class:`ShockerEmulator` speaks the line protocol of ``docs/shocker-protocol.md`` (as described
by a shocker profile) on the master side of a ``pty.openpty()`` pair, in a thread; the real
driver (:class:`drivers.serial_shocker.SerialShockGenerator`) opens the slave side with
pyserial, exactly as it opens a USB adapter. The emulator keeps the device's state, its
device-side watchdog, a record of every line received, and can be told to misbehave.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pty
import select
import threading
import time
import tty
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.serial_shocker import (
    SerialShockerConfig,
    SerialShockGenerator,
    ShockerProfile,
    load_profile,
)

FAULT_KINDS = (
    "no_reply",
    "garbage",
    "refuse_current",
    "wrong_readback",
    "late_reply",
    "disconnect",
)
"""Faults :meth:`ShockerEmulator.inject` accepts:

* ``no_reply``: the device hears lines but neither executes nor answers them;
* ``garbage``: commands execute, but every reply is corrupted bytes;
* ``refuse_current``: set-current commands are answered with an error (code 4);
* ``wrong_readback``: set-current sets 0.05 mA more than asked (and reads that back);
* ``late_reply``: the next reply is held back and sent just before the reply after it (a
  device, or a host, too slow for one deadline); once;
* ``disconnect``: the pty master closes, like a USB adapter unplugged: the driver's reads and
  writes fail. The device itself keeps running its watchdog. Irreversible.
"""

GARBAGE = b"\x15\xfe~#%\x00&\xff"

# Error codes in the device's error reply.
ERR_UNKNOWN, ERR_ARGUMENT, ERR_RANGE, ERR_REFUSED, ERR_TOO_LONG = 1, 2, 3, 4, 5

WATCHDOG_RANGE_MS = (50, 60_000)
RECEIVED_KEPT = 50_000  # lines the emulator remembers (a test instrument; about 10 MB)


@dataclass
class DeliveredShock:
    """What the device gave while its gate input was high: from ``onset_sample`` to
    ``offset_sample`` (None while still high), at the current it was set to, if armed."""

    onset_sample: int
    current_ma: float
    armed: bool
    lines_before: int  # lines the device had received by then (index into ``received``)
    offset_sample: int | None = None


@dataclass(frozen=True)
class ReceivedLine:
    """A line the device received: when (``time.monotonic()``), what, and as which command."""

    t: float
    line: str
    command: str | None  # None: not a command of the profile


class ShockerEmulator:
    """An emulated shock generator on a pseudo-terminal.

    ``max_current_ma`` is the device's own hardware maximum (it answers a higher current with
    an error), independent of the rig's safety limit, which the driver enforces.
    """

    def __init__(
        self,
        profile: str | Path | ShockerProfile = "default",
        *,
        identity: str = "fear-rig emulated shocker SN0001 fw1.0",
        max_current_ma: float = 5.0,
        watchdog_ms: int = 500,
    ) -> None:
        self.profile = profile if isinstance(profile, ShockerProfile) else load_profile(profile)
        self.identity = identity
        self.max_current_ma = max_current_ma
        self._lock = threading.Lock()
        self._armed = False
        self._current_ma = 0.0
        self._watchdog_ms = watchdog_ms
        self._watchdog_trips = 0
        self._fed_at = time.monotonic()
        self._faults: set[str] = set()
        self._delivered: list[DeliveredShock] = []
        self._held = b""  # a late reply, sent before the next one
        # the most recent lines only: a long --fast session sends one heartbeat per engine step
        self._received: deque[ReceivedLine] = deque(maxlen=RECEIVED_KEPT)
        self._master: int | None = None
        self._slave: int | None = None
        self._wake: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None
        self._stop = False
        self._disconnect_pending = False
        self._path = ""
        cmd_term = self.profile.command_terminator.encode()
        self._cmd_end = cmd_term[-1:]
        self._reply_end = self.profile.reply_terminator.encode(self.profile.encoding)

    # -- state, for tests and for the simulated rig ----------------------------------------

    @property
    def armed(self) -> bool:
        """Whether the output stage is enabled."""
        return self._armed

    @property
    def current_ma(self) -> float:
        """The current the device is set to."""
        return self._current_ma

    @property
    def watchdog_ms(self) -> int:
        """The device watchdog period."""
        return self._watchdog_ms

    @property
    def watchdog_trips(self) -> int:
        """How many times the watchdog disarmed the device."""
        return self._watchdog_trips

    @property
    def faults(self) -> frozenset[str]:
        """The faults in effect."""
        return frozenset(self._faults)

    @property
    def received(self) -> list[ReceivedLine]:
        """The lines received so far (the last :data:`RECEIVED_KEPT`), in order."""
        with self._lock:
            return list(self._received)

    @property
    def delivered(self) -> list[DeliveredShock]:
        """Every gate-high run the device's gate input saw, with the current it gave."""
        with self._lock:
            return list(self._delivered)

    def gate_input(self, sample: int, high: bool) -> None:
        """The gate input changed level at ``sample`` of the session clock (wired from the
        DAQ's shock gate line): a rising edge gives current at the present setting."""
        with self._lock:
            if high:
                self._delivered.append(
                    DeliveredShock(sample, self._current_ma, self._armed, len(self._received))
                )
            elif self._delivered and self._delivered[-1].offset_sample is None:
                self._delivered[-1].offset_sample = sample

    def commands(self) -> list[str]:
        """The command names received so far, in order (unrecognised lines left out)."""
        return [r.command for r in self.received if r.command is not None]

    @property
    def device_path(self) -> str:
        """The slave device path (``""`` before :meth:`start`)."""
        return self._path

    @property
    def running(self) -> bool:
        """Whether the emulator thread is running."""
        return self._thread is not None and self._thread.is_alive()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        """Open the pty pair, start the device thread and return the slave device path."""
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        master, slave = pty.openpty()
        tty.setraw(slave)  # no echo, no line editing: a plain byte pipe until pyserial opens it
        fcntl.fcntl(master, fcntl.F_SETFL, fcntl.fcntl(master, fcntl.F_GETFL) | os.O_NONBLOCK)
        self._master, self._slave = master, slave
        self._wake = os.pipe()
        self._path = os.ttyname(slave)
        self._fed_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="shocker-emulator", daemon=True)
        self._thread.start()
        return self._path

    def stop(self) -> None:
        """Stop the thread and close every descriptor. Idempotent; never raises."""
        thread = self._thread
        if thread is None or self._wake is None:
            return
        self._stop = True
        with contextlib.suppress(OSError):
            os.write(self._wake[1], b"s")
        thread.join(timeout=2.0)
        self._close_pty()
        for fd in self._wake:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake = None

    def inject(self, kind: str) -> None:
        """Start misbehaving: one of :data:`FAULT_KINDS`."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown shocker fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._faults.add(kind)
            if kind == "disconnect":
                self._disconnect_pending = True
        if kind == "disconnect":
            if self.running and self._wake is not None:
                os.write(self._wake[1], b"d")
                self._wait_disconnected()
            else:
                self._close_pty()

    def clear_faults(self) -> None:
        """Stop misbehaving (a disconnect cannot be undone)."""
        with self._lock:
            self._faults &= {"disconnect"}

    def _wait_disconnected(self) -> None:
        # The device thread closes the pty; wait for it so the unplug is done when we return.
        for _ in range(400):
            if self._master is None or not self.running:
                return
            time.sleep(0.005)

    def _close_pty(self) -> None:
        for name in ("_master", "_slave"):
            fd = getattr(self, name)
            setattr(self, name, None)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)

    # -- the device thread -------------------------------------------------------------------

    def _run(self) -> None:
        assert self._wake is not None
        wake = self._wake[0]
        pending = bytearray()
        while not self._stop:
            if self._disconnect_pending:
                self._disconnect_pending = False
                self._close_pty()
            readable = [wake] if self._master is None else [wake, self._master]
            ready, _, _ = select.select(readable, [], [], self._select_timeout())
            if wake in ready:
                os.read(wake, 64)
            if self._master is not None and self._master in ready:
                pending += self._read_master()
                pending = self._handle_lines(pending)
            self._check_watchdog()

    def _select_timeout(self) -> float:
        if not self._armed:
            return 0.05
        left = self._fed_at + self._watchdog_ms / 1000 - time.monotonic()
        return min(0.05, max(0.0, left))

    def _read_master(self) -> bytes:
        assert self._master is not None
        try:
            return os.read(self._master, 4096)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                return b""
            # EIO: nobody has the slave open right now; that is not a failure of the device
            time.sleep(0.005)
            return b""

    def _handle_lines(self, pending: bytearray) -> bytearray:
        limit = self.profile.max_line_bytes
        while True:
            end = pending.find(self._cmd_end)
            if end < 0:
                if len(pending) > limit:
                    self._record(bytes(pending), None)
                    self._reply_error(ERR_TOO_LONG, "line too long")
                    return bytearray()
                return pending
            raw, pending = bytes(pending[:end]), pending[end + 1 :]
            self._handle(raw)

    def _handle(self, raw: bytes) -> None:
        try:
            line = raw.decode(self.profile.encoding).strip("\r\n")
        except UnicodeDecodeError:
            line = None
        command, values = (None, {}) if line is None else self._match(line)
        self._record(raw if line is None else line, command)
        if "no_reply" in self._faults:
            return
        if command is None:
            self._reply_error(ERR_UNKNOWN, "unknown command")
            return
        handler = getattr(self, f"_do_{command}")
        handler(**values)

    def _match(self, line: str) -> tuple[str | None, dict[str, Any]]:
        for name in self.profile.command_names():
            values = self.profile.send_template(name).parse(line)
            if values is not None:
                return name, values
        return None, {}

    def _record(self, line: str | bytes, command: str | None) -> None:
        text = line if isinstance(line, str) else line.decode("latin-1")
        with self._lock:
            self._received.append(ReceivedLine(time.monotonic(), text, command))

    def _check_watchdog(self) -> None:
        if self._armed and time.monotonic() > self._fed_at + self._watchdog_ms / 1000:
            self._armed = False
            self._watchdog_trips += 1

    # -- replies -----------------------------------------------------------------------------

    def _send(self, line: str) -> None:
        data = line.encode(self.profile.encoding, errors="replace") + self._reply_end
        if "garbage" in self._faults:
            data = GARBAGE + self._reply_end
        if self._master is None:
            return
        if "late_reply" in self._faults:
            self._faults.discard("late_reply")
            self._held = data
            return
        held, self._held = self._held, b""
        # The host is not reading (buffer full) or is gone: the reply is lost, as on a wire.
        with contextlib.suppress(OSError):
            os.write(self._master, held + data)

    def _reply(self, command: str, **values: Any) -> None:
        self._send(self.profile.reply_template(command).format(**values))

    def _reply_error(self, code: int, message: str) -> None:
        self._send(self.profile.error_template.format(code=code, message=message))

    # -- commands ----------------------------------------------------------------------------

    def _do_identify(self) -> None:
        self._reply("identify", identity=self.identity)

    def _do_set_current(self, current_ma: float) -> None:
        if "refuse_current" in self._faults:
            self._reply_error(ERR_REFUSED, "current refused")
        elif current_ma < 0:
            self._reply_error(ERR_ARGUMENT, "negative current")
        elif current_ma > self.max_current_ma:
            self._reply_error(ERR_RANGE, f"above device maximum {self.max_current_ma:g} mA")
        else:
            offset = 0.05 if "wrong_readback" in self._faults else 0.0
            self._current_ma = current_ma + offset
            self._reply("set_current", current_ma=current_ma)

    def _do_read_current(self) -> None:
        self._reply("read_current", current_ma=self._current_ma)

    def _do_arm(self) -> None:
        self._fed_at = time.monotonic()
        self._armed = True
        self._reply("arm", armed=True)

    def _do_disarm(self) -> None:
        self._armed = False
        self._reply("disarm", armed=False)

    def _do_status(self) -> None:
        self._reply(
            "status",
            armed=self._armed,
            current_ma=self._current_ma,
            watchdog_ms=self._watchdog_ms,
        )

    def _do_heartbeat(self) -> None:
        self._fed_at = time.monotonic()
        self._reply("heartbeat", armed=self._armed)

    def _do_set_watchdog(self, watchdog_ms: int) -> None:
        low, high = WATCHDOG_RANGE_MS
        if not low <= watchdog_ms <= high:
            self._reply_error(ERR_RANGE, f"watchdog must be {low}-{high} ms")
            return
        self._watchdog_ms = watchdog_ms
        self._reply("set_watchdog", watchdog_ms=watchdog_ms)


def open_simulated_shocker(
    max_current_ma: float,
    profile: str | Path = "default",
    **config: Any,
) -> tuple[SerialShockGenerator, ShockerEmulator]:
    """Start an emulator and connect the real driver to it (``simulated=True``).

    ``config`` holds further :class:`~drivers.serial_shocker.SerialShockerConfig` fields
    (e.g. ``timeout_s``). The driver is open on return; closing it stops the emulator.
    """
    emulator = ShockerEmulator(profile)
    path = emulator.start()
    driver: SerialShockGenerator | None = None
    try:
        cfg = SerialShockerConfig(port=path, profile=str(profile), **config)
        driver = SerialShockGenerator(cfg, max_current_ma, simulated=True, on_close=emulator.stop)
        driver.open()
    except BaseException:
        if driver is not None:
            driver.close()
        emulator.stop()
        raise
    return driver, emulator
