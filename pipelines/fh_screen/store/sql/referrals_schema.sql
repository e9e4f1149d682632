-- Referral ledger, owned by the referrals step (fh_screen.referrals).
-- referral_events is the history, one row per patient per run date (as_of); a rerun of the
-- same date deletes that date's rows and inserts them again. referral_ledger is derived
-- from the events after every run (one row per patient ever listed or queued).

CREATE TABLE IF NOT EXISTS referral_events (
  as_of          DATE NOT NULL,        -- run date
  patient_id     VARCHAR NOT NULL,     -- [PD]
  event          VARCHAR NOT NULL,     -- listed / reminder / queued (waiting for clinic capacity)
  practice_id    VARCHAR NOT NULL,     -- GP practice, or the regional unassigned list id
  clinic_id      VARCHAR,              -- lipid clinic allocated (NULL when no clinic is configured)
  rank           INTEGER NOT NULL,     -- urgency across the run's candidates, 1 = most urgent
  probability    DOUBLE,               -- calibrated model probability, NULL without a model
  dlcn_points    INTEGER,
  dlcn_category  VARCHAR,
  route          VARCHAR NOT NULL      -- refer_lipid_clinic / check_secondary_cause_first
);

CREATE TABLE IF NOT EXISTS referral_ledger (
  patient_id       VARCHAR PRIMARY KEY, -- [PD]
  first_listed_on  DATE,                -- NULL while only queued
  last_listed_on   DATE,                -- last 'listed' or 'reminder'
  times_listed     INTEGER NOT NULL,    -- 'listed' + 'reminder' events
  clinic_id        VARCHAR,             -- clinic of the latest event
  status           VARCHAR NOT NULL     -- queued / listed / reminded / outcome_received
);
