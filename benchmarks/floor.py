"""What every benchmark here shares: time a piece of work and print it as a ratio to a floor.

A floor is the least work any implementation must do on the same input (for example,
polars alone finding the highest LDL-C per patient), measured in the same process and run
as the code it is compared with. A ratio to it says something on any machine and under
any load; absolute seconds do not. Every benchmark prints at least one line
``<what>: <ratio>x the floor (<seconds> s against <floor seconds> s)``.
"""

from __future__ import annotations

import time
from typing import Any, Callable


def timed(work: Callable[[], Any]) -> tuple[Any, float, float]:
    """``work()``'s result, wall seconds and CPU seconds of this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def ratio_line(what: str, seconds: float, floor_seconds: float) -> str:
    """The line every benchmark prints; a floor too short to time is counted as 1 ms."""
    ratio = seconds / max(floor_seconds, 1e-3)
    return f"{what}: {ratio:.1f}x the floor ({seconds:.3f} s against {floor_seconds:.3f} s)"
