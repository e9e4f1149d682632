"""Calibration of the synthetic population against its published targets (no files written)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from fh_screen.synth.params import load_params
from fh_screen.synth.population import APOB, LDLR_DEF, LDLR_NULL, PCSK9, build_population


@pytest.fixture(scope="module")
def big():
    params, _ = load_params()
    return build_population(11, 150_000, date(2026, 11, 23), params), params


def test_region_has_exactly_the_requested_residents(big):
    pop, _ = big
    assert pop["in_region"].sum() == 150_000
    assert (~pop["in_region"]).sum() > 0  # relatives outside the region


def test_fh_prevalence_is_about_one_in_250(big):
    """Founders draw FH with p=1/250 and children inherit 50% per allele, so every generation stays near 1/250."""
    pop, _ = big
    carrier = pop["alleles"] > 0
    assert 0.0030 < carrier[pop["founder"]].mean() < 0.0050
    assert 0.0030 < carrier[pop["in_region"]].mean() < 0.0050


def test_transmission_is_about_half(big):
    pop, _ = big
    carrier = pop["alleles"] > 0
    kids = np.flatnonzero((pop["father"] >= 0) & (pop["mother"] >= 0))
    one_parent = carrier[pop["father"][kids]] ^ carrier[pop["mother"][kids]]
    assert 0.4 < carrier[kids[one_parent]].mean() < 0.6


def test_gene_mix_is_mostly_ldlr(big):
    pop, _ = big
    gene = pop["gene"][pop["alleles"] > 0]
    assert np.isin(gene, [LDLR_NULL, LDLR_DEF]).mean() > 0.8
    assert 0.03 < (gene == APOB).mean() < 0.18
    assert (gene == PCSK9).mean() < 0.06


def test_untreated_ldl_depends_on_age_sex_and_genotype(big):
    pop, _ = big
    age = (pop.as_of - pop["birth"]) / 365.25
    ldl = pop["ldl_now"]
    nonfh = pop["alleles"] == 0
    child = nonfh & (age < 17)
    assert abs(ldl[child].mean() - 2.3) < 0.1
    men_25 = nonfh & pop["male"] & (age >= 20) & (age < 30)
    men_50 = nonfh & pop["male"] & (age >= 45) & (age < 55)
    women_50 = nonfh & ~pop["male"] & (age >= 45) & (age < 55)
    assert ldl[men_50].mean() > ldl[men_25].mean() + 0.5
    assert ldl[men_50].mean() > ldl[women_50].mean()
    fh_adult = (pop["alleles"] == 1) & (age >= 18)
    assert 5.0 < ldl[fh_adult].mean() < 7.0
    adults = age >= 18
    assert 0.02 < (ldl[adults] >= 4.9).mean() < 0.08
    assert (ldl[adults] >= 6.5).mean() < 0.006


def test_premature_chd_is_more_frequent_in_fh(big):
    pop, _ = big
    carrier = pop["alleles"] > 0
    assert pop["chd_premature"][carrier].mean() > 4 * pop["chd_premature"][~carrier].mean()
