"""ezTrack's freezing analysis, re-implemented from its published algorithm for the benchmark.

ezTrack (Pennington et al. 2019, Sci Rep 9:19979; github.com/denisecailab/ezTrack,
``FreezeAnalysis/FreezeAnalysis_Functions.py`` and its notebooks) scores freezing in three
steps, reproduced here step for step (written for this benchmark, not copied):

1. **Calibration** (``FreezeAnalysis_Calibration.ipynb``, ``Calibrate``): on a video of the
   empty arena, ``cal_frms`` frames, each converted to grey and blurred with a Gaussian of
   ``SIGMA = 1`` (OpenCV, kernel size from sigma); at ``cal_pix = 10000`` pixel positions drawn
   at random (with replacement) the absolute change from the previous blurred frame is
   recorded (the first row stays zero); the motion cutoff is twice the 99.99th percentile of
   all recorded changes.
2. **Motion** (``Measure_Motion``): each frame is converted to grey, cropped to the user's box
   (before the blur), converted to float and blurred (sigma 1); ``Motion[x]`` is the number of
   pixels whose absolute change from the previous frame exceeds the cutoff; ``Motion[0] = 0``.
3. **Freezing** (``Measure_Freezing``): a frame is below threshold when ``Motion <
   FreezeThresh`` (pixels; default 200); a counter of consecutive below-threshold frames
   (``CumThresh``, which by the original's loop is always 0 at frame 0) marks freezing once it
   reaches ``MinDuration`` (default 15 frames), and the frames of the run before that are
   filled in backwards, so a qualifying run counts from its first frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

try:
    import cv2
except ImportError:  # pragma: no cover - the benchmark says so and stops
    cv2 = None

FREEZE_THRESH_DEFAULT = 200  # pixels (FreezeAnalysis_Individual.ipynb)
MIN_DURATION_DEFAULT = 15  # frames
SIGMA = 1.0
CAL_PIX = 10_000
CAL_FRAMES = 300

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 as drawn with the crop tool


def _blur(frame: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(frame.astype("float"), (0, 0), SIGMA)


def calibrate_cutoff(
    empty_frames: Iterable[np.ndarray], rng: np.random.Generator, cal_pix: int = CAL_PIX
) -> float:
    """The motion cutoff from grey frames of the empty arena (``Calibrate``)."""
    frames = iter(empty_frames)
    old = _blur(next(frames))
    h, w = old.shape
    rows = (rng.random((cal_pix, 1)) * h).astype(int)
    cols = (rng.random((cal_pix, 1)) * w).astype(int)
    changes = [np.zeros(cal_pix)]  # the first row stays zero, as in the original
    for frame in frames:
        new = _blur(frame)
        changes.append(np.absolute(new[rows, cols] - old[rows, cols])[:, 0])
        old = new
    return 2.0 * float(np.percentile(np.array(changes), 99.99))


def crop(frame: np.ndarray, box: Box | None) -> np.ndarray:
    """The user's crop box (``cropframe``): rows then columns, before the blur."""
    if box is None:
        return frame
    x0, y0, x1, y1 = box
    return frame[y0:y1, x0:x1]


class EzTrackMotion:
    """``Measure_Motion`` one grey frame at a time: pixels changed since the previous frame."""

    def __init__(self, cutoff: float, box: Box | None) -> None:
        self.cutoff = cutoff
        self.box = box
        self._old: np.ndarray | None = None

    def push(self, grey: np.ndarray) -> float:
        new = _blur(crop(grey, self.box))
        motion = 0.0
        if self._old is not None:
            frame_dif = np.absolute(new - self._old)
            frame_cut = (frame_dif > self.cutoff).astype("uint8")
            motion = float(np.sum(frame_cut))
        self._old = new
        return motion


def measure_motion_file(path: Path, cutoff: float, box: Box | None) -> np.ndarray:
    """``Measure_Motion`` on a video file: decode, grey, crop, blur, count (end to end)."""
    cap = cv2.VideoCapture(str(path))
    scorer = EzTrackMotion(cutoff, box)
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(scorer.push(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)))
    cap.release()
    return np.array(out)


def measure_freezing(motion: np.ndarray, freeze_thresh: float, min_duration: int) -> np.ndarray:
    """``Measure_Freezing``: True where freezing (the original returns 0/100)."""
    below = np.asarray(motion) < freeze_thresh
    n = len(below)
    cum = np.zeros(n, np.int64)
    for x in range(1, n):  # the original's loop starts at 1: frame 0 never counts
        if below[x]:
            cum[x] = cum[x - 1] + 1
    freezing = (cum >= min_duration).astype(np.int64)
    for x in range(n - 2, -1, -1):  # fill each qualifying run back to its first frame
        if freezing[x] == 0 and 0 < freezing[x + 1] < min_duration:
            freezing[x] = freezing[x + 1] + 1
    return freezing > 0


def tune_freeze_thresh(
    motion: np.ndarray, truth: np.ndarray, min_duration: int, candidates: np.ndarray
) -> float:
    """The FreezeThresh (pixels) with the best frame agreement with ``truth``."""
    scores = [np.mean(measure_freezing(motion, c, min_duration) == truth) for c in candidates]
    return float(candidates[int(np.argmax(scores))])
