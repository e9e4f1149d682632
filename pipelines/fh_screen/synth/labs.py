"""Lab results as a regional lab would deliver them, from (person, day) sampling events.

A sampling event is a lipid profile (TC, HDL, TG and usually LDL) plus, sometimes, the tests
that reveal secondary causes (TSH, HbA1c, creatinine/eGFR, ALAT, ALP+GGT, albumin, urine
albumin/creatinine). Values come from the person's true state on that day: untreated LDL
for their age, active secondary causes, statin/ezetimibe taken, and visit-to-visit noise.

Decisions:
    * TC is built from the Friedewald identity TC = LDL + HDL + TG/2.2 (docs/clinical-reference.md §5),
      so a calculated LDL (DNK35308 / LOINC 13457-7) equals TC - HDL - TG/2.2 of the reported
      values; the lab does not calculate LDL when TG > 4.5, leaving TC/HDL/TG only.
    * A profile is coded either NPU or LOINC as a whole (one lab system per requisition);
      mg/dL occurs only on LOINC-coded profiles (mass-concentration LOINC codes).
    * Values are kept as floats with a number of decimals; ``render`` turns them into the
      reported strings (and '<0.1' / '>90' bounds) at the end.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from fh_screen.synth.care import treatment_factor
from fh_screen.synth.population import Population, active, secondary_effect, untreated_ldl
from fh_screen.synth.tables import pid_expr, practice_column

MGDL_CHOL = 38.67  # contract §1: cholesterol mg/dL -> mmol/L divide by 38.67
MGDL_TG = 88.57  # contract §1: triglycerides divide by 88.57
MGG_PER_MGMMOL = 8.84  # uACR mg/g = mg/mmol x 8.84 (creatinine 113.12 g/mol; reference/unit_conversions.csv)

# analyte key -> (NPU/DNK code, LOINC code, unit for each system, decimals in the SI unit)
ANALYTES = {
    "tc": ("NPU01566", "2093-3", "mmol/L", "mmol/L", 1),
    "hdl": ("NPU01567", "2085-9", "mmol/L", "mmol/L", 2),
    "ldl_calc": ("DNK35308", "13457-7", "mmol/L", "mmol/L", 1),
    "ldl_meas": ("NPU01568", "18262-6", "mmol/L", "mmol/L", 1),
    "tg": ("NPU04094", "2571-8", "mmol/L", "mmol/L", 2),
    "tsh": ("NPU03577", "3016-3", "mIU/L", "mIU/L", 2),
    "hba1c": ("NPU27300", "59261-8", "mmol/mol", "mmol/mol", 0),
    "creatinine": ("NPU18016", "14682-9", "umol/L", "umol/L", 0),
    "egfr": ("DNK35302", "62238-1", "mL/min/1.73m2", "mL/min/1.73m2", 0),
    "alat": ("NPU19651", "1742-6", "U/L", "U/L", 0),
    "alp": ("NPU27783", "6768-6", "U/L", "U/L", 0),
    "ggt": ("NPU19657", "2324-2", "U/L", "U/L", 0),
    "albumin": ("NPU19673", "1751-7", "g/L", "g/L", 0),
    "uacr": ("NPU19661", "9318-7", "mg/mmol", "mg/g", 1),
}
KEYS = list(ANALYTES)
CODES = [a[0] for a in ANALYTES.values()] + [a[1] for a in ANALYTES.values()]
UNITS = ["mmol/L", "mmol/l", "mg/dL", "mIU/L", "mmol/mol", "umol/L", "mL/min/1.73m2", "U/L", "g/L", "mg/mmol", "mg/g"]
STATUS = ["", "final", "corrected", "cancelled"]
LIPIDS = {"tc", "hdl", "ldl_calc", "ldl_meas", "tg"}


def _block(key: str, sel: np.ndarray, ev: dict[str, np.ndarray], value: np.ndarray,
           unit: np.ndarray | None = None, dec: np.ndarray | None = None,
           censor: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Rows of one analyte for the events ``sel`` (indices into the event arrays ``ev``)."""
    k = KEYS.index(key)
    _, lo, unit_npu, unit_lo, decimals = ANALYTES[key]
    loinc = ev["loinc"][sel]
    if unit is None:
        unit_rows = np.where(loinc, UNITS.index(unit_lo), UNITS.index(unit_npu))
    else:
        unit_rows = unit[sel]
    n = len(sel)
    return {
        "event": sel, "order": np.full(n, k, np.int16),
        "code": np.where(loinc, len(KEYS) + k, k).astype(np.int16), "unit": unit_rows.astype(np.int16),
        "val": value[sel].astype(float),
        "dec": np.full(n, decimals, np.int8) if dec is None else dec[sel].astype(np.int8),
        "censor": np.zeros(n, np.int8) if censor is None else censor[sel].astype(np.int8),
    }


def sample_events(rng, pop: Population, idx: np.ndarray, day: np.ndarray, p: dict) -> dict[str, np.ndarray]:
    """Lab rows (as float values with unit/code indices) for sampling events ``(idx, day)``."""
    m = p["measurement"]
    n = len(idx)
    minute = (450 + rng.random(n) * 450).astype(np.int16)  # 07:30-15:00
    loinc = rng.random(n) < m["loinc_share"]
    mgdl = loinc & (rng.random(n) < m["mgdl_share_of_lipids"] / m["loinc_share"])
    lower = ~mgdl & (rng.random(n) < m["unit_lowercase_share"])
    # True values on the day.
    base = untreated_ldl(pop, idx, day, p) + secondary_effect(pop, idx, day, p)
    ldl = np.maximum(base * treatment_factor(pop, idx, day) + m["within_person_ldl_sd"] * rng.standard_normal(n), 0.3)
    o = p["other_lipids"]
    hdl = np.clip(pop["hdl"][idx] + o["hdl_visit_sd"] * rng.standard_normal(n), 0.3, 4.0)
    dm = active(pop, "dm", idx, day)
    tg = pop["tg"][idx] * np.exp(o["tg_visit_sdlog"] * rng.standard_normal(n))
    tg *= np.where(dm, p["secondary_causes"]["diabetes_tg_factor"], 1.0)
    tg = np.maximum(tg, 0.05)
    tc = ldl + hdl + tg / 2.2
    # Reported values (rounded as the lab prints them) and the lab's calculated LDL.
    tc_r, hdl_r, tg_r = np.round(tc, 1), np.round(hdl, 2), np.round(tg, 2)
    tc_mg, hdl_mg, tg_mg = np.round(tc * MGDL_CHOL), np.round(hdl * MGDL_CHOL), np.round(tg * MGDL_TG)
    calc = np.where(mgdl, np.round(tc_mg - hdl_mg - tg_mg / 5), np.round(tc_r - hdl_r - tg_r / 2.2, 1))
    meas = np.where(mgdl, np.round((ldl + 0.05 * rng.standard_normal(n)) * MGDL_CHOL), ldl + 0.05 * rng.standard_normal(n))
    mode = rng.random(n)
    measured = mode < m["ldl_measured_share"]
    missing = (mode >= m["ldl_measured_share"]) & (mode < m["ldl_measured_share"] + m["ldl_missing_share"])
    calculated = ~measured & ~missing & (tg <= m["friedewald_tg_max"]) & (calc > 0)
    unit_lipid = np.where(mgdl, UNITS.index("mg/dL"), np.where(lower, UNITS.index("mmol/l"), UNITS.index("mmol/L")))
    dec = lambda d: np.where(mgdl, 0, d)  # noqa: E731
    tg_censor = (~mgdl & (rng.random(n) < m["censored_tg_share"])).astype(np.int8)
    ev = {"loinc": loinc}
    every = np.arange(n)
    blocks = [
        _block("tc", every, ev, np.where(mgdl, tc_mg, tc_r), unit_lipid, dec(1)),
        _block("hdl", every, ev, np.where(mgdl, hdl_mg, hdl_r), unit_lipid, dec(2)),
        _block("tg", every, ev, np.where(mgdl, tg_mg, np.where(tg_censor == 1, 0.1, tg_r)), unit_lipid, dec(2), tg_censor),
    ]
    for key, mask, vals in (("ldl_calc", calculated, calc), ("ldl_meas", measured, meas)):
        blocks.append(_block(key, np.flatnonzero(mask), ev, vals, unit_lipid, dec(1)))
    blocks += _secondary_blocks(rng, pop, idx, day, ev, tc, p)
    out = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
    event = out.pop("event")
    hospital = rng.random(n) < m["hospital_order_share"]
    out["pidx"], out["day"], out["minute"], out["hospital"] = idx[event], day[event], minute[event], hospital[event]
    return out


def _secondary_blocks(rng, pop: Population, idx, day, ev, tc, p) -> list[dict]:
    """Tests for secondary causes, more likely when TC > 7.0 or the condition is active."""
    s = p["secondary_tests"]
    base, high = s["base"], s["high"]
    n = len(idx)
    tc_high = tc > 7.0  # Danish GP handbook: work up secondary causes when TC > 7.0 (docs/clinical-reference.md §6)
    age = pop.age_at(idx, day)
    male = pop["male"][idx]
    hypo, hyper = active(pop, "hypo", idx, day), active(pop, "hyper", idx, day)
    dm, neph = active(pop, "dm", idx, day), active(pop, "neph", idx, day)
    ckd, chol = active(pop, "ckd", idx, day), active(pop, "chol", idx, day)

    def ordered(name: str, condition: np.ndarray) -> np.ndarray:
        prob = np.where(tc_high | condition, high, base[name])
        return (rng.random(n) < prob) & (age >= 1)

    blocks = []

    loinc = ev["loinc"]

    def add(key, mask, value, censor=None):
        blocks.append(_block(key, np.flatnonzero(mask), ev, value, censor=censor))

    lognorm = lambda med, sd: med * np.exp(sd * rng.standard_normal(n))  # noqa: E731
    tsh = np.where(hypo, lognorm(12.0, 0.5), np.where(hyper, rng.uniform(0.01, 0.09, n), lognorm(1.8, 0.45)))
    tsh_c = (tsh < 0.1).astype(np.int8)
    add("tsh", ordered("tsh", hypo | hyper), np.where(tsh_c == 1, 0.1, tsh), tsh_c)
    hba1c = np.where(dm, np.maximum(58 + 10 * rng.standard_normal(n), 42), 36 + 4 * rng.standard_normal(n))
    add("hba1c", ordered("hba1c", dm) & (age >= 18), hba1c)
    creat = np.where(ckd, 160 + 40 * rng.standard_normal(n), np.where(male, 85, 68) + 12 * rng.standard_normal(n))
    creat = np.maximum(creat, 30)
    kr = ordered("creatinine", ckd | neph | dm) & (age >= 18)
    add("creatinine", kr, creat)
    # CKD-EPI 2021 (creatinine in mg/dL = umol/L / 88.4).
    kappa, alpha = np.where(male, 0.9, 0.7), np.where(male, -0.302, -0.241)
    scr = creat / 88.4 / kappa
    egfr = 142 * np.minimum(scr, 1) ** alpha * np.maximum(scr, 1) ** -1.2 * 0.9938 ** age * np.where(male, 1.0, 1.012)
    egfr_c = np.where(egfr > 90, 2, 0).astype(np.int8)
    add("egfr", kr, np.where(egfr_c == 2, 90.0, egfr), egfr_c)
    add("alat", ordered("alat", chol), lognorm(22.0, 0.4) * np.where(chol, 2.0, 1.0))
    lft = ordered("alp_ggt", chol)
    add("alp", lft, np.where(chol, np.maximum(260 + 80 * rng.standard_normal(n), 120), np.maximum(70 + 20 * rng.standard_normal(n), 25)))
    add("ggt", lft, np.where(chol, np.maximum(220 + 80 * rng.standard_normal(n), 80), lognorm(25.0, 0.5)))
    add("albumin", ordered("albumin", neph), np.where(neph, 22 + 4 * rng.standard_normal(n), 42 + 3 * rng.standard_normal(n)))
    uacr = np.where(neph, np.maximum(300 + 100 * rng.standard_normal(n), 60), lognorm(0.8, 0.8) * np.where(dm, 3.0, 1.0) * np.where(ckd, 5.0, 1.0))
    uacr = np.where(loinc, uacr * MGG_PER_MGMMOL, uacr)
    uacr_c = ((uacr < 0.1) & ~loinc).astype(np.int8)
    add("uacr", ordered("uacr", neph | dm | ckd), np.where(uacr_c == 1, 0.1, uacr), uacr_c)
    return blocks


def frame(rng, pop: Population, rows: dict[str, np.ndarray], first_seq: int, p: dict) -> pl.DataFrame:
    """Rows in delivery order (time, patient, analyte) with sequential result numbers and a status.

    The frame keeps floats and small codes (``val``, ``dec``, ``censor``, ``code``, ``unit``);
    ``render`` produces the contract's string columns.
    """
    m = p["measurement"]
    pidn = pop["pid"][rows["pidx"]]
    # One int64 key: sampling minute since 1970 (< 2**26), then 7-digit id, then analyte order.
    key = ((rows["day"].astype(np.int64) * 1440 + rows["minute"]) * 10_000_000 + pidn) * 32 + rows["order"]
    order = np.argsort(key, kind="stable")
    n = len(order)
    u = rng.random(n)
    status = np.where(u < m["status_null_share"], 0, 1)
    v = rng.random(n)
    status = np.where(v < m["corrected_share"], 2, np.where(v > 1 - m["cancelled_share"], 3, status))
    practice = np.where(rows["hospital"], -1, pop["practice"][rows["pidx"]])
    return pl.DataFrame({
        "seq": np.arange(first_seq, first_seq + n, dtype=np.int64),
        "pidx": rows["pidx"][order], "pidn": pidn[order], "day": rows["day"][order], "minute": rows["minute"][order],
        "code": rows["code"][order], "unit": rows["unit"][order], "val": rows["val"][order],
        "dec": rows["dec"][order], "censor": rows["censor"][order], "status": status.astype(np.int8),
        "practice": practice[order],
    })


def value_text(val: pl.Expr, dec: pl.Expr, censor: pl.Expr) -> pl.Expr:
    """The value as the lab prints it: fixed decimals, or a detection-limit bound."""
    number = (pl.when(dec == 0).then(val.round(0).cast(pl.Int64).cast(pl.String))
              .when(dec == 1).then(val.round(1).cast(pl.String))
              .otherwise(val.round(2).cast(pl.String)))
    bound = censor.replace_strict({1: "<", 2: ">"}, default=None, return_dtype=pl.String)
    return pl.when(censor > 0).then(pl.concat_str([bound, number])).otherwise(number)


def local_codes(prefix: str) -> dict[str, str]:
    """Local analyte code -> the NPU/DNK code it stands for, when a region's laboratory
    system prints its own codes (``measurement.local_code_prefix``); the region's settings
    map them back with ``ingest.extra_codes``. Empty when the prefix is empty."""
    return {f"{prefix}{a[0]}": a[0] for a in ANALYTES.values()} if prefix else {}


def render(df: pl.DataFrame, practice_codes: list[str], local_prefix: str = "") -> pl.DataFrame:
    """The contract's lab_results columns from an internal frame (NPU/DNK codes carry
    ``local_prefix`` when the region's laboratory uses local codes)."""
    codes = [f"{local_prefix}{c}" if i < len(KEYS) else c for i, c in enumerate(CODES)]

    micros = (pl.col("day").cast(pl.Int64) * 1440 + pl.col("minute").cast(pl.Int64)) * 60_000_000
    return df.with_columns(
        result_id=pl.concat_str([pl.lit("R"), pl.col("seq").cast(pl.String).str.zfill(9)]),
        patient_id=pid_expr(),
        sampled_at=micros.cast(pl.Datetime("us")),
        analyte=pl.Series(codes).gather(df["code"].cast(pl.Int64)),
        value=value_text(pl.col("val"), pl.col("dec"), pl.col("censor")),
        unit=pl.Series(UNITS).gather(df["unit"].cast(pl.Int64)),
        status=pl.Series(STATUS).gather(df["status"].cast(pl.Int64)),
        ordering_practice_id=practice_column(df["practice"].to_numpy(), practice_codes),
    ).with_columns(status=pl.when(pl.col("status") != "").then(pl.col("status"))).select(
        "result_id", "patient_id", "sampled_at", "analyte", "value", "unit", "status", "ordering_practice_id")
