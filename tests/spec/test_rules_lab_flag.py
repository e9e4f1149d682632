"""Region Syddanmark lab flag (FIND): LDL-C > 4 under 40, > 5 from 40, no secondary cause."""

from datetime import date

import polars as pl
import pytest

from fh_screen.stages.features.build import feature_frame
from fh_screen.reference import csv
from fh_screen.stages.rules.results import Policy, score

AS_OF = date(2026, 11, 23)
LDL_MG_DL = csv("unit_conversions").filter((pl.col("analyte") == "ldl") & (pl.col("unit") == "mg/dL"))["factor"][0]


def flag(under40=None, from40=None, unit="mmol/L", policy=Policy(), **cols) -> dict:
    conv = (lambda v: v) if unit == "mmol/L" else (lambda v: None if v is None else v * 38.67 * LDL_MG_DL)
    row = {"ldl_max_age_18_39_mmol": conv(under40), "ldl_max_age_ge40_mmol": conv(from40), **cols}
    return score(feature_frame([row], AS_OF), policy).row(0, named=True)


@pytest.mark.parametrize("unit", ["mmol/L", "mg/dL"])
@pytest.mark.parametrize("value, flagged", [(3.99, False), (4.0, False), (4.01, True)])
def test_under_40_above_4(value, flagged, unit):
    assert flag(under40=value, unit=unit)["lab_flag"] is flagged


@pytest.mark.parametrize("unit", ["mmol/L", "mg/dL"])
@pytest.mark.parametrize("value, flagged", [(4.99, False), (5.0, False), (5.01, True)])
def test_from_40_above_5(value, flagged, unit):
    assert flag(from40=value, unit=unit)["lab_flag"] is flagged


def test_a_high_sample_before_40_counts_even_if_later_samples_are_lower():
    r = flag(under40=4.5, from40=4.8)
    assert r["lab_flag"] and r["route"] == "refer_lipid_clinic"
    assert "LDL-C 4.5 mmol/L is above the Danish laboratory threshold of 4.0 mmol/L for age under 40" in r["reasons"]


def test_secondary_cause_suppresses_the_flag():
    # FIND: no lab comment when a secondary cause explains the LDL-C; the threshold alone
    # neither selects nor routes (decision routing_is_selection).
    r = flag(from40=6.0, sec_tsh_max_miu_l=14.0, sec_tsh_date=date(2025, 3, 2))
    assert r["lab_flag"] is False
    assert r["route"] == "none"
    assert r["secondary_cause"] == "TSH 14 mIU/L on 2025-03-02"
    assert "lab_flag.secondary_cause_present" in r["criteria"]


def test_thresholds_are_configurable():
    policy = Policy(lab_flag_thresholds={"under_age_split": 5.0, "from_age_split": 6.5})
    assert flag(under40=4.5, policy=policy)["lab_flag"] is False
    assert flag(from40=6.6, policy=policy)["lab_flag"] is True


def test_lab_flag_can_be_left_out_of_routing():
    assert flag(from40=5.5, policy=Policy(use_lab_flag=False))["route"] == "none"
