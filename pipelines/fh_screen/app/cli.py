"""The ``fhscreen`` command. Each sub-command is a thin call into the package.

Exit status: 0 success; 2 with a one-line reason on stderr for unusable input; 3 when
another run holds the database.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import date
from pathlib import Path

from fh_screen.errors import UserError

EXIT_USER_ERROR = 2
EXIT_LOCKED = 3


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date in YYYY-MM-DD form: {text!r}") from exc


def _progress(quiet: bool):
    """Step names on a terminal; silent in CI, under Airflow or when piped."""
    if quiet or not sys.stderr.isatty() or os.environ.get("CI") or os.environ.get("AIRFLOW_CTX_DAG_ID"):
        return None
    return lambda step: print(f"  ... {step}", file=sys.stderr, flush=True)


def _cmd_run(args: argparse.Namespace) -> int:
    from fh_screen.config import load_settings
    from fh_screen.app.run import run

    manifest = run(
        extract_dir=args.extract,
        db_path=args.db,
        out_dir=args.out,
        as_of=args.as_of,
        settings=load_settings(args.config),
        lock_timeout=args.wait,
        on_step=_progress(args.quiet),
    )
    _print_summary(manifest, args.out)
    return 0


def _print_summary(manifest: dict, out: Path) -> None:
    tables = manifest.get("tables", {})
    for name, counts in sorted(tables.items()):
        erased = counts.get("set_aside_for_erasure", 0)
        print(
            f"{name:16s} received {counts.get('received', 0):>9,}  loaded {counts.get('loaded', 0):>9,}"
            f"  quarantined {counts.get('quarantined', 0):>7,}" + (f"  set aside (erased) {erased:>5,}" if erased else "")
        )
    for step in ("stage", "validate"):
        for warning in manifest.get("steps", {}).get(step, {}).get("warnings", []):
            print(f"warning: {warning}")
    print(f"outputs: {Path(out).resolve()}")


def _cmd_synth(args: argparse.Namespace) -> int:
    from fh_screen.synth import generate

    summary = generate(
        out=args.out,
        n_patients=args.patients,
        seed=args.seed,
        as_of=args.as_of,
        fmt=args.format,
        dialect=args.dialect,
        nights=args.nights,
        params_file=args.params,
        layout=args.layout,
    )
    print(f"synthetic delivery: {summary['extract_dirs'][0]}")
    if summary.get("register_dir"):
        print(f"the same region as {args.layout} register extracts: {summary['register_dir']}")
    print(f"ground truth (never read by the pipeline): {summary['ground_truth']}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from fh_screen.app.demo import demo

    if args.layout and args.months is not None:
        raise UserError("--months plays a simulated pilot; with --layout the demo runs the converted extracts once")
    more = {} if args.months is None else {"months": args.months}
    demo(out=args.out, n_patients=args.patients, seed=args.seed, progress=_progress(args.quiet), layout=args.layout,
         **more)
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from fh_screen.convert import convert

    manifest = convert(args.layout, args.in_dir, args.out)
    for name, counts in manifest["tables"].items():
        print(f"{name:32s} read {counts['read']:>9,}  converted {counts['converted']:>9,}  set aside {counts['set_aside']:>7,}")
    for what, n in manifest["notes"].items():
        print(f"note: {n:,} {what}")
    for name in manifest["not_from_registers"]:
        print(f"note: no {name} delivered (no register holds it; add {name}.csv in the contract's format)")
    print(f"delivery: {Path(args.out).resolve()}  (manifest: convert_manifest.json, set-aside rows: set_aside.csv)")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from fh_screen.config import load_settings
    from fh_screen.app.run import run
    from fh_screen.synth.simulate import simulate

    result = simulate(out=args.out, months=args.months, n_patients=args.patients, seed=args.seed, start=args.start,
                      runner=run,
                      every_nights=args.every_nights, params_file=args.params, settings=load_settings(args.config),
                      progress=_progress(args.quiet), region_params=args.synth_params)
    truth = result["truth"]
    print(f"simulated {args.months:g} months ({result['region']['start']} to {result['region']['end']}) of "
          f"{args.patients:,} synthetic people: {result['runs']} runs in {result['seconds']:,.0f} s")
    print(f"in the synthetic world: {truth['referred']:,} referred, {truth['attended']:,} seen in clinic, "
          f"{truth['confirmed']:,} confirmed, {truth['relatives_tested']:,} relatives tested")
    print(f"evaluator report: {result['report']}")
    print(f"what happened (truth, never read by the pipeline): {Path(args.out).resolve() / 'simulation.json'}")
    print("These outputs are decision support for clinicians, not diagnoses.")
    return 0


def _cmd_metrics_merge(args: argparse.Namespace) -> int:
    """National view: add regional aggregates, then suppress once (see fh_screen.stages.metrics.federated)."""
    from fh_screen.stages.metrics import federated
    from fh_screen.stages.metrics.step import write_outputs

    merged = federated.merge_files(args.inputs)
    document = write_outputs(Path(args.out), merged)
    regions = ", ".join(r["region_id"] for r in merged["regions"])
    print(f"merged {len(merged['regions'])} regions ({regions}); "
          f"{document['disclosure']['counts_withheld']} counts withheld")
    print(f"outputs: {Path(args.out).resolve()}")
    return 0


def _print_calibration(name: str, report: dict | None) -> None:
    """Calibration-in-the-large and slope before and after the region calibration."""
    if not report:
        return
    if not report.get("measurable"):
        why = report.get("why", "need both outcomes")
        print(f"{name}: calibration not measurable against {report['against']} ({report['people']} people: {why})")
        return
    b, a = report["before"], report["after"]
    print(f"{name}: calibration against {report['against']} ({report['people']:,} people, {report['events']} with FH): "
          f"in-the-large {b['citl']:+.3f} -> {a['citl']:+.3f}, slope {b['slope']:.3f} -> {a['slope']:.3f}, "
          f"O/E {b['oe']} -> {a['oe']} (before -> after region calibration)")


def _cmd_train(args: argparse.Namespace) -> int:
    from fh_screen.config import load_settings

    settings = load_settings(args.config)
    if args.worlds:
        from fh_screen.app.evaluate import train_on_worlds

        result = train_on_worlds(args.worlds, args.models, settings, seed=args.seed)
        print((Path(args.worlds) / "validation.md").read_text(encoding="utf-8"))
        print(f"production scorer: {result['selection']['production']} ({result['selection']['criterion']})")
        _print_calibration(result["selection"]["production"], result["calibration_report"])
        return 0
    if args.db is None or args.as_of is None:
        raise UserError("give --worlds FOLDER, or --db and --as-of")
    from fh_screen.training.train import train

    saved = train(args.db, args.as_of, args.models, seed=args.seed, prevalence=settings.metrics.expected_prevalence)
    for name, meta in saved.items():
        print(f"{name}: version {meta['version']}, {meta['training_rows']:,} people, "
              f"{meta['training_positives']:,} labelled positives -> {Path(args.models) / name}")
        _print_calibration(name, meta.get("calibration_report"))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from fh_screen.config import load_settings
    from fh_screen.app.evaluate import PLAN, evaluate, markdown

    external = None
    if args.worlds or args.patients:
        external = (args.worlds or PLAN["external"][0], args.patients or PLAN["external"][1])
    result = evaluate(args.out, load_settings(args.config), args.models, external,
                      outcome_patients=args.outcome_patients)
    print(markdown(result))
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    """A clinician's review page for one patient, as the worklist would show it."""
    from fh_screen.config import load_settings
    from fh_screen.app.review import patient_page
    from fh_screen.store import db

    settings = load_settings(args.config)
    con = db.connect(args.db, read_only=True)
    try:
        page = patient_page(con, args.patient_id, settings, args.lang or settings.worklist_language)
    except KeyError:
        print("no such patient in this store's rule results", file=sys.stderr)
        return 2
    finally:
        con.close()
    print(page, end="")
    return 0


def _cmd_erase(args: argparse.Namespace) -> int:
    from fh_screen.store import db
    from fh_screen.app.privacy import erase_patient
    from fh_screen.app.publishing import hold

    if not args.db.is_file():   # a mistyped path must not create an empty store and report success
        raise UserError(f"--db {args.db}: no such store; nothing was erased")
    with hold(args.db, timeout=args.wait):
        con = db.connect(args.db)
        try:
            removed = erase_patient(con, args.patient_id, date.today())
        finally:
            con.close()
    total = sum(removed.values())
    print(f"erased {total} rows across {len(removed)} tables: " + ", ".join(f"{t} {n}" for t, n in sorted(removed.items())))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fhscreen",
        description="Case-finding for familial hypercholesterolaemia from routine lab data. "
        "Outputs are decision support for clinicians, not diagnoses.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step (no patient data is logged)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_explain, _add_demo, _add_convert, _add_synth, _add_simulate, _add_run, _add_metrics,
                _add_train, _add_evaluate, _add_erase):
        add(sub)
    return parser


def _add_explain(sub) -> None:
    """The ``fhscreen explain`` subcommand and its options."""
    p = sub.add_parser("explain", help="a clinician's review page for one patient",
                       description="Print every input value the rules used for one patient (with dates, "
                       "units and provenance), each criterion's result and why, the route and the reasons, "
                       "exactly as the worklist shows them.")
    p.add_argument("--patient-id", required=True, help="the patient's id")
    p.add_argument("--db", type=Path, required=True, help="the DuckDB store a run wrote")
    p.add_argument("--config", type=Path, default=None, help="settings file (default: the packaged settings)")
    p.add_argument("--lang", choices=["da", "en"], default=None, help="language (default: the worklist language)")
    p.set_defaults(func=_cmd_explain)


def _add_demo(sub) -> None:
    """The ``fhscreen demo`` subcommand and its options."""
    p = sub.add_parser("demo", help="make a synthetic region and run the whole job on it",
                       description="Generate a synthetic region, run the nightly job on an embedded "
                       "DuckDB file, play a few weeks of the pilot forward a week at a time, and write "
                       "every output of the last run under --out/runs/<date>/.")
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default: demo-output)")
    _add_region_options(p)
    p.add_argument("--months", type=float, default=None, help="months of pilot to simulate after the history, "
                   "a week at a time (default: a few weeks, so the quick start stays quick); not with --layout")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--layout", choices=["dst", "sds"], help="start from register extracts in this layout: "
                   "synthesise them, convert them, then run (one night)")
    p.set_defaults(func=_cmd_demo)


def _add_region_options(p) -> None:
    """The synthetic region's size and seed, shared by ``demo`` and ``simulate`` so the two
    commands make the same region from the same options."""
    p.add_argument("--patients", type=int, default=30_000, help="people in the synthetic region (default 30000)")
    p.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")


def _add_convert(sub) -> None:
    """The ``fhscreen convert`` subcommand and its options."""
    p = sub.add_parser("convert", help="register or lab-system extracts -> a delivery in the contract's format",
                       description="Read register extracts (SAS7BDAT, CSV or Parquet) in a known layout and write "
                       "one delivery in the contract's format, with convert_manifest.json accounting for every "
                       "source row (read = converted + set aside) and set_aside.csv giving each set-aside row's "
                       "reason. Layouts: docs/registers.md.")
    p.add_argument("--layout", required=True, choices=["dst", "sds", "medcom-lab"],
                   help="dst = Statistics Denmark, sds = Health Data Authority, medcom-lab = a lab system's export")
    p.add_argument("--in", dest="in_dir", type=Path, required=True, help="folder with the register files")
    p.add_argument("--out", type=Path, required=True, help="delivery folder to write (replaced as a whole)")
    p.set_defaults(func=_cmd_convert)


def _add_synth(sub) -> None:
    """The ``fhscreen synth`` subcommand and its options."""
    p = sub.add_parser("synth", help="write a synthetic delivery (with separate ground truth)",
                       description="Write a synthetic region as a delivery folder in the contract's "
                       "format. Ground truth goes to a separate folder the pipeline never reads.")
    p.add_argument("--out", type=Path, required=True, help="folder to create")
    p.add_argument("--patients", type=int, default=10_000, help="number of people (default 10000)")
    p.add_argument("--seed", type=int, default=1, help="random seed; same seed, same files")
    p.add_argument("--as-of", type=_iso_date, default=date(2026, 11, 23), help="delivery date (default 2026-11-23)")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.add_argument("--dialect", choices=["plain", "danish"], default="plain",
                   help="danish = ';' separated, decimal comma, CP1252")
    p.add_argument("--nights", type=int, default=1, help="deliveries to write: the first is the history, "
                   "later ones are small nightly increments (default 1)")
    p.add_argument("--params", type=Path, help="YAML file overriding generator parameters")
    p.add_argument("--layout", choices=["dst", "sds"], help="also write the region as register extracts in this "
                   "layout (registers/<as-of>/), for `fhscreen convert`")
    p.set_defaults(func=_cmd_synth)


def _add_simulate(sub) -> None:
    """The ``fhscreen simulate`` subcommand and its options."""
    p = sub.add_parser("simulate", help="play a synthetic region's pilot forward, night by night",
                       description="Generate a synthetic region, run the nightly job on its history, then "
                       "play it forward: new lab results, GPs acting on worklists or not, clinic visits and "
                       "genetic results, relatives tested after family letters, deaths and moves. Feedback "
                       "reaches the pipeline only through ordinary deliveries; the evaluator report of the "
                       "last run is under --out/runs/<date>/metrics/.")
    p.add_argument("--out", type=Path, required=True, help="output folder (replaced)")
    p.add_argument("--months", type=float, default=12, help="months to simulate (default 12)")
    _add_region_options(p)
    p.add_argument("--start", type=_iso_date, default=date(2025, 12, 1), help="first run date (default 2025-12-01)")
    p.add_argument("--every-nights", type=int, default=7, help="nights between deliveries; the job runs on "
                   "each (default 7; 1 = every night)")
    p.add_argument("--params", type=Path, help="YAML overriding the behaviour settings (synth/behaviour.yaml)")
    p.add_argument("--synth-params", type=Path, help="YAML overriding the region generator's parameters")
    p.add_argument("--config", type=Path, help="region settings YAML (clinics, capacity, cascade policy)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_simulate)


def _add_run(sub) -> None:
    """The ``fhscreen run`` subcommand and its options."""
    p = sub.add_parser("run", help="the nightly job on one delivery (what the Airflow DAG runs)",
                       description="Load one delivery into the DuckDB file, validate it, score, and write "
                       "worklists, letters and metrics under --out. Rerunning the same delivery and date "
                       "changes nothing.")
    p.add_argument("--extract", type=Path, required=True, help="delivery folder (one file per table)")
    p.add_argument("--db", type=Path, required=True, help="DuckDB file (created if missing)")
    p.add_argument("--out", type=Path, required=True, help="output folder (replaced atomically at the end)")
    p.add_argument("--as-of", type=_iso_date, required=True, help="run date YYYY-MM-DD")
    p.add_argument("--config", type=Path, help="region settings YAML (default: packaged demo settings)")
    p.add_argument("--wait", type=float, default=0, help="seconds to wait for another run's lock (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_run)


def _add_metrics(sub) -> None:
    """The ``fhscreen metrics`` subcommand and its options."""
    p = sub.add_parser("metrics", help="pilot metrics across regions",
                       description="Pilot metrics for evaluators across regions.")
    metrics_sub = p.add_subparsers(dest="metrics_command", required=True, metavar="ACTION")
    m = metrics_sub.add_parser("merge", help="add regional aggregates into a national view",
                               description="Add regional metrics/aggregates.json files (aggregate-only, "
                               "schema-checked) and write the national aggregates.json, the suppressed "
                               "pilot_metrics.json and report.html under --out.")
    m.add_argument("--inputs", type=Path, nargs="+", required=True,
                   help="regional aggregates.json files or run output folders")
    m.add_argument("--out", type=Path, required=True, help="folder for the national outputs")
    m.set_defaults(func=_cmd_metrics_merge)


def _add_train(sub) -> None:
    """The ``fhscreen train`` subcommand and its options."""
    p = sub.add_parser("train", help="train the scorers on synthetic worlds or on a region's store",
                       description="With --worlds: build synthetic training, selection and external worlds "
                       "in that folder, fit the scorers, choose the production scorer on the selection worlds, "
                       "validate on the external worlds and save the artefacts under --models. With --db: fit "
                       "the scorers on one region's practice labels (clinic-confirmed cases and FH diagnoses). "
                       "Both print calibration-in-the-large and slope before and after the region calibration.")
    p.add_argument("--worlds", type=Path, help="working folder for the synthetic worlds (multi-world training)")
    p.add_argument("--db", type=Path, help="DuckDB file after a run (needs patient_features)")
    p.add_argument("--as-of", type=_iso_date, help="labels recorded up to this date (with --db)")
    p.add_argument("--models", type=Path, default=Path("models"), help="folder for artefacts (default models/)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7); same seed, same model hash")
    p.add_argument("--config", type=Path, help="region settings YAML (expected prevalence, clinics' threshold)")
    p.set_defaults(func=_cmd_train)


def _add_evaluate(sub) -> None:
    """The ``fhscreen evaluate`` subcommand and its options."""
    p = sub.add_parser("evaluate", help="external validation table on held-out synthetic worlds",
                       description="Build the held-out external worlds (never used for a decision), score them "
                       "as the nightly job would (own data, configured prevalence, no truth) with the artefacts "
                       "under --models, and print per world: AUC, carriers found at K = 100/250/500 against the "
                       "best rule, O/E overall and at p >= 0.5, calibration slope, equal-mass ECE, net benefit.")
    p.add_argument("--out", type=Path, required=True, help="working folder for the held-out worlds")
    p.add_argument("--models", type=Path, default=Path("models"), help="folder with the artefacts (default models/)")
    p.add_argument("--worlds", type=int, help="number of external worlds (default: as in training, 5)")
    p.add_argument("--patients", type=int, help="people per external world (default: as in training)")
    p.add_argument("--outcome-patients", type=int, default=200_000,
                   help="people in the world where clinics assess enough listed patients for the outcome "
                   "recalibration to be used, measured before and after (default 200000; 0 = skip)")
    p.add_argument("--config", type=Path, help="region settings YAML (clinics' probability threshold)")
    p.set_defaults(func=_cmd_evaluate)


def _add_erase(sub) -> None:
    """The ``fhscreen erase`` subcommand and its options."""
    p = sub.add_parser("erase", help="remove one patient from the database and ledgers on request",
                       description="Delete every row naming the patient (as patient, relative or index "
                       "case) from the store, its ledgers and quarantine, in one transaction. Published "
                       "aggregate reports are not changed; the next run's reports no longer count them.")
    p.add_argument("--db", type=Path, required=True, help="DuckDB file")
    p.add_argument("--patient-id", required=True, help="the pseudonymous patient id to erase")
    p.add_argument("--wait", type=float, default=0, help="seconds to wait for a running job's lock")
    p.set_defaults(func=_cmd_erase)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from fh_screen.app.run import RunLocked

    try:
        return args.func(args)
    except RunLocked as exc:
        print(f"fhscreen: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except UserError as exc:
        print(f"fhscreen: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
