"""A cohort dry run behaves like a real cohort: fear to the CS+ is learned, recalled, extinguished."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from sim.cohort import (
    DAYS,
    PRESETS,
    Shortening,
    freezing_by_day,
    shortened_protocols,
    simulate_cohort,
    table,
)
from tests.conftest import PROTOCOLS, SMALL_RIG

# The library's trials (no cap), 10-s tones 8-12 s apart, 40-s baselines, full frame rates.
SHORT = Shortening(10, (8, 12), 40, 10, 99, 30, 30)


def test_shortened_protocols_keep_trials_and_cut_times(tmp_path):
    folder = shortened_protocols(tmp_path, PRESETS["tiny"])
    for day in DAYS:
        library = yaml.safe_load((PROTOCOLS / f"{day}.yaml").read_text())
        short = yaml.safe_load((folder / f"{day}.yaml").read_text())
        assert short["seed"] == library["seed"]
        assert short["recording"]["video"]["fps"] == PRESETS["tiny"].video_fps
        for before, after in zip(library["phases"], short["phases"], strict=True):
            kinds = [(t["cs"], t.get("us")) for t in before.get("trials", [])]
            assert [(t["cs"], t.get("us")) for t in after.get("trials", [])] == kinds
            assert all(t.get("repeat", 1) <= 3 for t in after.get("trials", []))


@pytest.mark.slow
def test_cohort_learns_recalls_and_extinguishes(tmp_path):
    protocols = shortened_protocols(tmp_path / "protocols", SHORT)
    results = freezing_by_day(simulate_cohort(2, tmp_path / "out", SMALL_RIG, protocols))

    def mean(day: str, cs: str, key: str = "true") -> float:
        return float(np.mean([r[day][cs][key] for r in results.values()]))

    for key in ("true", "scored"):
        assert mean("conditioning", "cs_plus", key) > mean("habituation", "cs_plus", key) + 10
        assert mean("recall", "cs_plus", key) > mean("recall", "cs_minus", key) + 10
        assert mean("recall", "cs_plus", key) > mean("habituation", "cs_plus", key) + 10
        assert mean("extinction", "cs_plus", key) < mean("recall", "cs_plus", key)
    assert "mouse-01" in table(results)
