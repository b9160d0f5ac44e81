"""A cohort dry run behaves like a real cohort: fear to the CS+ is learned, recalled, extinguished."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from sim.cohort import DAYS, run_cohort, table
from tests.conftest import PROTOCOLS, SMALL_RIG


def _shortened(folder: Path) -> Path:
    """The library protocols with the same trials but short tones, ITIs and baselines."""
    for day in DAYS:
        text = (PROTOCOLS / f"{day}.yaml").read_text()
        text = text.replace("duration_s: 30,", "duration_s: 10,")
        text = re.sub(r"iti_s: \{uniform: \[\d+, \d+\]\}", "iti_s: {uniform: [8, 12]}", text)
        text = re.sub(r"duration_s: (180|120)\n", "duration_s: 40\n", text)
        text = re.sub(r"post_s: \d+", "post_s: 10", text)
        (folder / f"{day}.yaml").write_text(text)
    return folder


@pytest.mark.slow
def test_cohort_learns_recalls_and_extinguishes(tmp_path):
    (tmp_path / "protocols").mkdir()
    protocols = _shortened(tmp_path / "protocols")
    results = run_cohort(2, tmp_path / "out", SMALL_RIG, protocols)

    def mean(day: str, cs: str, key: str = "true") -> float:
        return float(np.mean([r[day][cs][key] for r in results.values()]))

    for key in ("true", "scored"):
        assert mean("conditioning", "cs_plus", key) > mean("habituation", "cs_plus", key) + 10
        assert mean("recall", "cs_plus", key) > mean("recall", "cs_minus", key) + 10
        assert mean("recall", "cs_plus", key) > mean("habituation", "cs_plus", key) + 10
        assert mean("extinction", "cs_plus", key) < mean("recall", "cs_plus", key)
    assert "mouse-01" in table(results)
