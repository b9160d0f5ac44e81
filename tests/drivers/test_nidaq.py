"""The NI-DAQmx driver: the real ``nidaqmx.Task`` code against a fake interpreter.

``nidaqmx.utils._select_interpreter`` is the seam NI's own unit tests patch (nidaqmx is pinned
at 1.7.0 because it is private). The fake keeps just enough state to behave like a device: the
channels of each task, the buffers written, one sample clock that moves when the driver
sleeps, edge counters fed from a list of frame-clock edges, and DI lines wired back to DO lines.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import nidaqmx
import nidaqmx.errors
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nidaqmx._base_interpreter import BaseInterpreter
from nidaqmx.constants import (
    AcquisitionType,
    ChannelType,
    Level,
    LineGrouping,
    RegenerationMode,
    TriggerType,
)
from nidaqmx.utils import unflatten_channel_string

from drivers.nidaq import SPEC, NiDaq, NidaqConfig
from rig.devices import BuildContext
from rig.files.rigfile import SafetyLimits
from rig.ports import MAX_WAIT_S, Daq, DaqError, DaqNotAvailable
from rig.program.schedule import (
    CAMERA_EXPOSURE,
    FRAME_CLOCK,
    INPUT_LINES,
    SHOCK_GATE,
    TONE_GATE,
    OutputSchedule,
    ShockPulse,
    SoundBlock,
)
from rig.program.waveforms import find_edges

RATE = 20_000.0
DEV = "Dev1"
LIMITS = SafetyLimits(max_current_ma=1.0, max_shock_s=2.0, max_shocks=20, max_session_s=3600)
UNDERFLOW = -200290
CAL = ((7500.0, 0.4, 75.0), (2000.0, 0.6, 75.0))

# Attribute ids the Task code reads (nidaqmx 1.7.0).
CHANNEL_NAMES, TASK_NAME, CHAN_TYPE = 0x1273, 0x1276, 0x187F
DO_BOOLEANS, GENERATED, AVAILABLE, PRODUCT = 0x217F, 0x192B, 0x1223, 0x631
REGEN, OUT_BUF, NUM_CHANS = 0x1453, 0x186D, 0x217B


class FakeTask:
    def __init__(self, name: str) -> None:
        self.name = name
        self.channels: list[str] = []
        self.chan_type: ChannelType | None = None
        self.attrs: dict[int, object] = {}
        self.chan_attrs: dict[int, object] = {}
        self.timing: dict | None = None
        self.start_trigger: str | None = None
        self.writes: list[np.ndarray] = []
        self.read_pos = 0
        self.started = self.stopped = self.closed = False
        self.extra: dict = {}

    @property
    def data(self) -> np.ndarray:
        return np.concatenate(self.writes, axis=-1)


class FakeInterpreter:
    """Enough of ``BaseInterpreter`` for the driver; any other call is an AttributeError."""

    def __init__(self) -> None:
        self.tasks: dict[str, FakeTask] = {}
        self.now = 0  # samples since the master task started
        self.running = False
        self.frame_edges = np.array([], np.int64)  # rising edges on the frame clock
        self.wiring: dict[str, str] = {}  # DI line -> DO line it is looped back from
        self.fail_on_generated: int | None = None  # error code to raise when polled
        self.history: list[str] = []

    # -- tasks
    def create_task(self, name):
        handle = f"h{len(self.tasks)}"
        self.tasks[handle] = FakeTask(name)
        self.history.append(f"create {name}")
        return handle, True

    def create_watchdog_timer_task_ex(self, device, name, timeout):
        handle, _ = self.create_task(name)
        self.tasks[handle].extra["watchdog"] = {"device": device, "timeout": timeout}
        return handle, True

    def cfg_watchdog_do_expir_states(self, handle, channel_names, expir_state):
        self.tasks[handle].extra["expir"] = dict(
            zip(unflatten_channel_string(channel_names), expir_state.tolist(), strict=True)
        )

    def control_watchdog_task(self, handle, action):
        self.tasks[handle].extra.setdefault("control", []).append(action)

    def internal_get_last_created_chan(self):
        raise NotImplementedError

    def _add(self, handle, names, kind):
        task = self.tasks[handle]
        task.channels += unflatten_channel_string(names)
        task.chan_type = kind

    def create_ao_voltage_chan(self, handle, phys, name, lo, hi, units, scale):
        self._add(handle, phys, ChannelType.ANALOG_OUTPUT)
        self.tasks[handle].extra["range"] = (lo, hi)

    def create_ai_voltage_chan(self, handle, phys, name, terminal, lo, hi, units, scale):
        self._add(handle, phys, ChannelType.ANALOG_INPUT)
        self.tasks[handle].extra["range"] = (lo, hi)

    def create_do_chan(self, handle, lines, name, grouping):
        self._add(handle, lines, ChannelType.DIGITAL_OUTPUT)
        self.tasks[handle].extra["grouping"] = grouping

    def create_di_chan(self, handle, lines, name, grouping):
        self._add(handle, lines, ChannelType.DIGITAL_INPUT)
        self.tasks[handle].extra["grouping"] = grouping

    def create_co_pulse_chan_freq(self, handle, counter, name, units, idle, delay, freq, duty):
        self._add(handle, counter, ChannelType.COUNTER_OUTPUT)
        self.tasks[handle].extra["pulse"] = {"freq": freq, "duty": duty, "idle": idle}

    def create_ci_count_edges_chan(self, handle, counter, name, edge, initial, direction):
        self._add(handle, counter, ChannelType.COUNTER_INPUT)

    def set_chan_attribute_string(self, handle, channel, attr, value):
        self.tasks[handle].chan_attrs[attr] = value

    def cfg_samp_clk_timing(self, handle, rate, source, edge, mode, samps):
        self.tasks[handle].timing = {"rate": rate, "source": source, "mode": mode, "n": samps}

    def cfg_implicit_timing(self, handle, mode, samps):
        self.tasks[handle].timing = {"implicit": True, "mode": mode}

    def cfg_dig_edge_start_trig(self, handle, source, edge):
        self.tasks[handle].start_trigger = source

    def set_trig_attribute_int32(self, handle, attr, value):
        self.tasks[handle].attrs[attr] = value

    set_trig_attribute_string = set_trig_attribute_int32
    set_write_attribute_int32 = set_trig_attribute_int32
    set_buffer_attribute_uint32 = set_trig_attribute_int32

    def start_task(self, handle):
        task = self.tasks[handle]
        task.started = True
        self.history.append(f"start {task.name}")
        if task.start_trigger is None and task.timing and not task.timing.get("implicit"):
            self.running = True  # the master: its start trigger fires now

    def stop_task(self, handle):
        self.tasks[handle].stopped = True
        self.history.append(f"stop {self.tasks[handle].name}")

    def clear_task(self, handle):
        self.tasks[handle].closed = True
        self.history.append(f"close {self.tasks[handle].name}")

    # -- attributes
    def get_task_attribute_string(self, handle, attr):
        task = self.tasks[handle]
        return {CHANNEL_NAMES: ", ".join(task.channels), TASK_NAME: task.name}[attr]

    def get_task_attribute_uint32(self, handle, attr):
        return len(self.tasks[handle].channels)

    def get_chan_attribute_int32(self, handle, channel, attr):
        assert attr == CHAN_TYPE
        return self.tasks[handle].chan_type.value

    def get_write_attribute_uint32(self, handle, attr):
        assert attr == DO_BOOLEANS
        return 1

    def get_write_attribute_uint64(self, handle, attr):
        assert attr == GENERATED
        if self.fail_on_generated is not None:
            raise nidaqmx.errors.DaqError("Device failed.\nTask Name: x", self.fail_on_generated)
        task = self.tasks[handle]
        written = task.data.shape[-1]
        if self.now > written:
            raise nidaqmx.errors.DaqError("Generation stopped: underflow.", UNDERFLOW)
        return self.now

    def get_read_attribute_uint32(self, handle, attr):
        task = self.tasks[handle]
        return {AVAILABLE: self.now - task.read_pos, NUM_CHANS: len(task.channels)}[attr]

    def get_device_attribute_string(self, device, attr):
        if attr == PRODUCT:
            return "PCIe-6321"
        lines = [f"{device}/port0/line{i}" for i in range(8)]
        analog = [f"{device}/ao0", f"{device}/ao1", f"{device}/ai0", f"{device}/ai1"]
        others = analog + [f"{device}/ctr{i}" for i in range(4)]
        terminals = [f"/{device}/PFI{i}" for i in range(16)]
        return ", ".join(lines + others + terminals)

    # -- data
    def write_analog_f64(self, handle, n, auto_start, timeout, layout, data):
        self.tasks[handle].writes.append(np.array(data, np.float64).reshape(-1))
        return n

    def write_digital_lines(self, handle, n, auto_start, timeout, layout, data):
        task = self.tasks[handle]
        task.writes.append(np.array(data, bool).reshape(len(task.channels), n))
        if auto_start:
            task.started = True
        return n

    def read_counter_u32_ex(self, handle, n, timeout, layout, data):
        task = self.tasks[handle]
        samples = np.arange(task.read_pos, task.read_pos + n)
        data[:n] = np.searchsorted(self.frame_edges, samples, side="right")
        task.read_pos += n
        return data, n

    def read_analog_f64(self, handle, n, timeout, layout, data):
        """An AI wired to the AO: the sound as written, plus the input's noise."""
        task = self.tasks[handle]
        (line,) = task.channels
        ao = next(t for t in self.tasks.values() if self.wiring[line] in t.channels and t.writes)
        played = ao.data[task.read_pos : task.read_pos + n]
        noise = np.random.default_rng(task.read_pos).normal(0, 0.0002, n)
        data[:n] = np.concatenate([played, np.zeros(n - len(played))]) + noise
        task.read_pos += n
        return data, n

    def read_digital_u32(self, handle, n, timeout, layout, data):
        task = self.tasks[handle]
        for i, line in enumerate(task.channels):
            source = self.wiring[line]
            do = next(t for t in self.tasks.values() if source in t.channels and t.writes)
            row = do.data[do.channels.index(source), task.read_pos : task.read_pos + n]
            bit = 1 << int(line.rsplit("line", 1)[1])
            data[i, :n] = np.where(row, bit, 0)
        task.read_pos += n
        return data, n

    def __getattr__(self, name):
        if hasattr(BaseInterpreter, name):
            raise AttributeError(f"fake interpreter does not implement {name}")
        raise AttributeError(name)

    # -- test helpers
    def task(self, name: str) -> FakeTask:
        (task,) = [t for t in self.tasks.values() if t.name == name]
        return task

    def sleep(self, seconds: float) -> None:
        if self.running:
            self.now += round(seconds * RATE)
        self.wall += seconds

    wall = 0.0

    def clock(self) -> float:
        return self.wall


@pytest.fixture
def fake(monkeypatch) -> FakeInterpreter:
    interpreter = FakeInterpreter()
    monkeypatch.setattr(nidaqmx.utils, "_select_interpreter", lambda *a, **k: interpreter)
    return interpreter


LINES = {
    "tone": "ao0",
    "shock_gate": "port0/line0",
    "imaging_start": "port0/line1",
    "tone_gate": "port0/line2",
    "camera_trigger": "ctr0",
    "frame_clock": "PFI0",
    "camera_exposure": "PFI1",
    "tone_loopback": "port0/line5",
    "shock_gate_loopback": "port0/line4",
}


def config(**kw) -> NidaqConfig:
    base = {"device": DEV, "sample_rate_hz": RATE, "lines": dict(LINES), "chunk_s": 0.1}
    base.update(kw)
    return NidaqConfig.model_validate(base)


TONE = SoundBlock(2000, 12000, "tone", 69.0, frequency_hz=7500.0, ramp_ms=5, stimulus="cs")
SHOCK = ShockPulse(11500, 12500, 0.5)  # 50 ms across a chunk boundary (0.1-s chunks)


def schedule(n_samples: int = 20_000) -> OutputSchedule:
    return OutputSchedule(
        sample_rate_hz=RATE,
        n_samples=n_samples,
        sounds=(TONE,),
        shocks=(SHOCK,),
        camera_rate_hz=30.0,
        imaging_rate_hz=15.0,
        imaging_start_sample=0,
        speaker_calibration=CAL,
    )


def make_daq(fake: FakeInterpreter, **kw) -> NiDaq:
    fake.wiring = {
        f"{DEV}/port0/line5": f"{DEV}/port0/line2",
        f"{DEV}/port0/line4": f"{DEV}/port0/line0",
        f"{DEV}/ai0": f"{DEV}/ao0",
    }
    return NiDaq(config(**kw), limits=LIMITS, clock=fake.clock, sleep=fake.sleep)


def configure(daq: NiDaq, sched: OutputSchedule) -> None:
    """Configure, then release every output, as the engine does once each shock's current is
    confirmed (the tests of the fence itself do not)."""
    daq.configure(sched)
    daq.release(None)


def run(daq: NiDaq, until_s: float) -> float:
    t = 0.0
    while t < until_s:
        t = daq.wait(until_s)
    return t


def test_config_is_strict_and_needs_the_tone_line():
    with pytest.raises(ValueError, match="extra"):
        config(typo=1)
    with pytest.raises(ValueError, match=r"lines\.tone"):
        config(lines={"shock_gate": "port0/line0"})
    with pytest.raises(ValueError, match=r"lines\.tone_gate"):
        config(tone_output="digital_gate", lines={"shock_gate": "port0/line0"})
    with pytest.raises(ValueError, match="used twice"):
        config(lines={**LINES, "imaging_start": "port0/line0"})
    design_doc = {
        "tone": "ao0",
        "shock_gate": "port0/line0",
        "imaging_start": "port0/line1",
        "camera_trigger": "ctr0",
        "frame_clock": "PFI0",
        "camera_exposure": "PFI1",
    }
    assert config(lines=design_doc).lines.frame_clock_counter == "ctr1"


def test_daq_not_found_becomes_daq_not_available():
    # No fake: the real library interpreter finds no NI-DAQmx on this machine.
    daq = NiDaq(config(), limits=LIMITS)
    with pytest.raises(DaqNotAvailable, match="NI-DAQmx is not installed") as info:
        daq.configure(schedule())
    assert "\n" not in str(info.value)
    checks = daq.preflight()
    assert not checks[0].ok and "NI-DAQmx is not installed" in checks[0].detail
    daq.close()  # never raises


def test_channels_timing_triggers_and_regeneration(fake):
    daq = make_daq(fake)
    assert isinstance(daq, Daq)
    daq.configure(schedule())
    ao, do, co = (
        fake.task("fear-rig-ao"),
        fake.task("fear-rig-do"),
        fake.task("fear-rig-camera-trigger"),
    )
    fc, exp, di = (
        fake.task(f"fear-rig-{n}") for n in ("frame_clock", "camera_exposure", "loopback")
    )
    assert ao.channels == ["Dev1/ao0"] and ao.extra["range"] == (-5.0, 5.0)
    assert do.channels == ["Dev1/port0/line0", "Dev1/port0/line1", "Dev1/port0/line2"]
    assert do.extra["grouping"] == LineGrouping.CHAN_PER_LINE.value
    assert co.channels == ["Dev1/ctr0"]
    assert co.extra["pulse"]["freq"] == 30.0 and co.extra["pulse"]["idle"] == Level.LOW.value
    assert fc.channels == ["Dev1/ctr1"] and fc.chan_attrs[0x18C7] == "/Dev1/PFI0"
    assert exp.channels == ["Dev1/ctr2"] and exp.chan_attrs[0x18C7] == "/Dev1/PFI1"
    assert di.channels == ["Dev1/port0/line5", "Dev1/port0/line4"]
    # One sample clock: the AO task's; everything else follows it.
    assert ao.timing["rate"] == RATE and ao.timing["source"] == ""
    for task in (do, fc, exp, di):
        assert task.timing["rate"] == RATE
        assert task.timing["source"] == "/Dev1/ao/SampleClock"
        assert task.timing["mode"] == AcquisitionType.CONTINUOUS.value
    # One start: the AO start trigger starts the outputs and inputs, and arms the counters.
    assert ao.start_trigger is None
    for task in (do, co, di):
        assert task.start_trigger == "/Dev1/ao/StartTrigger"
    for task in (fc, exp):
        assert task.attrs[0x1414] == TriggerType.DIGITAL_EDGE.value
        assert task.attrs[0x1417] == "/Dev1/ao/StartTrigger"
    for task in (ao, do):
        assert task.attrs[REGEN] == RegenerationMode.DONT_ALLOW_REGENERATION.value
        # The buffer is a few chunks, not the session.
        assert task.attrs[OUT_BUF] < schedule(10**8).n_samples
    daq.start()
    starts = [h.split(" ", 1)[1] for h in fake.history if h.startswith("start")]
    assert starts[-1] == "fear-rig-ao"  # the master starts last: its trigger is sample 0
    daq.close()


def test_buffers_play_the_schedule_exactly(fake):
    daq = make_daq(fake)
    sched = schedule()
    configure(daq, sched)
    daq.start()
    assert run(daq, sched.duration_s) >= sched.duration_s
    ao, do = fake.task("fear-rig-ao"), fake.task("fear-rig-do")
    # Written in chunks, each no longer than the buffer, covering the session contiguously.
    assert len(ao.writes) > 5 and ao.data.size >= sched.n_samples
    assert max(w.size for w in ao.writes) <= ao.attrs[OUT_BUF]
    assert do.data.shape == (3, ao.data.size)
    x = ao.data[: sched.n_samples]
    on = np.flatnonzero(x)
    assert on[0] == TONE.start_sample and on[-1] == TONE.stop_sample - 1
    tone = x[TONE.start_sample : TONE.stop_sample]
    freqs = np.fft.rfftfreq(tone.size, 1 / RATE)
    assert freqs[np.argmax(np.abs(np.fft.rfft(tone)))] == pytest.approx(7500.0)
    steady = tone[200:-200]
    assert np.sqrt(np.mean(steady**2)) == pytest.approx(0.4 * 10 ** (-6 / 20), rel=1e-3)
    shock = find_edges(do.data[0], 0)
    assert shock.samples.tolist() == [SHOCK.start_sample, SHOCK.stop_sample]
    tone_gate = find_edges(do.data[2], 0)
    assert tone_gate.samples.tolist() == [TONE.start_sample, TONE.stop_sample]
    assert find_edges(do.data[1], 0).samples.tolist() == [0, 200]  # imaging start pulse
    # No chunk ends with the shock gate high: a buffer that runs dry leaves it low.
    ends = np.cumsum([w.shape[-1] for w in do.writes]) - 1
    assert not do.data[0][ends].any()
    assert not x[sched.n_samples :].any() and not do.data[:, sched.n_samples :].any()
    daq.close()


def test_recorded_edges_are_on_the_sample_clock(fake):
    daq = make_daq(fake)
    fake.frame_edges = np.arange(100, 20_000, 1000)
    configure(daq, schedule())
    daq.start()
    first = run(daq, 0.5)
    edges = daq.read_edges()
    assert set(edges) == set(INPUT_LINES)
    assert edges[FRAME_CLOCK].samples.tolist() == list(range(100, round(first * RATE), 1000))
    assert edges[FRAME_CLOCK].rising.all()
    run(daq, 1.0)
    later = daq.read_edges()
    assert later[FRAME_CLOCK].samples[0] > edges[FRAME_CLOCK].samples[-1]
    both = np.concatenate([edges[FRAME_CLOCK].samples, later[FRAME_CLOCK].samples])
    assert both.tolist() == list(range(100, 20_000, 1000))
    shock = np.concatenate([e[SHOCK_GATE].samples for e in (edges, later)])
    assert shock.tolist() == [SHOCK.start_sample, SHOCK.stop_sample]
    tone = np.concatenate([e[TONE_GATE].samples for e in (edges, later)])
    assert tone.tolist() == [TONE.start_sample, TONE.stop_sample]
    assert daq.read_edges()[CAMERA_EXPOSURE].samples.size == 0
    daq.close()


def test_the_tone_is_timed_on_the_envelope_of_the_recorded_sound(fake):
    """With lines.sound_loopback the tone's edges come from the sound as played (an AI wired to
    the AO), inside the ramp of the planned ones; the ramp is 5 ms = 100 samples."""
    lines = {k: v for k, v in LINES.items() if k != "tone_loopback"}
    daq = make_daq(fake, lines={**lines, "sound_loopback": "ai0"})
    configure(daq, schedule())
    ai = fake.task("fear-rig-sound-loopback")
    assert ai.channels == [f"{DEV}/ai0"] and ai.start_trigger == f"/{DEV}/ao/StartTrigger"
    assert ai.timing["source"] == f"/{DEV}/ao/SampleClock"
    daq.start()
    run(daq, 1.0)
    tone = daq.read_edges()[TONE_GATE]
    assert tone.rising.tolist() == [True, False]
    onset, offset = tone.samples.tolist()
    assert TONE.start_sample < onset < TONE.start_sample + 100
    assert TONE.stop_sample - 100 < offset < TONE.stop_sample
    daq.close()


def test_a_tone_cut_off_by_the_safe_state_ends_where_recording_stopped(fake):
    lines = {k: v for k, v in LINES.items() if k != "tone_loopback"}
    daq = make_daq(fake, lines={**lines, "sound_loopback": "ai0"})
    configure(daq, schedule())
    daq.start()
    run(daq, 0.3)  # the tone (samples 2000-12000) is on
    daq.wait(0.3)  # read what was acquired
    daq.safe_state()
    tone = daq.read_edges()[TONE_GATE]
    assert tone.rising.tolist() == [True, False]
    assert TONE.start_sample < tone.samples[1] <= round(0.3 * RATE) + 1
    daq.close()


def test_a_sound_loopback_needs_the_analog_sound_and_replaces_the_tone_gate_loopback():
    with pytest.raises(ValueError, match="keep one"):
        config(lines={**LINES, "sound_loopback": "ai0"})
    lines = {k: v for k, v in LINES.items() if k != "tone_loopback"}
    with pytest.raises(ValueError, match="tone_output: analog"):
        config(lines={**lines, "sound_loopback": "ai0"}, tone_output="digital_gate")


def test_the_frame_clock_is_recorded_when_the_protocol_records_no_imaging(fake):
    """A behaviour-only session on a microscope rig: no start pulse goes to the microscope, but
    its frame clock input is armed as always, so a microscope started by hand is on record."""
    daq = make_daq(fake)
    fake.frame_edges = np.arange(100, 20_000, 1000)
    behaviour_only = dataclasses.replace(schedule(), imaging_rate_hz=None)
    configure(daq, behaviour_only)
    daq.start()
    run(daq, behaviour_only.duration_s)
    assert daq.read_edges()[FRAME_CLOCK].samples.tolist() == list(range(100, 20_000, 1000))
    assert not fake.task("fear-rig-do").data[1].any()  # no imaging start pulse
    daq.close()


def test_wait_returns_within_max_wait_so_heartbeats_keep_running(fake):
    daq = make_daq(fake)
    daq.configure(schedule())
    daq.start()
    t = daq.wait(10.0)
    assert 0 < t <= MAX_WAIT_S + 1e-9 and fake.wall <= MAX_WAIT_S + 1e-9


def test_safe_state_on_close_drives_everything_low(fake):
    daq = make_daq(fake)
    daq.configure(schedule())
    daq.start()
    run(daq, 0.3)
    daq.close()
    streaming = [t for t in fake.tasks.values() if not t.name.startswith("fear-rig-safe")]
    assert all(t.stopped and t.closed for t in streaming)
    safe = {t.name: t for t in fake.tasks.values() if t.name.startswith("fear-rig-safe")}
    wired = [("shock_gate", "line0"), ("imaging_start", "line1"), ("tone_gate", "line2")]
    for name, line in wired:
        task = safe[f"fear-rig-safe-{name}"]
        assert task.channels == [f"Dev1/port0/{line}"] and task.closed
        assert task.data.tolist() == [[False]]
    assert safe["fear-rig-safe-sound"].data.tolist() == [0.0]
    n_tasks = len(fake.tasks)
    daq.safe_state()  # idempotent: writes low again, raises nothing
    assert len(fake.tasks) == n_tasks + 4


def test_safe_state_never_raises_when_a_write_fails(fake, monkeypatch, caplog):
    daq = make_daq(fake)
    daq.configure(schedule())

    def broken(*args):
        raise nidaqmx.errors.DaqError("Device removed.", -88705)

    monkeypatch.setattr(fake, "write_digital_lines", broken, raising=False)
    daq.safe_state()
    assert "could not drive shock_gate" in caplog.text
    safe = [t for t in fake.tasks.values() if t.name == "fear-rig-safe-sound"]
    assert safe and safe[0].data.tolist() == [0.0]  # the other lines were still tried


def test_underflow_during_wait_is_a_daq_error(fake):
    daq = make_daq(fake)
    daq.configure(schedule())
    daq.start()
    fake.now += 10 * RATE  # the host stalled for 10 s: the buffer ran dry
    with pytest.raises(DaqError, match="underflow") as info:
        daq.wait(11.0)
    assert "\n" not in str(info.value)


def test_any_nidaqmx_error_during_wait_is_a_daq_error(fake):
    daq = make_daq(fake)
    daq.configure(schedule())
    daq.start()
    fake.fail_on_generated = -88709
    with pytest.raises(DaqError, match=r"wait: Device failed\. \(DAQmx error -88709\)"):
        daq.wait(1.0)
    daq.close()


def test_digital_gate_mode_makes_the_do_task_the_master(fake):
    lines = {k: v for k, v in LINES.items() if k != "tone"}
    daq = make_daq(fake, tone_output="digital_gate", lines=lines)
    configure(daq, schedule())
    assert not [t for t in fake.tasks.values() if t.name == "fear-rig-ao"]
    do = fake.task("fear-rig-do")
    assert do.timing["source"] == "" and do.start_trigger is None
    assert fake.task("fear-rig-loopback").timing["source"] == "/Dev1/do/SampleClock"
    assert fake.task("fear-rig-camera-trigger").start_trigger == "/Dev1/do/StartTrigger"
    daq.start()
    run(daq, 1.0)
    gate = find_edges(do.data[2], 0)
    assert gate.samples.tolist() == [TONE.start_sample, TONE.stop_sample]
    daq.close()


def test_watchdog_holds_the_do_lines_low_on_expiry(fake):
    daq = make_daq(fake, watchdog_s=0.5)
    daq.configure(schedule())
    watchdog = fake.task("fear-rig-watchdog")
    assert watchdog.extra["watchdog"] == {"device": DEV, "timeout": 0.5}
    assert set(watchdog.extra["expir"].values()) == {Level.LOW.value}
    assert set(watchdog.extra["expir"]) == {f"Dev1/port0/line{i}" for i in range(3)}
    daq.start()
    daq.wait(0.05)
    assert watchdog.started and watchdog.extra["control"]  # reset while the host is alive
    daq.close()
    assert watchdog.closed


def test_uncalibrated_sound_or_wrong_rate_fail_at_configure(fake):
    daq = make_daq(fake)
    bad = OutputSchedule(
        sample_rate_hz=RATE,
        n_samples=1000,
        sounds=(SoundBlock(0, 500, "tone", 70.0, frequency_hz=7600.0, stimulus="cs"),),
        speaker_calibration=CAL,
    )
    with pytest.raises(DaqError, match=r"stimuli\.cs\.frequency_hz: no speaker calibration covers"):
        daq.configure(bad)
    with pytest.raises(DaqError, match="10000 Hz"):
        daq.configure(OutputSchedule(sample_rate_hz=10_000.0, n_samples=10))


def test_preflight_checks_each_line(fake):
    checks = make_daq(fake, lines={**LINES, "tone": "ao7"}).preflight()
    by_name = {c.name: c for c in checks}
    assert by_name["device"].ok and "PCIe-6321" in by_name["device"].detail
    assert by_name["shock_gate"].ok and by_name["frame_clock"].ok
    assert not by_name["tone"].ok


def test_build_takes_the_rig_files_calibration():
    points = [SimpleNamespace(frequency_hz=7500.0, volts=0.4, level_db=75.0)]
    rig = SimpleNamespace(speaker=SimpleNamespace(calibration=points), safety=LIMITS)
    ctx = BuildContext(rig=rig)
    daq = SPEC.build("daq", config(), ctx)
    assert isinstance(daq, NiDaq) and daq.calibration == ((7500.0, 0.4, 75.0),)
    assert SPEC.name == "nidaq" and SPEC.sections == ("daq",) and SPEC.config_model is NidaqConfig


def test_an_unreleased_shock_is_never_written_and_the_buffer_runs_dry_low(fake):
    # The engine never confirmed the shock's current, so it never released the outputs past
    # its onset: the driver writes up to the sample before it, and the DAQ runs dry there.
    daq = make_daq(fake)
    daq.configure(schedule())
    daq.start()
    do = fake.task("fear-rig-do")
    with pytest.raises(DaqError, match="underflow"):
        run(daq, 1.0)
    assert do.data.shape[-1] == SHOCK.start_sample  # written up to the fence, not past it
    assert not do.data[0].any()  # the gate was never high in any buffer
    daq.close()


def test_a_shock_is_written_whole_or_not_at_all(fake):
    daq = make_daq(fake)
    daq.configure(schedule())
    daq.start()
    do = fake.task("fear-rig-do")
    daq.release(SHOCK.start_sample + 1)  # a fence inside the pulse: none of the pulse is written
    run(daq, 0.5)
    assert do.data.shape[-1] == SHOCK.start_sample
    daq.release(SHOCK.stop_sample + 1)  # past it: the whole pulse and the low sample after it
    run(daq, 0.55)
    assert do.data.shape[-1] == SHOCK.stop_sample + 1
    assert do.data[0][SHOCK.start_sample : SHOCK.stop_sample].all() and not do.data[0][-1]
    daq.close()


@st.composite
def gate_programs(draw):
    """Schedules of shock pulses that touch, nearly touch, straddle chunk edges or sit at the
    start: what the old chunking got wrong."""
    n_shocks = draw(st.integers(0, 6))
    starts, t = [], draw(st.integers(0, 3000))
    for _ in range(n_shocks):
        width = draw(st.integers(1, 3000))
        starts.append((t, t + width))
        t += width + draw(st.sampled_from([0, 1, 2, 1999, 2000, 2001, 20_000]))
    return OutputSchedule(
        sample_rate_hz=RATE,
        n_samples=max(t, 1) + draw(st.integers(1, 5000)),
        shocks=tuple(ShockPulse(a, b, 0.5) for a, b in starts),
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sched=gate_programs())
def test_every_buffer_write_is_verified_and_ends_low(fake, sched):
    """Property: whatever the program, the driver writes exactly the synthesised gate, in
    chunks that each end low, and nothing that breaks a limit reaches the buffer: an unsafe
    program is refused (DaqError) before the chunk that breaks it is written."""
    from rig.program.safety import ShockGateVerifier, current_program, verify_schedule
    from rig.program.waveforms import ShockGateSynth

    fake.__init__()  # a fresh device per example
    limits = SafetyLimits(
        max_current_ma=1.0,
        max_shock_s=0.1,
        max_shocks=4,
        max_session_s=3600,
        min_shock_gap_s=0.1,
        max_shock_duty=0.5,
    )
    daq = make_daq(fake)
    daq.limits = limits
    safe = not verify_schedule(sched, limits).violations
    try:
        configure(daq, sched)
        daq.start()
        run(daq, sched.duration_s + 0.3)
    except DaqError as exc:
        assert not safe and "unsafe output buffer" in str(exc)
    else:
        assert safe
    do = fake.task("fear-rig-do")
    if do.writes:
        gate = do.data[0]
        assert np.array_equal(gate, ShockGateSynth(sched).samples(0, gate.size))
        ends = np.cumsum([w.shape[-1] for w in do.writes]) - 1
        assert not gate[ends].any()  # no chunk ends with the gate high
        # What reached the buffer breaks no limit, read by a fresh verifier.
        fresh = ShockGateVerifier(limits, RATE, sched.n_samples, current_program(sched.shocks))
        assert fresh.feed(0, gate) == []
    daq.close()
