"""A FAMCAT-like comparison model, refit here: never FAMCAT itself.

FAMCAT (Weng et al., Atherosclerosis 2015;238:336-343) is a sex-specific logistic
regression on primary-care record variables; its published coefficients are not public,
so this is a refit of the same kind of model on the same training data as fh-screen's
scorer, labelled "FAMCAT-like (refit)". Weng 2015 list nine predictors, among them the
highest total or LDL cholesterol, triglycerides, family history of FH, of raised
cholesterol and of premature coronary heart disease, and lipid-lowering treatment;
FAMCAT2 (Qureshi et al. 2021) adds personal premature CHD. The columns below are those a
delivery holds; diabetes and kidney disease are represented by HbA1c and eGFR.
Published anchors: AUC 0.86 at derivation (Weng 2015), 0.832 on external primary-care
data (Weng 2019).
"""

from __future__ import annotations

from fh_screen.stages.score.model import SexSpecific

NAME = "FAMCAT-like (refit)"
COLUMNS = ["age_exact_years", "ldl_max_mmol", "tc_max_mmol", "tg_max_mmol", "fhx_fh_first_degree",
           "fhx_high_ldl_first_degree_adult", "fhx_premature_chd_first_degree", "lipid_lowering_ever",
           "sec_hba1c_max_mmol_mol", "sec_egfr_min", "fhx_premature_chd_self"]
SEX_COLUMN = "sex_male"


def estimator(seed: int) -> SexSpecific:
    """The refit's estimator; X is ``[SEX_COLUMN, *COLUMNS]``."""
    return SexSpecific(sex_index=0, random_state=seed)
