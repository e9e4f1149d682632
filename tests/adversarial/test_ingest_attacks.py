"""Attacks through the delivery's bytes and folder: mixed encodings, huge fields, links,
stray files, placeholder dates and zoned times. Each is replayed through ``fhscreen run``
on the mini delivery."""

from __future__ import annotations

import json
import os

from adversarial_helpers import run_args


def _manifest(region) -> dict:
    return json.loads((region["out"] / "run_manifest.json").read_text(encoding="utf-8"))


def _quarantine(region) -> str:
    return (region["out"] / "quarantine.csv").read_text(encoding="utf-8")


def test_one_stray_cp1252_byte_is_quarantined_not_a_whole_file_re_decoded(region, fhscreen):
    path = region["extract"] / "contacts.csv"
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"Odense M", b"Odense M\xe6")   # 000102's row: one CP1252 'ae'
    path.write_bytes(b"\n".join(lines))
    code, err = fhscreen(*run_args(region))
    assert code == 0, err
    manifest = _manifest(region)
    contacts = manifest["tables"]["contacts"]
    assert contacts["quarantined"] == 1 and contacts["loaded"] == 3
    assert contacts["quarantine_rules"] == {"ingest.bad_encoding": 1}
    assert any("contacts.csv" in w for w in manifest["steps"]["stage"]["warnings"])
    assert "warning: contacts.csv: UTF-8 with 1 rows that are not" in fhscreen.out
    # The UTF-8 rows are read as UTF-8: no mojibake anywhere in the outputs.
    for path in region["out"].rglob("*"):
        if path.is_file() and path.suffix in (".csv", ".html"):
            text = path.read_text(encoding="utf-8", errors="replace")
            assert "Ã" not in text, path.name


def test_a_whole_cp1252_file_is_still_read_as_cp1252(region, fhscreen):
    path = region["extract"] / "contacts.csv"
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp1252"))
    assert fhscreen(*run_args(region))[0] == 0
    contacts = _manifest(region)["tables"]["contacts"]
    assert contacts["encoding"] == "cp1252" and contacts["quarantined"] == 0


def test_a_huge_field_is_quarantined_with_its_reason(region, fhscreen):
    path = region["extract"] / "contacts.csv"
    text = path.read_text(encoding="utf-8").replace("Jens Æbelø", "J" * 400_000)
    path.write_text(text, encoding="utf-8")
    code, err = fhscreen(*run_args(region))
    assert code == 0, err
    contacts = _manifest(region)["tables"]["contacts"]
    assert contacts["quarantine_rules"] == {"ingest.field_too_long": 1}
    assert "full_name is longer than 1000 bytes" in _quarantine(region)


def test_wrapping_a_long_word_is_linear():
    """A 400 KB word took 60 s and 2 GB through a cache of every suffix; now it is cut in
    one pass (the bound at ingest keeps such text out of the outputs in the first place)."""
    import time

    from fh_screen.outputs import worklist_pdf

    worklist_pdf._cached_width.cache_clear()
    started = time.process_time()
    lines = worklist_pdf.wrap("helvetica", 8.5, 60.0, "x" * 200_000 + " tail")
    seconds = time.process_time() - started
    assert "".join(lines[:-1]) == "x" * 200_000 and lines[-1] == "tail"
    assert seconds < 2.0, seconds
    assert worklist_pdf._cached_width.cache_info().currsize < 10


def test_a_link_leaving_the_delivery_is_refused(region, fhscreen, tmp_path):
    other = tmp_path / "other-region"
    other.mkdir()
    (other / "patients.csv").write_bytes((region["extract"] / "patients.csv").read_bytes())
    (region["extract"] / "patients.csv").unlink()
    os.symlink(other / "patients.csv", region["extract"] / "patients.csv")
    code, err = fhscreen(*run_args(region))
    assert code == 2 and len(err) == 1 and "outside the delivery folder" in err[0], err


def test_a_stray_link_to_a_system_file_is_refused_without_naming_it(region, fhscreen):
    os.symlink("/etc/passwd", region["extract"] / "referral_Rasmus_Skov_P7950082.pdf")
    code, err = fhscreen(*run_args(region))
    assert code == 2 and len(err) == 1, err
    assert "Rasmus" not in err[0] and "outside the delivery folder" in err[0]


def test_unknown_files_are_recorded_by_count_and_hash_not_name(region, fhscreen):
    (region["extract"] / "referral_Rasmus_Skov_P7950082.pdf").write_bytes(b"%PDF- a stray letter")
    code, err = fhscreen(*run_args(region))
    assert code == 0, err
    printed = fhscreen.out
    assert "warning: the delivery holds 1 files that are not contract tables" in printed
    audit_log = region["db"].with_name(region["db"].name + ".audit.jsonl").read_text(encoding="utf-8")
    for text in (audit_log, (region["out"] / "run_manifest.json").read_text(encoding="utf-8"),
                 (region["out"] / "audit.json").read_text(encoding="utf-8")):
        assert "Rasmus" not in text and "P7950082" not in text
    assert json.loads(audit_log.splitlines()[-1])["inputs"]["unknown_files"]["files"] == 1


def test_placeholder_dates_and_zoned_times_are_quarantined(region, fhscreen):
    patients = region["extract"] / "patients.csv"
    patients.write_text(patients.read_text(encoding="utf-8").replace("1975-03-14", "1900-01-01"), encoding="utf-8")
    labs = region["extract"] / "lab_results.csv"
    text = labs.read_text(encoding="utf-8")
    text = text.replace("2025-01-10T09:30:00,NPU01568", "2025-01-10T09:30:00+02:00,NPU01568")
    text = text.replace("2020-05-05,NPU01568", "2020-05-05T10:00:00Z,NPU01568")
    text = text.replace("2021-09-09,DNK35308", "1900-06-01,DNK35308")
    labs.write_text(text, encoding="utf-8")
    code, err = fhscreen(*run_args(region))
    assert code == 0, err
    tables = _manifest(region)["tables"]
    assert tables["patients"]["quarantine_rules"] == {"ingest.bad_date": 1}
    assert tables["lab_results"]["quarantine_rules"].get("ingest.bad_date") == 3
    quarantine = _quarantine(region)
    assert "birth_date is before 1901-01-01" in quarantine
    assert "no zone" in quarantine


def test_a_mg_dl_ldl_labelled_mmol_l_is_quarantined_as_implausible(region, fhscreen):
    labs = region["extract"] / "lab_results.csv"
    labs.write_text(labs.read_text(encoding="utf-8").replace("R0011,000104,2025-06-02,NPU01568,9.2,MMOL/L",
                                                             "R0011,000104,2025-06-02,NPU01568,155,MMOL/L"),
                    encoding="utf-8")
    assert fhscreen(*run_args(region))[0] == 0
    assert "R0011" in _quarantine(region)
