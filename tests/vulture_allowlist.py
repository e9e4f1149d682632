"""Reviewed names the dead-code scan (vulture, ``tests/unit/test_dead_code.py``) cannot see
being used. Every entry says who uses it; anything else vulture reports is dead code to
delete, not to add here."""

# ruff: noqa
# pydantic reads these class attributes and validators itself.
model_config
_safe_name
cls

# Public helpers of the pipeline that tests, spec tests and benchmarks build their inputs with.
feature_frame   # fh_screen.stages.features.build: patient_features rows from explicit values
empty_events    # fh_screen.stages.referrals.step: an empty referral history

# Part of the declared data flow (app.run): the store tables no step writes, checked against a
# real run by tests/integration/test_data_flow.py.
STORE_RECORDS

# Register layout field that the DST layout file sets (extra keys are refused, so the model must
# declare it); no converter code reads it yet - it states that BEF file names carry the snapshot.
snapshot_from_name

# Great Expectations reads these attributes of its own objects (gx_runner sets them).
progress_bars
_inspector

# Great Expectations instantiates these Data Docs views by name (gx_runner.docs_site_config).
PageView
IndexPageView

# SQLAlchemy reads these of a dialect (gx_duckdb.CatalogDialect; the inspector calls the method).
supports_statement_cache
get_pk_constraint

# Named codes of synth.population's VARIANT_CLASS (only some are used by name).
LDLR_NULL
LDLR_DEF
PCSK9

# Fields of stages.score.calibration.RegionCalibration: written to the run manifest
# (model.calibration) through dataclasses.asdict, read by people reviewing a night.
model_intercept
model_slope
known_cases
assessed_confirmed

# Fields of outputs.clinics.ClinicPage read by templates/clinics/clinic.html.j2.
this_week
expected_this_week
expected_waiting
prospective_per_week
below_line
below_line_expected
notice
unscored

# synth.simulate.World handles a scheduled event by name: getattr(self, f"_on_{kind}").
_on_visit
_on_no_show
_on_result
_on_dispense
_on_relative_test
_on_relative_result

