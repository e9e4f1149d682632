"""Synthetic worlds for training and validation: parameters in their ranges, reproducible,
and a laboratory with local codes that the region's settings map back."""

import csv
from datetime import date

import polars as pl
import pytest

from fh_screen import reference
from fh_screen.synth import generate
from fh_screen.synth.labs import local_codes
from fh_screen.training import worlds


@pytest.mark.parametrize("seed", range(20))
def test_world_parameters_stay_in_their_ranges(seed):
    tree = worlds.overrides(seed)
    assert 1 / 500 <= tree["genotype"]["founder_fh_prevalence"] <= 1 / 200
    assert sum(tree["genotype"]["gene_split"].values()) == pytest.approx(1.0)
    assert all(0 < v <= worlds.MAX_TEST_PROBABILITY for v in tree["measurement"]["test_probability_per_5y"].values())
    assert tree["measurement"]["mgdl_share_of_lipids"] <= tree["measurement"]["loinc_share"]
    assert tree["measurement"]["local_code_prefix"] in ("", worlds.LOCAL_PREFIX)


def test_worlds_are_reproducible_and_differ_from_each_other(tmp_path):
    assert worlds.overrides(3) == worlds.overrides(3)
    assert worlds.overrides(3) != worlds.overrides(4)
    w = worlds.world(tmp_path, "external", 3000, 1000)
    assert w.settings().metrics.expected_prevalence == w.prevalence


def test_local_laboratory_codes_are_mapped_back_by_the_region_settings(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("measurement:\n  local_code_prefix: 'LAB-'\n  loinc_share: 0.2\n", encoding="utf-8")
    generate(out=tmp_path / "r", n_patients=300, seed=2, as_of=date(2026, 11, 23), fmt="parquet", params_file=params)
    labs = pl.read_parquet(tmp_path / "r" / "extracts" / "2026-11-23" / "lab_results.parquet")
    codes = set(labs["analyte"].unique())
    local = {c for c in codes if c.startswith("LAB-")}
    assert local and not {c for c in codes if c.startswith(("NPU", "DNK"))}
    mapping = local_codes("LAB-")
    with (reference.REFERENCE_DIR / "analyte_codes.csv").open(encoding="utf-8") as handle:
        known = {row["code"] for row in csv.DictReader(handle)}
    assert local <= set(mapping) and set(mapping.values()) <= known
