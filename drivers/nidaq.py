"""NI-DAQmx behind :class:`rig.ports.Daq`: one sample clock for every output and input.

Tasks (see ``docs/daq.md`` for the wiring):

* **AO** (``lines.tone``, ``tone_output: analog``): the sound, in volts. Its sample clock and
  start trigger are the session's: ``/<dev>/ao/SampleClock`` and ``/<dev>/ao/StartTrigger``.
  With ``tone_output: digital_gate`` there is no AO task and the DO task is the master.
* **DO** (``shock_gate``, ``imaging_start``, ``tone_gate``): hardware-timed lines on the same
  sample clock, one channel per line.
* **CO** (``camera_trigger``): a continuous pulse train at ``schedule.camera_rate_hz``, started by
  the master's start trigger.
* **CI** (``frame_clock``, ``camera_exposure``): buffered edge counting, one counter each,
  sampled on the master's sample clock and armed by its start trigger. Each sample holds the
  running count of rising edges, so an edge's sample is the first sample that counts it.
* **DI** (``tone_loopback``, ``shock_gate_loopback``, ``imaging_start_loopback``): hardware-timed
  digital input on the same clock (port 0 lines on X Series), recording both edges of the
  looped-back outputs.
* **AI** (``sound_loopback``): the sound output wired back to an analog input on the same clock;
  the ``tone`` line's edges are the envelope of the sound as played
  (:class:`rig.program.envelope.EnvelopeDetector`), not the gate that says it should play.

Outputs stream with regeneration off: ``chunk_s`` chunks from
:class:`rig.program.output_stream.OutputStream` (synthesised, checked by the safety verifier, never
past the fence of an unconfirmed shock current) are written ahead into a buffer a few chunks
long, topped up by :meth:`NiDaq.wait`. A chunk never ends with the shock gate high, so a buffer
that runs dry (host stalled) holds the gate low.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import nidaqmx
import nidaqmx.errors as nierr
import nidaqmx.system
import numpy as np
from nidaqmx.constants import (
    AcquisitionType,
    Edge,
    Level,
    LineGrouping,
    RegenerationMode,
    TriggerType,
)
from nidaqmx.stream_readers import (
    AnalogSingleChannelReader,
    CounterReader,
    DigitalMultiChannelReader,
)
from nidaqmx.types import DOExpirationState
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rig.devices import BuildContext, DriverSpec
from rig.files.rigfile import SafetyLimits
from rig.ports import MAX_WAIT_S, DaqError, DaqNotAvailable, Edges, PreflightCheck
from rig.program.envelope import EnvelopeDetector, envelope_threshold_v
from rig.program.output_stream import OutputStream
from rig.program.schedule import (
    CAMERA_EXPOSURE,
    FRAME_CLOCK,
    IMAGING_START,
    INPUT_LINES,
    SHOCK_GATE,
    TONE_GATE,
    OutputSchedule,
)
from rig.program.waveforms import Chunk, WaveformError, edges_from_counts, find_edges

log = logging.getLogger(__name__)

NOT_AVAILABLE = (
    "NI-DAQmx is not installed on this machine (the nidaqmx package found no driver); "
    "install NI-DAQmx or use the simulated rig (driver: sim)"
)
POLL_S = 0.01  # how often wait() looks at the device
INPUT_BUFFER_S = 10.0  # input buffers hold this much unread data
WRITE_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 1.0


class NidaqLines(BaseModel):
    """Physical lines, relative to the device (``ao0``, ``port0/line0``, ``ctr0``, ``PFI0``)."""

    model_config = ConfigDict(extra="forbid")

    tone: str | None = None  # AO channel for the sound (tone_output: analog)
    tone_gate: str | None = None  # DO line: sound envelope on (drives an external generator)
    shock_gate: str  # DO line to the shock generator's gate input
    imaging_start: str | None = None  # DO line: microscope start pulse
    camera_trigger: str = "ctr0"  # counter whose output triggers each camera exposure
    camera_trigger_terminal: str | None = None  # route the pulse train (default: counter's out)
    frame_clock: str | None = None  # PFI input: two-photon frame clock
    frame_clock_counter: str = "ctr1"
    camera_exposure: str | None = None  # PFI input: camera exposure-out
    camera_exposure_counter: str = "ctr2"
    tone_loopback: str | None = None  # DI line wired to the tone gate (or the envelope TTL)
    shock_gate_loopback: str | None = None  # DI line wired to the shock gate
    imaging_start_loopback: str | None = None  # DI line wired to the imaging start pulse
    sound_loopback: str | None = None  # AI channel wired to the sound output (e.g. ai0)

    @model_validator(mode="after")
    def _distinct(self) -> NidaqLines:
        used = [
            v
            for k, v in self
            if v is not None
            and k not in ("camera_trigger_terminal",)
            and not (k == "frame_clock_counter" and self.frame_clock is None)
            and not (k == "camera_exposure_counter" and self.camera_exposure is None)
        ]
        dupes = sorted({v for v in used if used.count(v) > 1})
        if dupes:
            raise ValueError(f"lines used twice: {', '.join(dupes)}")
        return self


class NidaqConfig(BaseModel):
    """The rig file's ``daq:`` section for ``driver: nidaq`` (everything but ``driver``)."""

    model_config = ConfigDict(extra="forbid")

    device: str = Field(min_length=1)
    sample_rate_hz: float = Field(20000.0, ge=1000.0, le=1_000_000.0)
    lines: NidaqLines
    tone_output: Literal["analog", "digital_gate"] = "analog"
    chunk_s: float = Field(0.5, ge=0.05, le=10.0)
    max_output_v: float = Field(5.0, gt=0.0, le=10.0)
    watchdog_s: float | None = Field(None, gt=0.0, le=60.0)

    @model_validator(mode="after")
    def _tone_line(self) -> NidaqConfig:
        if self.tone_output == "analog" and not self.lines.tone:
            raise ValueError("tone_output: analog needs lines.tone (an AO channel, e.g. ao0)")
        if self.tone_output == "digital_gate" and not self.lines.tone_gate:
            raise ValueError("tone_output: digital_gate needs lines.tone_gate (a DO line)")
        if self.lines.sound_loopback and self.tone_output != "analog":
            raise ValueError("lines.sound_loopback records the analog sound: tone_output: analog")
        if self.lines.sound_loopback and self.lines.tone_loopback:
            raise ValueError(
                "lines.sound_loopback and lines.tone_loopback both time the tone: keep one "
                "(sound_loopback measures the sound as played)"
            )
        return self


@contextmanager
def daq_errors(what: str) -> Iterator[None]:
    """Turn nidaqmx's errors into :class:`rig.ports.DaqError` with a one-line message."""
    try:
        yield
    except (nierr.DaqNotFoundError, nierr.DaqNotSupportedError) as exc:
        raise DaqNotAvailable(NOT_AVAILABLE) from exc
    except nierr.DaqError as exc:
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
        raise DaqError(f"{what}: {first} (DAQmx error {exc.error_code})") from exc
    except nierr.Error as exc:
        raise DaqError(f"{what}: {exc}") from exc


class _CounterInput:
    """One buffered edge-counting task: running counts -> rising edges."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.reader = CounterReader(task.in_stream)
        self.position = 0
        self.last = 0

    def read(self) -> list[tuple[str, Edges]]:
        n = self.task.in_stream.avail_samp_per_chan
        if n <= 0:
            return []
        data = np.zeros(n, np.uint32)
        got = self.reader.read_many_sample_uint32(
            data, number_of_samples_per_channel=n, timeout=READ_TIMEOUT_S
        )
        edges = edges_from_counts(data[:got], self.position, self.last)
        if got:
            self.last = int(data[got - 1])
        self.position += got
        return [("", edges)]


class _DigitalInput:
    """One hardware-timed DI task, one channel per looped-back line."""

    def __init__(self, task: Any, names: list[str]) -> None:
        self.task = task
        self.names = names
        self.reader = DigitalMultiChannelReader(task.in_stream)
        self.position = 0
        self.last = [False] * len(names)

    def read(self) -> list[tuple[str, Edges]]:
        n = self.task.in_stream.avail_samp_per_chan
        if n <= 0:
            return []
        data = np.zeros((len(self.names), n), np.uint32)
        got = self.reader.read_many_sample_port_uint32(
            data, number_of_samples_per_channel=n, timeout=READ_TIMEOUT_S
        )
        out = []
        for i, name in enumerate(self.names):
            # Line channels read back with the line's bit set (port position): non-zero = high.
            high = data[i, :got] != 0
            out.append((name, find_edges(high, self.position, self.last[i])))
            if got:
                self.last[i] = bool(high[-1])
        self.position += got
        return out


class _SoundInput:
    """The AI task recording the sound output: its samples -> the tone's envelope edges."""

    def __init__(self, task: Any, detector: EnvelopeDetector) -> None:
        self.task = task
        self.reader = AnalogSingleChannelReader(task.in_stream)
        self.detector = detector
        self.position = 0

    def read(self) -> list[tuple[str, Edges]]:
        n = self.task.in_stream.avail_samp_per_chan
        if n <= 0:
            return []
        data = np.zeros(n, np.float64)
        got = self.reader.read_many_sample(
            data, number_of_samples_per_channel=n, timeout=READ_TIMEOUT_S
        )
        edges = self.detector.feed(data[:got], self.position)
        self.position += got
        return [(TONE_GATE, edges)]


class NiDaq:
    """An NI X Series (or similar) DAQ as the session clock. See the module docstring."""

    simulated = False

    def __init__(
        self,
        config: NidaqConfig,
        calibration: Sequence[tuple[float, float, float]] = (),
        *,
        limits: SafetyLimits,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``calibration`` (frequency_hz, volts, level_db) is used when the schedule has none."""
        self.config = config
        self.sample_rate_hz = float(config.sample_rate_hz)
        self.calibration = tuple(tuple(p) for p in calibration)
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._tasks: dict[str, Any] = {}  # ao, do, co, ci_<line>, di
        self._inputs: dict[str, _CounterInput | _DigitalInput | _SoundInput] = {}
        self._watchdog: Any = None
        self._stream: OutputStream | None = None
        self._do_names: list[str] = []
        self._buffer = 0
        self._pending: dict[str, list[Edges]] = {name: [] for name in INPUT_LINES}
        self._started = False

    # -- names ---------------------------------------------------------------------------------

    def _phys(self, line: str) -> str:
        return f"{self.config.device}/{line}"

    def _terminal(self, name: str) -> str:
        return f"/{self.config.device}/{name}"

    @property
    def _master(self) -> str:
        return "ao" if self.config.tone_output == "analog" else "do"

    @property
    def sample_clock(self) -> str:
        """The terminal every other task takes its sample clock from."""
        return self._terminal(f"{self._master}/SampleClock")

    @property
    def start_trigger(self) -> str:
        """The terminal every other task is started (or armed) by."""
        return self._terminal(f"{self._master}/StartTrigger")

    def _do_lines(self) -> dict[str, str]:
        lines = self.config.lines
        named = {
            SHOCK_GATE: lines.shock_gate,
            IMAGING_START: lines.imaging_start,
            TONE_GATE: lines.tone_gate,
        }
        return {k: v for k, v in named.items() if v}

    # -- port ----------------------------------------------------------------------------------

    def preflight(self) -> list[PreflightCheck]:
        """The driver answers, the device exists and every configured line is on it."""
        try:
            with daq_errors("preflight"):
                device = nidaqmx.system.Device(self.config.device)
                product = device.product_type
                names = {
                    *device.ao_physical_chans.channel_names,
                    *device.ai_physical_chans.channel_names,
                    *device.do_lines.channel_names,
                    *device.di_lines.channel_names,
                    *device.co_physical_chans.channel_names,
                    *device.ci_physical_chans.channel_names,
                }
                terminals = {t.lower() for t in device.terminals}
        except DaqError as exc:
            return [PreflightCheck("daq", "device", False, str(exc))]
        checks = [PreflightCheck("daq", "device", True, f"{self.config.device}: {product}")]
        for key, line in self._configured_lines().items():
            if key in ("frame_clock", "camera_exposure", "camera_trigger_terminal"):
                ok = self._terminal(line).lower() in terminals
            else:
                ok = self._phys(line) in names
            checks.append(
                PreflightCheck("daq", key, ok, line if ok else f"{line}: not on the device")
            )
        return checks

    def _configured_lines(self) -> dict[str, str]:
        lines = self.config.lines.model_dump()
        if lines["frame_clock"] is None:
            lines.pop("frame_clock_counter")
        if lines["camera_exposure"] is None:
            lines.pop("camera_exposure_counter")
        return {k: v for k, v in lines.items() if v}

    def configure(self, schedule: OutputSchedule) -> None:
        """Create every task for ``schedule`` and pre-fill the output buffers (outputs low)."""
        if self._tasks:
            self._close_tasks()
        if schedule.sample_rate_hz != self.sample_rate_hz:
            raise DaqError(
                f"schedule at {schedule.sample_rate_hz:g} Hz, DAQ configured for "
                f"{self.sample_rate_hz:g} Hz"
            )
        chunk = max(1, round(self.config.chunk_s * self.sample_rate_hz))
        try:
            self._stream = OutputStream(
                schedule,
                self.limits,
                chunk_samples=chunk,
                max_output_v=self.config.max_output_v,
                calibration=self.calibration,
                sound=self.config.tone_output == "analog",
            )
        except WaveformError as exc:
            raise DaqError(f"cannot play this schedule: {exc}") from None
        # A whole shock pulse and the chunks around it fit: the stream never cuts a pulse.
        self._buffer = max(4 * chunk, self._stream.longest_pulse + 2 * chunk + 1)
        self._pending = {name: [] for name in INPUT_LINES}
        self._started = False
        try:
            with daq_errors("configure"):
                self._create_tasks(schedule)
                self._top_up()
        except DaqError:
            self._close_tasks()
            raise

    def _create_tasks(self, schedule: OutputSchedule) -> None:
        if self.config.tone_output == "analog":
            self._tasks["ao"] = ao = nidaqmx.Task("fear-rig-ao")
            v = self.config.max_output_v
            ao.ao_channels.add_ao_voltage_chan(
                self._phys(self.config.lines.tone), min_val=-v, max_val=v
            )
            self._output_timing(ao, master=True)
        do_lines = self._do_lines()
        self._do_names = list(do_lines)
        self._tasks["do"] = do = nidaqmx.Task("fear-rig-do")
        do.do_channels.add_do_chan(
            ",".join(self._phys(v) for v in do_lines.values()),
            line_grouping=LineGrouping.CHAN_PER_LINE,
        )
        self._output_timing(do, master=self._master == "do")
        self._create_camera_trigger(schedule)
        self._create_inputs()
        if self.config.watchdog_s:
            self._create_watchdog(do_lines)

    def _output_timing(self, task: Any, master: bool) -> None:
        task.timing.cfg_samp_clk_timing(
            self.sample_rate_hz,
            source="" if master else self.sample_clock,
            sample_mode=AcquisitionType.CONTINUOUS,
            samps_per_chan=self._buffer,
        )
        task.out_stream.regen_mode = RegenerationMode.DONT_ALLOW_REGENERATION
        task.out_stream.output_buf_size = self._buffer
        if not master:
            task.triggers.start_trigger.cfg_dig_edge_start_trig(self.start_trigger)

    def _create_camera_trigger(self, schedule: OutputSchedule) -> None:
        lines = self.config.lines
        self._tasks["co"] = co = nidaqmx.Task("fear-rig-camera-trigger")
        duty = min(max(schedule.camera_pulse_s * schedule.camera_rate_hz, 0.001), 0.999)
        chan = co.co_channels.add_co_pulse_chan_freq(
            self._phys(lines.camera_trigger),
            idle_state=Level.LOW,
            freq=schedule.camera_rate_hz,
            duty_cycle=duty,
        )
        if lines.camera_trigger_terminal:
            chan.co_pulse_term = self._terminal(lines.camera_trigger_terminal)
        co.timing.cfg_implicit_timing(sample_mode=AcquisitionType.CONTINUOUS)
        co.triggers.start_trigger.cfg_dig_edge_start_trig(self.start_trigger)

    def _create_inputs(self) -> None:
        lines = self.config.lines
        size = max(round(INPUT_BUFFER_S * self.sample_rate_hz), self._buffer)
        counted = {
            FRAME_CLOCK: (lines.frame_clock, lines.frame_clock_counter),
            CAMERA_EXPOSURE: (lines.camera_exposure, lines.camera_exposure_counter),
        }
        for name, (terminal, counter) in counted.items():
            if not terminal:
                continue
            self._tasks[f"ci_{name}"] = task = nidaqmx.Task(f"fear-rig-{name}")
            chan = task.ci_channels.add_ci_count_edges_chan(self._phys(counter), edge=Edge.RISING)
            chan.ci_count_edges_term = self._terminal(terminal)
            task.timing.cfg_samp_clk_timing(
                self.sample_rate_hz,
                source=self.sample_clock,
                sample_mode=AcquisitionType.CONTINUOUS,
                samps_per_chan=size,
            )
            task.triggers.arm_start_trigger.trig_type = TriggerType.DIGITAL_EDGE
            task.triggers.arm_start_trigger.dig_edge_src = self.start_trigger
            self._inputs[name] = _CounterInput(task)
        loopbacks = {
            TONE_GATE: lines.tone_loopback,
            SHOCK_GATE: lines.shock_gate_loopback,
            IMAGING_START: lines.imaging_start_loopback,
        }
        loopbacks = {k: v for k, v in loopbacks.items() if v}
        if loopbacks:
            self._tasks["di"] = di = nidaqmx.Task("fear-rig-loopback")
            di.di_channels.add_di_chan(
                ",".join(self._phys(v) for v in loopbacks.values()),
                line_grouping=LineGrouping.CHAN_PER_LINE,
            )
            di.timing.cfg_samp_clk_timing(
                self.sample_rate_hz,
                source=self.sample_clock,
                sample_mode=AcquisitionType.CONTINUOUS,
                samps_per_chan=size,
            )
            di.triggers.start_trigger.cfg_dig_edge_start_trig(self.start_trigger)
            self._inputs["di"] = _DigitalInput(di, list(loopbacks))
        if lines.sound_loopback:
            self._create_sound_input(size)

    def _create_sound_input(self, size: int) -> None:
        assert self._stream is not None and self.config.lines.sound_loopback
        self._tasks["ai"] = ai = nidaqmx.Task("fear-rig-sound-loopback")
        v = self.config.max_output_v
        ai.ai_channels.add_ai_voltage_chan(
            self._phys(self.config.lines.sound_loopback), min_val=-v, max_val=v
        )
        ai.timing.cfg_samp_clk_timing(
            self.sample_rate_hz,
            source=self.sample_clock,
            sample_mode=AcquisitionType.CONTINUOUS,
            samps_per_chan=size,
        )
        ai.triggers.start_trigger.cfg_dig_edge_start_trig(self.start_trigger)
        threshold = envelope_threshold_v(self._stream.synth.quietest_peak_v())
        self._inputs["ai"] = _SoundInput(ai, EnvelopeDetector(threshold, self.sample_rate_hz))

    def _create_watchdog(self, do_lines: dict[str, str]) -> None:
        self._watchdog = nidaqmx.system.WatchdogTask(
            self.config.device, "fear-rig-watchdog", timeout=self.config.watchdog_s
        )
        self._watchdog.cfg_watchdog_do_expir_states(
            [DOExpirationState(self._phys(v), Level.LOW) for v in do_lines.values()]
        )

    def start(self) -> None:
        """Start the followers, then the master: its start trigger is session time 0."""
        if not self._tasks:
            raise DaqError("start() before configure()")
        with daq_errors("start"):
            if self._watchdog is not None:
                self._watchdog.start()
            for key, task in self._tasks.items():
                if key != self._master:
                    task.start()
            self._tasks[self._master].start()
        self._started = True

    def wait(self, until_s: float) -> float:
        """Keep the outputs written ahead and read the inputs until ``until_s`` is acquired or
        :data:`MAX_WAIT_S` has passed. Returns the session time acquired."""
        deadline = self._clock() + MAX_WAIT_S
        with daq_errors("wait"):
            while True:
                self._top_up()
                self._read_inputs()
                if self._watchdog is not None:
                    self._watchdog.reset_timer()
                acquired = self._acquired() / self.sample_rate_hz
                left = deadline - self._clock()
                if acquired >= until_s or left <= 0:
                    return acquired
                self._sleep(min(POLL_S, left))

    def read_edges(self) -> dict[str, Edges]:
        """Edges recorded since the last call, for every name in
        ``rig.program.schedule.INPUT_LINES`` (empty for a line this rig does not record)."""
        out = {}
        for name in INPUT_LINES:
            parts = self._pending[name]
            self._pending[name] = []
            if not parts:
                out[name] = Edges.empty()
            else:
                out[name] = Edges(
                    np.concatenate([p.samples for p in parts]),
                    np.concatenate([p.rising for p in parts]),
                )
        return out

    # -- streaming -----------------------------------------------------------------------------

    def _generated(self) -> int:
        master = self._tasks.get(self._master)
        if master is None or not self._started:
            return 0
        return int(master.out_stream.total_samp_per_chan_generated)

    def _acquired(self) -> int:
        if self._inputs:
            return min(inp.position for inp in self._inputs.values())
        return self._generated()

    def release(self, until_sample: int | None) -> None:
        """Outputs may be written up to ``until_sample`` (``None``: to the end)."""
        if self._stream is not None:
            self._stream.release(until_sample)
            with daq_errors("write"):
                self._top_up()  # before start, the buffer must hold data to start with

    def _top_up(self) -> None:
        stream = self._stream
        if stream is None:
            return
        generated = self._generated()
        if self._started and generated >= stream.written:
            raise stream.underflow(generated)
        while True:
            space = self._buffer - (stream.written - generated)
            chunk = stream.next_chunk(space)  # raises UnsafeOutput, a DaqError
            if chunk is None:
                return
            self._write(chunk)

    def _write(self, chunk: Chunk) -> None:
        if "ao" in self._tasks:
            self._tasks["ao"].write(chunk.sound_v, timeout=WRITE_TIMEOUT_S)
        lines = np.stack([chunk.lines[name] for name in self._do_names])
        data = lines[0] if len(self._do_names) == 1 else lines
        self._tasks["do"].write(data, timeout=WRITE_TIMEOUT_S)

    def _read_inputs(self) -> None:
        for key, inp in self._inputs.items():
            for name, edges in inp.read():
                if edges.samples.size:
                    self._pending[name or key].append(edges)

    # -- ending --------------------------------------------------------------------------------

    def safe_state(self) -> None:
        """Stop every task, then drive every DO line low and AO to 0 V with fresh static tasks.

        Idempotent; never raises (failures are logged). A sound the envelope still had on ends
        where the sound input stopped recording (the output went to 0 V there)."""
        sound = self._inputs.get("ai")
        if isinstance(sound, _SoundInput):
            self._pending[TONE_GATE].append(sound.detector.stop(sound.position))
        self._close_tasks()
        self._started = False
        for name, line in self._do_lines().items():
            self._static_write("tone_gate" if name == TONE_GATE else name, line, False)
        if self.config.tone_output == "analog" and self.config.lines.tone:
            self._static_write("sound", self.config.lines.tone, 0.0)

    def _static_write(self, name: str, line: str, value: bool | float) -> None:
        try:
            with nidaqmx.Task(f"fear-rig-safe-{name}") as task:
                if isinstance(value, bool):
                    task.do_channels.add_do_chan(self._phys(line))
                else:
                    v = self.config.max_output_v
                    task.ao_channels.add_ao_voltage_chan(self._phys(line), min_val=-v, max_val=v)
                task.write(value, auto_start=True, timeout=WRITE_TIMEOUT_S)
        except (nierr.DaqNotFoundError, nierr.DaqNotSupportedError):
            log.warning("safe state: no NI-DAQmx driver; %s (%s) not driven", name, line)
        except Exception:
            log.exception("safe state: could not drive %s (%s) to %s", name, line, value)

    def _close_tasks(self) -> None:
        tasks = list(self._tasks.items())
        if self._watchdog is not None:
            tasks.append(("watchdog", self._watchdog))
        self._tasks, self._inputs, self._watchdog = {}, {}, None
        for key, task in tasks:
            try:
                task.stop()
            except Exception:
                log.exception("safe state: stopping the %s task failed", key)
            try:
                task.close()
            except Exception:
                log.exception("safe state: closing the %s task failed", key)

    def close(self) -> None:
        """Safe state, then release everything. Never raises."""
        self.safe_state()


def build(section: str, config: NidaqConfig, ctx: BuildContext) -> NiDaq:
    """Build the DAQ; the rig file's speaker calibration is the fallback for the schedule's."""
    speaker = getattr(ctx.rig, "speaker", None)
    points = getattr(speaker, "calibration", None) or ()
    calibration = [(p.frequency_hz, p.volts, p.level_db) for p in points]
    return NiDaq(config, calibration, limits=ctx.rig.safety)


SPEC = DriverSpec(name="nidaq", sections=("daq",), config_model=NidaqConfig, build=build)
