"""Every input file and argument is bounded (issue 17, part 5).

Each hostile input gives its documented exit code and one clear line per problem, no
traceback, in bounded time and memory. The cases that hung or exhausted memory on main run
in a subprocess under a deadline and an address-space limit, so a regression fails the test
instead of taking the machine down.
"""

from __future__ import annotations

import itertools
import os
import resource
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import SMALL_RIG

DEADLINE_S = 60
MEMORY_BYTES = 3 * 2**30  # far above what a validate needs, far below what the attacks asked


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def rig_cli(*args: str | Path, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    """``rig ARGS`` in its own process, under the deadline and the memory limit."""
    return subprocess.run(
        [sys.executable, "-m", "rig.cli", *map(str, args)],
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        preexec_fn=_limited,
    )


def assert_one_line(result, prefix: str, code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith(prefix)]
    assert len(lines) == 1, result.stderr
    return lines[0]


# ------------------------------------------------------------------ files that are not files


def test_dev_zero_as_protocol_or_rig_is_one_line():
    assert_one_line(rig_cli("validate", "/dev/zero"), "/dev/zero: is a character device")
    demo = Path(__file__).parents[2] / "protocols" / "demo.yaml"
    assert_one_line(rig_cli("validate", demo, "--rig", "/dev/zero"), "/dev/zero: is a character")


def test_a_fifo_nobody_writes_is_refused_not_waited_for(tmp_path):
    fifo = tmp_path / "protocol.yaml"
    os.mkfifo(fifo)
    assert_one_line(rig_cli("validate", fifo), f"{fifo}: is a pipe (FIFO)")


def test_a_long_pipe_on_stdin_is_refused(tmp_path):
    feeder = subprocess.Popen(["yes", "protocol: x"], stdout=subprocess.PIPE)
    try:
        result = rig_cli("validate", "/dev/stdin", stdin=feeder.stdout)
    finally:
        feeder.kill()
        feeder.wait()
    assert_one_line(result, "/dev/stdin: is a pipe")


def test_a_protocol_linked_to_a_device_is_refused(tmp_path):
    link = tmp_path / "link.yaml"
    link.symlink_to("/dev/urandom")
    assert_one_line(rig_cli("validate", link), f"{link}: is a character device")


# ------------------------------------------------------------------ compiled sessions bounded

KINDS_PROTOCOL = """\
protocol: many-kinds
version: 1
seed: 1
stimuli:
  tone: {{type: tone, frequency_hz: 7500, level_db: 70, duration_s: 0.1}}
phases:
  - name: many
    trials: [{entries}]
    order: pseudorandom
    max_consecutive: 2
    iti_s: 0.1
"""


def _kinds(tmp_path: Path, kinds: int, repeat: int) -> Path:
    entries = ", ".join([f"{{cs: tone, repeat: {repeat}}}"] * kinds)
    path = tmp_path / f"kinds-{kinds}x{repeat}.yaml"
    path.write_text(KINDS_PROTOCOL.format(entries=entries), encoding="utf-8")
    return path


def test_100_kinds_x_1000_is_refused_at_once_naming_the_phase(tmp_path):
    """On main: past a minute in the pseudorandom ordering, then 100 000 trials compiled."""
    path = _kinds(tmp_path, 100, 1000)
    assert path.stat().st_size < 4000
    line = assert_one_line(rig_cli("validate", path), f"{path}: phases[0].trials: ")
    assert "100000 trials; a session has at most 10000" in line


def test_ten_million_trials_are_refused_in_bounded_memory(tmp_path):
    phases = "\n".join(
        f"  - {{name: p{i}, trials: ["
        + ", ".join(["{cs: tone, repeat: 1000}"] * 100)
        + "], iti_s: 0.1}"
        for i in range(100)
    )
    path = tmp_path / "huge.yaml"
    path.write_text(
        KINDS_PROTOCOL.split("phases:")[0].format() + "phases:\n" + phases + "\n", encoding="utf-8"
    )
    line = assert_one_line(rig_cli("validate", path), f"{path}: phases[0].trials: ")
    assert "10000000 trials" in line


def test_the_most_trials_allowed_validate_in_bounded_time(tmp_path):
    """100 kinds x 100 in pseudorandom order: 10 000 trials (the limit), ordered by an
    algorithm, not retries: well inside the deadline (under a second of ordering)."""
    path = _kinds(tmp_path, 100, 100)
    result = rig_cli("validate", path, "--rig", SMALL_RIG)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "phase     many: " in result.stdout and ", 10000 trials" in result.stdout


def test_a_day_at_a_megahertz_is_refused_before_the_verifier_reads_it(tmp_path):
    """86 400 s at 1 MHz is 8.6e10 samples; on main the verifier started reading them."""
    rig = tmp_path / "fast-daq.yaml"
    rig.write_text(
        SMALL_RIG.read_text(encoding="utf-8")
        .replace("sample_rate_hz: 20000", "sample_rate_hz: 1000000")
        .replace("max_session_s: 14400", "max_session_s: 86400"),
        encoding="utf-8",
    )
    protocol = tmp_path / "day.yaml"
    protocol.write_text(
        "protocol: day\nversion: 1\nseed: 1\n"
        "stimuli: {tone: {type: tone, frequency_hz: 7500, level_db: 70, duration_s: 1}}\n"
        "phases: [{name: rest, duration_s: 86000}, {name: t, trials: [{cs: tone}]}]\n",
        encoding="utf-8",
    )
    line = assert_one_line(rig_cli("validate", protocol, "--rig", rig), f"{protocol}: phases: ")
    assert "samples of the DAQ clock" in line


# ------------------------------------------------------------------ pseudorandom ordering


def _reference_order(kinds: list[int], max_run: int, rng: np.random.Generator) -> list[int]:
    """The ordering as main computed it (a feasibility scan of every kind for every kind at
    every step): the new one must give the very same orders, only faster."""
    remaining: dict[int, int] = {}
    for k in kinds:
        remaining[k] = remaining.get(k, 0) + 1
    order: list[int] = []

    def feasible(pick: int, run: int) -> bool:
        left = dict(remaining)
        left[pick] -= 1
        total = sum(left.values())
        if total == 0:
            return True
        return all(
            n <= (total - n + 1) * max_run - (run if k == pick else 0) for k, n in left.items()
        )

    while any(remaining.values()):
        last = order[-1] if order else None
        run = 0
        for k in reversed(order):
            if k != last:
                break
            run += 1
        candidates = [
            k
            for k, n in sorted(remaining.items())
            if n and not (k == last and run >= max_run) and feasible(k, run + 1 if k == last else 1)
        ]
        weights = np.array([remaining[k] for k in candidates], float)
        choice = candidates[int(rng.choice(len(candidates), p=weights / weights.sum()))]
        order.append(choice)
        remaining[choice] -= 1
    return order


@st.composite
def orderable(draw):
    max_run = draw(st.integers(1, 4))
    counts = draw(st.lists(st.integers(1, 15), min_size=1, max_size=6))
    others = sum(counts) - max(counts)
    if max(counts) > max_run * (others + 1):  # what validation refuses
        counts[counts.index(max(counts))] = max_run * (others + 1)
    return counts, max_run, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=300, deadline=None)
@given(case=orderable())
def test_pseudorandom_order_matches_the_reference_and_its_rule(case):
    from rig.program.timeline import _pseudorandom

    counts, max_run, seed = case
    kinds = [k for k, n in enumerate(counts) for _ in range(n)]
    order = _pseudorandom(kinds, max_run, np.random.default_rng(seed))
    assert order == _reference_order(kinds, max_run, np.random.default_rng(seed))
    assert sorted(order) == kinds
    run = 1
    for a, b in itertools.pairwise(order):
        run = run + 1 if a == b else 1
        assert run <= max_run


# ------------------------------------------------------------------ session folders


def _copy(session: Path, tmp_path: Path) -> Path:
    copy = tmp_path / session.name
    shutil.copytree(session, copy)
    return copy


def test_a_session_file_linked_to_dev_zero_is_one_line(imaging_session, tmp_path):
    """On main: zarr read /dev/zero whole (MemoryError) for rig info and export."""
    session = _copy(imaging_session, tmp_path)
    chunk = session / "session.zarr" / "timing" / "video" / "timestamps_s" / "c" / "0"
    chunk.unlink()
    chunk.symlink_to("/dev/zero")
    for command in ("info", "export"):
        extra = ("--csv",) if command == "export" else ()
        assert_one_line(rig_cli(command, session, *extra), f"{chunk}: is not a regular file")


@pytest.mark.parametrize(
    ("damage", "field"),
    [
        (lambda text: text[: len(text) // 2], ""),  # truncated
        (
            lambda text: text.replace('"sample_rate_hz": 20000.0', '"sample_rate_hz": "fast"'),
            "sample_rate_hz: ",
        ),
        (
            lambda text: text.replace('"format_version": 2', '"format_version": [2]'),
            "format_version: ",
        ),
    ],
    ids=["truncated", "wrong type", "list for int"],
)
def test_malformed_root_attributes_are_one_line_per_problem(
    imaging_session, tmp_path, cli, damage, field
):
    session = _copy(imaging_session, tmp_path)
    attrs = session / "session.zarr" / "zarr.json"
    attrs.write_text(damage(attrs.read_text()))
    for command in ("info", "verify", "recover", "score"):
        result = cli(command, session)
        assert result.exit_code == 2, (command, result.output)
        assert result.stderr.startswith(f"{attrs}: {field}")


def test_score_on_an_unfinalised_session_is_bad_input(tmp_path, short_protocol, cli):
    from tests.rig.data.conftest import write_killed_session

    folder, _ = write_killed_session(tmp_path, short_protocol)
    result = cli("score", folder.path)  # on main: KeyError: 'device_index'
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"{folder.path}: status: the session was interrupted: run `rig recover {folder.path}` first"
    )


@pytest.mark.parametrize(
    ("args", "lines"),
    [
        (
            ["--roi", "nan,0,-5,10"],
            [
                "--roi: x_px: Input should be a finite number (got nan)",
                "--roi: width_px: Input should be greater than 0 (got -5.0)",
            ],
        ),
        (["--exclude", "1,1,1"], ["--exclude: '1,1,1': expected x,y,width,height in pixels"]),
        (
            ["--roi", "0,0,10,-inf"],
            ["--roi: height_px: Input should be a finite number (got -inf)"],
        ),
    ],
)
def test_score_regions_are_one_line_per_problem(demo_session, cli, args, lines):
    result = cli("score", demo_session, *args)  # on main: a 20-line pydantic dump
    assert result.exit_code == 2
    assert result.stderr.splitlines() == lines


# ------------------------------------------------------------------ names printed


@pytest.mark.parametrize("animal", ["a\nFORGED: complete", "\x1b[2J\x1b[Hcleared", "rtl\u202etxt"])
def test_names_are_escaped_when_printed(tmp_path, short_protocol, cli, animal):
    result = cli(
        "run", short_protocol, "--fast", "--rig", SMALL_RIG, "--out", tmp_path, "--animal", animal
    )
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output
    assert not any(line.startswith("FORGED") for line in result.output.splitlines())
    header = result.stderr.splitlines()[0]
    assert header.startswith("[SIMULATED] rig simulated-small:") and "for animal " in header
    info = cli("info", result.stdout.strip().splitlines()[-1])
    assert "\x1b" not in info.stdout and "\u202e" not in info.stdout
    (line,) = [ln for ln in info.stdout.splitlines() if ln.startswith("animal")]
    assert line == f"animal    {animal.encode('unicode_escape').decode()}"


# ------------------------------------------------------------------ TIFFs for attach


def _frame_clock_copy(frame_clock_session: Path, tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return _copy(Path(frame_clock_session), tmp_path)


def test_corrupt_tiffs_are_one_line(frame_clock_session, tmp_path, cli):
    """Bytes changed in the tags and IFDs of a 150-page TIFF, 80 ways (on main some were an
    IndexError, a TypeError or a MemoryError traceback): each is refused in one line (exit 2)
    or, when tifffile reads it as fewer pages, a count mismatch (exit 1); nothing attached."""
    import random

    good = tmp_path / "good.tif"
    tifffile.imwrite(good, np.zeros((150, 32, 48), np.uint16))
    raw = good.read_bytes()
    ifds = len(raw) - 150 * 32 * 48 * 2  # tags and IFDs, around the pixel data
    rng = random.Random(3)
    session = _frame_clock_copy(frame_clock_session, tmp_path)
    for case in range(80):
        data = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            at = (
                rng.randrange(len(data) - ifds, len(data))
                if rng.random() < 0.8
                else (rng.randrange(0, 16))
            )
            data[at] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(8, len(data))]
        tif = tmp_path / f"corrupt-{case}.tif"
        tif.write_bytes(bytes(data))
        result = cli("attach", session, tif)
        assert "Traceback" not in result.output
        if result.exit_code == 0:  # a change tifffile reads past: a fresh session for the next
            session = _frame_clock_copy(frame_clock_session, tmp_path / f"s{case}")
            continue
        assert result.exit_code in (1, 2), result.output
        (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith(("/", str(tif)))]
        assert line.startswith((f"{tif}: ", f"{session}: "))
        assert not (session / "session.zarr" / "1").exists()


def test_a_tiff_declaring_a_huge_page_is_refused_before_reading(frame_clock_session, tmp_path):
    """A few hundred bytes that declare one 30000 x 30000 16-bit page (1.8 GB): on main the
    attach allocated it (13 GiB for a block of them)."""
    session = _frame_clock_copy(frame_clock_session, tmp_path)
    tif = tmp_path / "huge.tif"
    with tifffile.TiffWriter(tif) as writer:
        writer.write(np.zeros((2, 2), np.uint16))
    data = bytearray(tif.read_bytes())
    for tag in (256, 257):  # ImageWidth, ImageLength: rewrite the values in place
        at = _tag_offset(bytes(data), tag)
        data[at + 8 : at + 12] = (30000).to_bytes(4, "little")
        data[at + 2 : at + 4] = (4).to_bytes(2, "little")  # LONG
    tif.write_bytes(bytes(data))
    line = assert_one_line(rig_cli("attach", session, tif), f"{tif}: ")
    assert "30000 x 30000" in line or "outside the file" in line


def _tag_offset(data: bytes, tag: int) -> int:
    ifd = int.from_bytes(data[4:8], "little")
    for i in range(int.from_bytes(data[ifd : ifd + 2], "little")):
        at = ifd + 2 + 12 * i
        if int.from_bytes(data[at : at + 2], "little") == tag:
            return at
    raise AssertionError(f"tag {tag} not found")


# ------------------------------------------------------------------ shocker profiles


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ("no-such-profile", "shocker profile 'no-such-profile' not found"),
        ("{yaml}", "invalid YAML"),
        ("/dev/zero", "is a character device"),
    ],
)
def test_a_bad_shocker_profile_fails_validate(tmp_path, cli, profile, message):
    """On main it passed rig validate and failed (a traceback) when the session started."""
    if profile == "{yaml}":
        bad = tmp_path / "profile.yaml"
        bad.write_text("profile: [unclosed\n", encoding="utf-8")
        profile = str(bad)
    rig = tmp_path / "rig.yaml"
    rig.write_text(
        SMALL_RIG.read_text(encoding="utf-8").replace(
            "shocker: {driver: sim}", f"shocker: {{driver: sim, profile: '{profile}'}}"
        ),
        encoding="utf-8",
    )
    demo = Path(__file__).parents[2] / "protocols" / "demo.yaml"
    result = cli("validate", demo, "--rig", rig)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{rig}: shocker.profile: ") and message in line


# ------------------------------------------------------------------ the simulated animal


def test_two_sessions_of_one_animal_both_count(tmp_path):
    """Two sessions of one animal that overlap: each learned from the state at its start and
    saved at its end, so on main the second overwrote the first's update."""
    from rig.files.protocol import load_protocol
    from rig.files.rigfile import load_rig
    from rig.run.session import plan_from_loaded
    from sim.learning import load_state
    from sim.world import SimWorld

    plan = plan_from_loaded(
        load_protocol(Path(__file__).parents[2] / "protocols" / "conditioning.yaml"),
        load_rig(SMALL_RIG),
    )
    sched = plan.schedule
    worlds = [
        SimWorld(sched, np.array([0, 1000]), None, _mouse(), None, 1, "m7", str(tmp_path))
        for _ in range(2)
    ]
    for world in worlds:
        world.save_learning(None)
    state = load_state(tmp_path, "m7")
    assert state.sessions == 2 and len(state.history) == 2


def _mouse():
    from sim.mouse import MouseConfig

    return MouseConfig(width=32, height=32)


def test_concurrent_learning_loses_no_update(tmp_path):
    from rig.files.protocol import load_protocol
    from rig.files.rigfile import load_rig
    from rig.run.session import plan_from_loaded
    from sim.learning import learn_session, load_state

    plan = plan_from_loaded(
        load_protocol(Path(__file__).parents[2] / "protocols" / "demo.yaml"), load_rig(SMALL_RIG)
    )
    barrier = threading.Barrier(8)

    def session() -> None:
        barrier.wait()
        for _ in range(5):
            learn_session(tmp_path, "m8", plan.schedule)

    threads = [threading.Thread(target=session) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    procs = [
        subprocess.Popen([sys.executable, "-c", _LEARN.format(state=str(tmp_path))])
        for _ in range(4)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    assert load_state(tmp_path, "m8").sessions == 8 * 5 + 4 * 5


_LEARN = """
from pathlib import Path
from rig.files.protocol import load_protocol
from rig.files.rigfile import load_rig
from rig.run.session import plan_from_loaded
from sim.learning import learn_session
from tests.conftest import PROTOCOLS, SMALL_RIG
plan = plan_from_loaded(load_protocol(PROTOCOLS / "demo.yaml"), load_rig(SMALL_RIG))
for _ in range(5):
    learn_session({state!r}, "m8", plan.schedule)
"""
