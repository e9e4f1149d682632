"""From delivered text to staged rows and quarantined rows, table by table (no database)."""

import json
import math
from datetime import date, datetime

import pytest

from fh_screen.stages.ingest import normalise as nz
from fh_screen.config import IngestSettings
from fh_screen.schemas import CURATED_COLUMNS
from fh_screen.errors import DeliveryError
from fh_screen.stages.ingest.readers import read_table
from fh_screen.stages.ingest.staging import stage_table

LAB = "result_id,patient_id,sampled_at,analyte,value,unit,status,ordering_practice_id"


def stage(tmp_path, table, text, encoding="utf-8", extra_codes=None, **settings):
    """Stage ``text``; every case is also staged a line or so at a time (batches of 40
    bytes), which must give the same rows, quarantine and decimal mark as staging the file
    in one batch."""
    path = tmp_path / f"{table}.csv"
    path.write_bytes(text.encode(encoding))
    delivered = read_table(table, path, IngestSettings(**settings))
    (tmp_path / "whole").mkdir(exist_ok=True), (tmp_path / "pairs").mkdir(exist_ok=True)
    staged = stage_table(delivered, extra_codes or {}, tmp_path / "whole")
    received = text.strip("\n").count("\n")
    assert staged.rows == staged.good().height
    assert staged.rows + staged.bad.height == received              # nothing lost, nothing twice
    in_pairs = stage_table(delivered, extra_codes or {}, tmp_path / "pairs", batch_bytes=40)
    assert in_pairs.good().equals(staged.good()) and in_pairs.bad.equals(staged.bad)
    assert in_pairs.decimal == staged.decimal
    return staged


def lab_rows(staged):
    return {r["result_id"]: r for r in staged.good().iter_rows(named=True)}


def rules(staged):
    return dict(zip(staged.bad["row_number"].to_list(), staged.bad["rule"].to_list()))


def test_staged_columns_match_the_curated_schema(tmp_path):
    staged = stage(tmp_path, "lab_results", f"{LAB}\nR1,7,2024-01-01,NPU01568,5.4,mmol/L,,\n")
    assert staged.good().columns == CURATED_COLUMNS["lab_results"] + ["_row"]


def test_lab_values_codes_and_units(tmp_path):
    text = "\n".join([
        LAB,
        "R1,007,2024-01-01 08:00:00,NPU01568,5.4,mmol/L,,P1",
        "R2,007,2024-01-01,13457-7,193.35,mg/dL,final,P1",
        "R3,007,2024-01-01,NPU03577,<0.1,mIU/L,final,",
        "R4,007,2024-01-01,npu04094,177.14,MG/DL,final,",
        "R5,007,2024-01-01,NPU18016,1,mg/dl,final,",
        "R6,007,2024-01-01,NPU27300,6.5,%,final,",
    ])
    got = lab_rows(stage(tmp_path, "lab_results", text))
    assert got["R1"]["sampled_at"] == datetime(2024, 1, 1, 8)
    assert (got["R1"]["analyte"], got["R1"]["method"], got["R1"]["value"], got["R1"]["unit"]) == ("ldl", "measured", 5.4, "mmol/L")
    assert got["R1"]["patient_id"] == "007" and got["R1"]["status"] == "final"
    assert (got["R2"]["analyte"], got["R2"]["method"]) == ("ldl", "calculated")
    assert math.isclose(got["R2"]["value"], 5.0, rel_tol=1e-9)
    assert (got["R2"]["value_raw"], got["R2"]["unit_raw"], got["R2"]["code"]) == ("193.35", "mg/dL", "13457-7")
    assert (got["R3"]["value"], got["R3"]["censored"], got["R3"]["unit"]) == (0.1, "<", "mIU/L")
    assert got["R1"]["censored"] is None
    assert got["R4"]["analyte"] == "tg" and math.isclose(got["R4"]["value"], 2.0, rel_tol=1e-9)
    assert got["R5"]["unit"] == "umol/L" and math.isclose(got["R5"]["value"], 88.4)
    assert math.isclose(got["R6"]["value"], 10.929 * (6.5 - 2.15))


def test_lab_rows_that_cannot_be_parsed_are_quarantined_with_a_rule(tmp_path):
    text = "\n".join([
        LAB,
        "R1,7,2024-01-01,NPU01568,5.4,mmol/L,,",          # fine
        "R2,7,2024-01-01,NPU99999,5.4,mmol/L,,",          # unknown code
        "R3,7,2024-01-01,NPU01568,5.4,mg,,",              # unit does not fit
        "R4,7,2024-01-01,NPU03577,2,mmol/L,,",            # TSH in mmol/L
        "R5,7,2024-01-01,NPU01568,high,mmol/L,,",         # not a number
        'R6,7,2024-01-01,NPU01568,"5,4",mmol/L,,',        # decimal comma in a comma file
        "R7,7,01/02/2024,NPU01568,5.4,mmol/L,,",          # not an ISO date
        "R8,,2024-01-01,NPU01568,5.4,mmol/L,,",           # no patient
        "R9,7,2024-01-01,NPU01568,,mmol/L,,",             # no value
        "R10,7,2024-01-01,NPU01568,5,4,mmol/L,final,P1",  # unquoted decimal comma: a field too many
        "R11,7,2024-01-01,NPU01568,5,4,mmol/L,,",         # same, the extra field empty: unit '4' does not fit
    ])
    staged = stage(tmp_path, "lab_results", text)
    assert list(lab_rows(staged)) == ["R1"]
    assert rules(staged) == {
        2: nz.UNKNOWN_CODE, 3: nz.UNIT_MISMATCH, 4: nz.UNIT_MISMATCH, 5: nz.UNPARSEABLE,
        6: nz.AMBIGUOUS_DECIMAL, 7: nz.BAD_DATE, 8: nz.MISSING_VALUE, 9: nz.MISSING_VALUE,
        10: nz.MALFORMED_ROW, 11: nz.UNIT_MISMATCH,
    }
    row = staged.bad.row(1, named=True)
    assert row["row_key"] == "R3"
    assert row["reason"] == "unit 'mg' does not fit analyte ldl (no conversion to mmol/L)"
    assert json.loads(row["raw"])["unit"] == "mg"
    for reason in staged.bad["reason"]:
        assert "7," not in reason and reason            # plain language, no patient id


def test_a_decimal_comma_value_is_never_read_as_54(tmp_path):
    staged = stage(tmp_path, "lab_results", f'{LAB}\nR1,7,2024-01-01,NPU01568,"5,4",mmol/L,,\nR2,7,2024-01-01,NPU01568,5.4,mmol/L,,\n')
    assert [r["value"] for r in staged.good().iter_rows(named=True)] == [5.4]
    assert rules(staged) == {1: nz.AMBIGUOUS_DECIMAL}


def test_danish_lab_file(tmp_path):
    text = LAB.replace(",", ";") + "\r\nR1;7;2024-01-01;NPU01568;5,4;mmol/L;;\r\nR2;7;2024-01-01;NPU01568;<0,1;mmol/L;;\r\nR3;7;2024-01-01;NPU01568;5.4;mmol/L;;\r\n"
    staged = stage(tmp_path, "lab_results", text, encoding="cp1252")
    got = lab_rows(staged)
    assert staged.decimal == ","
    assert (got["R1"]["value"], got["R2"]["value"], got["R2"]["censored"]) == (5.4, 0.1, "<")
    assert rules(staged) == {3: nz.AMBIGUOUS_DECIMAL}


def test_cancellation_needs_no_value_or_unit(tmp_path):
    staged = stage(tmp_path, "lab_results", f"{LAB}\nR1,7,2024-01-01,NPU01568,,,Cancelled,\nR2,7,2024-01-01,NPU01568,,,final,\n")
    got = lab_rows(staged)
    assert (got["R1"]["status"], got["R1"]["value"], got["R1"]["unit"]) == ("cancelled", None, "mmol/L")
    assert rules(staged) == {2: nz.MISSING_VALUE}


def test_local_codes_from_settings(tmp_path):
    staged = stage(tmp_path, "lab_results", f"{LAB}\nR1,7,2024-01-01,AAB00101,5.4,mmol/L,,\n",
                   extra_codes={"AAB00101": "NPU01568"})
    assert lab_rows(staged)["R1"]["analyte"] == "ldl"


def test_duplicate_key_keeps_the_last_row(tmp_path):
    text = f"{LAB}\nR1,7,2024-01-01,NPU01568,5.4,mmol/L,,\nR2,7,2024-01-01,NPU01568,3.0,mmol/L,,\nR1,7,2024-01-01,NPU01568,5.6,mmol/L,corrected,\n"
    staged = stage(tmp_path, "lab_results", text)
    assert lab_rows(staged)["R1"]["value"] == 5.6
    assert rules(staged) == {1: nz.DUPLICATE_KEY}


def test_duplicates_on_a_natural_key(tmp_path):
    text = "patient_id,atc_code,dispensed_on,strength_mg\n1,C10AA05,2024-01-01,40\n1,c10aa05,2024-01-01,40.0\n1,C10AA05,2024-01-01,\n1,C10AA05,2024-01-01,\n"
    staged = stage(tmp_path, "medications", text)
    assert rules(staged) == {1: nz.DUPLICATE_KEY, 3: nz.DUPLICATE_KEY}
    assert staged.good()["_row"].to_list() == [2, 4]


def test_patients_dates_and_sex(tmp_path):
    text = "patient_id,birth_date,sex,practice_id,deceased_date\n 007 ,1970-01-01,f,,\n8,1970-01-01,,P1,2024-02-30\n9,1970-01-01,M,P1,2024-02-29\n"
    staged = stage(tmp_path, "patients", text)
    got = {r["patient_id"]: r for r in staged.good().iter_rows(named=True)}
    assert got["007"]["sex"] == "F" and got["007"]["practice_id"] is None
    assert got["9"]["deceased_date"] == date(2024, 2, 29)
    assert rules(staged) == {2: nz.BAD_DATE}


def test_diagnoses_keep_raw_and_normalised_code(tmp_path):
    staged = stage(tmp_path, "diagnoses", "patient_id,icd10_code,diagnosed_on\n1,DE780B,2024-01-01\n1,I21.9,2024-01-01\n")
    assert staged.good().select("icd10_code", "icd10_raw").rows() == [("E780B", "DE780B"), ("I219", "I21.9")]


def test_a_whole_column_unreadable_is_structural(tmp_path):
    with pytest.raises(DeliveryError) as err:
        stage(tmp_path, "patients", "patient_id,birth_date,sex\n1,01.02.1970,F\n2,03.04.1980,M\n")
    assert str(err.value) == "patients.csv: column birth_date: no value could be read as a date (YYYY-MM-DD)"
    with pytest.raises(DeliveryError, match=r"^lab_results\.csv: column value: no value could be read as a number with decimal mark '\.'$"):
        stage(tmp_path, "lab_results", f'{LAB}\nR1,7,2024-01-01,NPU01568,"5,4",mmol/L,,\nR2,7,2024-01-01,NPU01568,"6,1",mmol/L,,\n')


def test_a_column_is_unreadable_only_if_no_batch_could_read_a_value(tmp_path):
    unreadable = [f"P{i},01.02.1970,F" for i in range(5)]
    text = "patient_id,birth_date,sex\n" + "\n".join(unreadable + ["P9,1980-04-03,M"]) + "\n"
    staged = stage(tmp_path, "patients", text)                   # the last batch reads one date
    assert staged.good()["patient_id"].to_list() == ["P9"]
    assert set(rules(staged).values()) == {nz.BAD_DATE}
    path = tmp_path / "patients.csv"
    path.write_text("patient_id,birth_date,sex\n" + "\n".join(unreadable) + "\n", encoding="utf-8")
    with pytest.raises(DeliveryError, match="column birth_date: no value could be read"):
        stage_table(read_table("patients", path, IngestSettings()), {}, tmp_path, batch_bytes=40)
    assert not list(tmp_path.glob("*.parquet"))                   # no part is left behind


def test_parts_left_by_a_killed_attempt_are_replaced(tmp_path):
    path = tmp_path / "lab_results.csv"
    path.write_text(f"{LAB}\nR1,7,2024-01-01,NPU01568,5.4,mmol/L,,\n", encoding="utf-8")
    scratch = tmp_path / "work"
    scratch.mkdir()
    for stale in (".stg_lab_results.00000.parquet", ".stg_lab_results.00007.parquet"):
        (scratch / stale).write_bytes(b"left by a killed attempt")
    staged = stage_table(read_table("lab_results", path, IngestSettings()), {}, scratch)
    assert staged.good()["result_id"].to_list() == ["R1"]
    staged.remove_parts()
    assert not list(scratch.iterdir())


def test_a_huge_field_is_quarantined_and_cut(tmp_path):
    staged = stage(tmp_path, "lab_results", f"{LAB}\nR1,7,2024-01-01,NPU01568,{'x' * 2_000_000},mmol/L,,\nR2,7,2024-01-01,NPU01568,5.4,mmol/L,,\n")
    assert rules(staged) == {1: nz.FIELD_TOO_LONG}
    assert len(json.loads(staged.bad["raw"][0])["value"]) == 1000


# --- batches: a file read a piece at a time stages exactly as the whole file ---------------


def staged_in_batches(tmp_path, table, data: bytes, **settings):
    """Stage ``data`` in one batch and in batches of 1, 23 and 64 bytes; every way must give
    the same rows, quarantine, counts, decimal mark and encoding. Returns the one-batch result."""
    path = tmp_path / f"{table}.csv"
    path.write_bytes(data)
    results = []
    for size in (1 << 20, 1, 23, 64):
        scratch = tmp_path / f"b{size}"
        scratch.mkdir()
        delivered = read_table(table, path, IngestSettings(**settings))
        staged = stage_table(delivered, {}, scratch, batch_bytes=size)
        results.append((staged, delivered.encoding, len(staged.parts)))
    (whole, encoding, parts), *pieces = results
    assert parts == 1
    for staged, piece_encoding, piece_parts in pieces:
        assert piece_parts > 1
        assert staged.good().equals(whole.good()) and staged.bad.equals(whole.bad)
        assert (staged.decimal, staged.received, staged.rows, piece_encoding) == (whole.decimal, whole.received, whole.rows, encoding)
    return whole, encoding


def test_a_quoted_field_over_lines_is_never_cut(tmp_path):
    text = "\n".join([
        "patient_id,full_name,address,city",
        '1,"Hansen, Jens","Ågade 1\n2. tv\n(bagbygning)",Aarhus',
        '2,"Ib ""Bo"" Berg",Vej 2,Odense',
        '3,"Ea\n","\n",København',
    ]) + "\n"
    staged, _ = staged_in_batches(tmp_path, "contacts", text.encode("utf-8"))
    rows = staged.good().sort("patient_id")
    assert rows["address"].to_list() == ["Ågade 1\n2. tv\n(bagbygning)", "Vej 2", "\n"]
    assert rows["full_name"].to_list() == ["Hansen, Jens", 'Ib "Bo" Berg', "Ea\n"]


def test_a_decimal_comma_in_a_late_batch_decides_the_whole_file(tmp_path):
    early = [f"R{i};7;2024-01-01;NPU01568;5.{i};mmol/L;;" for i in range(6)]   # dot: ambiguous once the mark is ','
    text = "\n".join([LAB.replace(",", ";"), *early, "R9;7;2024-01-01;NPU01568;6,1;mmol/L;;"]) + "\n"
    staged, _ = staged_in_batches(tmp_path, "lab_results", text.encode("utf-8"))
    assert staged.decimal == ","
    assert set(rules(staged).values()) == {nz.AMBIGUOUS_DECIMAL}
    assert staged.good()["value"].to_list() == [6.1]


def test_a_repeated_key_in_another_batch_quarantines_the_earlier_row_with_its_text(tmp_path):
    text = "\n".join([
        LAB,
        "R1,7,2024-01-01,NPU01568,5.4,mmol/L,,",
        '"R2",7,2024-01-01,NPU01568,5.4,"mmol/L",,',             # quoted: that piece is parsed whole again
        "R2,7,2024-01-01,NPU01568,5.5,mmol/L,,",
        *[f"R{i},7,2024-01-01,NPU01568,5.4,mmol/L,," for i in range(3, 8)],
        "R1,7,2024-01-01,NPU01568,4.9,mmol/L,final,",
    ]) + "\n"
    staged, _ = staged_in_batches(tmp_path, "lab_results", text.encode("utf-8"))
    assert rules(staged) == {1: nz.DUPLICATE_KEY, 2: nz.DUPLICATE_KEY}
    assert [json.loads(raw)["value"] for raw in staged.bad["raw"]] == ["5.4", "5.4"]
    assert lab_rows(staged)["R1"]["value"] == 4.9 and lab_rows(staged)["R2"]["value"] == 5.5 and staged.rows == 7


def test_malformed_rows_at_batch_starts_parse_as_in_the_whole_file(tmp_path):
    text = "\n".join([
        LAB,
        "R1,7,2024-01-01,NPU01568,5.4,mmol/L,,",
        "R2,7,2024-01-01,NPU01568,5,4,mmol/L,final,P1,more",     # two fields too many
        "R3,7,2024-01-01",                                        # too few
        "R4,7,2024-01-01,NPU01568,5,4,mmol/L,final,P1",
    ]) + "\n"
    staged, _ = staged_in_batches(tmp_path, "lab_results", text.encode("utf-8"))
    assert rules(staged) == {2: nz.MALFORMED_ROW, 3: nz.MISSING_VALUE, 4: nz.MALFORMED_ROW}
    first_too_long = text.replace("R1,7,2024-01-01,NPU01568,5.4,mmol/L,,\n", "")
    for size in (1, 1 << 20):   # the first data row decides the width, as polars reads a whole file
        path = tmp_path / "lab_results.csv"
        path.write_text(first_too_long, encoding="utf-8")
        with pytest.raises(DeliveryError, match="malformed CSV"):
            stage_table(read_table("lab_results", path, IngestSettings()), {}, tmp_path, batch_bytes=size)


def test_a_row_of_another_encoding_in_a_late_batch_reads_the_file_again(tmp_path):
    rows = [f"{i},Navn {i},Vej {i},Århus".encode("utf-8") for i in range(1, 7)]
    data = b"\n".join([b"patient_id,full_name,address,city", *rows, "9,Bjørn,Vej 9,Århus".encode("cp1252")]) + b"\n"
    staged, encoding = staged_in_batches(tmp_path, "contacts", data)
    assert encoding == "utf-8, with rows that are not"
    assert rules(staged) == {7: nz.BAD_ENCODING}
    assert staged.rows == 6
