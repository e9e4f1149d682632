"""Hostile input for ``fhscreen convert``: every case ends in a clear one-line error
(exit 2, naming file and column, no patient data) or in set-aside rows with reasons,
and the manifest accounts for every source row (read = converted + set aside)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from fh_screen.app import cli
from fh_screen.convert import convert
from fh_screen.errors import UserError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "registers"
IDS = ("P0000101", "P0000102", "P0000103", "P0009999")


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(text.encode(encoding))


def dst_folder(root: Path) -> Path:
    """A minimal, valid Statistics Denmark extract of three people."""
    src = root / "dst"
    write(src, "BEF202412.csv", "PNR,KOEN,FOED_DAG,MOR_ID,FAR_ID\n"
          "P0000101,1,27JUN1995,P0000103,P0009999\nP0000102,2,1960-01-01,,\nP0000103,2,-3653,,\n")
    write(src, "LAB_DM_FORSKER.csv", "PATIENT_CPR;SAMPLINGDATE;SAMPLINGTIME;ANALYSISCODE;VALUE;OPERATOR;UNIT;RESULTTYPE;"
          "LABORATORIUM_IDCODE;REKVIRENT_ID;REKVIRENT_IDTYPE\n"
          "P0000101;01MAR2024;08:15;NPU01568;5,4;;mmol/L;numerisk;L1;012345;ydernummer\n"
          "P0000101;2024-03-01;08:15;NPU01566;0,1;mindre_end;mmol/L;numerisk;L1;012345;ydernummer\n"
          "P0000102;23011;;NPU01370;POSITIV;;;alfanumerisk;L1;SOR1;sor\n", encoding="cp1252")
    return src


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:   # argparse
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_clean_line(err: str, *must: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for word in must:
        assert word in lines[0], (word, lines[0])
    assert not any(pid in err for pid in IDS), err
    assert "Traceback" not in err


def test_a_valid_extract_converts_and_accounts_for_every_row(tmp_path, capsys):
    src = dst_folder(tmp_path)
    code, out, err = run_cli(["convert", "--layout", "dst", "--in", str(src), "--out", str(tmp_path / "d")], capsys)
    assert code == 0, err
    manifest = json.loads((tmp_path / "d" / "convert_manifest.json").read_text())
    assert manifest["tables"]["lab"] == {"files": ["LAB_DM_FORSKER.csv"], "read": 3, "converted": 2, "set_aside": 1,
                                         "reasons": {"text result (RESULTTYPE alfanumerisk): kept out of numeric parsing": 1}}
    aside = pl.read_csv(tmp_path / "d" / "set_aside.csv")
    assert aside.rows() == [("lab", "LAB_DM_FORSKER.csv", 3, "text result (RESULTTYPE alfanumerisk): kept out of numeric parsing")]
    labs = pl.read_csv(tmp_path / "d" / "lab_results.csv", infer_schema=False)
    assert labs["value"].to_list() == ["5.4", "<0.1"]
    patients = pl.read_csv(tmp_path / "d" / "patients.csv", infer_schema=False)
    assert patients["birth_date"].to_list() == ["1995-06-27", "1960-01-01", "1949-12-31"]   # DATE9, ISO, SAS days
    assert "set aside" in out and not any(pid in out for pid in IDS)


def test_unknown_layout_is_refused(tmp_path, capsys):
    src = dst_folder(tmp_path)
    code, _, err = run_cli(["convert", "--layout", "xyz", "--in", str(src), "--out", str(tmp_path / "d")], capsys)
    assert code == 2 and "invalid choice" in err
    with pytest.raises(UserError, match="unknown layout 'xyz'"):
        convert("xyz", src, tmp_path / "d")
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("case, words", [
    ("no_population_register", ("BEF", "required register table missing")),
    ("no_lab_register", ("LAB_DM_FORSKER", "required register table missing")),
    ("missing_column", ("BEF202412.csv", "FOED_DAG", "missing")),
    ("unreadable_sas", ("BEF202412.sas7bdat", "unreadable")),
    ("vnds_and_split", ("VNDS", "never combine")),
    ("lpr_half", ("LPR_ADM.csv", "LPR_DIAG")),
])
def test_unusable_extracts_fail_with_one_line_naming_file_and_column(tmp_path, capsys, case, words):
    src = dst_folder(tmp_path)
    if case == "no_population_register":
        (src / "BEF202412.csv").unlink()
    elif case == "no_lab_register":
        (src / "LAB_DM_FORSKER.csv").unlink()
    elif case == "missing_column":
        write(src, "BEF202412.csv", "PNR,KOEN,MOR_ID\nP0000101,1,P0000103\n")
    elif case == "unreadable_sas":
        (src / "BEF202412.csv").unlink()
        write(src, "BEF202412.sas7bdat", "P0000101 this is not a SAS file")
    elif case == "vnds_and_split":
        write(src, "VNDS.csv", "PNR,INDUD_KODE,HAEND_DATO\nP0000101,U,2020-01-01\n")
        write(src, "VNDS_UD.csv", "PNR,HAEND_DATO\nP0000101,2020-01-01\n")
    elif case == "lpr_half":
        write(src, "LPR_ADM.csv", "PNR,RECNUM,D_INDDTO\nP0000101,1,2015-01-01\n")
    code, _, err = run_cli(["convert", "--layout", "dst", "--in", str(src), "--out", str(tmp_path / "d")], capsys)
    assert code == 2
    assert_one_clean_line(err, *words)
    assert not (tmp_path / "d").exists() and not list(tmp_path.glob(".convert-*"))


def test_sds_dispensings_need_the_product_table(tmp_path, capsys):
    src = tmp_path / "sds"
    write(src, "CPR3_T_PERSON.csv", "V_PNR_ENCRYPTED,C_KON,D_FODDATO,C_STATUS,D_STATUS_HEN_START\nP0000101,M,27JUN1995,01,\n")
    write(src, "LAB_DM_FORSKER.csv", "PATIENT_CPR_ENCRYPTED,SAMPLINGDATE,ANALYSISCODE,VALUE,UNIT\nP0000101,2024-01-01,NPU01568,5.4,mmol/L\n")
    write(src, "LMS_EPIKUR.csv", "CPR_ENCRYPTED,EKSD,ATC,VNR\nP0000101,23011,C10AA05,100\n")
    code, _, err = run_cli(["convert", "--layout", "sds", "--in", str(src), "--out", str(tmp_path / "d")], capsys)
    assert code == 2
    assert_one_clean_line(err, "LMS_LAEGEMIDDELOPLYSNINGER", "VNR")


def test_mixed_date_formats_convert_and_unreadable_ones_are_set_aside(tmp_path):
    src = dst_folder(tmp_path)
    write(src, "BEF202412.csv", "PNR,KOEN,FOED_DAG\nP0000101,1,27JUN1995\nP0000102,2,19600101\n"
          "P0000103,2,-3653\nP0000104,1,1990-02-30\nP0000105,1,12961.0\n")
    write(src, "DOD.csv", "PNR,DODDATO\nP0000102,2024-05-01T00:00:00\nP0000103,01may2024\n")
    manifest = convert("dst", src, tmp_path / "d")
    bef = manifest["tables"]["bef"]
    assert (bef["read"], bef["converted"], bef["set_aside"]) == (5, 4, 1)
    assert bef["reasons"] == {"birth date unreadable": 1}
    patients = pl.read_csv(tmp_path / "d" / "patients.csv", infer_schema=False).sort("patient_id")
    assert patients["birth_date"].to_list() == ["1995-06-27", "1960-01-01", "1949-12-31", "1995-06-27"]
    assert patients["deceased_date"].to_list()[1:3] == ["2024-05-01", "2024-05-01"]
    assert pl.read_csv(tmp_path / "d" / "set_aside.csv").filter(pl.col("source_table") == "bef").rows() == [
        ("bef", "BEF202412.csv", 4, "birth date unreadable")]


def test_strength_units_that_are_not_mg(tmp_path):
    src = dst_folder(tmp_path)
    write(src, "lmdb2024.csv", "pnr;eksd;atc;vnr;strnum;strunit\n"
          "P0000101;01JAN2024;C10AA05;1;40;mg\nP0000101;01FEB2024;C10AA05;2;0,04;g\n"
          "P0000101;01MAR2024;C10AA01;3;20000;mikrog\nP0000101;01APR2024;C10AX09;4;10;mg/ml\n"
          "P0000101;01MAY2024;C10AA05;5;40;IE\nP0000101;bad;C10AA05;6;40;mg\n")
    manifest = convert("dst", src, tmp_path / "d")
    meds = pl.read_csv(tmp_path / "d" / "medications.csv").sort("dispensed_on")
    assert meds["strength_mg"].to_list() == [40.0, 40.0, 20.0, None, None]
    assert manifest["notes"]["dispensings with a strength unit that is not a mass (strength left empty)"] == 2
    assert manifest["tables"]["medications"]["reasons"] == {"date unreadable": 1}


def test_parents_missing_from_the_population_register_still_give_parent_rows(tmp_path):
    src = dst_folder(tmp_path)
    manifest = convert("dst", src, tmp_path / "d")
    relations = pl.read_csv(tmp_path / "d" / "relations.csv")
    assert set(relations.rows()) == {("P0000101", "P0000103", "parent"), ("P0000101", "P0009999", "parent"),
                                     ("P0000103", "P0000101", "child")}
    assert manifest["notes"]["parent rows whose parent is not in the population register (kept: relatives may be absent)"] == 1


def test_people_in_the_population_table_but_not_in_the_register_are_set_aside(tmp_path):
    src = dst_folder(tmp_path)
    write(src, "POPULATION.csv", "PNR\nP0000101\nP0000777\n")
    manifest = convert("dst", src, tmp_path / "d")
    assert manifest["tables"]["population"]["reasons"] == {
        "person in the population table but not in the population register": 1}
    patients = pl.read_csv(tmp_path / "d" / "patients.csv", infer_schema=False)
    assert patients["patient_id"].to_list() == ["P0000101"]        # the others are relatives only
    assert manifest["tables"]["bef"]["converted"] == 3


def test_a_sas7bdat_population_register_is_read(tmp_path):
    src = dst_folder(tmp_path)
    (src / "BEF202412.csv").unlink()
    shutil.copy(FIXTURES / "bef202412.sas7bdat", src / "bef202412.sas7bdat")
    manifest = convert("dst", src, tmp_path / "d")
    assert manifest["tables"]["bef"]["files"] == ["bef202412.sas7bdat"]
    patients = pl.read_csv(tmp_path / "d" / "patients.csv", infer_schema=False).sort("patient_id")
    assert patients.select("patient_id", "birth_date", "sex").rows() == [
        ("P0000101", "1995-06-27", "M"), ("P0000102", "1949-12-31", "F"), ("P0000103", "2023-01-01", "F")]


def test_a_lab_system_export_needs_patients_in_the_contract_format(tmp_path, capsys):
    src = tmp_path / "medcom"
    write(src, "labsvar.csv", "PatientCPR;SamplingDateTime;AnalysisCode;Value;Operator;Unit;ResultStatusCode\n"
          "P0000101;2024-03-01T08:15:00;NPU01568;5,4;;mmol/L;endelig\nP0000101;2024-03-01T08:15:00;NPU01566;7,1;;mmol/L;annulleret\n")
    code, _, err = run_cli(["convert", "--layout", "medcom-lab", "--in", str(src), "--out", str(tmp_path / "d")], capsys)
    assert code == 2
    assert_one_clean_line(err, "patients.csv", "missing")
    write(src, "patients.csv", "patient_id,birth_date,sex\nP0000101,1995-06-27,M\n")
    manifest = convert("medcom-lab", src, tmp_path / "d")
    labs = pl.read_csv(tmp_path / "d" / "lab_results.csv", infer_schema=False)
    assert labs["status"].to_list() == ["final", "cancelled"] and labs["value"].to_list() == ["5.4", "7.1"]
    assert (tmp_path / "d" / "patients.csv").read_bytes() == (src / "patients.csv").read_bytes()
    assert manifest["tables"]["patients (contract file)"]["read"] == 1


def test_converted_files_are_owner_only_and_a_rerun_replaces_the_delivery(tmp_path):
    src = dst_folder(tmp_path)
    convert("dst", src, tmp_path / "d")
    first = {p.name: p.read_bytes() for p in (tmp_path / "d").iterdir()}
    convert("dst", src, tmp_path / "d")
    assert {p.name: p.read_bytes() for p in (tmp_path / "d").iterdir()} == first     # idempotent, byte for byte
    assert all((p.stat().st_mode & 0o077) == 0 for p in (tmp_path / "d").iterdir())


def test_register_extracts_come_whole_not_as_nightly_increments(tmp_path, capsys):
    code, _, err = run_cli(["synth", "--out", str(tmp_path / "s"), "--patients", "20", "--layout", "dst",
                            "--nights", "2"], capsys)
    assert code == 2
    assert_one_clean_line(err, "--layout", "--nights 1")
