"""The synthetic region written as register extracts (``fhscreen synth --layout dst|sds``).

The same people, results, dispensings and diagnoses as the contract delivery, in the
shapes Danish data teams receive, with the quirks ``fhscreen convert`` must handle:

* population register in quarterly snapshots (one file per snapshot, ``bef202409``),
  holding relatives outside the region too, some fathers registered only in the last
  year's snapshots; the study population in its own table;
* LPR2 (``LPR_ADM`` + ``LPR_DIAG`` on RECNUM) before 2019, LPR3 (contacts + diagnoses on
  DW_EK_KONTAKT) from 2019, codes with the SKS ``D`` prefix, a few diagnoses later
  retracted (``senere_afkraeftet``) that must be dropped;
* dates as ISO text, DATE9 text (``27JUN1995``) and SAS day numbers, mixed between tables;
* the lab register as ';'-separated CP1252 text with decimal commas, censored values as
  OPERATOR ``mindre_end``/``stoerre_end``, a few text results (``POSITIV``) to set aside,
  and no row id;
* strengths in the prescription rows (dst) or in a product table joined on VNR (sds),
  a few in grams; column names in upper case in some files and lower case in others;
* migrations in the 2026 split (``VNDS_IND``/``VNDS_UD``), including emigrations followed
  by a return (still resident), or status codes 90/80 (sds);
* family history, clinic outcomes and contacts, which no register holds, and the
  region's own list of GP practice and postcode, in the contract's CSV.

A register has no result status: cancelled results are left out (withdrawn) and
corrected ones carry their corrected value. The contract delivery is written too, so the
two can be compared (``tests/integration/test_convert_round_trip.py``).
"""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from fh_screen.store.files import ensure_dir, write_bytes
from fh_screen.synth.care import NEVER
from fh_screen.synth.population import Population
from fh_screen.synth.tables import pid_expr, window_days

LAYOUTS = ("dst", "sds")
LPR3_FROM = date(2019, 1, 1)
GRAM_SHARE = 0.05          # share of strengths written in grams (0,04 g = 40 mg)
TEXT_RESULTS_SHARE = 0.002  # extra text results (POSITIV/NEGATIV) per lab row
RETRACTED_SHARE = 0.02      # extra LPR3 diagnoses later retracted, per diagnosis
RETURN_SHARE = 0.01         # residents who emigrated and came back within the window
LATE_FATHER_SHARE = 0.10    # fathers registered late: absent from snapshots before the last year
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]

NAMES = {
    "dst": {"person": "PNR", "lab_person": "PATIENT_CPR"},
    "sds": {"person": "V_PNR_ENCRYPTED", "lab_person": "PATIENT_CPR_ENCRYPTED"},
}


def write_registers(out: Path, layout: str, pop: Population, full: dict[str, pl.DataFrame], as_of: date,
                    p: dict, seed: int) -> Path:
    """Write the region as ``layout`` extracts under ``out/registers/<as_of>/``; return the folder."""
    folder = ensure_dir(out / "registers" / as_of.isoformat())
    rng = np.random.default_rng([seed, 900])
    person = NAMES[layout]["person"]
    patients = full["patients"]
    _csv(folder, "POPULATION", patients.select(pl.col("patient_id").alias(person)))
    everyone = _everyone(pop)
    if layout == "dst":
        _bef_snapshots(folder, everyone, as_of, p)
        deaths = everyone.filter(pl.col("death").is_not_null())
        _csv(folder, "DOD", deaths.select(pl.col("pid").alias("PNR"), _date9(pl.col("death")).alias("DODDATO")))
        _migrations_split(folder, rng, everyone, patients, as_of, p)
    else:
        _cpr3(folder, everyone)
    _lab_register(folder, rng, full["lab_results"], NAMES[layout]["lab_person"])
    _medications(folder, rng, full["medications"], layout)
    _lpr(folder, rng, full["diagnoses"], layout)
    for name in ("family_history", "clinic_outcomes", "contacts"):
        _csv(folder, name, full[name])
    _csv(folder, "patient_practice", patients.select("patient_id", "practice_id", "postcode"))
    return folder


def _everyone(pop: Population) -> pl.DataFrame:
    """Every person of the synthetic families (region and relatives outside it)."""
    never = lambda a: pl.Series(np.where(a < NEVER, a, 0).astype(np.int32)).cast(pl.Date)  # noqa: E731
    has = lambda a: pl.Series(a < NEVER)  # noqa: E731
    pid = pl.DataFrame({"pidn": pop["pid"]}).select(pid_expr()).to_series()
    parent = lambda idx: pl.select(pl.when(pl.Series(idx >= 0)).then(pid.gather(pl.Series(np.maximum(idx, 0))))).to_series()  # noqa: E731
    return pl.DataFrame({
        "pid": pid,
        "sex": pl.Series(pop["reported_sex"]),
        "birth": pl.Series(pop["birth"].astype(np.int32)).cast(pl.Date),
        "death": never(pop["death"]), "_dead": has(pop["death"]),
        "moved": never(pop["moved"]), "_moved": has(pop["moved"]) & pl.Series(pop["in_region"]),
        "mother": parent(pop["mother"]), "father": parent(pop["father"]),
    }).with_columns(
        death=pl.when(pl.col("_dead")).then(pl.col("death")),
        moved=pl.when(pl.col("_moved")).then(pl.col("moved")),
    ).drop("_dead", "_moved")


def _quarter_ends(start: date, end: date) -> list[date]:
    """Quarter ends from the year end before ``start`` up to ``end`` (BEF reference dates)."""
    out, year = [], start.year - 1
    while True:
        for month in (3, 6, 9, 12):
            nxt = date(year + (month == 12), month % 12 + 1, 1)
            day = nxt - timedelta(days=1)
            if day > end:
                return out
            if day >= date(start.year - 1, 12, 31):
                out.append(day)
        year += 1


def _bef_snapshots(folder: Path, everyone: pl.DataFrame, as_of: date, p: dict) -> None:
    """One file per quarter end. A father's link is registered late for some people (it is
    missing from their snapshots before the last year), so only the latest snapshot is
    complete: a converter that kept an older one would lose those links."""
    start = as_of - timedelta(days=window_days(p))
    late = pl.Series(np.random.default_rng(len(everyone)).random(everyone.height) < LATE_FATHER_SHARE)
    recent = as_of - timedelta(days=365)
    for k, snap in enumerate(_quarter_ends(start, as_of)):
        keep = everyone.select(
            (pl.col("birth") <= snap)
            & (pl.col("death").is_null() | (pl.col("death") > snap))
            & (pl.col("moved").is_null() | (pl.col("moved") > snap))).to_series()
        rows = everyone.filter(keep)
        frame = rows.select(
            pl.col("pid").alias("PNR"),
            pl.col("sex").replace_strict({"M": "1", "F": "2"}, default=None, return_dtype=pl.String).alias("KOEN"),
            pl.col("birth").alias("FOED_DAG"),
            pl.col("mother").alias("MOR_ID"),
            pl.when(pl.lit(snap < recent) & late.filter(keep)).then(None).otherwise(pl.col("father")).alias("FAR_ID"))
        if k % 2:  # column-name case varies by year in real deliveries
            frame = frame.rename(str.lower)
        _parquet(folder, f"BEF{snap.year}{snap.month:02d}", frame)


def _migrations_split(folder: Path, rng: np.random.Generator, everyone: pl.DataFrame, patients: pl.DataFrame,
                      as_of: date, p: dict) -> None:
    """VNDS_UD / VNDS_IND (2026 split); HAEND_DATO as SAS day numbers."""
    moved = everyone.filter(pl.col("moved").is_not_null()).select("pid", pl.col("moved").alias("day"))
    residents = patients.filter(pl.col("moved_out_date").is_null() & pl.col("deceased_date").is_null())["patient_id"]
    k = int(round(RETURN_SHARE * len(residents)))
    travellers = residents.sample(k, seed=int(rng.integers(1 << 31))) if k else residents.head(0)
    start = as_of - timedelta(days=window_days(p) // 2)
    away = pl.DataFrame({"pid": travellers, "day": [start + timedelta(days=int(d)) for d in rng.integers(0, 400, k)]},
                        schema={"pid": pl.String, "day": pl.Date})
    back = away.with_columns(day=pl.col("day") + pl.duration(days=200))
    sas = lambda c: (c - pl.lit(date(1960, 1, 1))).dt.total_days().cast(pl.String)  # noqa: E731
    ud = pl.concat([moved, away]).sort("pid", "day")
    _csv(folder, "VNDS_UD", ud.select(pl.col("pid").alias("PNR"), sas(pl.col("day")).alias("HAEND_DATO")))
    _csv(folder, "VNDS_IND", back.sort("pid").select(pl.col("pid").alias("pnr"), sas(pl.col("day")).alias("haend_dato")))


def _cpr3(folder: Path, everyone: pl.DataFrame) -> None:
    status = (pl.when(pl.col("death").is_not_null()).then(pl.lit("90"))
              .when(pl.col("moved").is_not_null()).then(pl.lit("80")).otherwise(pl.lit("01")))
    frame = everyone.select(
        pl.col("pid").alias("V_PNR_ENCRYPTED"),
        pl.col("sex").replace_strict({"M": "M", "F": "K"}, default=None, return_dtype=pl.String).alias("C_KON"),
        _date9(pl.col("birth")).alias("D_FODDATO"),
        pl.col("mother").alias("V_MOR_PNR_ENCRYPTED"), pl.col("father").alias("V_FAR_PNR_ENCRYPTED"),
        status.alias("C_STATUS"),
        pl.coalesce("death", "moved").dt.strftime("%Y-%m-%d").alias("D_STATUS_HEN_START"))
    _csv(folder, "CPR3_T_PERSON", frame)


def _lab_register(folder: Path, rng: np.random.Generator, labs: pl.DataFrame, person: str) -> None:
    """The lab register: no row id, no status, decimal commas, operators, text results."""
    labs = labs.filter(pl.col("status").is_null() | (pl.col("status") != "cancelled"))
    sign = pl.col("value").str.extract(r"^([<>])", 1)
    number = pl.col("value").str.replace(r"^[<>]", "")
    gp = pl.col("ordering_practice_id").is_not_null()
    frame = labs.select(
        pl.col("patient_id").alias(person),
        pl.col("sampled_at").dt.strftime("%Y-%m-%d").alias("SAMPLINGDATE"),
        pl.col("sampled_at").dt.strftime("%H:%M").alias("SAMPLINGTIME"),
        pl.col("analyte").alias("ANALYSISCODE"),
        number.str.replace(".", ",", literal=True).alias("VALUE"),
        sign.replace_strict({"<": "mindre_end", ">": "stoerre_end"}, default=None, return_dtype=pl.String).alias("OPERATOR"),
        pl.col("unit").alias("UNIT"),
        pl.lit("numerisk").alias("RESULTTYPE"),
        pl.lit("LAB01").alias("LABORATORIUM_IDCODE"),
        pl.when(gp).then(pl.col("ordering_practice_id")).otherwise(pl.lit("6620384")).alias("REKVIRENT_ID"),
        pl.when(gp).then(pl.lit("ydernummer")).otherwise(pl.lit("sor")).alias("REKVIRENT_IDTYPE"),
    )
    k = max(1, int(TEXT_RESULTS_SHARE * frame.height)) if frame.height else 0
    if k:
        text = frame.sample(k, seed=int(rng.integers(1 << 31))).with_columns(
            ANALYSISCODE=pl.lit("NPU01370"), UNIT=pl.lit(""), OPERATOR=pl.lit(None, pl.String),
            VALUE=pl.Series(rng.choice(["POSITIV", "NEGATIV"], k)), RESULTTYPE=pl.lit("alfanumerisk"))
        frame = pl.concat([frame, text])
    text = frame.write_csv(separator=";", null_value="", quote_style="necessary")
    write_bytes(folder / "LAB_DM_FORSKER.csv", text.encode("cp1252"))


def _medications(folder: Path, rng: np.random.Generator, meds: pl.DataFrame, layout: str) -> None:
    products = (meds.select("atc_code", "strength_mg").unique().sort("atc_code", "strength_mg")
                .with_columns(VNR=(pl.int_range(0, pl.len()) * 7 + 100_003).cast(pl.String)))
    grams = pl.Series(rng.random(products.height) < GRAM_SHARE)
    products = products.with_columns(
        STRNUM=pl.when(grams).then(pl.col("strength_mg") / 1000).otherwise(pl.col("strength_mg")),
        STRUNIT=pl.when(grams).then(pl.lit("g")).otherwise(pl.lit("mg")),
        PACKSIZE=pl.lit(100))
    rows = meds.join(products, on=["atc_code", "strength_mg"], how="left", maintain_order="left")
    if layout == "dst":
        for year, part in rows.with_columns(_y=pl.col("dispensed_on").dt.year()).partition_by("_y", as_dict=True).items():
            frame = part.select(pl.col("patient_id").alias("PNR"), pl.col("dispensed_on").alias("EKSD"),
                                pl.col("atc_code").alias("ATC"), "VNR", pl.lit(1).alias("APK"), "PACKSIZE", "STRNUM", "STRUNIT")
            _parquet(folder, f"lmdb{year[0]}", frame.rename(str.lower) if year[0] % 2 else frame)
    else:
        sas = (pl.col("dispensed_on") - pl.lit(date(1960, 1, 1))).dt.total_days()
        _csv(folder, "LMS_EPIKUR", rows.select(pl.col("patient_id").alias("CPR_ENCRYPTED"), sas.alias("EKSD"),
                                               pl.col("atc_code").alias("ATC"), "VNR", pl.lit(1).alias("APK")))
        frame = products.select("VNR", pl.col("atc_code").alias("ATC"), "STRNUM", "STRUNIT", "PACKSIZE")
        _csv(folder, "LMS_LAEGEMIDDELOPLYSNINGER", frame.with_columns(
            STRNUM=pl.col("STRNUM").cast(pl.String).str.replace(".", ",", literal=True)), separator=";")


def _lpr(folder: Path, rng: np.random.Generator, diags: pl.DataFrame, layout: str) -> None:
    """LPR2 before 2019 and LPR3 from 2019, one contact per diagnosis."""
    sks = pl.col("icd10_code").str.to_uppercase().str.replace_all(r"[.\s]", "")
    sks = pl.when(sks.str.starts_with("D") & sks.str.slice(1, 1).str.contains(r"[A-Z]")).then(sks).otherwise(pl.concat_str([pl.lit("D"), sks]))
    rows = diags.with_columns(code=sks, contact=(pl.int_range(0, pl.len()) + 5_000_001).cast(pl.String))
    old, new = rows.filter(pl.col("diagnosed_on") < LPR3_FROM), rows.filter(pl.col("diagnosed_on") >= LPR3_FROM)
    person = NAMES[layout]["person"]
    sas = (pl.col("diagnosed_on") - pl.lit(date(1960, 1, 1))).dt.total_days()
    c_key, d_key = ("RECNUM", "RECNUM") if layout == "dst" else ("K_RECNUM", "V_RECNUM")
    _csv(folder, "LPR_ADM", old.select(pl.col("patient_id").alias(person), pl.col("contact").alias(c_key), sas.alias("D_INDDTO")))
    _csv(folder, "LPR_DIAG", old.select(pl.col("contact").alias(d_key), pl.col("code").alias("C_DIAG"), pl.lit("A").alias("C_DIAGTYPE")))
    k = int(round(RETRACTED_SHARE * new.height))
    retracted = new.sample(k, seed=int(rng.integers(1 << 31))).with_columns(
        code=pl.lit("DE780"), contact=(pl.int_range(0, pl.len()) + 9_000_001).cast(pl.String)) if k else new.head(0)
    both = pl.concat([new.with_columns(ret=pl.lit("Nej")), retracted.with_columns(ret=pl.lit("Ja"))])
    start = pl.col("diagnosed_on").cast(pl.Datetime("us")) + pl.duration(hours=10)
    if layout == "dst":
        _csv(folder, "LPR_A_KONTAKT", both.select(pl.col("contact").alias("DW_EK_KONTAKT"), pl.col("patient_id").alias("PNR"),
                                                  start.dt.strftime("%Y-%m-%dT%H:%M:%S").alias("KONT_STARTTIDSPUNKT")))
        _csv(folder, "LPR_A_DIAGNOSE", both.select(pl.col("contact").alias("DW_EK_KONTAKT"), pl.col("code").alias("DIAG_KODE"),
                                                   pl.lit("A").alias("DIAG_KODE_TYPE"), pl.col("ret").alias("SENERE_AFKRAEFTET")))
    else:
        _csv(folder, "LPR_F_KONTAKTER", both.select(pl.col("patient_id").alias("cpr"), pl.col("contact").alias("dw_ek_kontakt"),
                                                    _date9(pl.col("diagnosed_on")).alias("dato_start")))
        _csv(folder, "LPR_F_DIAGNOSER", both.select(pl.col("contact").alias("dw_ek_kontakt"), pl.col("code").alias("diagnosekode"),
                                                    pl.lit("A").alias("diagnosetype"), pl.col("ret").alias("senere_afkraeftet")))


def _date9(day: pl.Expr) -> pl.Expr:
    """SAS DATE9 text: 27JUN1995."""
    month = day.dt.month().cast(pl.Int64).replace_strict(dict(enumerate(_MONTHS, start=1)), return_dtype=pl.String)
    return pl.concat_str([day.dt.day().cast(pl.String).str.zfill(2), month, day.dt.year().cast(pl.String)])


def _csv(folder: Path, name: str, frame: pl.DataFrame, separator: str = ",") -> None:
    text = frame.write_csv(separator=separator, date_format="%Y-%m-%d", datetime_format="%Y-%m-%dT%H:%M:%S",
                           null_value="", quote_style="necessary")
    write_bytes(folder / f"{name}.csv", text.encode("utf-8"))


def _parquet(folder: Path, name: str, frame: pl.DataFrame) -> None:
    buf = io.BytesIO()
    frame.write_parquet(buf, compression="zstd")
    write_bytes(folder / f"{name}.parquet", buf.getvalue())

