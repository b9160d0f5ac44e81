"""Safety limits: a protocol that would exceed the rig's shock limits does not validate.

The limits come from the rig file (``safety:``), never from the protocol. They are checked on
the compiled timeline, so the count and the session length are exact for the protocol's seed.
"""

from __future__ import annotations

from rig.inputfile import InputError, Problem
from rig.protocol import Protocol, Shock
from rig.rigfile import SafetyLimits
from rig.schedule import OutputSchedule
from rig.timeline import Timeline


def limit_problems(protocol: Protocol, timeline: Timeline, limits: SafetyLimits) -> list[Problem]:
    """Every way ``protocol`` exceeds ``limits``, as field-path problems."""
    problems: list[Problem] = []
    for name, stim in protocol.stimuli.items():
        if not isinstance(stim, Shock):
            continue
        if stim.current_ma > limits.max_current_ma:
            problems.append(
                Problem(
                    f"stimuli.{name}.current_ma",
                    f"{stim.current_ma:g} mA is above this rig's limit of "
                    f"{limits.max_current_ma:g} mA (safety.max_current_ma)",
                )
            )
        if stim.duration_s > limits.max_shock_s:
            problems.append(
                Problem(
                    f"stimuli.{name}.duration_s",
                    f"{stim.duration_s:g} s is above this rig's limit of "
                    f"{limits.max_shock_s:g} s (safety.max_shock_s)",
                )
            )
    n_shocks = len(timeline.shocks)
    if n_shocks > limits.max_shocks:
        problems.append(
            Problem(
                "phases",
                f"{n_shocks} shocks in the session; this rig allows {limits.max_shocks} "
                "(safety.max_shocks)",
            )
        )
    if timeline.duration_s > limits.max_session_s:
        problems.append(
            Problem(
                "phases",
                f"the session lasts {timeline.duration_s:g} s; this rig allows "
                f"{limits.max_session_s:g} s (safety.max_session_s)",
            )
        )
    return problems


def check_limits(protocol: Protocol, timeline: Timeline, limits: SafetyLimits, file: str) -> None:
    """Raise :class:`InputError` (for the protocol file) if any limit is exceeded."""
    problems = limit_problems(protocol, timeline, limits)
    if problems:
        raise InputError(file, problems)


def schedule_problems(schedule: OutputSchedule, limits: SafetyLimits) -> list[str]:
    """Defence in depth: the engine re-checks the compiled outputs before arming anything."""
    out = []
    fs = schedule.sample_rate_hz
    if len(schedule.shocks) > limits.max_shocks:
        out.append(f"{len(schedule.shocks)} shocks exceed max_shocks {limits.max_shocks}")
    for pulse in schedule.shocks:
        width = (pulse.stop_sample - pulse.start_sample) / fs
        if pulse.current_ma > limits.max_current_ma:
            out.append(f"shock at sample {pulse.start_sample}: {pulse.current_ma} mA over limit")
        if width > limits.max_shock_s + 1.0 / fs or width <= 0:
            out.append(f"shock at sample {pulse.start_sample}: width {width:g} s not allowed")
        if not 0 <= pulse.start_sample < pulse.stop_sample <= schedule.n_samples:
            out.append(f"shock at sample {pulse.start_sample}: outside the session")
        if not 0 <= pulse.trial < len(schedule.sounds):
            out.append(f"shock at sample {pulse.start_sample}: belongs to no trial")
        elif pulse.start_sample < schedule.sounds[pulse.trial].start_sample:
            out.append(f"shock at sample {pulse.start_sample}: before its trial's CS")
    if schedule.duration_s > limits.max_session_s:
        out.append(f"session of {schedule.duration_s:g} s exceeds max_session_s")
    return out
