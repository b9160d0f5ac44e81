"""Serial shock generator driver: an ASCII line protocol described by a YAML profile.

The protocol is documented in ``docs/shocker-protocol.md``. A profile (built-in name or a
YAML path) gives the command templates and reply templates of one device model, so another
model's command set needs another profile, not new code.

Safety rules this driver keeps:

* every read has a deadline; no reply within it is a :class:`~rig.ports.ShockerError`;
* :meth:`SerialShockGenerator.set_current` refuses (without sending anything) a current above
  the rig's ``max_current_ma``, and checks the device's read-back;
* :meth:`SerialShockGenerator.arm` refuses until a current has been set and read back;
* nothing that could cause a shock (set current, arm) is ever retried; only ``disarm`` is,
  because repeating it cannot hurt;
* after an I/O failure (an unplugged adapter) the link stays broken: the driver never
  reconnects on its own.

There is no background heartbeat thread: the engine calls :meth:`heartbeat` at least every
100 ms, and the device-side watchdog (set on :meth:`open`) disarms the device if those calls
stop, e.g. because the host process hangs or dies.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import string
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import serial
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from rig.devices import BuildContext, DriverSpec
from rig.files.inputfile import InputError, read_yaml_file
from rig.ports import PreflightCheck, ShockerError

log = logging.getLogger(__name__)

PROFILE_DIR = Path(__file__).with_name("shocker_profiles")

# Port read timeout: each read returns after at most this long, so deadlines hold to ~5 ms.
_POLL_S = 0.005

# Values a template may carry, and how a reply's text is recognised for each.
_FIELD_PATTERNS = {
    "current_ma": r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)",
    "watchdog_ms": r"\d+",
    "identity": r".+?",
    "code": r"\S+",
    "message": r".*?",
    "armed": None,  # the profile's armed/disarmed words
}

# command -> (fields allowed in send, fields required in send, allowed in reply, required)
_COMMAND_FIELDS: dict[str, tuple[set[str], set[str], set[str], set[str]]] = {
    "identify": (set(), set(), {"identity"}, {"identity"}),
    "set_current": ({"current_ma"}, {"current_ma"}, {"current_ma"}, set()),
    "read_current": (set(), set(), {"current_ma"}, {"current_ma"}),
    "arm": (set(), set(), {"armed"}, set()),
    "disarm": (set(), set(), {"armed"}, set()),
    "status": (set(), set(), {"armed", "current_ma", "watchdog_ms"}, {"armed"}),
    "heartbeat": (set(), set(), {"armed"}, set()),
    "set_watchdog": ({"watchdog_ms"}, {"watchdog_ms"}, {"watchdog_ms"}, set()),
}
_ERROR_FIELDS = {"code", "message"}


class LineTemplate:
    """One line of the protocol, e.g. ``"CUR {current_ma:.3f}"``: format it or parse it."""

    def __init__(self, text: str, armed_words: tuple[str, str], case_sensitive: bool) -> None:
        self.text = text
        self.fields: tuple[str, ...] = ()
        self.literal = ""  # the template's fixed text, fields left out
        self._armed_words = armed_words
        self._case_sensitive = case_sensitive
        pattern = []
        for literal, name, spec, conversion in string.Formatter().parse(text):
            pattern.append(re.escape(literal))
            self.literal += literal
            if name is None:
                continue
            if name not in _FIELD_PATTERNS:
                raise ValueError(f"unknown field {{{name}}} in {text!r}")
            if conversion:
                raise ValueError(f"conversion !{conversion} not allowed in {text!r}")
            if name in self.fields:
                raise ValueError(f"field {{{name}}} appears twice in {text!r}")
            if name == "armed" and spec:
                raise ValueError(f"{{armed}} takes no format spec in {text!r}")
            self.fields += (name,)
            regex = _FIELD_PATTERNS[name] or "|".join(re.escape(w) for w in armed_words)
            pattern.append(f"(?P<{name}>{regex})")
        flags = 0 if case_sensitive else re.IGNORECASE
        self._regex = re.compile("".join(pattern), flags)

    def format(self, **values: Any) -> str:
        """The line with ``values`` filled in (extra values are ignored)."""
        used = {k: values[k] for k in self.fields}
        if "armed" in used:
            used["armed"] = self._armed_words[0] if used["armed"] else self._armed_words[1]
        return self.text.format(**used)

    def parse(self, line: str) -> dict[str, Any] | None:
        """The typed field values if ``line`` is this template, else ``None``."""
        match = self._regex.fullmatch(line)
        if match is None:
            return None
        values: dict[str, Any] = {}
        for name, text in match.groupdict().items():
            if name == "current_ma":
                values[name] = float(text)
            elif name == "watchdog_ms":
                values[name] = int(text)
            elif name == "armed":
                word = text if self._case_sensitive else text.lower()
                armed = self._armed_words[0]
                values[name] = word == (armed if self._case_sensitive else armed.lower())
            else:
                values[name] = text
        return values


class CommandSpec(BaseModel):
    """One command: the line the host sends and the line the device answers on success."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    send: str = Field(min_length=1)
    reply: str = Field(min_length=1)


class ShockerCommands(BaseModel):
    """The command set. ``set_watchdog`` is optional (not every model has a watchdog)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    identify: CommandSpec
    set_current: CommandSpec
    read_current: CommandSpec
    arm: CommandSpec
    disarm: CommandSpec
    status: CommandSpec
    heartbeat: CommandSpec
    set_watchdog: CommandSpec | None = None


Terminator = Literal["\n", "\r", "\r\n"]


class ShockerProfile(BaseModel):
    """A device model's command set, loaded from YAML and validated strictly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str = Field(min_length=1)
    description: str = ""
    encoding: Literal["ascii", "latin-1", "utf-8"] = "ascii"
    command_terminator: Terminator = "\n"
    reply_terminator: Terminator = "\n"
    case_sensitive: bool = True
    armed_word: str = Field("1", min_length=1, pattern=r"^\S+$")
    disarmed_word: str = Field("0", min_length=1, pattern=r"^\S+$")
    readback_tolerance_ma: float = Field(0.001, ge=0.0, le=0.1)
    max_line_bytes: int = Field(128, ge=16, le=4096)
    commands: ShockerCommands
    error_reply: str = Field(min_length=1)

    _templates: dict[str, tuple[LineTemplate, LineTemplate]] = PrivateAttr(default_factory=dict)
    _error: LineTemplate | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _compile(self) -> ShockerProfile:
        def same(a: str, b: str) -> bool:
            return a == b if self.case_sensitive else a.lower() == b.lower()

        if same(self.armed_word, self.disarmed_word):
            raise ValueError("armed_word and disarmed_word must differ")
        for name, (send_ok, send_req, reply_ok, reply_req) in _COMMAND_FIELDS.items():
            spec: CommandSpec | None = getattr(self.commands, name)
            if spec is None:
                continue
            send = self._template(f"commands.{name}.send", spec.send, send_ok, send_req)
            reply = self._template(f"commands.{name}.reply", spec.reply, reply_ok, reply_req)
            for text in (spec.send, spec.reply):
                if "\r" in text or "\n" in text:
                    raise ValueError(f"commands.{name}: line endings belong in the terminators")
            self._templates[name] = (send, reply)
        if same(self.commands.arm.reply, self.commands.disarm.reply):
            raise ValueError("commands.arm.reply and commands.disarm.reply must differ")
        self._error = self._template("error_reply", self.error_reply, _ERROR_FIELDS, set())
        if not self._error.literal.strip():
            raise ValueError("error_reply: needs literal text (it is checked before any reply)")
        return self

    def _template(
        self, where: str, text: str, allowed: set[str], required: set[str]
    ) -> LineTemplate:
        words = (self.armed_word, self.disarmed_word)
        try:
            template = LineTemplate(text, words, self.case_sensitive)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        extra = set(template.fields) - allowed
        missing = required - set(template.fields)
        if extra:
            raise ValueError(f"{where}: field(s) {sorted(extra)} not allowed here")
        if missing:
            raise ValueError(f"{where}: must contain {sorted(missing)}")
        return template

    def has(self, command: str) -> bool:
        """Whether this model has ``command`` (only ``set_watchdog`` is optional)."""
        return command in self._templates

    def send_template(self, command: str) -> LineTemplate:
        """The template of the line the host sends for ``command``."""
        return self._templates[command][0]

    def reply_template(self, command: str) -> LineTemplate:
        """The template of the device's success reply to ``command``."""
        return self._templates[command][1]

    @property
    def error_template(self) -> LineTemplate:
        """The template of the device's error reply."""
        assert self._error is not None
        return self._error

    def command_names(self) -> list[str]:
        """The commands this profile defines."""
        return list(self._templates)


def load_profile(profile: str | Path) -> ShockerProfile:
    """A built-in profile by name (``drivers/shocker_profiles/NAME.yaml``) or a YAML path.

    Raises ``ValueError`` naming the file and the field path if the profile is invalid. The
    file is read like every user file (a regular file of at most 1 MB, strict YAML).
    """
    text = str(profile)
    builtin = PROFILE_DIR / f"{text}.yaml"
    path = builtin if re.fullmatch(r"[A-Za-z0-9_-]+", text) else Path(text).expanduser()
    if not path.exists():
        names = sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))
        raise ValueError(f"shocker profile {text!r} not found (built-in: {', '.join(names)})")
    try:
        data, _ = read_yaml_file(path)
        return ShockerProfile.model_validate(data)
    except InputError as exc:
        raise ValueError(exc.report()) from None
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise ValueError("\n".join(lines)) from None


def checked_profile(profile: str) -> str:
    """A rig file's ``profile`` setting, loaded and checked when the rig file is validated
    (``rig validate``), not first when the session opens the port."""
    try:
        load_profile(profile)
    except ValueError as exc:
        lines = str(exc).splitlines()
        more = f" (and {len(lines) - 1} more problems)" if len(lines) > 1 else ""
        raise ValueError(lines[0] + more) from None
    return profile


ProfileSetting = Annotated[str, Field(min_length=1), AfterValidator(checked_profile)]


class SerialShockerConfig(BaseModel):
    """The ``shocker`` section of a rig file for ``driver: serial-shocker``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: str = Field(min_length=1, description="e.g. /dev/ttyUSB0 or COM3")
    baudrate: int = Field(115200, ge=300, le=4_000_000)
    profile: ProfileSetting = Field("default", description="built-in name or YAML path")
    timeout_s: float = Field(0.1, ge=0.005, le=2.0, description="reply deadline per command")
    heartbeat_timeout_s: float = Field(
        0.05, ge=0.005, le=0.09, description="reply deadline for a heartbeat (< 100 ms)"
    )
    heartbeat_misses_allowed: int = Field(
        0,
        ge=0,
        le=5,
        description="consecutive unanswered heartbeats tolerated before the link counts as "
        "lost (a failed port is never tolerated); 0 for real devices",
    )
    write_timeout_s: float = Field(0.1, ge=0.005, le=2.0)
    device_watchdog_ms: int | None = Field(
        500,
        ge=50,
        le=10_000,
        description="set on open: the device disarms itself after this long without a "
        "heartbeat while armed; null leaves the device's own setting",
    )
    disarm_attempts: int = Field(2, ge=1, le=5, description="disarm is the only retried command")
    command_log_size: int = Field(10_000, ge=100, le=10_000_000)


@dataclass
class CommandRecord:
    """One command sent: what, when (``time.monotonic()``), and what came back."""

    t_sent: float
    command: str
    line: str
    t_reply: float | None = None
    reply: str | None = None
    error: str | None = None
    stale: list[bytes] = field(default_factory=list)
    """Late replies to earlier commands read (and skipped) before this command's own."""


@dataclass(frozen=True)
class ShockerStatus:
    """The device's own view of its state."""

    armed: bool
    current_ma: float | None = None
    watchdog_ms: int | None = None


class _LinkLost(Exception):
    """The port failed at the OS level: the link is gone for good."""

    @classmethod
    def wrap(cls, exc: BaseException) -> _LinkLost:
        args = exc.args
        if len(args) == 2 and isinstance(args[0], int):  # termios.error is a bare tuple
            return cls(f"[Errno {args[0]}] {args[1]}")
        return cls(str(exc) or type(exc).__name__)


class SerialShockGenerator:
    """A shock generator on a serial port, implementing :class:`rig.ports.ShockGenerator`.

    The port opens on :meth:`open` or on the first command. Every public method may be called
    from any thread; commands are serialised by a lock.
    """

    def __init__(
        self,
        config: SerialShockerConfig,
        max_current_ma: float,
        simulated: bool = False,
        *,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        if not (math.isfinite(max_current_ma) and max_current_ma > 0):
            raise ValueError(f"max_current_ma must be a positive number, not {max_current_ma}")
        self.config = config
        self.max_current_ma = float(max_current_ma)
        self.simulated = simulated
        self.profile = load_profile(config.profile)
        if config.device_watchdog_ms is not None and not self.profile.has("set_watchdog"):
            raise ValueError(
                f"profile {self.profile.profile!r} has no set_watchdog command; "
                "set device_watchdog_ms: null to use the device's own watchdog setting"
            )
        self.command_log: deque[CommandRecord] = deque(maxlen=config.command_log_size)
        self._on_close = on_close
        self._lock = threading.RLock()
        self._port: serial.Serial | None = None
        self._broken: str | None = None
        self._closing = False
        self._closed = False
        self._armed = False
        self._confirmed_ma: float | None = None
        self._missed_beats = 0
        self._term = self.profile.reply_terminator.encode()[-1:]
        self._rest = bytearray()  # bytes read past the last reply line

    # -- the port ---------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Whether the port is open and the link has not failed."""
        return self._port is not None and self._broken is None and not self._closing

    @property
    def armed(self) -> bool:
        """Whether the device last confirmed it is armed."""
        return self._armed

    def open(self) -> None:
        """Open the port and set the device watchdog. Raises :class:`ShockerError`."""
        with self._lock:
            if self._closing or self._closed:
                raise ShockerError("shocker: the driver is closed")
            if self._port is not None:
                return
            try:
                self._port = serial.Serial(
                    self.config.port,
                    self.config.baudrate,
                    timeout=_POLL_S,
                    write_timeout=self.config.write_timeout_s,
                    exclusive=True,
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                raise ShockerError(f"shocker: cannot open {self.config.port}: {exc}") from exc
            if self.config.device_watchdog_ms is None:
                return
            try:
                self._set_watchdog(self.config.device_watchdog_ms)
            except ShockerError:
                port, self._port = self._port, None  # never run without the watchdog asked for
                self._cancel(port)
                with contextlib.suppress(Exception):
                    port.close()
                raise

    def _set_watchdog(self, watchdog_ms: int) -> None:
        values = self._transact("set_watchdog", watchdog_ms=watchdog_ms)
        if values.get("watchdog_ms", watchdog_ms) != watchdog_ms:
            raise ShockerError(f"shocker: watchdog read-back {values['watchdog_ms']} ms")

    def _require_port(self) -> serial.Serial:
        if self._closing:
            raise ShockerError("shocker: the driver is closed")
        if self._broken is not None:
            raise ShockerError(f"shocker: link lost ({self._broken})")
        if self._port is None:
            self.open()
        assert self._port is not None
        return self._port

    # -- one command, one reply --------------------------------------------------------------

    def _transact(self, command: str, timeout_s: float | None = None, **params: Any) -> dict:
        """Send ``command`` once and return the fields of its success reply."""
        timeout_s = self.config.timeout_s if timeout_s is None else timeout_s
        with self._lock:
            port = self._require_port()
            line = self.profile.send_template(command).format(**params)
            record = CommandRecord(time.monotonic(), command, line)
            self.command_log.append(record)
            deadline = record.t_sent + timeout_s
            try:
                raw = self._exchange(port, line, deadline)
                while raw is not None and self._stale(command, raw):
                    # A reply to an earlier command that timed out, arriving late (a busy
                    # host): not this command's answer. Read on until ours or the deadline.
                    record.stale.append(raw)
                    raw = self._read_line(port, deadline)
            except _LinkLost as exc:
                self._broken = str(exc)
                record.error = f"link lost: {exc}"
                raise ShockerError(f"shocker: {command}: link lost ({exc})") from exc
            except ShockerError as exc:
                record.error = str(exc)
                raise
            record.t_reply = time.monotonic()
            if raw is None:
                record.error = "no reply"
                raise ShockerError(f"shocker: {command}: no reply within {timeout_s * 1000:.0f} ms")
            try:
                reply = raw.decode(self.profile.encoding).rstrip("\r\n")
            except UnicodeDecodeError:
                record.error = f"unreadable reply {raw!r}"
                raise ShockerError(f"shocker: {command}: unreadable reply {raw!r}") from None
            record.reply = reply
            return self._interpret(command, reply, record)

    def _stale(self, command: str, raw: bytes) -> bool:
        """Whether ``raw`` is another command's reply (never this command's, nor an error)."""
        try:
            reply = raw.decode(self.profile.encoding).rstrip("\r\n")
        except UnicodeDecodeError:
            return False
        if self.profile.error_template.parse(reply) is not None:
            return False
        if self.profile.reply_template(command).parse(reply) is not None:
            return False
        return any(
            self.profile.reply_template(other).parse(reply) is not None
            for other in self.profile.command_names()
            if other != command
        )

    def _interpret(self, command: str, reply: str, record: CommandRecord) -> dict:
        error = self.profile.error_template.parse(reply)
        if error is not None:
            record.error = f"device error: {reply}"
            code, message = error.get("code", "?"), error.get("message", reply)
            raise ShockerError(f"shocker: {command}: device refused (error {code}: {message})")
        values = self.profile.reply_template(command).parse(reply)
        if values is not None:
            return values
        record.error = f"unexpected reply {reply!r}"
        raise ShockerError(f"shocker: {command}: unexpected reply {reply!r}")

    def _exchange(self, port: serial.Serial, line: str, deadline: float) -> bytes | None:
        """Write one line, read one reply line; ``None`` at the deadline."""
        data = (line + self.profile.command_terminator).encode(self.profile.encoding)
        try:
            port.reset_input_buffer()  # a late reply to an earlier command must not count here
            self._rest.clear()
            port.write(data)
        except serial.SerialTimeoutException as exc:
            raise ShockerError(f"shocker: write timed out: {exc}") from exc
        except Exception as exc:  # SerialException, OSError, termios.error: the link is gone
            raise _LinkLost.wrap(exc) from exc
        return self._read_line(port, deadline)

    def _read_line(self, port: serial.Serial, deadline: float) -> bytes | None:
        """One reply line. Bytes read past it (the start of a next line) are kept for the next
        call of the same command, which reads on for its own reply."""
        buf = self._rest
        limit = self.profile.max_line_bytes
        while True:
            end = buf.find(self._term)
            if end >= 0:
                line = bytes(buf[: end + 1])
                del buf[: end + 1]
                return line
            if len(buf) > limit:
                raise ShockerError(f"shocker: reply longer than {limit} bytes: {bytes(buf)!r}")
            if self._closing:
                raise ShockerError("shocker: the driver was closed during a command")
            if time.monotonic() >= deadline:
                # A stalled host may wake after the deadline with the reply already waiting.
                late = port.in_waiting if port.is_open else 0
                if late:
                    buf += port.read(min(late, limit + 1))
                    end = buf.find(self._term)
                    if end >= 0:
                        line = bytes(buf[: end + 1])
                        del buf[: end + 1]
                        return line
                return None
            try:
                buf += port.read(1)
                waiting = port.in_waiting
                if waiting:
                    buf += port.read(min(waiting, limit + 1))
            except Exception as exc:
                if self._closing:
                    raise ShockerError("shocker: the driver was closed during a command") from exc
                raise _LinkLost.wrap(exc) from exc

    # -- the port protocol -------------------------------------------------------------------

    def identify(self) -> str:
        """The device's identity string. Raises :class:`ShockerError`."""
        return str(self._transact("identify")["identity"]).strip()

    def read_current(self) -> float:
        """The current the device is set to, in mA. Raises :class:`ShockerError`."""
        return float(self._transact("read_current")["current_ma"])

    def status(self) -> ShockerStatus:
        """The device's state as it reports it. Raises :class:`ShockerError`."""
        values = self._transact("status")
        return ShockerStatus(values["armed"], values.get("current_ma"), values.get("watchdog_ms"))

    def set_current(self, current_ma: float) -> float:
        """Set the shock current and return the device's read-back in mA.

        Refused without sending anything if ``current_ma`` (as it would be sent) is negative,
        not finite, or above ``max_current_ma``. Raises :class:`ShockerError` if refused, if
        the device refuses, or if the read-back differs by more than the profile's tolerance.
        Not retried.
        """
        value = float(current_ma)
        with self._lock:
            self._confirmed_ma = None
            if not math.isfinite(value) or value < 0:
                raise ShockerError(f"shocker: current {current_ma!r} mA refused (not sent)")
            template = self.profile.send_template("set_current")
            sent = template.parse(template.format(current_ma=value))
            sent_ma = value if sent is None else sent["current_ma"]
            if value > self.max_current_ma or sent_ma > self.max_current_ma:
                raise ShockerError(
                    f"shocker: current {value:g} mA refused: above the rig's safety limit "
                    f"of {self.max_current_ma:g} mA (not sent)"
                )
            self._transact("set_current", current_ma=value)
            readback = self.read_current()
            if abs(readback - sent_ma) > self.profile.readback_tolerance_ma:
                raise ShockerError(
                    f"shocker: current read-back {readback:g} mA differs from the "
                    f"{sent_ma:g} mA set"
                )
            self._confirmed_ma = readback
            return readback

    def arm(self) -> None:
        """Enable the output stage. Refused until :meth:`set_current` has been confirmed.

        Raises :class:`ShockerError`. Not retried.
        """
        with self._lock:
            if self._confirmed_ma is None:
                raise ShockerError("shocker: arm refused: set and confirm the current first")
            self._transact("arm")
            self._armed = True

    def disarm(self) -> None:
        """Disable the output stage; tried up to ``disarm_attempts`` times.

        Raises :class:`ShockerError` if the device never confirms.
        """
        last: ShockerError | None = None
        for _ in range(self.config.disarm_attempts):
            try:
                self._transact("disarm")
            except ShockerError as exc:
                last = exc
                if self._broken is not None or self._closing:
                    break
                continue
            self._armed = False
            return
        raise ShockerError(f"shocker: disarm not confirmed: {last}")

    def heartbeat(self) -> None:
        """Prove the link is alive within ``heartbeat_timeout_s`` (< 100 ms).

        Raises :class:`ShockerError` on no reply, a bad reply, a lost link, or if the device
        reports an armed state other than the one this driver last confirmed (e.g. its
        watchdog disarmed it).
        """
        try:
            values = self._transact("heartbeat", timeout_s=self.config.heartbeat_timeout_s)
        except ShockerError as exc:
            unanswered = self._broken is None and (
                "no reply" in str(exc) or "write timed out" in str(exc)
            )
            if unanswered and self._missed_beats < self.config.heartbeat_misses_allowed:
                self._missed_beats += 1
                return
            raise
        self._missed_beats = 0
        if "armed" in values and values["armed"] != self._armed:
            state = "armed" if values["armed"] else "disarmed"
            raise ShockerError(f"shocker: device reports {state}, expected otherwise")

    def preflight(self) -> list[PreflightCheck]:
        """Port, identity, current read-back (within the limit), disarmed. Never raises."""
        checks: list[PreflightCheck] = []

        def check(name: str, probe: Callable[[], tuple[bool, str]]) -> bool:
            try:
                ok, detail = probe()
            except Exception as exc:
                ok, detail = False, str(exc)
            checks.append(PreflightCheck("shocker", name, ok, detail))
            return ok

        if not check("port", lambda: (self.open() is None, self.config.port)):
            return checks
        check("identity", lambda: (True, self.identify()))

        def current() -> tuple[bool, str]:
            ma = self.read_current()
            ok = ma <= self.max_current_ma + self.profile.readback_tolerance_ma
            return ok, f"{ma:g} mA (limit {self.max_current_ma:g} mA)"

        check("current read-back", current)

        def disarmed() -> tuple[bool, str]:
            status = self.status()
            wd = self.config.device_watchdog_ms
            if wd is not None and status.watchdog_ms not in (None, wd):
                return False, f"device watchdog {status.watchdog_ms} ms, expected {wd} ms"
            return not status.armed, "armed" if status.armed else "disarmed"

        check("disarmed", disarmed)
        return checks

    def close(self) -> None:
        """Disarm (best effort) and release the port. Idempotent; never raises."""
        if self._closed:
            return
        self._closed = True
        port = self._port
        got = self._lock.acquire(timeout=0.05)
        if not got:  # another thread is mid-command: wake it, it sees _closing and gives up
            self._closing = True
            self._cancel(port)
            got = self._lock.acquire(timeout=1.0)
        try:
            if got and port is not None and self._broken is None:
                self._closing = False
                try:
                    self.disarm()
                except Exception as exc:
                    log.warning("shocker: close: %s", exc)
            self._closing = True
            if port is not None:
                self._cancel(port)
                try:
                    port.close()
                except Exception as exc:
                    log.warning("shocker: close port: %s", exc)
        finally:
            if got:
                self._lock.release()
            self._run_on_close()

    @staticmethod
    def _cancel(port: serial.Serial | None) -> None:
        if port is None:
            return
        for cancel in (port.cancel_read, port.cancel_write):
            try:
                cancel()
            except Exception as exc:
                log.debug("shocker: cancel: %s", exc)

    def _run_on_close(self) -> None:
        callback, self._on_close = self._on_close, None
        if callback is not None:
            try:
                callback()
            except Exception as exc:
                log.warning("shocker: on_close: %s", exc)


def _build(section: str, config: BaseModel, ctx: BuildContext) -> SerialShockGenerator:
    assert isinstance(config, SerialShockerConfig)
    return SerialShockGenerator(config, max_current_ma=float(ctx.rig.safety.max_current_ma))


SPEC = DriverSpec(
    name="serial-shocker",
    sections=("shocker",),
    config_model=SerialShockerConfig,
    build=_build,
)
