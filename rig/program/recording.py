"""What a protocol records, against the devices the rig has (docs/safety.md, "Recording").

A protocol that asks for two-photon imaging (``recording.imaging``) on a rig with no microscope
(no ``imaging:`` section) does not validate: its session would run "complete" with no imaging.

The other way round is allowed on purpose: a behaviour-only session on an imaging rig is a
legitimate experiment (a habituation day, a pilot), and the alternative, a second rig file for
the same machine, would let two copies of its safety limits drift apart. Instead every summary
(``rig validate``, ``rig plan`` and its JSON, the GUI designer) says loudly that no imaging will
be recorded. The microscope's frame clock is recorded all the same (the engine stores every edge
the DAQ records), so frames taken by hand during such a session can still be matched to the
stimuli (``rig attach``).
"""

from __future__ import annotations

from rig.files.inputfile import Problem
from rig.files.protocol import Protocol
from rig.files.rigfile import RigFile

CLOCK_TOLERANCE = 0.05
"""How far a microscope's stated frame clock may be from the protocol's rate: the sync step lays
the recorded edges on a grid seeded with the protocol's period, and a frame clock 5 % off is a
different scan setting, not a resonant mirror's offset."""


def recording_problems(protocol: Protocol, rig: RigFile) -> list[Problem]:
    """What ``protocol`` asks to record that ``rig`` has no device for, or at a frame rate the
    rig's microscope does not scan at (its ``imaging.clock_hz``, where the rig file states it)."""
    imaging = protocol.recording.imaging
    device = rig.device("imaging")
    clock_hz = getattr(device.config, "clock_hz", None) if device is not None else None
    stated = imaging is not None and clock_hz is not None
    if stated and abs(clock_hz / imaging.frame_rate_hz - 1.0) > CLOCK_TOLERANCE:
        return [
            Problem(
                "recording.imaging.frame_rate_hz",
                f"{imaging.frame_rate_hz:g} Hz, but rig {rig.name!r} scans at {clock_hz:g} "
                f"Hz (imaging.clock_hz in {rig.file}); set the microscope and its rig file "
                f"to within {CLOCK_TOLERANCE:.0%} of the protocol's rate",
            )
        ]
    if imaging is not None and device is None:
        return [
            Problem(
                "recording.imaging",
                f"rig {rig.name!r} has no microscope (its rig file has no imaging: section); "
                "remove recording.imaging for a behaviour-only session, or use the rig file of "
                "a rig with one",
            )
        ]
    return []


def no_imaging_warning(protocol: Protocol, rig: RigFile) -> str | None:
    """The warning every summary shows when ``rig`` has a microscope that ``protocol`` does not
    use; ``None`` when there is nothing to say."""
    if protocol.recording.imaging is None and rig.device("imaging") is not None:
        return (
            "NO IMAGING WILL BE RECORDED: this rig has a microscope, but the protocol has no "
            "recording.imaging (its frame clock is still recorded)"
        )
    return None
