"""Synthetic worlds: regions that differ in what a real region would differ in.

A scorer trained and checked on one synthetic region learns that region's habits. Each
world here draws, from its own seed, the FH prevalence (1/500 to 1/200, the range of
Nordestgaard et al., Eur Heart J 2013), the gene mix, how severe the phenotype is, how
often people are tested and given statins, how the laboratory codes and reports results
(NPU, LOINC or local codes; mmol/L or mg/dL), how often clinics report outcomes and how
complete family records are. Ranges are around the cited defaults of ``synth/params.yaml``
(derived: wide enough to include the shifted held-out region of ``shifted_region.yaml``).

A world is generated with ``fh_screen.synth.generate`` and run through the nightly steps up
to the rules, with the settings that region would have: its ``metrics.expected_prevalence``
(the world's prevalence, as a region configures its own published figure) and an
``ingest.extra_codes`` map for its local codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from fh_screen.config import Settings, load_settings
from fh_screen.synth.labs import local_codes
from fh_screen.synth.params import load_params

AS_OF = date(2026, 11, 23)
STEPS = ("stage", "validate", "load", "features", "rules")
LOCAL_PREFIX = "LAB-"
# Test probability per five years never exceeds this, however a world scales testing.
MAX_TEST_PROBABILITY = 0.95


@dataclass(frozen=True)
class World:
    name: str
    seed: int
    patients: int
    folder: Path
    prevalence: float
    overrides: dict

    @property
    def db(self) -> Path:
        return self.folder / "world.duckdb"

    @property
    def truth(self) -> Path:
        return self.folder / "region" / "ground_truth" / "truth.parquet"

    def settings(self, base: Settings | None = None) -> Settings:
        """The region settings this world would configure (prevalence, local code map)."""
        base = base or load_settings()
        data = base.model_dump()
        data["metrics"]["expected_prevalence"] = self.prevalence
        data["ingest"]["extra_codes"] = local_codes(self.overrides["measurement"]["local_code_prefix"])
        return Settings.model_validate(data)


def overrides(seed: int) -> dict:
    """Generator parameters of the world with this seed (a ``--params`` override tree)."""
    rng = np.random.default_rng([seed, 16])
    p, _ = load_params()
    u = rng.uniform
    prevalence = float(np.exp(u(np.log(1 / 500), np.log(1 / 200))))
    ldlr, apob = u(0.75, 0.93), u(0.05, 0.20)
    pcsk9 = max(1.0 - ldlr - apob, 0.005)
    total = ldlr + apob + pcsk9
    severity, testing = u(0.85, 1.15), u(0.6, 1.4)
    loinc = u(0.05, 0.8)
    return {
        "genotype": {"founder_fh_prevalence": prevalence,
                     "gene_split": {"LDLR": ldlr / total, "APOB": apob / total, "PCSK9": pcsk9 / total},
                     "ldlr_null_share": u(0.3, 0.5)},
        "ldl_fh": {"multiplier": {k: v * severity for k, v in p["ldl_fh"]["multiplier"].items()},
                   "adult_sd": p["ldl_fh"]["adult_sd"] * u(0.9, 1.2)},
        "measurement": {"test_probability_per_5y": {k: min(v * testing, MAX_TEST_PROBABILITY)
                                                    for k, v in p["measurement"]["test_probability_per_5y"].items()},
                        "loinc_share": loinc, "mgdl_share_of_lipids": u(0.0, min(0.3, loinc)),
                        "ldl_measured_share": u(0.05, 0.5),
                        "local_code_prefix": LOCAL_PREFIX if rng.random() < 0.3 else ""},
        "treatment": {"statin_prob_nonfh_scale": u(0.9, 2.0), "statin_prob_fh_undiagnosed": u(0.35, 0.65)},
        "diagnosis": {"fh_diagnosed_share": u(0.15, 0.45), "clinic_record_share": u(0.4, 0.95)},
        "referral": {"max_prob": u(0.25, 0.6)},
        "family_history": {"recorded_given_true": u(0.1, 0.5)},
        "families": {"register_link_coverage": u(0.3, 0.9), "outside_region_share": u(0.2, 0.45)},
    }


def world(root: Path, role: str, seed: int, patients: int) -> World:
    tree = overrides(seed)
    return World(name=f"{role}-{seed}", seed=seed, patients=patients, folder=Path(root) / f"{role}-{seed}",
                 prevalence=tree["genotype"]["founder_fh_prevalence"], overrides=tree)
