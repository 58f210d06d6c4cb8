"""How many workers a batch job starts."""

from __future__ import annotations

import os


def worker_count(jobs: int, n_tasks: int) -> int:
    """Worker processes for ``jobs`` (-1 = all cores) and ``n_tasks`` tasks.

    Never more than the machine has cores, nor more than there are tasks (asking for
    100 processes for 3 files starts 3, or as many as there are cores); at least 1.

    Examples
    --------
    >>> worker_count(100, 3) <= 3
    True
    >>> worker_count(4, 0)
    1
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs == 0 or jobs < -1:
        raise ValueError(f"jobs must be a positive integer or -1, got {jobs!r}")
    cores = os.cpu_count() or 1
    return max(1, min(cores if jobs == -1 else jobs, cores, n_tasks))


def check_jobs(jobs: int, option: str = "--jobs") -> int:
    """``jobs`` when it is a positive number or -1 (all cores); else the one-line
    :class:`vawgan.errors.VawganError` a command shows for its ``option``."""
    from .errors import VawganError

    if jobs == 0 or jobs < -1:
        raise VawganError(f"{option} {jobs}: use a positive number or -1 (all cores)")
    return jobs
