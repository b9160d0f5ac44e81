"""An in-process simulated shock generator (first fidelity), with injectable faults."""

from __future__ import annotations

from rig.ports import PreflightCheck, ShockerError


class SimShocker:
    """Implements ``rig.ports.ShockGenerator``; keeps a log of every command it obeyed."""

    simulated = True

    def __init__(self, max_current_ma: float):
        self.max_current_ma = max_current_ma
        self.armed = False
        self.current_ma = 0.0
        self.connected = True
        self.refusing = False
        self.silent = False
        self.commands: list[str] = []

    def _check(self, command: str) -> None:
        if not self.connected:
            raise ShockerError(f"{command}: serial port disconnected")
        if self.silent:
            raise ShockerError(f"{command}: no reply within the timeout")
        self.commands.append(command)

    def preflight(self) -> list[PreflightCheck]:
        try:
            ident = self.identify()
        except ShockerError as exc:
            return [PreflightCheck("shocker", "identify", False, str(exc))]
        return [PreflightCheck("shocker", "identify", True, ident)]

    def identify(self) -> str:
        self._check("ID")
        return "fear-rig simulated shock generator"

    def set_current(self, current_ma: float) -> float:
        if current_ma > self.max_current_ma:
            raise ShockerError(f"{current_ma} mA is above the rig limit {self.max_current_ma} mA")
        self._check(f"CUR {current_ma}")
        if self.refusing:
            raise ShockerError(f"the shock generator refused CUR {current_ma}")
        self.current_ma = current_ma
        return current_ma

    def arm(self) -> None:
        self._check("ARM")
        self.armed = True

    def disarm(self) -> None:
        self.armed = False  # the output stage goes off even if the link is gone
        self._check("DISARM")

    def heartbeat(self) -> None:
        self._check("HB")

    def close(self) -> None:
        self.armed = False

    def inject(self, kind: str) -> None:
        if kind == "serial_disconnect":
            self.connected = False
        elif kind == "shocker_refuse":
            self.refusing = True
        elif kind == "shocker_no_reply":
            self.silent = True
