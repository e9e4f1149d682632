"""A tiny curated region for the cascade tests, written straight into a temp DuckDB.

Family A (index ``I``, confirmed fh_genetic; father ``P1`` also confirmed):

    Q ── P1* ── P2          G1 (P1's father)       A1 (P1's brother, explicit sibling row)
       │     │   │
       H1    I*  S1 (moved)   S2 (shares P1 only; P2 unknown for S2 -> full sibling)
             │
     M1 ── C1 (8 y)    C2 (deceased)    X1 (sibling, not in patients)

Family B: index ``J`` (fh_clinical) with no relatives -> one ``index_only`` row.
Family D: index ``D1`` (fh_genetic, adult); sister ``DS`` is 15, mother ``DP`` (no outcome,
has an address), father ``DF`` deceased. One letter goes to ``DP``, about herself and her
child ``DS``.
Family C: index ``K`` (fh_clinical), unconfirmed mother ``KM``, half-sister ``KH`` through
``KM`` (``KH`` has another recorded parent ``KF2``, ``K`` has ``KF``): ``KH`` is second
degree and NOT included, because ``KM`` is not confirmed.
"""

from __future__ import annotations

from datetime import date

from fh_screen.store import db

D = "d1"

PATIENTS = [
    # patient_id, birth_date, sex, postcode, deceased_date, moved_out_date
    ("I", "1970-05-01", "M", "5000", None, None),
    ("P1", "1945-02-01", "M", "5000", None, None),
    ("P2", "1946-03-01", "F", "5000", None, None),
    ("Q", "1950-01-01", "F", "7000", None, None),
    ("H1", "1975-06-01", "F", "7000", None, None),
    ("S1", "1972-01-01", "M", "5000", None, "2025-06-01"),
    ("S2", "1980-01-01", "F", "5000", None, None),
    ("G1", "1920-01-01", "M", "5000", None, None),
    ("A1", "1948-01-01", "M", "5000", None, None),
    ("M1", "1985-01-01", "F", "5000", None, None),
    ("C1", "2018-01-01", "F", "5000", None, None),
    ("C2", "2005-01-01", "M", "5000", "2020-01-01", None),
    ("J", "1980-01-01", "F", "8000", None, None),
    ("K", "1990-01-01", "M", "6000", None, None),
    ("KM", "1960-01-01", "F", "6000", None, None),
    ("KF", "1958-01-01", "M", "6000", None, None),
    ("KF2", "1959-01-01", "M", "6000", None, None),
    ("KH", "1992-01-01", "F", "6000", None, None),
    ("D1", "1990-01-01", "F", "9000", None, None),
    ("DS", "2010-06-01", "F", "9000", None, None),
    ("DP", "1965-01-01", "F", "9000", None, None),
    ("DF", "1960-01-01", "M", "9000", "2019-01-01", None),
]

RELATIONS = [
    ("I", "P1", "parent"),  # recorded from the child's side ...
    ("P2", "I", "child"),  # ... and from the parent's side
    ("S1", "P1", "parent"),
    ("S1", "P2", "parent"),
    ("H1", "P1", "parent"),
    ("H1", "Q", "parent"),
    ("S2", "P1", "parent"),
    ("P1", "G1", "parent"),
    ("P1", "A1", "sibling"),
    ("I", "C1", "child"),
    ("C1", "M1", "parent"),
    ("I", "C2", "child"),
    ("I", "X1", "sibling"),
    ("K", "KM", "parent"),
    ("K", "KF", "parent"),
    ("KH", "KM", "parent"),
    ("KH", "KF2", "parent"),
    ("D1", "DP", "parent"),
    ("D1", "DF", "parent"),
    ("DS", "DP", "parent"),
    ("DS", "DF", "parent"),
]

OUTCOMES = [
    ("I", "2026-01-10", "fh_genetic", "LDLR"),
    ("P1", "2026-01-12", "fh_clinical", None),
    ("J", "2026-01-05", "fh_clinical", None),
    ("K", "2025-11-01", "fh_clinical", None),
    ("D1", "2026-01-20", "fh_genetic", "APOB"),
]

LDL = [
    # result_id, patient_id, sampled_at, value, status
    ("r1", "P2", "2024-05-01", 5.0, "final"),  # F, 78 y: uncertain (>=55 band: 4.4 <= x < 5.3)
    ("r2", "H1", "2023-01-01", 6.0, "final"),
    ("r3", "S2", "2025-01-01", 9.9, "cancelled"),  # withdrawn: S2 stays untested
]

CONTACTS = [
    # patient_id, full_name, address, postcode, city, language
    ("I", "Søren Ærø-Åberg", "Vej 1", "5000", "Odense C", "da"),
    ("S2", "Åse \"Ø\" O'Brien <script>alert(1)</script>", "Gade 2", "5000", "Odense C", "en"),
    ("M1", "Mette Møller", "Vej 3", "5000", "Odense C", None),
    ("H1", "Hanne Hansen", "Vej 4", "7000", "Vejle", "da"),
    ("G1", "Gorm Gammel", "Vej 5", "5000", "Odense C", "da"),
    ("A1", "Anders And", "Vej 6", "5000", "Odense C", "da"),
    ("P2", "Pia Pedersen", "Vej 7", "5000", "Odense C", "da"),
    ("DP", "Dorte Dahl", "Vej 8", "9000", "Aalborg", "en"),
    ("DS", "Dina Dahl", "Vej 8", "9000", "Aalborg", "da"),
]


def build(path, extra_ldl=(), extra_outcomes=()) -> None:
    """Write the world above into a fresh DuckDB file at ``path``."""
    con = db.connect(path)
    try:
        con.executemany(
            "INSERT INTO patients VALUES (?, ?, ?, 'PR1', ?, ?, ?, ?)",
            [(p, b, s, pc, dd, mo, D) for p, b, s, pc, dd, mo in PATIENTS],
        )
        con.executemany("INSERT INTO relations VALUES (?, ?, ?, ?)", [(*r, D) for r in RELATIONS])
        con.executemany("INSERT INTO clinic_outcomes VALUES (?, ?, ?, ?, ?)", [(*o, D) for o in OUTCOMES])
        con.executemany("INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?)", [(*c, D) for c in CONTACTS])
        add_ldl(con, LDL)
        add_ldl(con, extra_ldl)
        add_outcomes(con, extra_outcomes)
        # H1 collected a statin a month before her LDL sample
        con.execute("INSERT INTO medications VALUES ('H1', 'C10AA05', DATE '2022-12-01', 20, ?)", [D])
    finally:
        con.close()


def add_ldl(con, rows) -> None:
    if not rows:
        return
    con.executemany(
        "INSERT INTO lab_results VALUES (?, ?, ?, 'ldl', 'measured', 'NPU01568', ?, 'mmol/L', NULL, ?, 'mmol/L', ?, NULL, ?)",
        [(rid, pid, at, value, str(value), status, D) for rid, pid, at, value, status in rows],
    )


def add_outcomes(con, rows) -> None:
    if not rows:
        return
    con.executemany("INSERT INTO clinic_outcomes VALUES (?, ?, ?, ?, ?)", [(*o, D) for o in rows])


AS_OF = date(2026, 2, 1)


def settings(**cascade):
    """Packaged settings with ``cascade`` fields overridden."""
    from fh_screen.config import load_settings

    base = load_settings()
    return base.model_copy(update={"cascade": base.cascade.model_copy(update=cascade)})


def night(tmp_path, as_of, cfg, name=None):
    """Run the cascade step alone for one night; returns (ctx, report)."""
    from fh_screen.stages.cascade import step as cascade
    from fh_screen.app import run

    ctx = run.prepare(None, tmp_path / "fh.duckdb", tmp_path / (name or f"out-{as_of}"), as_of, cfg)
    return ctx, cascade.cascade_step(ctx)
