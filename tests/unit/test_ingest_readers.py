"""Reading delivered files: which files, CSV dialect and encoding, structural errors."""

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from fh_screen.config import IngestSettings
from fh_screen.errors import DeliveryError
from fh_screen.stages.ingest.readers import content_hash, find_tables, read_table
from fh_screen.stages.ingest.staging import stage_table

AUTO = IngestSettings()
LAB_HEADER = "result_id,patient_id,sampled_at,analyte,value,unit,status,ordering_practice_id"


def write(folder: Path, name: str, data: bytes | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def rows(delivered, batch_bytes: int = 1 << 20) -> pl.DataFrame:
    """Every row of a delivered file, read batch by batch as staging reads it."""
    return pl.concat([frame for _, frame in delivered.batches(batch_bytes)])


def delivery(tmp_path, **tables) -> Path:
    folder = tmp_path / "d1"
    base = {"patients.csv": "patient_id,birth_date,sex\n007,1970-01-01,F\n",
            "lab_results.csv": f"{LAB_HEADER}\nR1,007,2024-01-01,NPU01568,5.4,mmol/L,,\n"}
    for name, data in {**base, **tables}.items():
        if data is not None:
            write(folder, name, data)
    return folder


def test_finds_contract_tables_and_ignores_other_files(tmp_path):
    folder = delivery(tmp_path, **{"README.txt": "x", "Medications.CSV": "patient_id,atc_code,dispensed_on\n"})
    assert sorted(find_tables(folder)) == ["lab_results", "medications", "patients"]


def test_missing_required_file_names_it(tmp_path):
    folder = delivery(tmp_path, **{"lab_results.csv": None})
    with pytest.raises(DeliveryError, match=r"^lab_results\.csv: required file missing"):
        find_tables(folder)


def test_both_csv_and_parquet_for_one_table_is_refused(tmp_path):
    folder = delivery(tmp_path, **{"patients.parquet": b"PAR1"})
    with pytest.raises(DeliveryError, match="patients.csv and patients.parquet"):
        find_tables(folder)


def test_content_hash_changes_with_content_and_names(tmp_path):
    folder = delivery(tmp_path)
    first = content_hash(folder)
    assert first == content_hash(folder)
    write(folder, "extra.txt", "x")
    assert content_hash(folder) != first


def test_plain_utf8_with_bom_and_crlf(tmp_path):
    text = "\ufeffpatient_id,birth_date,sex\r\n007,1970-01-01,F\r\n0042,1980-02-02,M\r\n"
    got = read_table("patients", write(tmp_path, "patients.csv", text.encode("utf-8")), AUTO)
    assert (got.delimiter, got.encoding) == (",", "utf-8-sig")
    assert rows(got)["patient_id"].to_list() == ["007", "0042"]      # leading zeros kept
    assert rows(got)["sex"].to_list() == ["F", "M"]                   # no stray \r
    assert rows(got)["_row"].to_list() == [1, 2]


def test_danish_dialect_is_detected(tmp_path):
    text = "patient_id;full_name;address;city\r\n007;Søren Ærø;Ågade 1, 2. tv;Århus\r\n"
    got = read_table("contacts", write(tmp_path, "contacts.csv", text.encode("cp1252")), AUTO)
    assert (got.delimiter, got.encoding) == (";", "cp1252")
    assert rows(got).row(0, named=True)["full_name"] == "Søren Ærø"
    assert rows(got).row(0, named=True)["address"] == "Ågade 1, 2. tv"


def test_cp1252_found_beyond_the_sniffed_sample_falls_back(tmp_path):
    lines = ["patient_id;full_name"] + [f"{i};Name {i}" for i in range(80_000)] + ["x;Bjørn"]
    path = write(tmp_path, "contacts.csv", "\n".join(lines).encode("cp1252"))
    got = read_table("contacts", path, AUTO)
    assert got.encoding == "utf-8"                                   # so far: the sample is ASCII
    assert rows(got, batch_bytes=100_000)["full_name"][-1] == "Bjørn"   # the last batch finds out
    assert got.encoding == "cp1252"


def test_configured_dialect_is_used(tmp_path):
    settings = IngestSettings(delimiter="|", decimal=",", encoding="latin-1")
    path = write(tmp_path, "lab_results.csv", (LAB_HEADER.replace(",", "|") + "\nR1|7|2024-01-01|NPU01568|5,4|mmol/L||\n").encode("latin-1"))
    got = read_table("lab_results", path, settings)
    assert (got.delimiter, got.decimal, got.encoding) == ("|", ",", "latin-1")


def test_tab_separated_file_is_detected(tmp_path):
    got = read_table("patients", write(tmp_path, "patients.csv", "patient_id\tbirth_date\tsex\n1\t1970-01-01\tF\n"), AUTO)
    assert got.delimiter == "\t"


def test_missing_required_column_names_file_and_column(tmp_path):
    path = write(tmp_path, "lab_results.csv", "result_id,patient_id,sampled_at,analyte,unit\nR1,7,2024-01-01,X,mmol/L\n")
    with pytest.raises(DeliveryError) as err:
        read_table("lab_results", path, AUTO)
    assert str(err.value) == "lab_results.csv: required column value is missing"


def test_header_names_are_trimmed_and_case_insensitive(tmp_path):
    got = read_table("patients", write(tmp_path, "patients.csv", " Patient_ID , BIRTH_DATE,Sex,extra\n1,1970-01-01,F,x\n"), AUTO)
    assert rows(got)["patient_id"].to_list() == ["1"]
    assert got.ignored_columns == ("extra",)


def test_empty_required_table_and_empty_file(tmp_path):
    with pytest.raises(DeliveryError, match="^patients.csv: required table has no data rows$"):
        stage_table(read_table("patients", write(tmp_path, "patients.csv", "patient_id,birth_date,sex\n"), AUTO),
                    {}, tmp_path)
    with pytest.raises(DeliveryError, match="^patients.csv: file is empty$"):
        read_table("patients", write(tmp_path, "patients.csv", b""), AUTO)


def test_empty_optional_table_is_fine(tmp_path):
    got = read_table("medications", write(tmp_path, "medications.csv", "patient_id,atc_code,dispensed_on\n"), AUTO)
    assert rows(got).height == 0


def test_utf16_and_undecodable_bytes_are_refused(tmp_path):
    utf16 = "patient_id,birth_date,sex\n1,1970-01-01,F\n".encode("utf-16")
    with pytest.raises(DeliveryError, match="^patients.csv: file is UTF-16 or binary"):
        read_table("patients", write(tmp_path, "patients.csv", utf16), AUTO)
    bad = b"patient_id,birth_date,sex\n1,1970-01-01,\x81\x8d\xff\n"      # neither UTF-8 nor CP1252
    with pytest.raises(DeliveryError, match="^patients.csv: cannot be decoded as cp1252"):
        rows(read_table("patients", write(tmp_path, "patients.csv", bad), AUTO))


def test_configured_utf8_refuses_other_encodings(tmp_path):
    path = write(tmp_path, "contacts.csv", "patient_id,city\n1,Århus\n".encode("cp1252"))
    with pytest.raises(DeliveryError, match="^contacts.csv: not valid UTF-8"):
        rows(read_table("contacts", path, IngestSettings(encoding="utf-8")))


def test_rows_with_too_many_fields_are_marked_not_fatal(tmp_path):
    text = f"{LAB_HEADER}\nR1,7,2024-01-01,NPU01568,5,4,mmol/L,final,P1\nR2,7,2024-01-01,NPU01568,5.4,mmol/L,final,P1\n"
    got = read_table("lab_results", write(tmp_path, "lab_results.csv", text), AUTO)
    assert rows(got)["_extra"].to_list() == ["P1", None]


def test_a_huge_line_does_not_crash(tmp_path):
    text = f"{LAB_HEADER}\nR1,7,2024-01-01,NPU01568,{'9' * 3_000_000},mmol/L,,\n"
    got = read_table("lab_results", write(tmp_path, "lab_results.csv", text), AUTO)
    assert rows(got).height == 1
    with pytest.raises(DeliveryError, match="header line is longer"):
        read_table("patients", write(tmp_path, "patients.csv", "x" * 2_000_000), AUTO)


def test_parquet_is_read_as_text_with_types_checked(tmp_path):
    path = tmp_path / "lab_results.parquet"
    pl.DataFrame({
        "result_id": ["R1"], "patient_id": [7], "sampled_at": [datetime(2024, 1, 2, 3, 4, 5)],
        "analyte": ["NPU01568"], "value": [5.4], "unit": ["mmol/L"],
    }).write_parquet(path)
    got = read_table("lab_results", path, AUTO)
    row = rows(got).row(0, named=True)
    assert (row["patient_id"], row["value"], row["sampled_at"][:19]) == ("7", "5.4", "2024-01-02 03:04:05")
    assert got.format == "parquet" and got.decimal == "."


def test_parquet_column_of_impossible_type_is_structural(tmp_path):
    path = tmp_path / "patients.parquet"
    pl.DataFrame({"patient_id": ["1"], "birth_date": [True], "sex": ["F"]}).write_parquet(path)
    with pytest.raises(DeliveryError) as err:
        read_table("patients", path, AUTO)
    assert str(err.value) == "patients.parquet: column birth_date has Parquet type Boolean, which cannot hold a date"


def test_corrupt_parquet_is_unreadable(tmp_path):
    with pytest.raises(DeliveryError, match="^patients.parquet: not a readable Parquet file$"):
        read_table("patients", write(tmp_path, "patients.parquet", b"PAR1 this is not parquet PAR1"), AUTO)


def test_an_unterminated_quote_is_a_clear_structural_error(tmp_path):
    text = f'{LAB_HEADER}\nR1,7,2024-01-01,NPU01568,"5.4,mmol/L,,\nR2,7,2024-01-01,NPU01568,5.4,mmol/L,,\n'
    with pytest.raises(DeliveryError) as err:
        rows(read_table("lab_results", write(tmp_path, "lab_results.csv", text), AUTO))
    assert str(err.value) == "lab_results.csv: malformed CSV that cannot be split into rows (check quoting)"
