"""``fhscreen demo``: a synthetic region, the nightly job on its history, then a short
simulated pilot (``fh_screen.synth.simulate``) so that every output has something in it.

The region's history arrives as one full delivery and is run on its date; then a few weeks
are played forward a week at a time: GPs act on the worklists or not, clinics report
visits and results, family letters go out and relatives get tested. The ledgers are seen
at work (nobody listed twice, overflow carried over, cascade loops closing) and the
evaluator report has outcomes to show.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Callable

from fh_screen.app.run import run
from fh_screen.config import load_settings
from fh_screen.synth.simulate import simulate

DEMO_AS_OF = date(2026, 11, 23)
DEMO_MONTHS = 3


def demo(out: Path, n_patients: int, seed: int, progress: Callable[[str], None] | None = None,
         months: float = DEMO_MONTHS) -> dict:
    result = simulate(out=out, months=months, n_patients=n_patients, seed=seed, start=DEMO_AS_OF, runner=run,
                      settings=load_settings(), progress=progress)
    latest = Path(result["latest_run"])
    print(f"demo region: {n_patients:,} synthetic people, {result['runs']} runs over {months:g} months "
          f"({result['region']['start']} to {result['region']['end']})", file=sys.stdout)
    print(f"database:    {Path(out).resolve() / 'fh_screen.duckdb'}")
    print(f"outputs:     {latest}")
    for name in ("referrals.csv", "queue.csv", "worklists", "clinics", "letters", "cascade.csv", "metrics",
                 "quality", "run_manifest.json"):
        print(f"  {name:18s} {latest / name}")
    print("These outputs are decision support for clinicians, not diagnoses.")
    return result
