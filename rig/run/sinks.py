"""What consumes a session as it runs, beside the session store: live scoring and the preview.

A sink is told when the streams are known (:meth:`start`) and gets every step's edges and
frames (:meth:`take`); it emits what it makes through the session's signals. The runner calls
the sinks in order after the store has queued the step's data.
"""

from __future__ import annotations

import time
from array import array
from typing import Protocol

import numpy as np

from rig.behaviour.live import LiveLocomotion, LiveScorer
from rig.files.freezing import FreezingParams
from rig.program.schedule import CAMERA_EXPOSURE, VIDEO, WHEEL, OutputSchedule
from rig.program.timeline import Timeline
from rig.run.engine import Step, StreamPlan
from rig.run.signals import SessionSignals

PREVIEW_HZ = 15.0  # frames per second per stream the preview signal carries at most


class SessionSink(Protocol):
    """Something that follows a session's data as it arrives."""

    def start(self, streams: dict[str, StreamPlan]) -> None:
        """The streams the session records are known; the DAQ has not started yet."""

    def take(self, step: Step) -> None:
        """One step's edges and frames."""


class LiveScoring:
    """Freezing scored live from the video's motion (or the wheel's speed), one sample per
    frame (or bin) on the ``freezing`` signal; keeps the motion index for the session folder."""

    def __init__(
        self,
        params: FreezingParams,
        timeline: Timeline,
        schedule: OutputSchedule,
        signals: SessionSignals,
    ) -> None:
        self.params = params
        self.timeline = timeline
        self.schedule = schedule
        self.signals = signals
        self.fs = schedule.sample_rate_hz
        self.scorer: LiveScorer | None = None
        self.wheel: LiveLocomotion | None = None
        self._exposures = array("q")  # camera exposure samples; typed: one per frame, for hours

    def start(self, streams: dict[str, StreamPlan]) -> None:
        if self.params.measure == "motion" and VIDEO in streams:
            info = streams[VIDEO].info
            self.scorer = LiveScorer(
                self.params, info.width, info.height, info.rate_hz, self.timeline
            )
        if self.params.measure == "locomotion":
            self.wheel = LiveLocomotion(self.params, self.fs, self.schedule.duration_s)

    def take(self, step: Step) -> None:
        exposure = step.edges.get(CAMERA_EXPOSURE)
        if exposure is not None:
            self._exposures.extend(exposure.samples[exposure.rising].tolist())
        if self.wheel is not None:
            wheel = step.edges.get(WHEEL)
            samples = wheel.samples[wheel.rising] if wheel is not None else np.empty(0, np.int64)
            for sample in self.wheel.push(samples, round(step.t_s * self.fs)):
                self.signals.freezing.emit(sample)
        frames = step.frames.get(VIDEO)
        if self.scorer is not None and frames:
            times = []
            for frame in frames:
                k = frame.index
                if k < len(self._exposures):
                    times.append(self._exposures[k] / self.fs)
                else:  # edge not read yet: its nominal time, for the live display only
                    times.append(k / self.schedule.camera_rate_hz)
            images = np.stack([frame.image for frame in frames])
            for sample in self.scorer.push_many([f.index for f in frames], images, times):
                self.signals.freezing.emit(sample)

    @property
    def scored(self) -> bool:
        """Whether anything was scored live (the session is then scored at its end)."""
        return bool(self.scorer is not None and self.scorer.motion) or self.wheel is not None


class Preview:
    """The newest frame of each stream on the ``frame`` signal, at most :data:`PREVIEW_HZ`."""

    def __init__(self, signals: SessionSignals) -> None:
        self.signals = signals
        self._last: dict[str, float] = {}

    def start(self, streams: dict[str, StreamPlan]) -> None:
        self._last = {}

    def take(self, step: Step) -> None:
        for stream, frames in step.frames.items():
            if not frames:
                continue
            now = time.monotonic()
            if now - self._last.get(stream, 0.0) >= 1 / PREVIEW_HZ:
                self._last[stream] = now
                self.signals.frame.emit(stream, frames[-1].image)
