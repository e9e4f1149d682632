-- THE usable lab result, defined once: every step that reads lab results for a clinical use
-- (features, cascade, worklist details, prospective evidence, metrics) reads them through
-- these macros, never through its own WHERE clause (tests/unit/test_usable_lab_results.py).
--
-- usable_lab_results(as_of): a result counts when
--   * it was not withdrawn: status 'cancelled' means the lab took it back, so it never
--     counts (a 'corrected' row is the lab's current value and does);
--   * it has a value (a cancellation may arrive without one);
--   * it was sampled on or before the run date (a later delivery never changes an earlier
--     night's answer; the night is reproducible).
-- A censored result ('<' or '>' with the bound as value) stays usable: it is what the lab
-- reported. A reader that needs an exact number (e.g. an LDL-C change) drops censored rows
-- itself. Adds sample_date, the day of sampled_at.
CREATE OR REPLACE MACRO usable_lab_results(as_of) AS TABLE
  SELECT *, CAST(sampled_at AS DATE) AS sample_date
  FROM lab_results
  WHERE status <> 'cancelled'
    AND value IS NOT NULL
    AND CAST(sampled_at AS DATE) <= CAST(as_of AS DATE);

-- usable_lipid_results(as_of): the usable results of the lipid profile (LDL-C, total
-- cholesterol, HDL-C, triglycerides), the analytes the rules, the worklist and the cascade use.
CREATE OR REPLACE MACRO usable_lipid_results(as_of) AS TABLE
  SELECT * FROM usable_lab_results(as_of)
  WHERE analyte IN ('ldl', 'tc', 'hdl', 'tg');
