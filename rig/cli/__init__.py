"""The ``rig`` command line (design section 7).

Exit codes: 0 done, 1 the session aborted or a device failed, 2 bad input. Bad input prints
``FILE: field.path: message`` lines on stderr, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click

from rig.cli.rigtools import RIG_OPTION, RIG_TOOLS
from rig.cli.terminal import echo, reserve_standard_descriptors
from rig.data.integrity import DamagedFrames
from rig.files.inputfile import InputError, error_line, one_line
from rig.ports import DaqNotAvailable, DeviceBusy, DeviceError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _err(text: str) -> None:
    echo(text, err=True)


def handles_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Map the app's errors to the contract's exit codes and one-line messages."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            _err(exc.report())
            sys.exit(EXIT_BAD_INPUT)
        except DamagedFrames as exc:  # frames a command needed cannot be read as written
            _damage_lines("damaged frames", exc.damage)
            _err("error: damaged frames (`rig verify SESSION` lists them all)")
            sys.exit(EXIT_FAILED)
        except (DaqNotAvailable, DeviceBusy) as exc:
            _err(f"error: {one_line(str(exc))}")
            sys.exit(EXIT_FAILED)
        except DeviceError as exc:
            _err(f"error: a device failed: {one_line(str(exc))}")
            sys.exit(EXIT_FAILED)

    return wrapper


# No dir_okay=False: the file reader reports a folder as ``FILE: is a directory, not a file``
# like every other bad input, where click would print its usage text.
PROTOCOL = click.argument("protocol", type=click.Path(path_type=Path))
RIG = RIG_OPTION  # the one definition, shared with the rig set-up commands


def out_option(help_text: str) -> Callable:
    """``--out``: the folder sessions are written into (``sessions`` by default)."""
    return click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("sessions"),
        show_default=True,
        help=help_text,
    )


def analysis_options(command: Callable) -> Callable:
    """``--traces``, ``--seed`` and ``--shuffles``: the choices of ``rig analyze`` that change
    its results (shared by ``rig cohort``, which passes them on)."""
    options = [
        click.option(
            "--traces",
            default="suite2p",
            show_default=True,
            help="suite2p (each SESSION/suite2p), suite2p:DIR (DIR/SESSION-NAME), or footprints "
            "(simulated sessions: the truth footprints, extraction bypassed).",
        ),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option(
            "--shuffles",
            type=click.IntRange(1, 1000),
            default=None,
            show_default="20",
            help="Null datasets (the CRF method's 100 give the same thresholds, five times "
            "slower).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


PROTOCOL_OPTIONAL = click.argument(
    "protocol", type=click.Path(path_type=Path), required=False, default=None
)
SESSION = click.argument("session", type=click.Path(path_type=Path))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fear-rig")
def main() -> None:
    """fear-rig: auditory fear conditioning under a two-photon microscope."""
    reserve_standard_descriptors()


@main.command()
@PROTOCOL
@RIG
@handles_errors
def validate(protocol: Path, rig_path: Path | None) -> None:
    """Check a protocol (against a rig's safety limits) and summarise it."""
    from rig.run.plan import summary_lines
    from rig.run.session import prepare_session

    plan = prepare_session(protocol, rig_path)
    echo(f"{protocol}: valid")
    for line in summary_lines(plan):
        echo(line)


@main.command()
@PROTOCOL
@RIG
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handles_errors
def plan(protocol: Path, rig_path: Path | None, as_json: bool) -> None:
    """Print the compiled timeline with totals (duration, shocks, frames, disk)."""
    from rig.run.plan import plan_dict, plan_table
    from rig.run.session import prepare_session

    session_plan = prepare_session(protocol, rig_path)
    if as_json:
        echo(json.dumps(plan_dict(session_plan), indent=2))
    else:
        echo(plan_table(session_plan))


@main.command()
def schema() -> None:
    """Print the JSON Schema of the protocol format."""
    from rig.files.protocol import protocol_json_schema

    echo(json.dumps(protocol_json_schema(), indent=2))


@main.command()
@PROTOCOL
@RIG
@out_option("Folder that receives the session folder.")
@click.option("--animal", default=None, help="Animal ID (required on a LIVE rig).")
@click.option(
    "--speed",
    type=click.FloatRange(0.01, 1000),
    default=None,
    help="X times real time (simulated rig).",
)
@click.option("--fast", is_flag=True, help="As fast as the machine allows (simulated rig).")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where simulated animals keep what they learned (default: OUT/.sim-animals).",
)
@click.option(
    "--subject",
    "subject_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Subject file (YAML: subject_id, sex, date_of_birth or age, strain, ...).",
)
@click.option("--experimenter", multiple=True, help="Who runs it, as 'Last, First' (repeatable).")
@click.option("--institution", default=None, help="Institution (NWB metadata).")
@click.option("--lab", default=None, help="Lab (NWB metadata).")
@click.option("--notes", default=None, help="Notes on this session.")
@handles_errors
def run(
    protocol: Path,
    rig_path: Path | None,
    out_dir: Path,
    animal: str | None,
    speed: float | None,
    fast: bool,
    state_dir: Path | None,
    subject_path: Path | None,
    experimenter: tuple[str, ...],
    institution: str | None,
    lab: str | None,
    notes: str | None,
) -> None:
    """Run a session; prints the session folder on standard output as soon as it is made
    and again as the last line."""
    from rig.cli.progress import ProgressDisplay
    from rig.cli.stop_signals import session_signals
    from rig.files.subject import load_subject, session_metadata
    from rig.run.abort import Abort
    from rig.run.plan import warnings
    from rig.run.session import prepare_session, run_session

    if fast and speed is not None:
        raise click.UsageError("give --speed or --fast, not both")
    abort = Abort()  # before anything is built: a signal now ends the session before it arms
    # From the first line to the last, so no signal finds its default action (SIGHUP's and
    # SIGQUIT's end the process) at any moment of the session.
    with session_signals(abort):
        plan = prepare_session(protocol, rig_path)
        subject = load_subject(subject_path) if subject_path is not None else None
        metadata = session_metadata(
            subject, experimenter=list(experimenter), institution=institution, lab=lab, notes=notes
        )
        animal = _animal(animal, subject, subject_path)
        if not plan.rig.simulated:
            if fast or speed is not None:
                raise click.UsageError("--speed and --fast are for the simulated rig only")
            if not animal:
                raise click.UsageError("a LIVE session needs --animal or --subject")
        if abort.requested:  # nothing built, nothing armed, no session folder yet
            _err(f"aborted: {abort.reason} before the session started")
            sys.exit(EXIT_FAILED)
        animal = animal or "sim-mouse"
        _err(
            f"[{plan.rig.mode}] rig {_name(plan.rig.name)}: {plan.protocol.protocol} "
            f"for animal {_name(animal)}"
        )
        for warning in warnings(plan):
            _err(f"WARNING: {warning}")
        display = ProgressDisplay(enabled=True)

        def connect(runner: Any) -> None:
            # the folder on stdout the moment it exists: a session killed later is found
            echo(str(runner.recorder.folder.path))
            display.connect(runner)

        with display:
            folder, result = run_session(
                plan,
                out_dir,
                animal,
                None if fast else (speed or 1.0),
                connect,
                state_dir,
                abort,
                subject=subject,
                metadata=metadata,
            )
        _err(
            f"{result.status}: {result.reason} ({result.duration_s:.1f} s, "
            f"{result.shocks_delivered} shocks)"
        )
        for name, acc in result.accounting.items():
            problems = acc.problems()
            _err(
                f"  {name}: {acc.written} frames written"
                + (f"; {'; '.join(problems)}" if problems else "")
            )
        echo(str(folder))
    sys.exit(EXIT_OK if result.status == "complete" else EXIT_FAILED)


def _scoring_list(scorings: list[dict[str, Any]], mode: str, as_json: bool) -> None:
    """``rig score --list``: one line per stored scoring, the current one marked."""
    if as_json:
        echo(json.dumps(scorings, indent=2))
        return
    echo(f"[{mode}] {len(scorings)} scoring(s); * = current (rig info, exports, report)")
    for r in scorings:
        threshold = r.get("threshold")
        value = f"{threshold:.4g}" if isinstance(threshold, (int, float)) else "-"
        percent = r.get("percent_frozen")
        frozen = f"{percent:5.1f}%" if isinstance(percent, (int, float)) else "    -"
        echo(
            f"{'*' if r['current'] else ' '} {one_line(str(r['name'])):<14} "
            f"{r.get('scored_utc') or '-':<28} threshold {value:<10}"
            f"{' (auto)' if r.get('threshold_auto') else '       '} "
            f"min {r.get('min_freeze_s')} s, motion {one_line(str(r.get('motion')))}, "
            f"{frozen} frozen"
        )


def _animal(animal: str | None, subject: Any, subject_path: Path | None) -> str | None:
    """The animal's id: ``--animal``, else the subject file's ``subject_id``; both given must
    agree (a session filed under one animal and described as another is bad input)."""
    from rig.files.inputfile import Problem

    if subject is None:
        return animal
    subject_id = subject.subject.subject_id
    if animal and animal != subject_id:
        problem = Problem("subject_id", f"{subject_id!r} is not --animal {animal!r}")
        raise InputError(str(subject_path), [problem])
    return subject_id


@main.command()
@SESSION
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handles_errors
def info(session: Path, as_json: bool) -> None:
    """Summarise a session: status, trials, shocks, frame accounting."""
    from rig.data.folder import SessionFolder
    from rig.exports.info import session_info
    from rig.exports.info_text import info_text

    data = session_info(SessionFolder.open(session))
    echo(json.dumps(data, indent=2) if as_json else info_text(data))


def _region(text: str, option: str) -> dict[str, float]:
    """``x,y,width,height`` in pixels, checked: :class:`InputError` with one line per problem
    (``--roi: width_px: ...``)."""
    from pydantic import ValidationError

    from rig.files.freezing import RectRegion
    from rig.files.inputfile import Problem, problems_from_validation

    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        problem = Problem("", f"{text!r}: expected x,y,width,height in pixels")
        raise InputError(option, [problem]) from None
    region = {"x_px": x, "y_px": y, "width_px": w, "height_px": h}
    try:
        RectRegion.model_validate(region)
    except ValidationError as exc:
        raise InputError(option, problems_from_validation(exc)) from None
    return region


@main.command()
@SESSION
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="Motion threshold (fraction of the ROI); default: the rig file's, or auto.",
)
@click.option(
    "--min-freeze-s", type=click.FloatRange(0.05, 60), default=None, help="Shortest freezing bout."
)
@click.option(
    "--roi",
    default=None,
    help="Region of interest x,y,width,height (recomputes the index from the video).",
)
@click.option(
    "--exclude",
    multiple=True,
    help="Exclusion rectangle x,y,width,height (repeatable; e.g. a cable).",
)
@click.option("--name", default=None, help="Name this scoring (default: score-N).")
@click.option(
    "--keep-current",
    is_flag=True,
    help="Store this scoring without making it the one rig info and the exports use.",
)
@click.option(
    "--use", "use", default=None, help="Make the stored scoring NAME current (nothing computed)."
)
@click.option("--list", "list_", is_flag=True, help="List the stored scorings.")
@click.option("--plot", is_flag=True, help="Also write freezing.png in the session folder.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handles_errors
def score(
    session: Path,
    threshold: float | None,
    min_freeze_s: float | None,
    roi: str | None,
    exclude: tuple[str, ...],
    name: str | None,
    keep_current: bool,
    use: str | None,
    list_: bool,
    plot: bool,
    as_json: bool,
) -> None:
    """Score freezing again from the stored motion index (a new, named scoring; every earlier
    one is kept and `--use NAME` returns to it); per-trial and per-epoch results."""
    from rig.behaviour.rescore import freezing_summary, score_session
    from rig.data.folder import SessionFolder

    folder = SessionFolder.open(session)
    mode = "SIMULATED" if folder.attrs.simulated else "LIVE"
    if list_ or use:
        if use:
            folder.set_current_scoring(use)
        _scoring_list(folder.scorings(), mode, as_json)
        return
    try:
        record = score_session(
            folder,
            threshold=threshold,
            min_freeze_s=min_freeze_s,
            roi=_region(roi, "--roi") if roi else None,
            exclude=[_region(e, "--exclude") for e in exclude] if exclude else None,
            name=name,
            make_current=not keep_current,
        )
    except ValueError as exc:
        _err(f"{folder}: {exc}")
        sys.exit(EXIT_BAD_INPUT)
    rows = freezing_summary(record)
    if as_json:
        echo(json.dumps(record, indent=2))
    else:
        auto = " (auto)" if record["threshold_auto"] else ""
        step = record.get("step_threshold")
        step_text = f", step threshold {step:.4g}" if step is not None else ""
        kept = "stored, not current" if keep_current else "now current"
        echo(f"[{mode}] scoring {record['name']} ({kept}; `rig score --list` shows all)")
        echo(
            f"threshold {record['threshold']:.4g}{auto}{step_text}, "
            f"min freeze {record['min_freeze_s']:g} s, "
            f"{record['percent_frozen']:.1f}% of the session frozen"
        )
        epochs = ["pre", "cs", "us", "iti"]
        if any(r.get("percent_trace") is not None for r in rows):  # trace conditioning
            epochs.insert(2, "trace")
        head = " ".join(f"{(e.upper() if e != 'pre' else e) + ' %':>7}" for e in epochs)
        echo(f"{'#':>3}  {'phase':<14} {'CS':<10} {head}")
        for r in rows:
            cells = [r.get(f"percent_{e}") for e in epochs]
            text = " ".join(f"{c:7.1f}" if c is not None else f"{'-':>7}" for c in cells)
            echo(f"{r['index'] + 1:>3}  {r['phase']:<14} {r['cs']:<10} {text}")
    if plot:
        from rig.exports.freezing_report import plot_freezing

        _err(f"report: {plot_freezing(folder)}")


@main.command()
@SESSION
@handles_errors
def upgrade(session: Path) -> None:
    """Move a session written before fear-rig's OME-Zarr layout to it (napari, ome-zarr and
    yaozarrs then open session.zarr at its root). Renames folders; no frame is rewritten."""
    from rig.data.folder import SessionFolder

    folder = SessionFolder.open(session)
    changes = folder.upgrade_layout()
    for line in changes:
        echo(line)
    echo(f"{folder}: {'upgraded' if changes else 'already current'}")


@main.command()
@SESSION
@click.option(
    "--force",
    is_flag=True,
    help="Recover a session that reads as running but whose writer cannot be checked "
    "(written on another host). Never while it is really being written.",
)
@handles_errors
def recover(session: Path, force: bool) -> None:
    """Make an interrupted session consistent (status ``recovered``); no frame is dropped."""
    from rig.data.finalize import SessionStillRunning, recover_session
    from rig.data.folder import SessionFolder

    folder = SessionFolder.open(session)
    if force and folder.status == "running" and folder.writer() == "unknown":
        _err(
            f"WARNING: {_name(folder)}: recovering a session that reads as running "
            f"(pid {folder.attrs.pid} on {_name(folder.attrs.host)}): if that process is still "
            "writing it, the two will disagree"
        )
    try:
        recovery = recover_session(folder, force=force)
    except SessionStillRunning:
        _err(
            f"{_name(folder)}: the session is still being written by a live process "
            "(`rig recover --force` if its writer runs on another host and is gone)"
        )
        sys.exit(EXIT_FAILED)
    except OSError as exc:
        _err(f"{_name(folder)}: cannot recover: {error_line(exc)} (nothing lost: run it again)")
        sys.exit(EXIT_FAILED)
    if recovery.attrs is None:
        echo(f"{_name(folder)}: status is {recovery.status}; nothing to recover")
        return
    for note in recovery.notes:
        _err(f"note: {one_line(note)}")
    for name, acc in (recovery.attrs.streams or {}).items():
        echo(f"  {name}: {acc['written']} frames kept, {acc['edges']} edges")
    echo(f"{_name(folder)}: recovered")


@main.command()
@SESSION
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handles_errors
def verify(session: Path, as_json: bool) -> None:
    """Check every stored frame against its checksums; exit 1 if any is missing, empty or
    corrupt (listed by stream and frame range)."""
    from rig.data.folder import SessionFolder
    from rig.exports.info import verify_session
    from rig.exports.info_text import verify_text

    report = verify_session(SessionFolder.open(session))
    echo(json.dumps(report, indent=2) if as_json else verify_text(report))
    sys.exit(EXIT_OK if report["intact"] else EXIT_FAILED)


@main.command()
@SESSION
@click.option(
    "--csv", "as_csv", is_flag=True, help="frames.csv, events.csv, trials.csv, phases.csv."
)
@click.option("--tiff", is_flag=True, help="imaging.tif: the two-photon frames (suite2p reads it).")
@click.option("--nwb", is_flag=True, help="session.nwb: frames, trials, stimuli, freezing.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),  # a file here is reported in one line by rig.exports.csv_tiff
    default=None,
    help="Folder for the exported files (default: SESSION/export).",
)
@click.option("--bigtiff", is_flag=True, help="Always write BigTIFF (default: only above 4 GB).")
@click.option("--compress", is_flag=True, help="gzip the frames in the NWB file (slower).")
@click.option(
    "--allow-damaged",
    is_flag=True,
    help="Export even with damaged frames: they become zeros, listed in NAME.damaged.csv "
    "beside the export.",
)
@handles_errors
def export(
    session: Path,
    as_csv: bool,
    tiff: bool,
    nwb: bool,
    out_dir: Path | None,
    bigtiff: bool,
    compress: bool,
    allow_damaged: bool,
) -> None:
    """Export a session for analysis tools; prints each written file's path."""
    from rig.data.folder import SessionFolder
    from rig.data.integrity import DamagedFrames

    if not (as_csv or tiff or nwb):
        raise click.UsageError("give at least one of --csv, --tiff, --nwb")
    folder = SessionFolder.open(session)
    if as_csv:
        from rig.exports.csv_tiff import export_csv

        for path in export_csv(folder, out_dir):
            echo(str(path))
    try:
        if tiff:
            from rig.exports.csv_tiff import export_tiff

            _exported(folder, export_tiff(folder, out_dir, bigtiff, allow_damaged=allow_damaged))
        if nwb:
            from rig.exports.nwb import export_nwb

            _exported(folder, export_nwb(folder, out_dir, compress, allow_damaged=allow_damaged))
    except DamagedFrames as exc:
        _damage_lines(folder, exc.damage)
        _err(
            f"{_name(folder)}: refusing to export damaged frames (`rig verify` lists them all; "
            "--allow-damaged writes them as zeros and lists them beside the export)"
        )
        sys.exit(EXIT_FAILED)


def _damage_lines(folder: Any, damage: list) -> None:
    """One line per damaged range (at most :data:`rig.exports.info_text.MAX_DAMAGE_LINES`), on
    stderr."""
    from rig.data.integrity import merge_ranges
    from rig.exports.info_text import damage_lines

    for line in damage_lines([d.to_dict() for d in merge_ranges(damage)], f"{_name(folder)}: "):
        _err(line)


def _exported(folder: Any, export: Any) -> None:
    echo(str(export.path))
    if export.damage_list is not None:
        _damage_lines(folder, export.damage)
        _err(f"WARNING: damaged frames written as zeros, listed in {export.damage_list}")


def _name(value: Any) -> str:
    """A path or name from a session or a user, safe to print in one line."""
    return one_line(str(value))


@main.command()
@SESSION
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--allow-mismatch",
    is_flag=True,
    help="Attach even when the frame count differs from the recorded frame-clock edges.",
)
@handles_errors
def attach(session: Path, files: tuple[Path, ...], allow_mismatch: bool) -> None:
    """Import microscope-written TIFFs (in order) as the session's two-photon stream."""
    from rig.data.attach import CountMismatch, attach_tiffs
    from rig.data.folder import SessionFolder

    folder = SessionFolder.open(session)
    try:
        record = attach_tiffs(folder, list(files), allow_mismatch=allow_mismatch)
    except CountMismatch as exc:
        _err(f"{folder}: {exc}")
        sys.exit(EXIT_FAILED)
    mismatch = record["mismatch"]
    echo(
        f"{folder}: attached {record['frames']} frames from {len(record['files'])} file(s) "
        f"to {record['edges']} frame-clock edges"
        + (f" (MISMATCH: {mismatch['message']})" if mismatch else "")
    )


@main.command()
@RIG
@click.option(
    "--protocol",
    "protocol",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Check rates and disk space for this protocol (default: 30 Hz, --minutes long).",
)
@click.option(
    "--minutes",
    type=click.FloatRange(1, 24 * 60),
    default=30.0,
    show_default=True,
    help="Without --protocol: the session length the disk check sizes for.",
)
@out_option("Where sessions will be written (its free space is checked).")
@click.option("--verbose", "-v", is_flag=True, help="Also print what the drivers logged.")
@handles_errors
def selftest(
    rig_path: Path | None, protocol: Path | None, minutes: float, out_dir: Path, verbose: bool
) -> None:
    """Check the rig: devices answer, shocker read-back, clocks, frames, disk. Exit 1 on a fail."""
    from rig.files.rigfile import load_rig
    from rig.run.selftest import run_selftest, table
    from rig.run.session import prepare_session

    plan = prepare_session(protocol, rig_path) if protocol is not None else None
    rig = plan.rig if plan is not None else load_rig(rig_path)
    report = run_selftest(rig, plan, out_dir, session_s=minutes * 60)
    echo(table(report))
    for line in report.log if verbose else ():
        _err(f"log: {line}")
    if not report.ok:
        _err(f"error: {report.summary()}")
        sys.exit(EXIT_FAILED)
    _err(report.summary())


@main.command()
@click.argument("sessions", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@analysis_options
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=None,
    show_default="the cores this process may use",
    help="Processes for the model fits (results do not depend on it).",
)
@click.option("--json", "as_json", is_flag=True, help="Print summary.json instead of a table.")
@handles_errors
def analyze(
    sessions: tuple[Path, ...],
    out_dir: Path,
    traces: str,
    seed: int,
    shuffles: int | None,
    jobs: int | None,
    as_json: bool,
) -> None:
    """Find one animal's fear-memory ensemble and hub network across its sessions."""
    from rig.analysis.budget import usable_cores
    from rig.analysis.connectivity import SHUFFLES
    from rig.analysis.pipeline import analyze, write_outputs
    from rig.analysis.report import summary_text
    from rig.analysis.traces import TraceSource

    source = TraceSource.parse(traces)
    result = analyze(
        sessions,
        source,
        seed=seed,
        shuffles=SHUFFLES if shuffles is None else shuffles,
        n_jobs=usable_cores() if jobs is None else jobs,
        progress=_err,
    )
    write_outputs(result, out_dir)
    text = (
        json.dumps(result.summary, indent=2) if as_json else summary_text(result.summary, out_dir)
    )
    click.echo(text)


@main.command()
@SESSION
@click.option("--diameter", type=click.FloatRange(2, 200), default=None, help="Cell diameter, px.")
@click.option("--keep-tiff", is_flag=True, help="Keep the TIFF suite2p read.")
@handles_errors
def extract(session: Path, diameter: float | None, keep_tiff: bool) -> None:
    """Run suite2p on the session's two-photon frames (extra: fear-rig[suite2p])."""
    from rig.analysis.extract import Suite2pMissing, extract_session

    try:
        click.echo(str(extract_session(session, diameter_px=diameter, keep_tiff=keep_tiff)))
    except Suite2pMissing as exc:
        _err(f"error: {exc}")
        sys.exit(EXIT_FAILED)


@main.command()
@click.argument("cohort_dir", metavar="DIR", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for the tables, figures, analyses and finished tasks (default: DIR/cohort).",
)
@click.option(
    "--cluster",
    default=None,
    metavar="ADDRESS",
    help="A running dask scheduler (tcp://HOST:8786); default: a local cluster.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes of the local cluster (default: the machine's cores).",
)
@analysis_options
@click.option(
    "--export",
    "exports",
    multiple=True,
    type=click.Choice(["csv", "tiff", "nwb"]),
    help="Also export every session (repeatable), as rig export does.",
)
@click.option("--no-analysis", is_flag=True, help="Score (and export) only.")
@click.option("--json", "as_json", is_flag=True, help="Print cohort.json instead of a report.")
@handles_errors
def cohort(
    cohort_dir: Path,
    out_dir: Path | None,
    cluster: str | None,
    workers: int | None,
    traces: str,
    seed: int,
    shuffles: int | None,
    exports: tuple[str, ...],
    no_analysis: bool,
    as_json: bool,
) -> None:
    """Score, analyse and export a folder of animals and days on dask.distributed; the cohort's
    tables, group statistics and figures. Exit 1 when a task failed."""
    from rig.analysis.connectivity import SHUFFLES
    from rig.analysis.traces import TraceSource
    from rig.cli.cohort_progress import TaskProgress
    from rig.cohort.execute import ClusterUnavailable
    from rig.cohort.pipeline import Settings, run_cohort
    from rig.cohort.report import cohort_text

    if cluster and workers:
        raise click.UsageError("--workers sizes the local cluster; a --cluster has its own")
    TraceSource.parse(traces)  # a bad --traces is bad input before anything runs
    settings = Settings(
        traces=traces,
        seed=seed,
        shuffles=SHUFFLES if shuffles is None else shuffles,
        analyze=not no_analysis,
        exports=tuple(dict.fromkeys(exports)),
    )
    try:
        run = run_cohort(
            cohort_dir, out_dir, settings, cluster, workers or _cores(), TaskProgress()
        )
    except ClusterUnavailable as exc:
        _err(f"error: cannot reach the dask scheduler at {exc}")
        sys.exit(EXIT_FAILED)
    click.echo(json.dumps(run.summary(), indent=2) if as_json else cohort_text(run))
    sys.exit(EXIT_OK if run.outcome.ok else EXIT_FAILED)


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


COMMANDS_ENTRY_POINT_GROUP = "rig.commands"


def _unloadable_command(name: str, error: Exception) -> click.Command:
    """Stands in for a plugin command that failed to load: says why when it is run."""

    @click.command(name, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        _err(f"error: the {name!r} command could not be loaded: {one_line(str(error))}")
        sys.exit(EXIT_FAILED)

    command.help = f"(could not be loaded: {one_line(str(error))})"
    return command


def add_plugin_commands(group: click.Group) -> None:
    """Add the click commands other packages register under ``rig.commands`` (e.g. ``rig gui``);
    the same plugin pattern as drivers. A built-in command is never replaced."""
    for ep in entry_points(group=COMMANDS_ENTRY_POINT_GROUP):
        if ep.name in group.commands:
            continue
        try:
            command = ep.load()
        except Exception as exc:  # a broken plugin must not take the other commands down
            command = _unloadable_command(ep.name, exc)
        group.add_command(command, ep.name)


def add_with_errors_handled(group: click.Group, command: click.Command) -> None:
    """Add ``command`` (and its subcommands) with :func:`handles_errors` around each."""
    if command.callback is not None:
        command.callback = handles_errors(command.callback)
    for sub in getattr(command, "commands", {}).values():
        add_with_errors_handled(command, sub)  # type: ignore[arg-type]
    if group is main:
        group.add_command(command)


for _command in RIG_TOOLS:
    add_with_errors_handled(main, _command)
add_plugin_commands(main)
