"""What every benchmark here shares: time a piece of work and print it as a ratio to a floor.

A floor is the least work any implementation must do on the same input (for example,
polars alone finding the highest LDL-C per patient), measured in the same process and run
as the code it is compared with. A ratio to it says something on any machine and under
any load; absolute seconds do not. Every benchmark prints at least one line
``<what>: <ratio>x the floor (<seconds> s against <floor seconds> s)``.

The benchmarks that build their own synthetic tables in memory (features, rules) date them
to ``AS_OF`` and take their size and seed from the command line in ``synthetic_input``.
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from typing import Any, Callable

AS_OF = date(2026, 11, 23)


def timed(work: Callable[[], Any]) -> tuple[Any, float, float]:
    """``work()``'s result, wall seconds and CPU seconds of this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def ratio_line(what: str, seconds: float, floor_seconds: float) -> str:
    """The line every benchmark prints; a floor too short to time is counted as 1 ms."""
    ratio = seconds / max(floor_seconds, 1e-3)
    return f"{what}: {ratio:.1f}x the floor ({seconds:.3f} s against {floor_seconds:.3f} s)"


def synthetic_input(doc: str, build: Callable[[int, int], Any], people: int, people_help: str,
                    seed: int) -> tuple[int, Any, float]:
    """Parse ``--people`` and ``--seed`` (a benchmark's ``--help`` shows ``doc``), then build
    the benchmark's synthetic input with ``build(people, seed)``: people, input, build seconds."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=people, help=people_help)
    parser.add_argument("--seed", type=int, default=seed)
    args = parser.parse_args()
    built, seconds, _ = timed(lambda: build(args.people, args.seed))
    return args.people, built, seconds
