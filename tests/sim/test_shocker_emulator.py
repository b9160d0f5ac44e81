"""The shock generator emulator seen from a plain pyserial port, as a device on a wire."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
import serial

from sim.shocker_emulator import FAULT_KINDS, ShockerEmulator, open_simulated_shocker


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    fds, threads = len(os.listdir("/proc/self/fd")), set(threading.enumerate())
    yield
    assert set(threading.enumerate()) <= threads
    assert len(os.listdir("/proc/self/fd")) == fds


@pytest.fixture
def wire() -> Iterator[tuple[serial.Serial, ShockerEmulator]]:
    emulator = ShockerEmulator(watchdog_ms=200)
    port = serial.Serial(emulator.start(), 115200, timeout=1.0)
    yield port, emulator
    port.close()
    emulator.stop()


def ask(port: serial.Serial, line: bytes) -> bytes:
    port.write(line)
    return port.readline()


def test_replies_follow_the_documented_protocol(wire):
    port, emulator = wire
    assert ask(port, b"ID?\n") == f"ID {emulator.identity}\n".encode()
    assert ask(port, b"CUR 0.75\n") == b"OK CUR 0.750\n"
    assert ask(port, b"CUR?\r\n") == b"CUR 0.750\n"  # CRLF from the host is accepted
    assert ask(port, b"ARM\n") == b"ARMED\n"
    assert ask(port, b"HB\n") == b"HB 1\n"
    assert ask(port, b"STAT?\n") == b"STAT ARMED=1 CUR=0.750 WD=200\n"
    assert ask(port, b"DISARM\n") == b"DISARMED\n"
    assert ask(port, b"WD 300\n") == b"OK WD 300\n"
    assert emulator.commands() == [
        "identify",
        "set_current",
        "read_current",
        "arm",
        "heartbeat",
        "status",
        "disarm",
        "set_watchdog",
    ]


def test_errors_have_codes(wire):
    port, emulator = wire
    assert ask(port, b"FIRE\n") == b"ERR 1 unknown command\n"
    assert ask(port, b"CUR 9\n").startswith(b"ERR 3 ")
    assert ask(port, b"WD 0\n").startswith(b"ERR 3 ")
    assert ask(port, b"X" * 200).startswith(b"ERR 5 ")
    assert emulator.received[0].line == "FIRE" and emulator.received[0].command is None
    assert emulator.current_ma == 0.0 and emulator.watchdog_ms == 200


def test_watchdog_disarms_without_heartbeats(wire):
    port, emulator = wire
    assert ask(port, b"ARM\n") == b"ARMED\n"
    deadline = time.monotonic() + 2.0
    while emulator.armed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not emulator.armed and emulator.watchdog_trips == 1
    assert ask(port, b"HB\n") == b"HB 0\n"


def test_faults(wire):
    port, emulator = wire
    emulator.inject("garbage")
    assert ask(port, b"ID?\n") == b"\x15\xfe~#%\x00&\xff\n"
    emulator.clear_faults()
    emulator.inject("refuse_current")
    assert ask(port, b"CUR 0.5\n") == b"ERR 4 current refused\n"
    emulator.clear_faults()
    emulator.inject("no_reply")
    port.timeout = 0.05
    assert ask(port, b"ARM\n") == b""
    assert not emulator.armed  # a silent device executes nothing
    emulator.inject("disconnect")
    with pytest.raises(serial.SerialException):
        ask(port, b"HB\n")
    with pytest.raises(ValueError, match="unknown shocker fault"):
        emulator.inject("fire")
    assert set(FAULT_KINDS) >= emulator.faults


def test_stop_is_idempotent_and_closing_the_driver_stops_the_emulator():
    driver, emulator = open_simulated_shocker(max_current_ma=1.0)
    assert emulator.running
    driver.close()
    assert not emulator.running
    emulator.stop()
