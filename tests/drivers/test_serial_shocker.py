"""The real serial shocker driver against the emulator, over a real pseudo-terminal."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from drivers.serial_shocker import (
    SPEC,
    SerialShockerConfig,
    SerialShockGenerator,
    ShockerStatus,
    load_profile,
)
from rig.devices import BuildContext
from rig.ports import ShockerError, ShockGenerator
from sim.shocker_emulator import ShockerEmulator, open_simulated_shocker


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Every test leaves no thread and no file descriptor behind."""
    fds, threads = _open_fds(), set(threading.enumerate())
    yield
    assert set(threading.enumerate()) <= threads
    assert _open_fds() == fds


@pytest.fixture
def rig() -> Iterator[tuple[SerialShockGenerator, ShockerEmulator]]:
    driver, emulator = open_simulated_shocker(max_current_ma=1.0)
    yield driver, emulator
    driver.close()


def _wait_for(condition, timeout_s: float = 2.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def test_preflight_and_identity(rig):
    driver, emulator = rig
    checks = driver.preflight()
    assert [c.name for c in checks] == ["port", "identity", "current read-back", "disarmed"]
    assert all(c.ok for c in checks), checks
    assert driver.identify() == emulator.identity
    assert driver.simulated is True
    assert isinstance(driver, ShockGenerator)


def test_open_sets_the_device_watchdog(rig):
    driver, emulator = rig
    assert emulator.watchdog_ms == 500
    assert emulator.commands()[0] == "set_watchdog"
    assert driver.status() == ShockerStatus(armed=False, current_ma=0.0, watchdog_ms=500)


def test_set_current_returns_the_read_back(rig):
    driver, emulator = rig
    assert driver.set_current(0.5) == pytest.approx(0.5)
    assert emulator.current_ma == pytest.approx(0.5)
    lines = [r.line for r in driver.command_log]
    assert lines[-2:] == ["CUR 0.500", "CUR?"]
    assert all(r.t_reply is not None and r.t_reply >= r.t_sent for r in driver.command_log)


@pytest.mark.parametrize("current", [1.2, 1.0004, -0.1, math.nan, math.inf])
def test_current_outside_the_limit_is_refused_and_never_sent(rig, current):
    driver, emulator = rig
    before = len(emulator.received)
    with pytest.raises(ShockerError, match="not sent"):
        driver.set_current(current)
    assert "set_current" not in [r.command for r in emulator.received[before:]]
    assert emulator.current_ma == 0.0


def test_current_that_rounds_above_the_limit_is_refused():
    driver, emulator = open_simulated_shocker(max_current_ma=0.9999)
    try:
        with pytest.raises(ShockerError, match="safety limit"):
            driver.set_current(0.99995)  # would be sent as "CUR 1.000"
        assert "set_current" not in emulator.commands()
    finally:
        driver.close()


def test_arm_is_refused_until_a_current_is_confirmed(rig):
    driver, emulator = rig
    with pytest.raises(ShockerError, match="set and confirm the current"):
        driver.arm()
    assert "arm" not in emulator.commands()
    assert not emulator.armed


def test_arm_heartbeat_disarm(rig):
    driver, emulator = rig
    driver.set_current(0.3)
    driver.arm()
    assert emulator.armed and driver.armed
    driver.heartbeat()
    driver.disarm()
    assert not emulator.armed and not driver.armed
    driver.heartbeat()
    assert emulator.commands()[-4:] == ["arm", "heartbeat", "disarm", "heartbeat"]


def test_close_disarms_and_stops_the_emulator():
    driver, emulator = open_simulated_shocker(max_current_ma=1.0)
    driver.set_current(0.2)
    driver.arm()
    driver.close()
    driver.close()  # idempotent
    assert not emulator.armed
    assert emulator.commands()[-1] == "disarm"
    assert not emulator.running
    with pytest.raises(ShockerError, match="closed"):
        driver.heartbeat()


def test_no_reply_raises_and_is_not_retried(rig):
    driver, emulator = rig
    emulator.inject("no_reply")
    with pytest.raises(ShockerError, match="no reply within 100 ms"):
        driver.set_current(0.5)
    assert emulator.commands().count("set_current") == 1
    with pytest.raises(ShockerError, match="heartbeat: no reply within 50 ms"):
        driver.heartbeat()


def test_only_disarm_is_retried(rig):
    driver, emulator = rig
    emulator.inject("no_reply")
    with pytest.raises(ShockerError, match="disarm not confirmed"):
        driver.disarm()
    assert emulator.commands().count("disarm") == driver.config.disarm_attempts == 2


def test_link_recovers_after_a_silent_spell(rig):
    driver, emulator = rig
    emulator.inject("no_reply")
    with pytest.raises(ShockerError):
        driver.identify()
    emulator.clear_faults()
    assert driver.identify() == emulator.identity


def test_a_late_reply_to_an_earlier_command_is_not_taken_for_the_next_ones(rig):
    """Under load a heartbeat's reply can come after its deadline, just before the reply to
    the next command: the driver must skip it, not fail the next command on 'HB 1'."""
    driver, emulator = rig
    emulator.inject("late_reply")
    with pytest.raises(ShockerError, match="heartbeat: no reply"):
        driver.heartbeat()
    assert driver.set_current(0.5) == pytest.approx(0.5)
    (set_record,) = [r for r in driver.command_log if r.command == "set_current"]
    assert set_record.stale == [b"HB 0\n"] and set_record.error is None


def test_garbage_reply_raises(rig):
    driver, emulator = rig
    emulator.inject("garbage")
    with pytest.raises(ShockerError, match="unreadable reply"):
        driver.identify()
    with pytest.raises(ShockerError):
        driver.heartbeat()


def test_refused_current_raises_and_blocks_arming(rig):
    driver, emulator = rig
    driver.set_current(0.4)
    emulator.inject("refuse_current")
    with pytest.raises(ShockerError, match="device refused"):
        driver.set_current(0.5)
    with pytest.raises(ShockerError, match="set and confirm"):
        driver.arm()


def test_wrong_read_back_raises(rig):
    driver, emulator = rig
    emulator.inject("wrong_readback")
    with pytest.raises(ShockerError, match="read-back"):
        driver.set_current(0.5)


def test_device_maximum_error_is_a_shocker_error():
    driver, emulator = open_simulated_shocker(max_current_ma=10.0)
    try:
        with pytest.raises(ShockerError, match="device refused"):
            driver.set_current(emulator.max_current_ma + 1)
    finally:
        driver.close()


def test_disconnect_fails_the_heartbeat_and_close_still_works():
    driver, emulator = open_simulated_shocker(max_current_ma=1.0, device_watchdog_ms=100)
    driver.set_current(0.5)
    driver.arm()
    emulator.inject("disconnect")
    with pytest.raises(ShockerError, match="link lost"):
        driver.heartbeat()
    with pytest.raises(ShockerError, match="link lost"):
        driver.disarm()
    assert _wait_for(lambda: not emulator.armed)  # the device's own watchdog
    driver.close()
    assert not emulator.running


def test_device_watchdog_disarms_when_heartbeats_stop():
    driver, emulator = open_simulated_shocker(max_current_ma=1.0, device_watchdog_ms=50)
    try:
        driver.set_current(0.5)
        driver.arm()
        assert _wait_for(lambda: not emulator.armed)
        assert emulator.watchdog_trips == 1
        with pytest.raises(ShockerError, match="device reports disarmed"):
            driver.heartbeat()
    finally:
        driver.close()


def test_close_wakes_a_thread_blocked_on_a_reply():
    driver, emulator = open_simulated_shocker(max_current_ma=1.0, timeout_s=2.0)
    emulator.inject("no_reply")
    errors: list[Exception] = []

    def ask() -> None:
        try:
            driver.identify()
        except ShockerError as exc:
            errors.append(exc)

    worker = threading.Thread(target=ask)
    worker.start()
    assert _wait_for(lambda: "identify" in emulator.commands())
    emulator.clear_faults()  # the identify stays unanswered; the disarm in close() is answered
    driver.close()
    worker.join()
    assert len(errors) == 1 and "closed" in str(errors[0])
    assert emulator.commands()[-1] == "disarm"
    assert not emulator.running


OTHER_MODEL = r"""
profile: other-model
description: a model with its own command words, CRLF and ON/OFF states
command_terminator: "\r\n"
reply_terminator: "\r\n"
case_sensitive: false
armed_word: "ON"
disarmed_word: "OFF"
readback_tolerance_ma: 0.01
commands:
  identify:     {send: "*IDN?",              reply: "{identity}"}
  set_current:  {send: "SOUR:CURR {current_ma:.2f}", reply: "DONE"}
  read_current: {send: "SOUR:CURR?",         reply: "I={current_ma:.2f}mA"}
  arm:          {send: "OUTP ON",            reply: "OUTPUT ON"}
  disarm:       {send: "OUTP OFF",           reply: "OUTPUT OFF"}
  status:       {send: "SYST:STAT?",         reply: "OUTPUT {armed} I={current_ma:.2f}mA"}
  heartbeat:    {send: "PING",               reply: "PONG {armed}"}
error_reply: "!{message}"
"""


def test_another_model_needs_only_a_profile(tmp_path):
    profile = tmp_path / "other.yaml"
    profile.write_text(OTHER_MODEL)
    driver, emulator = open_simulated_shocker(
        max_current_ma=1.0, profile=str(profile), device_watchdog_ms=None
    )
    try:
        assert all(c.ok for c in driver.preflight())
        assert driver.identify() == emulator.identity
        assert driver.set_current(0.25) == pytest.approx(0.25)
        driver.arm()
        driver.heartbeat()
        assert emulator.armed
        driver.disarm()
        assert not emulator.armed
        assert [r.line for r in emulator.received][-4:] == [
            "SOUR:CURR?",
            "OUTP ON",
            "PING",
            "OUTP OFF",
        ]
        emulator.inject("refuse_current")
        with pytest.raises(ShockerError, match="device refused"):
            driver.set_current(0.5)
    finally:
        driver.close()


def test_a_profile_without_a_watchdog_command_needs_watchdog_null(tmp_path):
    profile = tmp_path / "other.yaml"
    profile.write_text(OTHER_MODEL)
    with pytest.raises(ValueError, match="device_watchdog_ms: null"):
        SerialShockGenerator(SerialShockerConfig(port="/dev/null", profile=str(profile)), 1.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("profile: other-model", "profile: other-model\nbaud: 9600"), "baud"),
        (("PONG {armed}", "PONG {armd}"), "unknown field"),
        (('I={current_ma:.2f}mA"}', 'I=mA"}'), "must contain"),
        (('reply: "OUTPUT OFF"', 'reply: "OUTPUT ON"'), "must differ"),
        (('"*IDN?"', '"*IDN? {current_ma}"'), "not allowed"),
    ],
)
def test_invalid_profiles_are_rejected(tmp_path, change, message):
    old, new = change
    assert old in OTHER_MODEL
    profile = tmp_path / "bad.yaml"
    profile.write_text(OTHER_MODEL.replace(old, new, 1))
    with pytest.raises(ValueError, match=message):
        load_profile(profile)


def test_unknown_profile_name_lists_the_built_ins():
    with pytest.raises(ValueError, match="built-in: default"):
        load_profile("no-such-model")


def test_config_is_strict():
    with pytest.raises(ValidationError):
        SerialShockerConfig(port="/dev/ttyUSB0", baud=9600)
    with pytest.raises(ValidationError):
        SerialShockerConfig(port="/dev/ttyUSB0", heartbeat_timeout_s=0.2)


def test_build_takes_the_limit_from_the_rig_file():
    ctx = BuildContext(rig=SimpleNamespace(safety=SimpleNamespace(max_current_ma=0.7)))
    config = SPEC.config_model.model_validate({"port": "/dev/ttyUSB-none"})
    driver = SPEC.build("shocker", config, ctx)
    assert SPEC.sections == ("shocker",) and SPEC.name == "serial-shocker"
    assert driver.max_current_ma == 0.7 and driver.simulated is False
    with pytest.raises(ShockerError, match="not sent"):
        driver.set_current(0.8)
    checks = driver.preflight()
    assert [(c.name, c.ok) for c in checks] == [("port", False)]
    driver.close()


def test_open_fails_when_the_watchdog_cannot_be_set():
    emulator = ShockerEmulator()
    path = emulator.start()
    emulator.inject("garbage")
    driver = SerialShockGenerator(SerialShockerConfig(port=path), max_current_ma=1.0)
    try:
        with pytest.raises(ShockerError, match="set_watchdog"):
            driver.open()
        assert not driver.is_open
        checks = driver.preflight()
        assert [(c.name, c.ok) for c in checks] == [("port", False)]
    finally:
        driver.close()
        emulator.stop()
