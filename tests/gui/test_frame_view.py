"""The live frame display's black and white levels."""

from __future__ import annotations

import numpy as np

from gui.frame_view import display_levels


def test_8_bit_frames_keep_their_full_range():
    assert display_levels(np.zeros((120, 160), np.uint8)) == (0.0, 255.0)


def test_deep_frames_ignore_a_few_hot_pixels():
    rng = np.random.default_rng(0)
    frame = rng.integers(900, 1100, (512, 512)).astype(np.uint16)
    frame[100:103, 200:203] = 60_000  # a hot spot must not turn the rest black
    lo, hi = display_levels(frame)
    assert 900 <= lo < 950 and 1050 < hi <= 1100


def test_a_flat_frame_still_gets_a_range():
    lo, hi = display_levels(np.full((64, 64), 500, np.uint16))
    assert hi > lo == 500
