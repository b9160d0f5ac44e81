"""What one session's analysis may use at once: working memory per step, and processes.

The per-frame steps (dF/F, z, the responsiveness test, binarising) take as many neurons at a
time as fit in :data:`WORK_BYTES`, so what they hold beyond the traces and the z-scored result
stays about that size whatever the session's length. The many independent model fits (the
shuffle null, the penalty choice, the decoders' cross-validation and stability selection) run
on ``n_jobs`` processes; every fit's randomness is drawn before, from the seed, so results do
not depend on ``n_jobs``.
"""

from __future__ import annotations

import os

from joblib import Parallel

WORK_BYTES = 16_000_000


def rows_per_chunk(t_len: int, copies: int, itemsize: int = 8) -> int:
    """How many neurons at a time keep ``copies`` temporaries of ``t_len`` values each within
    :data:`WORK_BYTES` (at least one)."""
    return max(1, WORK_BYTES // max(1, copies * itemsize * t_len))


def processes(n_jobs: int) -> Parallel:
    """A joblib map over ``n_jobs`` processes (in this process when 1). Processes, not
    threads: liblinear draws its coordinate order from one generator per process, so fits
    running side by side in one process would not be reproducible."""
    # max_nbytes=None: the designs (a few MB) are pickled to the workers, not memory-mapped
    # through /dev/shm, which the loky resource tracker then complains about at exit
    return Parallel(n_jobs=n_jobs, backend="loky" if n_jobs != 1 else "sequential", max_nbytes=None)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)
