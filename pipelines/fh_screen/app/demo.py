"""``fhscreen demo``: a synthetic region, then the nightly job on it, end to end.

The region's history arrives as one full delivery and is run on its date; a second, small
nightly delivery is then run the next day, so the demo shows the ledgers at work (nobody
listed twice, overflow carried over, cascade loops closing).

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

from fh_screen.config import load_settings
from fh_screen.app.run import run
from fh_screen.convert import convert
from fh_screen.synth import generate

DEMO_AS_OF = date(2026, 11, 23)


def demo(out: Path, n_patients: int, seed: int, progress: Callable[[str], None] | None = None,
         layout: str | None = None) -> dict:
    out = Path(out).resolve()
    if out.exists():
        shutil.rmtree(out)
    say = progress or (lambda _msg: None)
    say(f"synthetic region of {n_patients:,} people" + (f" as {layout} register extracts" if layout else ""))
    summary = generate(
        out=out / "synthetic", n_patients=n_patients, seed=seed, as_of=DEMO_AS_OF,
        fmt="csv", dialect="plain", nights=1 if layout else 2, params_file=None, layout=layout,
    )
    extracts = summary["extract_dirs"]
    if layout:
        say(f"converting the {layout} register extracts")
        delivery = out / "converted" / DEMO_AS_OF.isoformat()
        convert(layout, Path(summary["register_dir"]), delivery)
        extracts = [str(delivery)]
        print(f"register extracts: {summary['register_dir']}")
        print(f"converted:         {delivery}  (convert_manifest.json, set_aside.csv)")
    settings = load_settings()
    db_path = out / "fh_screen.duckdb"
    manifests = []
    for extract in extracts:
        as_of = date.fromisoformat(Path(extract).name)
        say(f"nightly run for {as_of}")
        manifests.append(
            run(extract_dir=Path(extract), db_path=db_path, out_dir=out / "runs" / as_of.isoformat(),
                as_of=as_of, settings=settings, on_step=progress)
        )
    latest = out / "runs" / Path(extracts[-1]).name
    print(f"demo region: {n_patients:,} synthetic people, {len(manifests)} nightly runs", file=sys.stdout)
    print(f"database:    {db_path}")
    print(f"outputs:     {out / 'runs'}  (latest: {latest})")
    for name in ("referrals.csv", "worklists", "letters", "cascade.csv", "metrics", "quality", "run_manifest.json"):
        print(f"  {name:18s} {latest / name}")
    print("These outputs are decision support for clinicians, not diagnoses.")
    return {"summary": summary, "manifests": manifests}
