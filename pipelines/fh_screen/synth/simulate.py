"""``simulate``: a synthetic region's pilot played forward night by night.

Each simulated night, in the synthetic world:

* residents have routine lipid profiles (the generator's age-specific testing rates), some
  die (``nights.deaths_per_night``) and some move out (``region.moves_per_night``);
* what was set in motion earlier happens on its day: clinic visits (reported ``pending``),
  genetic results weeks later, did-not-attend and declined, statins started after a
  diagnosis and the LDL-C rechecked, relatives tested after a family letter.

Every ``every_nights`` nights the accumulated changes are written as one ordinary delivery
(``patients`` in full, the new ``lab_results``, ``clinic_outcomes``, ``diagnoses`` and
``medications``) and the ordinary nightly job (``fh_screen.app.run.run``, handed in by
``fhscreen simulate`` and the demo) runs on it. The
simulator then plays the people who receive that run's outputs: each practice's GP acts
on the worklist or not; a referred patient comes to the clinic or not; each relative named
in a family letter gets tested within six months or not. Whether a patient has FH, and so
what the clinic finds, comes from the synthetic ground truth; it reaches the pipeline only
through those delivery tables, as a region's feedback would. The pipeline never reads the
truth.

Every behaviour's rate is a setting in ``behaviour.yaml`` with its source (overridable with
``--params``). ``simulation.json`` records what happened in the synthetic world (the truth
the evaluator report is checked against) and how long it took.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from fh_screen.config import Settings, load_settings
from fh_screen.errors import UserError
from fh_screen.store.files import ensure_dir, write_text
from fh_screen.synth import care, labs, tables
from fh_screen.synth.generate import Region, generate_region
from fh_screen.synth.params import load_params
from fh_screen.synth.population import EPOCH, day_of
from fh_screen.synth.writer import write_table

DEFAULTS = Path(__file__).with_name("behaviour.yaml")
NEVER = care.NEVER
PENDING, GENETIC, CLINICAL, NOT_FH, DNA, DECLINED = (
    care.OUTCOMES.index(o) for o in ("pending", "fh_genetic", "fh_clinical", "not_fh", "did_not_attend", "declined")
)
ATTENDED = ("fh_genetic", "fh_clinical", "not_fh")
ROUTE_CLINIC, ROUTE_CHECK = "refer_lipid_clinic", "check_secondary_cause_first"
FH_DIAGNOSIS_CODE = "DE780B"   # Danish SKS code for familial hypercholesterolaemia


@dataclass
class Truth:
    """What happened in the synthetic world, person by person (indices into the population)."""

    listed: set = field(default_factory=set)
    carriers_listed: set = field(default_factory=set)
    lists_received: int = 0
    lists_acted_on: int = 0
    referred_by_gp: set = field(default_factory=set)
    responded: set = field(default_factory=set)
    not_attending: set = field(default_factory=set)
    visited: set = field(default_factory=set)
    results: dict = field(default_factory=dict)        # person -> outcome name (attended outcomes)
    statin_started: set = field(default_factory=set)
    letters: set = field(default_factory=set)          # (index, relative) pairs written to
    relatives_reached: dict = field(default_factory=dict)   # person -> day of their first letter
    # (index, relative) pairs whose letter reached a relative not yet diagnosed with FH: the
    # only ones that can yield a new case (a letter to a known case closes nothing) -> letter day.
    open_pairs: dict = field(default_factory=lambda: defaultdict(dict))   # person -> {index: day}
    relatives_tested: set = field(default_factory=set)      # tested because of the letter
    # Counted per (index, relative) pair, as the report counts a family's loop closing: any
    # result after that letter, and the carriers among them.
    relatives_tested_any: set = field(default_factory=set)
    relatives_positive: set = field(default_factory=set)
    deaths: int = 0
    moves: int = 0
    routine_panels: int = 0

    def figures(self) -> dict:
        confirmed = {i for i, o in self.results.items() if o in ("fh_genetic", "fh_clinical")}
        return {
            "referred": len(self.listed),
            "referred_carriers": len(self.carriers_listed),
            "gp_lists_received": self.lists_received,
            "gp_lists_acted_on": self.lists_acted_on,
            "referred_by_gp": len(self.referred_by_gp),
            "patients_responded": len(self.responded),
            "did_not_attend_or_declined": len(self.not_attending),
            "clinic_visits": len(self.visited),
            "attended": len(self.results),
            "confirmed": len(confirmed),
            "statin_started": len(self.statin_started),
            "family_letters": len(self.letters),
            "relatives_reached": len(self.relatives_reached),
            "relatives_tested": len(self.relatives_tested),
            "relatives_tested_any_reason": len(self.relatives_tested_any),
            "relatives_positive": len(self.relatives_positive),
            "deaths": self.deaths,
            "moves": self.moves,
            "routine_panels": self.routine_panels,
        }


class World:
    """The synthetic region between two deliveries: its people, what is scheduled, and the
    rows of the next delivery."""

    def __init__(self, region: Region, behaviour: dict, settings: Settings, seed: int):
        self.r = region
        self.pop = region.pop
        self.p = region.params
        self.b = behaviour
        self.settings = settings
        self.rng = np.random.default_rng([seed, 19])
        self.death = region.death
        self.last_seq = int(region.lab_frame["seq"].max() or 0)
        self.index = {int(pid): i for i, pid in enumerate(self.pop["pid"])}
        self.scheduled: dict[int, list[tuple]] = defaultdict(list)
        self.truth = Truth()
        self.diagnosed_on: dict[int, int] = {}     # person -> day the pilot's clinic diagnosed FH
        self.mode = "direct" if settings.cascade.direct_contact else behaviour["cascade"]["mode"]
        self._reset_delivery()

    # --- the delivery being collected ------------------------------------------------------

    def _reset_delivery(self) -> None:
        self.lab_idx: list[int] = []
        self.lab_day: list[int] = []
        self.outcomes: list[tuple[int, int, int, int]] = []      # person, day, outcome, gene
        self.diagnoses: list[tuple[int, int]] = []
        self.dispensings: list[tuple[int, int, str, float]] = []

    def alive(self, i, day: int):
        return self.pop["in_region"][i] & (self.death[i] > day) & (self.pop["moved"][i] > day)

    def _days(self, key: str, section: str = "clinic") -> int:
        lo, hi = self.b[section][key]
        return int(self.rng.integers(lo, hi + 1))

    # --- one night ---------------------------------------------------------------------------

    def live(self, day: int) -> None:
        """Deaths, moves, routine lipid profiles and whatever is scheduled for ``day``."""
        pop, n = self.pop, self.pop.n
        alive = self.alive(np.arange(n), day)
        dies = alive & (self.rng.random(n) < self.p["nights"]["deaths_per_night"])
        self.death[dies] = day
        moves = alive & ~dies & (self.rng.random(n) < self.b["region"]["moves_per_night"])
        pop["moved"][moves] = day
        self.truth.deaths += int(dies.sum())
        self.truth.moves += int(moves.sum())
        alive &= ~dies & ~moves
        rate = care.test_rate_per_year(pop.age_at(np.arange(n), day), self.p) / 365.25
        tested = np.flatnonzero(alive & (self.rng.random(n) < rate))
        self.truth.routine_panels += len(tested)
        for person in tested.tolist():
            self._on_panel(day, person)
        for event in self.scheduled.pop(day, []):
            if self.alive(event[1], day):
                getattr(self, f"_on_{event[0]}")(day, *event[1:])

    def _schedule(self, day: int, kind: str, person: int, *data) -> None:
        self.scheduled[day].append((kind, person, *data))

    def _on_panel(self, day: int, person: int) -> None:
        self.lab_idx.append(person)
        self.lab_day.append(day)
        self._result_for_relative(day, person)

    def _result_for_relative(self, day: int, person: int) -> None:
        """A result of a relative after a family letter, whatever its reason: what closes the
        cascade loop in the pipeline, for each index case whose letter came before it."""
        for index, letter in self.truth.open_pairs.get(person, {}).items():
            if day > letter:
                self.truth.relatives_tested_any.add((index, person))
                if self.pop["alleles"][person] > 0:
                    self.truth.relatives_positive.add((index, person))

    def _diagnose(self, person: int, day: int) -> None:
        self.diagnoses.append((person, day))
        self.diagnosed_on.setdefault(person, day)

    def _known_case(self, person: int, day: int) -> bool:
        """FH diagnosed on or before ``day``: before the pilot, or by the pilot's clinics."""
        before = bool(self.pop["diagnosed"][person]) and int(self.pop["diag_day"][person]) <= day
        return before or self.diagnosed_on.get(person, NEVER) <= day

    def _on_visit(self, day: int, person: int) -> None:
        self.outcomes.append((person, day, PENDING, 0))
        self.truth.visited.add(person)
        self._schedule(day + self._days("genetic_result_days_after_visit"), "result", person)

    def _on_no_show(self, day: int, person: int) -> None:
        declined = self.rng.random() < self.b["patient"]["declined_share_of_non_responders"]
        self.outcomes.append((person, day, DECLINED if declined else DNA, 0))
        self.truth.not_attending.add(person)

    def _on_result(self, day: int, person: int) -> None:
        """What the lipid clinic finds, from the truth: the generator's outcome tables for a
        referred carrier, a polygenic non-carrier or another non-carrier, among those seen."""
        pop, ref = self.pop, self.p["referral"]
        if pop["alleles"][person] > 0:
            table = ref["outcome_carrier"]
        elif pop["prs_z"][person] >= self.p["ldl_nonfh"]["polygenic_high_z"]:
            table = ref["outcome_noncarrier_polygenic"]
        else:
            table = ref["outcome_noncarrier"]
        seen = {k: v for k, v in table.items() if k in ATTENDED}
        outcome = int(care.choose_outcome(self.rng, seen, 1)[0])
        gene = int(pop["gene"][person]) if outcome == GENETIC else 0
        self.outcomes.append((person, day, outcome, gene))
        self._result_for_relative(day, person)
        self.truth.results[person] = care.OUTCOMES[outcome]
        if outcome in (GENETIC, CLINICAL):
            self._diagnose(person, day)
            if not pop["statin"][person] and self.rng.random() < self.b["clinic"]["statin_after_diagnosis"]:
                self._start_statin(person, day + int(self.rng.integers(0, 15)))

    def _start_statin(self, person: int, day: int) -> None:
        regimen, pop = self.b["clinic"]["statin_regimen"], self.pop
        response = max(regimen["expected_reduction"] + self.p["treatment"]["response_sd"] * self.rng.standard_normal(), 0.0)
        pop["statin"][person] = True
        pop["statin_start"][person] = day
        pop["statin_stop"][person] = NEVER
        pop["statin_drug"][person] = regimen["atc"]
        pop["statin_mg"][person] = regimen["mg"]
        pop["statin_expected"][person] = regimen["expected_reduction"]
        pop["statin_response"][person] = min(response, 0.8)
        self.truth.statin_started.add(person)
        self._schedule(day, "dispense", person)
        self._schedule(day + self._days("follow_up_panel_days"), "panel", person)

    def _on_dispense(self, day: int, person: int) -> None:
        regimen = self.b["clinic"]["statin_regimen"]
        self.dispensings.append((person, day, regimen["atc"], float(regimen["mg"])))
        self._schedule(day + int(self.p["treatment"]["dispensing_interval_days"]), "dispense", person)

    def _on_relative_test(self, day: int, person: int, genetic: bool) -> None:
        self._on_panel(day, person)
        self.truth.relatives_tested.add(person)
        if genetic:
            self._schedule(day + self._days("genetic_result_days_after_test", "cascade"), "relative_result", person)

    def _on_relative_result(self, day: int, person: int) -> None:
        carrier = self.pop["alleles"][person] > 0
        self.outcomes.append((person, day, GENETIC if carrier else NOT_FH, int(self.pop["gene"][person]) if carrier else 0))
        self._result_for_relative(day, person)
        if carrier:
            self._diagnose(person, day)

    # --- reading a run's outputs as their recipients would -------------------------------

    def react(self, run_dir: Path, as_of_day: int) -> None:
        """GPs act on tonight's worklists (or not); family letters reach relatives."""
        self._gps_act(run_dir, as_of_day)
        self._letters_reach_relatives(run_dir, as_of_day)

    def _gps_act(self, run_dir: Path, as_of_day: int) -> None:
        """Each practice acts on its list tonight or not; a GP who acts books a check panel
        or refers, and a referred patient attends or does not."""
        referrals = _read_csv(run_dir / "referrals.csv")
        by_practice: dict[str, list[dict]] = defaultdict(list)
        for row in referrals:
            if row.get("event") in ("listed", "reminder"):
                by_practice[row["practice_id"]].append(row)
        g, pt = self.b["gp"], self.b["patient"]
        for practice in sorted(by_practice):
            self.truth.lists_received += 1
            acts = self.rng.random() < g["acts_on_list"]
            self.truth.lists_acted_on += int(acts)
            for row in by_practice[practice]:
                person = self.index[int(row["patient_id"][1:])]
                if row["event"] == "listed":       # referred, as the report counts it (a reminder is not)
                    self.truth.listed.add(person)
                    if self.pop["alleles"][person] > 0:
                        self.truth.carriers_listed.add(person)
                if not acts:
                    continue
                if row["route"] == ROUTE_CHECK:
                    lo, hi = g["check_first_panel_days"]
                    self._schedule(as_of_day + int(self.rng.integers(lo, hi + 1)), "panel", person)
                    continue
                self.truth.referred_by_gp.add(person)
                day = as_of_day + self._days("visit_days_after_referral")
                if self.rng.random() < pt["responds"]:
                    self.truth.responded.add(person)
                    self._schedule(day, "visit", person)
                else:
                    self._schedule(day, "no_show", person)

    def _letters_reach_relatives(self, run_dir: Path, as_of_day: int) -> None:
        """Tonight's family letters reach the relatives in the region; some are tested."""
        uptake = self.b["cascade"]["tested_within_6_months"][self.mode]
        as_of = (EPOCH + timedelta(days=as_of_day)).isoformat()
        for row in _read_csv(run_dir / "cascade.csv"):
            if row.get("letter_sent_on") != as_of:
                continue
            if not row.get("relative_id"):
                continue                           # an index case with no relative on record
            self.truth.letters.add((row["index_patient_id"], row["relative_id"]))
            person = self.index.get(int(row["relative_id"][1:]))
            if person is None:
                continue
            if not self._known_case(person, as_of_day):
                self.truth.open_pairs[person].setdefault(int(row["index_patient_id"][1:]), as_of_day)
            if person in self.truth.relatives_reached:
                continue
            self.truth.relatives_reached[person] = as_of_day
            # A relative outside the region may be tested elsewhere: nothing comes back here.
            if self.rng.random() < uptake:
                genetic = self.truth.results.get(self.index.get(int(row["index_patient_id"][1:]), -1)) == "fh_genetic"
                self._schedule(as_of_day + self._days("test_days_after_letter", "cascade"), "relative_test", person,
                               genetic)

    # --- writing the delivery --------------------------------------------------------------

    def deliver(self, extracts: Path, as_of: date) -> Path:
        """Write what happened since the last delivery as one ordinary delivery folder."""
        folder = ensure_dir(extracts / as_of.isoformat())
        pop = self.pop
        write_table(tables.patients(pop, self.r.codes, self.death), folder, "patients", "csv", "plain")
        idx, day = np.asarray(self.lab_idx, np.int64), np.asarray(self.lab_day, np.int64)
        rows = labs.sample_events(self.rng, pop, idx, day, self.p)
        frame = labs.frame(self.rng, pop, rows, self.last_seq + 1, self.p).with_columns(status=pl.lit(1, pl.Int8))
        if frame.height:
            self.last_seq = int(frame["seq"].max())
        write_table(labs.render(frame, self.r.codes), folder, "lab_results", "csv", "plain")
        if self.outcomes:
            o = np.asarray(self.outcomes, np.int64)
            outcomes = tables.clinic_outcomes(pop, {"pidx": o[:, 0], "day": o[:, 1], "outcome": o[:, 2], "gene": o[:, 3]})
            write_table(outcomes.unique(["patient_id", "outcome_date", "outcome"], keep="last", maintain_order=True),
                        folder, "clinic_outcomes", "csv", "plain")
        if self.diagnoses:
            d = np.asarray(self.diagnoses, np.int64)
            frame = pl.DataFrame({"pidn": pop["pid"][d[:, 0]], "diagnosed_on": tables.dates(d[:, 1])}).with_columns(
                icd10_code=pl.lit(FH_DIAGNOSIS_CODE))
            write_table(frame.with_columns(patient_id=tables.pid_expr()).unique(["pidn", "diagnosed_on"])
                        .sort("pidn", "diagnosed_on").select("patient_id", "icd10_code", "diagnosed_on"),
                        folder, "diagnoses", "csv", "plain")
        if self.dispensings:
            frame = pl.DataFrame({
                "pidn": pop["pid"][[d[0] for d in self.dispensings]],
                "atc_code": [d[2] for d in self.dispensings],
                "dispensed_on": tables.dates(np.asarray([d[1] for d in self.dispensings], np.int64)),
                "strength_mg": [d[3] for d in self.dispensings],
            })
            write_table(frame.with_columns(patient_id=tables.pid_expr()).sort("pidn", "dispensed_on")
                        .select("patient_id", "atc_code", "dispensed_on", "strength_mg"),
                        folder, "medications", "csv", "plain")
        self._reset_delivery()
        return folder


def _read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def simulate(out: Path, months: float, n_patients: int, seed: int, start: date, runner: Callable[..., dict],
             every_nights: int = 7, params_file: Path | None = None, settings: Settings | None = None,
             progress: Callable[[str], None] | None = None, region_params: Path | None = None) -> dict:
    """Generate a region, run the nightly job on its history, then play ``months`` forward.

    Args:
        runner: the nightly job, called as ``runner(extract_dir=, db_path=, out_dir=, as_of=,
            settings=)``: ``fh_screen.app.run.run`` (the entry layer passes it in).
        out: folder to create: ``region/`` (deliveries and ground truth), ``fh_screen.duckdb``,
            ``runs/<last date>/`` (the last run's outputs, with the evaluator report under
            ``metrics/``) and ``simulation.json``.
        months: length of the simulated pilot.
        n_patients, seed: the synthetic region (as ``fhscreen synth``).
        start: date of the history delivery and the first run.
        every_nights: nights between deliveries; the job runs on each (1 = every night).
        params_file: YAML overriding ``behaviour.yaml``.
        settings: the region's settings (clinics, capacity, cascade policy).
        region_params: YAML overriding the generator's ``params.yaml`` (as ``fhscreen synth --params``).
    """
    if months <= 0 or every_nights < 1:
        raise UserError("--months must be above 0 and --every-nights at least 1")
    started, cpu = time.perf_counter(), time.process_time()
    out = _emptied(Path(out).resolve())
    say = progress or (lambda _msg: None)
    settings = settings or load_settings()
    behaviour, cited = load_params(params_file, DEFAULTS)
    say(f"synthetic region of {n_patients:,} people")
    summary, region = generate_region(out / "region", n_patients, seed, start, nights=1, params_file=region_params)
    world = World(region, behaviour, settings, seed)
    nights = simulated_nights(months, every_nights)
    run_on = partial(_run_night, runner, out / "fh_screen.duckdb", out / "runs", settings, say)
    latest, n_runs, run_seconds = _play(world, run_on, Path(summary["extract_dirs"][0]), start, nights,
                                        every_nights, out / "region" / "extracts")
    result = {
        "region": {"patients": n_patients, "seed": seed, "start": start.isoformat(),
                   "end": (start + timedelta(days=nights)).isoformat(), "months": months},
        "every_nights": every_nights,
        "runs": n_runs,
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "seconds_per_later_run": round(run_seconds / max(n_runs - 1, 1), 2),
        "cascade_mode": world.mode,
        "truth": world.truth.figures(),
        "behaviour": cited,
        "latest_run": str(latest),
        "report": str(latest / "metrics" / "report.html"),
        "notice": "Synthetic data. The truth figures come from the ground truth the pipeline never reads.",
    }
    write_text(out / "simulation.json", json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


def simulated_nights(months: float, every_nights: int) -> int:
    """Nights to play: ``months`` of average length (365.25 / 12 days) rounded to whole days,
    then up to whole delivery intervals, so the last delivery is as long as the others."""
    return -(-round(months * 365.25 / 12) // every_nights) * every_nights


def delivery_due(night: int, last_delivery: int, every_nights: int, nights: int, has_lab_results: bool) -> bool:
    """Deliver after night ``night`` (0-based) once ``every_nights`` nights have passed since the
    last delivery (night ``last_delivery``), and after the last night; a delivery without a
    single lab result waits for the next night (the contract requires lab rows in every
    delivery)."""
    due = (night + 1 - last_delivery) >= every_nights or night + 1 == nights
    return due and has_lab_results


def _run_night(runner: Callable[..., dict], db_path: Path, runs: Path, settings: Settings,
               say: Callable[[str], None], extract: Path, as_of: date) -> Path:
    """The nightly job on one delivery; its outputs go to ``runs/<as_of>/``."""
    say(f"nightly run for {as_of}")
    folder = runs / as_of.isoformat()
    runner(extract_dir=extract, db_path=db_path, out_dir=folder, as_of=as_of, settings=settings)
    return folder


def _emptied(folder: Path) -> Path:
    """``folder``, with anything an earlier simulation left there removed."""
    if folder.exists():
        shutil.rmtree(folder)
    return folder


def _play(world: World, run_on: Callable[[Path, date], Path], history: Path, start: date, nights: int,
          every_nights: int, extracts: Path) -> tuple[Path, int, float]:
    """Run the job on the history delivery, then live ``nights`` nights, delivering and running
    when ``delivery_due``; only the last run's outputs are kept. Returns that run's folder, the
    number of runs (the history's included) and the seconds of the later runs."""
    latest, start_day = run_on(history, start), day_of(start)
    world.react(latest, start_day)
    n_runs, run_seconds, last_delivery = 1, 0.0, 0
    for night in range(nights):
        day = start_day + night
        world.live(day)
        if not delivery_due(night, last_delivery, every_nights, nights, bool(world.lab_idx)):
            continue
        last_delivery = night + 1
        as_of = EPOCH + timedelta(days=day + 1)
        extract = world.deliver(extracts, as_of)
        began = time.perf_counter()
        folder = run_on(extract, as_of)
        run_seconds += time.perf_counter() - began
        n_runs += 1
        world.react(folder, day + 1)
        shutil.rmtree(latest)
        latest = folder
    return latest, n_runs, run_seconds
