-- Helper relations for the expectation suites (validate step). Everything named gx_* is
-- rebuilt at the start of validation and dropped at its end; GX reads them through its
-- own connection, so they are real (not temporary) objects.
-- Parameters: $run_date, $latest_date (run date + allowed future days), $earliest_birth.
CREATE OR REPLACE TABLE gx_run AS
SELECT CAST($run_date AS DATE) AS run_date,
       CAST($latest_date AS DATE) AS latest_date,
       CAST($earliest_birth AS DATE) AS earliest_birth;
