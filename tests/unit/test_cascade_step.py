"""The cascade step on a tiny curated region (tests/unit/cascade_world.py): statuses,
letters, ledger and cascade.csv across nightly runs."""

from datetime import date, timedelta

import polars as pl
import pypdf
import pytest

import cascade_world as world
from fh_screen.store import db
from fh_screen.outputs.letters import file_id, letter_file

NIGHT2 = world.AS_OF + timedelta(days=7)
DIRECT = world.settings(direct_contact=True)


def csv(ctx):
    return pl.read_csv(ctx.work_dir / "cascade.csv", infer_schema=False)


def table(tmp_path, name):
    con = db.connect(tmp_path / "fh.duckdb", read_only=True)
    try:
        return con.execute(f"SELECT * FROM {name} ORDER BY ALL").pl()
    finally:
        con.close()


def rows_of(frame, index):
    sub = frame.filter(pl.col("index_patient_id") == index)
    return {r["relative_id"] or "": r for r in sub.iter_rows(named=True)}


@pytest.fixture
def fast_pdf(monkeypatch):
    """For tests about the ledger rather than the letters: skip the (slow) PDF layout."""
    from fh_screen.outputs import render

    monkeypatch.setattr(render, "pdf_from_html", lambda pages, title: (("\n".join(pages)).encode("utf-8"), len(pages)))


@pytest.fixture
def region(tmp_path):
    """A fresh region for tests that change data or run several nights."""
    world.build(tmp_path / "fh.duckdb")
    return tmp_path


@pytest.fixture(scope="module")
def night1(tmp_path_factory):
    """One night with direct contact, shared by the read-only tests: (folder, ctx, report)."""
    folder = tmp_path_factory.mktemp("night1")
    world.build(folder / "fh.duckdb")
    ctx, report = world.night(folder, world.AS_OF, DIRECT)
    return folder, ctx, report


def test_statuses_and_relationships(night1):
    region, ctx, report = night1
    out = csv(ctx)
    fam = rows_of(out, "I")
    got = {rid: (r["relationship"], r["degree"], r["status"], r["result"]) for rid, r in fam.items()}
    assert got == {
        "P1": ("parent", "1", "already_diagnosed", "fh_clinical"),
        "P2": ("parent", "1", "tested", "uncertain"),  # F 80 y, LDL 5.0: 4.4 <= x < 5.3
        "S1": ("sibling", "1", "moved", None),
        "S2": ("sibling", "1", "untested", None),  # its only LDL was cancelled
        "X1": ("sibling", "1", "outside_region", None),
        "C1": ("child", "1", "untested", None),
        "G1": ("grandparent", "2", "untested", None),  # via confirmed father P1
        "A1": ("aunt_uncle", "2", "untested", None),
        "H1": ("half_sibling", "2", "tested", "likely"),
    }
    assert report["index_cases"] == 5
    assert report["index_by_basis"] == {"fh_clinical": 3, "fh_genetic": 2}
    assert "estimated untreated from 6.0 mmol/L on treatment" in fam["H1"]["status_detail"]
    assert "on lipid-lowering treatment" not in fam["P2"]["status_detail"]
    assert report["ldl_tested_on_treatment"] == 2  # H1 via I and via P1


def test_deceased_relatives_are_counted_but_never_rows_or_letters(night1):
    region, ctx, report = night1
    out = csv(ctx)
    assert not out.filter(pl.col("relative_id").is_in(["C2", "DF"])).height
    assert report["deceased_relatives_excluded"] == 3  # (I, C2), (P1, C2) and (D1, DF)
    assert report["deceased_people_excluded"] == 2
    letters = table(region, "cascade_letters")
    assert not letters.filter(pl.col("patient_id").is_in(["C2", "DF"])).height
    ledger = table(region, "cascade_ledger")
    assert not ledger.filter(pl.col("relative_id").is_in(["C2", "DF"])).height


def test_every_living_first_degree_relative_of_every_index_is_listed(night1):
    region, ctx, _ = night1
    out = csv(ctx)
    listed = set(out.select("index_patient_id", "relative_id").iter_rows())
    alive = {p for p, _, _, _, dead, _ in world.PATIENTS if dead is None}
    known = {p for p, *_ in world.PATIENTS}
    index = {"I", "P1", "J", "K", "D1"}
    expected = set()
    for pid, rid, _kind in world.RELATIONS:  # parent, child and sibling are all first degree
        for a, b in ((pid, rid), (rid, pid)):
            if a in index and (b in alive or b not in known):
                expected.add((a, b))
    assert expected - listed == set()
    assert ("I", "C2") not in listed  # deceased


def test_only_index_known_gives_one_index_only_row(night1):
    region, ctx, _ = night1
    only = csv(ctx).filter(pl.col("index_patient_id") == "J")
    assert only.height == 1
    row = only.row(0, named=True)
    assert row["relative_id"] is None or row["relative_id"] == ""
    assert row["status"] == "index_only"
    assert row["letter"] == "letters/index_J.pdf"


def test_half_sibling_through_unconfirmed_parent_is_not_listed(night1):
    region, ctx, _ = night1
    assert set(rows_of(csv(ctx), "K")) == {"KM", "KF"}


def test_outside_region_and_moved_relatives_get_the_family_letter(night1):
    region, ctx, _ = night1
    fam = rows_of(csv(ctx), "I")
    assert fam["X1"]["letter"] == "letters/family_I.pdf"
    assert fam["S1"]["letter"] == "letters/family_I.pdf"
    assert (ctx.work_dir / "letters" / "family_I.pdf").exists()


def test_direct_letters_addressing(night1):
    region, ctx, report = night1
    letters = table(region, "cascade_letters")
    pairs = set(letters.select("index_patient_id", "patient_id").iter_rows())
    # the child DS (15) is covered by one letter to her mother DP, who is also a relative
    fam_d = rows_of(csv(ctx), "D1")
    assert fam_d["DS"]["letter"] == fam_d["DP"]["letter"] == "letters/relative_D1_DP.pdf"
    assert ("D1", "DS") not in pairs
    # the child C1's parent is the index case: covered by the index letter, the other parent
    # (not a blood relative) is not told
    assert rows_of(csv(ctx), "I")["C1"]["letter"] == "letters/index_I.pdf"
    assert ("I", "M1") not in pairs
    # no relative letter to anybody without an address, already diagnosed, moved or outside
    # the region (P1 is written to only as an index case himself)
    relative_recipients = set(letters.filter(pl.col("kind") == "relative")["patient_id"])
    assert not relative_recipients & {"KM", "KF", "P1", "I", "S1", "X1", "C1"}
    # letters only to living people who have not moved
    gone = {p for p, _, _, _, dead, moved in world.PATIENTS if dead or moved}
    assert not {r for _, r in pairs} & gone
    # S2, G1, A1 and H1 are relatives of both I and P1: one letter each, written for I
    assert report["letters_new"] == {"index": 5, "relative": 6}
    assert not {r for i, r in pairs if i == "P1"} - {"P1"}
    assert rows_of(csv(ctx), "P1")["S2"]["letter"] == "letters/relative_I_S2.pdf"
    # language from contacts, else the default (da)
    lang = dict(((i, r), l) for i, r, l in letters.select("index_patient_id", "patient_id", "language").iter_rows())
    assert lang[("I", "S2")] == "en" and lang[("D1", "DP")] == "en" and lang[("K", "K")] == "da"


@pytest.mark.usefixtures("fast_pdf")
def test_without_direct_contact_only_index_letters(region):
    ctx, report = world.night(region, world.AS_OF, world.settings(direct_contact=False))
    assert report["letters_new"] == {"index": 5}
    out = csv(ctx)
    relatives = out.filter(pl.col("status") != "index_only")
    letters = set(relatives["letter"].to_list())
    assert letters <= {f"letters/family_{i}.pdf" for i in ("I", "P1", "K", "D1")} | {"letters/index_I.pdf"}


def test_rerun_same_night_changes_nothing(region):
    ctx1, rep1 = world.night(region, world.AS_OF, DIRECT, name="a")
    ledger1, letters1 = table(region, "cascade_ledger"), table(region, "cascade_letters")
    csv1 = (ctx1.work_dir / "cascade.csv").read_bytes()
    pdfs1 = {p.name: p.read_bytes() for p in (ctx1.work_dir / "letters").iterdir()}
    ctx2, rep2 = world.night(region, world.AS_OF, DIRECT, name="b")
    assert table(region, "cascade_ledger").equals(ledger1)
    assert table(region, "cascade_letters").equals(letters1)
    assert (ctx2.work_dir / "cascade.csv").read_bytes() == csv1
    assert {p.name: p.read_bytes() for p in (ctx2.work_dir / "letters").iterdir()} == pdfs1
    def untimed(report: dict) -> dict:
        return {k: v for k, v in report.items() if "seconds" not in k}

    assert untimed(rep1) == untimed(rep2)


@pytest.mark.usefixtures("fast_pdf")
def test_second_night_sends_no_duplicates_and_closes_the_loop_on_a_new_result(region):
    ctx1, _ = world.night(region, world.AS_OF, DIRECT)
    before = table(region, "cascade_ledger")
    # S2 (F, born 1980) has an LDL taken after her letter: 4.0 at 46 -> uncertain (45-54: 4.0-4.8)
    con = db.connect(region / "fh.duckdb")
    world.add_ldl(con, [("r9", "S2", "2026-02-05 08:30:00", 4.0, "final")])
    con.close()
    ctx2, report = world.night(region, NIGHT2, DIRECT)
    assert report["letters_new"] == {}
    assert not list((ctx2.work_dir / "letters").iterdir())
    assert table(region, "cascade_letters").height == 11
    ledger = table(region, "cascade_ledger")
    s2 = ledger.filter((pl.col("index_patient_id") == "I") & (pl.col("relative_id") == "S2")).row(0, named=True)
    assert s2["status"] == "tested" and s2["result"] == "uncertain"
    assert s2["letter_sent_on"] == world.AS_OF
    assert s2["closed_on"] == date(2026, 2, 5)
    assert s2["reminder_due"] is None
    assert s2["updated_on"] == NIGHT2
    # the P1 cascade also reaches S2 (his daughter): closed there too
    assert ledger.filter((pl.col("index_patient_id") == "P1") & (pl.col("relative_id") == "S2"))["closed_on"].to_list() == [
        date(2026, 2, 5)
    ]
    # a relative tested BEFORE the letter (H1, 2023) is not closed; untouched rows keep updated_on
    h1 = ledger.filter((pl.col("index_patient_id") == "I") & (pl.col("relative_id") == "H1")).row(0, named=True)
    assert h1["closed_on"] is None and h1["updated_on"] == world.AS_OF
    assert h1["reminder_due"] == world.AS_OF + timedelta(weeks=8)
    assert report["reminders_due_now"] == 0
    _, later = world.night(region, world.AS_OF + timedelta(weeks=8), DIRECT)
    assert later["reminders_due_now"] == later["reminders_open"] > 0
    unchanged = before.filter(~pl.col("relative_id").is_in(["S2"]))
    now = ledger.filter(~pl.col("relative_id").is_in(["S2"]))
    assert now.equals(unchanged)
    row = rows_of(csv(ctx2), "I")["S2"]
    assert row["closed_on"] == "2026-02-05" and row["result"] == "uncertain"


def test_new_relative_on_a_later_night_gets_a_letter_once(region):
    world.night(region, world.AS_OF, DIRECT)
    con = db.connect(region / "fh.duckdb")
    con.execute("INSERT INTO patients VALUES ('NEW', '1975-01-01', 'M', 'PR1', '5000', NULL, NULL, 'd2')")
    con.execute("INSERT INTO relations VALUES ('NEW', 'I', 'sibling', 'd2')")
    con.execute("INSERT INTO contacts VALUES ('NEW', 'Ny Bror', 'Vej 9', '5000', 'Odense C', 'da', 'd2')")
    con.close()
    ctx2, report = world.night(region, NIGHT2, DIRECT)
    assert report["letters_new"] == {"relative": 1}
    row = rows_of(csv(ctx2), "I")["NEW"]
    assert row["letter"] == "letters/relative_I_NEW.pdf"
    # already covered by the family letter handed out on night 1
    assert row["letter_sent_on"] == world.AS_OF.isoformat()
    assert (ctx2.work_dir / "letters" / "relative_I_NEW.pdf").exists()
    _, report3 = world.night(region, NIGHT2 + timedelta(days=1), DIRECT)
    assert report3["letters_new"] == {}


@pytest.mark.usefixtures("fast_pdf")
def test_a_clinic_outcome_after_the_letter_closes_the_loop(region):
    world.night(region, world.AS_OF, DIRECT)
    con = db.connect(region / "fh.duckdb")
    world.add_outcomes(con, [("G1", "2026-02-03", "not_fh", None)])
    con.close()
    ctx2, _ = world.night(region, NIGHT2, DIRECT)
    g1 = rows_of(csv(ctx2), "I")["G1"]
    assert (g1["status"], g1["result"], g1["closed_on"]) == ("tested", "not_fh", "2026-02-03")


@pytest.mark.usefixtures("fast_pdf")
def test_existing_diagnosis_as_index_is_a_setting(tmp_path):
    world.build(tmp_path / "fh.duckdb")
    con = db.connect(tmp_path / "fh.duckdb")
    con.execute("INSERT INTO diagnoses VALUES ('Q', 'E780B', 'DE780B', DATE '2010-01-01', 'd1')")
    con.execute("INSERT INTO relations VALUES ('Q', 'QQ', 'child', 'd1')")
    con.close()
    _, off = world.night(tmp_path, world.AS_OF, world.settings(), name="off")
    _, on = world.night(tmp_path, world.AS_OF, world.settings(include_existing_diagnosis_as_index=True), name="on")
    assert off["index_cases"] == 5
    assert on["index_cases"] == 6 and on["index_by_basis"]["fh_diagnosis"] == 1
    ledger = table(tmp_path, "cascade_ledger")
    assert ledger.filter(pl.col("index_patient_id") == "Q").height == 2  # H1 (child) and QQ


def test_family_letter_names_nobody(night1):
    region, ctx, _ = night1
    folder = ctx.work_dir / "letters"
    names = [c[1] for c in world.CONTACTS]
    words = {w for n in names for w in n.replace('"', " ").split() if len(w) > 2 and w[0].isupper()}
    ids = {p for p, *_ in world.PATIENTS if len(p) > 1}
    family_texts = [pypdf.PdfReader(p).pages[0].extract_text() for p in folder.glob("family_*.pdf")]
    # the page enclosed with the index letter is the same family letter
    family_texts.append(pypdf.PdfReader(folder / "index_I.pdf").pages[1].extract_text())
    family_texts += [p.read_text(encoding="utf-8") for p in folder.glob("family_*.html")]
    assert len(family_texts) == 11
    for text in family_texts:
        assert not [w for w in words if w in text]
        assert not [i for i in ids if f" {i} " in text]
    # while the index letter itself is addressed by name
    assert "Søren Ærø-Åberg" in pypdf.PdfReader(folder / "index_I.pdf").pages[0].extract_text()


def test_ids_become_safe_file_names():
    assert file_id("ABC-1") == "ABC-1"
    nasty = file_id("../../etc/passwd")
    assert "/" not in nasty and not nasty.startswith(".")
    assert file_id("a/b") != file_id("a_b")
    assert letter_file("relative", "../x", "y/z").startswith("letters/relative_")
    assert letter_file("relative", "../x", "y/z").count("/") == 1


def test_hostile_ids_stay_inside_the_letters_folder(tmp_path):
    con = db.connect(tmp_path / "fh.duckdb")
    con.execute("INSERT INTO patients VALUES ('../../evil', '1970-01-01', 'F', NULL, '5000', NULL, NULL, 'd')")
    con.execute("INSERT INTO clinic_outcomes VALUES ('../../evil', DATE '2026-01-01', 'fh_genetic', NULL, 'd')")
    con.close()
    ctx, report = world.night(tmp_path, world.AS_OF, world.settings())
    produced = sorted(p.name for p in (ctx.work_dir / "letters").iterdir())
    assert len(produced) == 4 and all(n.startswith(("index_evil-", "family_evil-")) for n in produced)
    assert not (tmp_path / "evil").exists()


@pytest.mark.usefixtures("fast_pdf")
def test_erasure_reaches_the_cascade_tables(region):
    from fh_screen.app.privacy import erase_patient

    world.night(region, world.AS_OF, DIRECT)
    con = db.connect(region / "fh.duckdb")
    removed = erase_patient(con, "S2", NIGHT2)
    con.close()
    assert removed["cascade_ledger"] == 2 and removed["cascade_letters"] == 1  # rows via I and P1, one letter
    assert not table(region, "cascade_ledger").filter(pl.col("relative_id") == "S2").height
    assert not table(region, "cascade_letters").filter(pl.col("patient_id") == "S2").height


@pytest.mark.usefixtures("fast_pdf")
def test_a_result_is_after_the_letter_only_if_the_letter_could_not_know_it(region):
    con = db.connect(region / "fh.duckdb")
    con.execute("INSERT INTO deliveries VALUES ('d1', 'h1', DATE '2026-02-01', TIMESTAMP '2026-02-01 02:00:00')")
    # A1's LDL sampled on the letter night and delivered that night: known to the letter
    world.add_ldl(con, [("a1", "A1", "2026-02-01 09:00:00", 3.0, "final")])
    con.close()
    world.night(region, world.AS_OF, DIRECT)
    con = db.connect(region / "fh.duckdb")
    con.execute("INSERT INTO deliveries VALUES ('d2', 'h2', DATE '2026-02-02', TIMESTAMP '2026-02-02 02:00:00')")
    # G1's LDL sampled the same day but delivered the next night: the letter did not know it
    con.execute(
        "INSERT INTO lab_results VALUES ('g1', 'G1', TIMESTAMP '2026-02-01 10:00:00', 'ldl', 'measured', 'NPU01568',"
        " 5.5, 'mmol/L', NULL, '5.5', 'mmol/L', 'final', NULL, 'd2')"
    )
    con.close()
    ctx, _ = world.night(region, date(2026, 2, 2), DIRECT)
    fam = rows_of(csv(ctx), "I")
    assert (fam["G1"]["closed_on"], fam["G1"]["result"]) == ("2026-02-01", "likely")  # M >= 55: likely from 5.3
    assert fam["A1"]["status"] == "tested" and fam["A1"]["closed_on"] is None


@pytest.mark.usefixtures("fast_pdf")
def test_a_newly_confirmed_relative_becomes_an_index_case_without_re_mailing_the_family(region):
    world.night(region, world.AS_OF, DIRECT)
    con = db.connect(region / "fh.duckdb")
    world.add_outcomes(con, [("S2", "2026-02-04", "fh_genetic", "LDLR")])
    con.close()
    ctx, report = world.night(region, NIGHT2, DIRECT)
    assert report["index_cases"] == 6
    # S2 gets her own index letter; her relatives were all written to on night 1 already
    assert report["letters_new"] == {"index": 1}
    fam = rows_of(csv(ctx), "S2")
    # only P1 is recorded as her parent; C1 is her niece through her confirmed brother I
    assert set(fam) == {"P1", "I", "S1", "H1", "G1", "A1", "C1"}
    assert fam["C1"]["relationship"] == "niece_nephew" and fam["C1"]["letter"] == "letters/index_I.pdf"
    assert fam["H1"]["letter"] == "letters/relative_I_H1.pdf"
    assert fam["H1"]["letter_sent_on"] == world.AS_OF.isoformat()
    # and for I's cascade the sister is now already diagnosed, her loop closed by the outcome
    s2 = rows_of(csv(ctx), "I")["S2"]
    assert (s2["status"], s2["result"], s2["closed_on"]) == ("already_diagnosed", "fh_genetic", "2026-02-04")


def test_a_child_index_case_is_written_to_through_a_parent(region):
    con = db.connect(region / "fh.duckdb")
    con.executemany(
        "INSERT INTO patients VALUES (?, ?, ?, 'PR1', '5000', NULL, NULL, 'd1')",
        [("E1", "2014-03-01", "M"), ("EP", "1984-01-01", "F"), ("EF", "1983-01-01", "M"), ("ES", "2018-01-01", "F")],
    )
    con.executemany(
        "INSERT INTO relations VALUES (?, ?, 'parent', 'd1')", [("E1", "EP"), ("E1", "EF"), ("ES", "EP"), ("ES", "EF")]
    )
    world.add_outcomes(con, [("E1", "2026-01-15", "fh_clinical", None)])
    con.execute("INSERT INTO contacts VALUES ('E1', 'Emil Eriksen', 'Vej 10', '5000', 'Odense C', 'da', 'd1')")
    con.execute("INSERT INTO contacts VALUES ('EP', 'Eva Eriksen', 'Vej 10', '5000', 'Odense C', 'en', 'd1')")
    con.close()
    ctx, report = world.night(region, world.AS_OF, DIRECT)
    letters = table(region, "cascade_letters").filter(pl.col("index_patient_id") == "E1")
    # one letter, the index letter, to the mother: not to the 11-year-old, and no second
    # letter to her about herself or about the little sister
    assert letters.select("patient_id", "kind", "language").rows() == [("EP", "index", "en")]
    fam = rows_of(csv(ctx), "E1")
    assert {r: fam[r]["letter"] for r in fam} == {
        "EP": "letters/index_E1.pdf",
        "ES": "letters/index_E1.pdf",
        "EF": "letters/family_E1.pdf",  # no address: reached through the family letter
    }
    text = pypdf.PdfReader(ctx.work_dir / "letters" / "index_E1.pdf").pages[0].extract_text()
    assert "Dear Eva Eriksen" in text and "your child has familial hypercholesterolaemia" in text.replace("\n", " ")
    assert "Emil" not in text
