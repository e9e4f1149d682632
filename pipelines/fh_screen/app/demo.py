"""``fhscreen demo``: a synthetic region, the nightly job on its history, then a short
simulated pilot (``fh_screen.synth.simulate``) so that every output has something in it.

The region's history arrives as one full delivery and is run on its date; then a few weeks
are played forward a week at a time: GPs act on the worklists or not, clinics report
visits and results, family letters go out and relatives get tested. The ledgers are seen
at work (nobody listed twice, overflow carried over, cascade loops closing) and the
evaluator report has outcomes to show.

With ``layout`` (``dst`` or ``sds``) the region arrives as register extracts instead:
they are converted into one contract delivery (``fhscreen convert``) and run once, the
way a Danish data team would start.
"""

from __future__ import annotations

import shutil
import sys
from datetime import date
from pathlib import Path
from typing import Callable

from fh_screen.app.run import run
from fh_screen.config import load_settings
from fh_screen.convert import convert
from fh_screen.synth import generate
from fh_screen.synth.simulate import simulate

DEMO_AS_OF = date(2026, 11, 23)
# Short enough that the quick start stays quick; ``fhscreen simulate`` plays a whole year.
DEMO_MONTHS = 1


def demo(out: Path, n_patients: int, seed: int, progress: Callable[[str], None] | None = None,
         layout: str | None = None, months: float = DEMO_MONTHS) -> dict:
    if layout:
        return _demo_from_registers(Path(out).resolve(), n_patients, seed, progress, layout)
    result = simulate(out=out, months=months, n_patients=n_patients, seed=seed, start=DEMO_AS_OF, runner=run,
                      settings=load_settings(), progress=progress)
    latest = Path(result["latest_run"])
    print(f"demo region: {n_patients:,} synthetic people, {result['runs']} runs over {months:g} month{'' if months == 1 else 's'} "
          f"({result['region']['start']} to {result['region']['end']})", file=sys.stdout)
    print(f"database:    {Path(out).resolve() / 'fh_screen.duckdb'}")
    print(f"outputs:     {latest}")
    _print_outputs(latest)
    return result


def _demo_from_registers(out: Path, n_patients: int, seed: int, progress: Callable[[str], None] | None,
                         layout: str) -> dict:
    """Synthesise the region as ``layout`` register extracts, convert them, run once."""
    if out.exists():
        shutil.rmtree(out)
    say = progress or (lambda _msg: None)
    say(f"synthetic region of {n_patients:,} people as {layout} register extracts")
    summary = generate(out=out / "synthetic", n_patients=n_patients, seed=seed, as_of=DEMO_AS_OF,
                       fmt="csv", dialect="plain", nights=1, params_file=None, layout=layout)
    say(f"converting the {layout} register extracts")
    delivery = out / "converted" / DEMO_AS_OF.isoformat()
    convert(layout, Path(summary["register_dir"]), delivery)
    print(f"register extracts: {summary['register_dir']}")
    print(f"converted:         {delivery}  (convert_manifest.json, set_aside.csv)")
    db_path = out / "fh_screen.duckdb"
    say(f"nightly run for {DEMO_AS_OF}")
    latest = out / "runs" / DEMO_AS_OF.isoformat()
    manifest = run(extract_dir=delivery, db_path=db_path, out_dir=latest, as_of=DEMO_AS_OF,
                   settings=load_settings(), on_step=progress)
    print(f"demo region: {n_patients:,} synthetic people, 1 nightly run", file=sys.stdout)
    print(f"database:    {db_path}")
    print(f"outputs:     {latest}")
    _print_outputs(latest)
    return {"summary": summary, "manifests": [manifest], "latest_run": str(latest)}


def _print_outputs(latest: Path) -> None:
    for name in ("referrals.csv", "queue.csv", "worklists", "clinics", "letters", "cascade.csv", "metrics",
                 "quality", "run_manifest.json"):
        print(f"  {name:18s} {latest / name}")
    print("These outputs are decision support for clinicians, not diagnoses.")
