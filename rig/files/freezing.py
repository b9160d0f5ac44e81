"""The rig file's ``freezing:`` section: the regions, the motion indices' parameters and the
freezing rule's (what they mean: :mod:`rig.behaviour.motion`, :mod:`rig.behaviour.freezing`,
``docs/freezing.md``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class RectRegion(BaseModel):
    """An axis-aligned rectangle in image pixels (``x`` to the right, ``y`` down)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    x_px: Annotated[float, Field(ge=0)]
    y_px: Annotated[float, Field(ge=0)]
    width_px: Annotated[float, Field(gt=0)]
    height_px: Annotated[float, Field(gt=0)]


class PolygonRegion(BaseModel):
    """A polygon in image pixels, given by its vertices ``[[x, y], ...]`` (even-odd rule)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    points_px: Annotated[
        list[Annotated[list[float], Field(min_length=2, max_length=2)]], Field(min_length=3)
    ]


Region = RectRegion | PolygonRegion


class MotionParams(BaseModel):
    """The motion indices' parameters (:class:`FreezingParams` extends them;
    see :mod:`rig.behaviour.motion`)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    gap_s: Annotated[float, Field(gt=0)] = 0.25
    noise_cutoff_grey: Annotated[float, Field(ge=0)] | Literal["auto"] = "auto"
    noise_calibration_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    compensate_illumination: bool = True
    bin_px: Annotated[int, Field(ge=1, le=16)] = 4
    roi: Region | None = None
    exclude: list[Region] = Field(default_factory=list)


class FreezingParams(MotionParams):
    """The rig file's ``freezing:`` section.

    Motion fields (see :mod:`rig.behaviour.motion`): ``gap_s``, ``noise_cutoff_grey``,
    ``noise_calibration_s``, ``compensate_illumination``, ``bin_px``, ``roi``, ``exclude``.
    ``threshold`` is a fraction of the ROI (0-1) for ``measure: motion``, or ``auto`` to derive
    it from the calibration window with
    :func:`rig.behaviour.freezing.auto_threshold`. ``measure: locomotion`` uses
    ``speed_threshold_cm_s`` and the encoder constants instead.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    measure: Literal["motion", "locomotion"] = "motion"
    threshold: Annotated[float, Field(ge=0, le=1)] | Literal["auto"] = "auto"
    min_freeze_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    calibration_s: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    speed_threshold_cm_s: Annotated[float, Field(gt=0)] = 1.0
    encoder_counts_per_rev: Annotated[int, Field(gt=0)] = 4096
    wheel_diameter_cm: Annotated[float, Field(gt=0)] = 15.0
    speed_window_s: Annotated[float, Field(ge=0)] = 0.25
