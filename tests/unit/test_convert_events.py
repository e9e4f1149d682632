"""Lab results, dispensings and diagnoses from register rows (fh_screen.convert.events)."""

from datetime import date, datetime

import polars as pl

from fh_screen.convert import events


def rows(data: dict, file: str = "x.csv") -> pl.DataFrame:
    n = len(next(iter(data.values())))
    return pl.DataFrame(data, schema={k: pl.String for k in data}).with_columns(
        _file=pl.lit(file), _row=pl.int_range(1, n + 1, dtype=pl.Int64))


def lab_rows(**over) -> pl.DataFrame:
    base = {"person": ["A"], "sampling_date": ["27JUN2024"], "sampling_time": ["08:15"], "analysis_code": ["npu01568"],
            "value": ["5,4"], "operator": [None], "unit": ["mmol/L"], "result_type": ["numerisk"],
            "laboratory": ["L1"], "requester": ["012345"], "requester_type": ["ydernummer"]}
    base.update({k: [v] for k, v in over.items()})
    return rows(base)


def test_a_lab_register_row_becomes_a_contract_result():
    out, accounted = events.lab_results(lab_rows())
    row = out.row(0, named=True)
    assert row["patient_id"] == "A" and row["analyte"] == "NPU01568" and row["value"] == "5.4"
    assert row["sampled_at"] == datetime(2024, 6, 27, 8, 15) and row["ordering_practice_id"] == "012345"
    assert row["status"] is None and row["result_id"].startswith("LAB-")
    assert accounted["_reason"].to_list() == [None]


def test_censored_value_keeps_its_sign_and_hospital_requester_is_not_a_practice():
    out, _ = events.lab_results(lab_rows(value="0,1", operator="mindre_end", requester="SOR1", requester_type="sor"))
    assert out["value"].item() == "<0.1" and out["ordering_practice_id"].item() is None


def test_text_results_unknown_operators_and_bad_dates_are_set_aside_with_reasons():
    frame = pl.concat([lab_rows(value="POSITIV", result_type="alfanumerisk"), lab_rows(operator="ca"),
                       lab_rows(sampling_date="32JUN2024"), lab_rows(person=None)])
    out, accounted = events.lab_results(frame)
    assert out.height == 0
    assert accounted["_reason"].to_list() == [events.TEXT_RESULT, events.UNKNOWN_OPERATOR, events.BAD_DATE, events.NO_PERSON]


def test_the_same_result_key_gives_the_same_id_and_another_value_does_not_change_it():
    out, _ = events.lab_results(pl.concat([lab_rows(), lab_rows(value="7,7"), lab_rows(sampling_time="08:16")]))
    ids = out["result_id"].to_list()
    assert ids[0] == ids[1] != ids[2]   # the pipeline quarantines the conflicting second row as a duplicate


def test_medcom_status_words_map_to_the_contract():
    frame = rows({"person": ["A", "A"], "sampling_datetime": ["2024-06-27T08:15:00", "2024-06-27T08:15:00"],
                  "analysis_code": ["NPU01568", "NPU01567"], "value": ["5,4", "1,2"], "unit": ["mmol/L", "mmol/L"],
                  "status": ["rettet", "annulleret"]})
    out, _ = events.lab_results(frame)
    assert out["status"].to_list() == ["corrected", "cancelled"]


def test_lmdb_strength_on_the_row():
    meds = rows({"person": ["A", "A", "A", "A"], "dispensed_on": ["2024-01-01", "20240201", "x", "2024-03-01"],
                 "atc": ["c10aa05", "C10AA05", "C10AA05", None], "strength": ["40", "0,04", "40", "10"],
                 "strength_unit": ["mg", "g", "mg", "mg"]})
    out, accounted, notes, prods = events.dispensings(meds, None)
    assert out.rows() == [("A", "C10AA05", date(2024, 1, 1), 40.0), ("A", "C10AA05", date(2024, 2, 1), 40.0)]
    assert accounted["_reason"].to_list() == [None, None, events.BAD_DATE, events.NO_CODE]
    assert prods is None


def test_lms_strength_from_the_product_table_joined_on_vnr():
    meds = rows({"person": ["A", "A", "A"], "dispensed_on": ["23011", "23012", "23013"],
                 "atc": ["C10AA05", "C10AA07", "C10AX09"], "product": ["100", "200", "999"]})
    products = rows({"product": ["100", "200", "100", None], "strength": ["0,02", "5", "80", "1"],
                     "strength_unit": ["g", "mg/ml", "mg", "mg"]}, file="lms_laegemiddeloplysninger.csv")
    out, accounted, notes, prods = events.dispensings(meds, products)
    assert out["strength_mg"].to_list() == [20.0, None, None]
    assert notes["dispensings whose VNR is not in the product table (strength left empty)"] == 1
    assert notes["dispensings with a strength unit that is not a mass (strength left empty)"] == 1
    assert prods["_reason"].to_list() == [None, None, events.DUPLICATE_PRODUCT, events.NO_CODE]


def test_lpr_contacts_join_diagnoses_and_retracted_or_referral_codes_are_set_aside():
    contacts = rows({"person": ["A", "B", "C"], "contact": ["1", "2", "3"],
                     "contact_date": ["2020-05-01T10:00:00", "01MAY2020:10:00:00", "bad"]})
    diags = rows({"contact": ["1", "1", "2", "9", "1", "3"], "code": ["DE780", "DI219", "de780b", "DE780", "DE780", "DE780"],
                  "code_type": ["A", "H", "B", "A", "A", "A"], "retracted": ["Nej", "Nej", None, "Nej", "Ja", "Nej"]})
    out, c_acc, d_acc = events.diagnoses(contacts, diags, datetime_contacts=True)
    assert out.rows() == [("A", "DE780", date(2020, 5, 1)), ("B", "DE780B", date(2020, 5, 1))]
    assert c_acc["_reason"].to_list() == [None, None, events.BAD_DATE]
    assert d_acc["_reason"].to_list() == [None, events.REFERRAL_DIAGNOSIS, None, events.NO_CONTACT,
                                          events.RETRACTED, events.NO_CONTACT]
