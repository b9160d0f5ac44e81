"""Rig set-up commands: ``rig output-test tone|shock`` and ``rig calibrate-speaker``.

Each refuses (exit 1) while a session or another test holds the rig (:mod:`rig.run.rig_lock`);
bad values are bad input (exit 2, ``--option: message``); the outputs are left safe however the
test ends. ``rig.cli`` adds these commands to ``rig`` and maps the errors to exit codes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

EXIT_FAILED = 1  # the command-line contract: the session (here: the test) aborted
RIG_OPTION = click.option(
    "--rig",
    "rig_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Rig file (default: the built-in simulated rig).",
)
FAST_OPTION = click.option(
    "--fast", is_flag=True, help="Simulated rig: as fast as the machine allows."
)


def _speed(rig, fast: bool) -> float | None:
    if fast and not rig.simulated:
        raise click.UsageError("--fast is for a simulated rig only")
    return None if fast else 1.0


def _report(result) -> None:
    click.echo(result.summary)
    if not result.ok:
        sys.exit(EXIT_FAILED)


@click.group("output-test")
def output_test() -> None:
    """Play one output by hand: a tone through the speaker, or shocks into a test load."""


@output_test.command("tone")
@RIG_OPTION
@click.option("--frequency-hz", type=float, required=True, help="Tone frequency.")
@click.option("--level-db", type=float, required=True, help="Level, dB SPL (calibrated).")
@click.option("--duration-s", type=float, default=2.0, show_default=True)
@FAST_OPTION
def tone(
    rig_path: Path | None, frequency_hz: float, level_db: float, duration_s: float, fast: bool
) -> None:
    """Play a tone at a calibrated level (the rig's speaker calibration and max_level_db)."""
    from rig.files.rigfile import load_rig
    from rig.run.output_test import run_output_test, tone_test_plan

    rig = load_rig(rig_path)
    plan = tone_test_plan(rig, frequency_hz, level_db, duration_s)
    click.echo(f"[{rig.mode}] rig {rig.name}: {frequency_hz:g} Hz at {level_db:g} dB SPL")
    _report(run_output_test("tone", plan, _speed(rig, fast)))


@output_test.command("shock")
@RIG_OPTION
@click.option("--current-ma", type=float, required=True, help="Shock current.")
@click.option("--duration-s", type=float, default=1.0, show_default=True)
@click.option("--count", type=int, default=1, show_default=True, help="Shocks to give.")
@click.option("--interval-s", type=float, default=5.0, show_default=True, help="Onset to onset.")
@click.option(
    "--into-load",
    is_flag=True,
    help="Required: the shock generator's output is connected to a test load, not an animal.",
)
@FAST_OPTION
def shock(
    rig_path: Path | None,
    current_ma: float,
    duration_s: float,
    count: int,
    interval_s: float,
    into_load: bool,
    fast: bool,
) -> None:
    """Deliver shocks into a test load, within the rig file's safety limits."""
    from rig.files.rigfile import load_rig
    from rig.run.output_test import run_output_test, shock_test_plan

    if not into_load:
        raise click.UsageError(
            "a shock test needs --into-load: connect the output to a test load first"
        )
    rig = load_rig(rig_path)
    plan = shock_test_plan(rig, current_ma, duration_s, count, interval_s)
    click.echo(
        f"[{rig.mode}] rig {rig.name}: {count} x {current_ma:g} mA for {duration_s:g} s into a load"
    )
    _report(run_output_test("shock", plan, _speed(rig, fast)))


@click.command("calibrate-speaker")
@click.option(
    "--rig", "rig_path", type=click.Path(path_type=Path), required=True, help="Rig file to write."
)
@click.option(
    "--frequency-hz",
    "frequencies",
    type=float,
    multiple=True,
    help="A frequency to calibrate (repeat; default: the rig file's calibrated frequencies).",
)
@click.option("--volts", type=float, default=0.1, show_default=True, help="RMS volts played.")
@click.option("--duration-s", type=float, default=3.0, show_default=True)
@FAST_OPTION
def calibrate_speaker(
    rig_path: Path, frequencies: tuple[float, ...], volts: float, duration_s: float, fast: bool
) -> None:
    """Play each frequency at a fixed voltage, ask the level a meter reads (dB SPL) and write
    the points into the rig file's speaker.calibration (others kept; old file kept as .bak)."""
    from rig.files.rigfile import CalibrationPoint, load_rig
    from rig.run.output_test import calibration_tone_plan, run_output_test
    from rig.run.speaker_calibration import write_speaker_calibration

    rig = load_rig(rig_path)
    wanted = frequencies or tuple(p.frequency_hz for p in rig.speaker.calibration if p.frequency_hz)
    if not wanted:
        raise click.UsageError("give --frequency-hz (the rig file has no calibrated tones yet)")
    plans = [calibration_tone_plan(rig, f, volts, duration_s) for f in wanted]  # all checked
    measured = []
    for f, plan in zip(wanted, plans, strict=True):
        while True:
            click.echo(f"[{rig.mode}] playing {f:g} Hz at {volts:g} V RMS for {duration_s:g} s")
            result = run_output_test("calibration", plan, _speed(rig, fast))
            if not result.ok:
                _report(result)
            answer = click.prompt(
                f"measured dB SPL at {f:g} Hz (r: play again, s: skip)", type=str
            ).strip()
            if answer.lower() == "r":
                continue
            if answer.lower() == "s":
                break
            try:
                level = float(answer)
            except ValueError:
                click.echo(f"not a number: {answer!r}", err=True)
                continue
            measured.append(CalibrationPoint(frequency_hz=f, volts=volts, level_db=level))
            break
    if not measured:
        click.echo("nothing measured: the rig file is unchanged")
        return
    new = write_speaker_calibration(rig_path, measured)
    for p in new.speaker.calibration:
        click.echo(f"  {p.frequency_hz:>8g} Hz  {p.volts:.4g} V  {p.level_db:.1f} dB SPL")
    click.echo(f"{rig_path}: speaker.calibration written ({len(measured)} measured)")


RIG_TOOLS = (output_test, calibrate_speaker)
