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

-- Added with prospective flags and the bounded backlog (stores made before get the columns here).
ALTER TABLE referral_events ADD COLUMN IF NOT EXISTS flow VARCHAR;        -- prospective / backlog
ALTER TABLE referral_events ADD COLUMN IF NOT EXISTS slot_week DATE;      -- a day in the expected week of the clinic place; NULL = not yet scheduled
ALTER TABLE referral_events ADD COLUMN IF NOT EXISTS model_logit DOUBLE;    -- logit of the model score behind the probability at this listing (outcome recalibration)

-- Tonight's selection figures per clinic (aggregates only, no patient data), written by the
-- referrals step and read by the metrics step; see fh_screen.stages.referrals.backlog.
CREATE TABLE IF NOT EXISTS selection_runs (
  as_of                        DATE NOT NULL,
  clinic_id                    VARCHAR NOT NULL,   -- 'none' = candidates without a clinic
  weekly_capacity              INTEGER,            -- NULL = no capacity configured
  expected_prospective_weekly  INTEGER NOT NULL,   -- P: prospective clinic referrals expected per week
  backlog_places               INTEGER,            -- places in the horizon the backlog may hold tonight
  candidates                   INTEGER NOT NULL,   -- selected and due tonight, before the line
  prospective_candidates       INTEGER NOT NULL,
  prospective_selected         INTEGER NOT NULL,   -- prospective, new tonight
  backlog_selected             INTEGER NOT NULL,   -- backlog, admitted to the horizon tonight for the first time
  clinic_listed                INTEGER NOT NULL,   -- listed or reminded for the clinic tonight
  queued                       INTEGER NOT NULL,
  backlog_queued               INTEGER NOT NULL,
  below_line                   INTEGER NOT NULL,   -- clinic route, eligible, not queued
  outside_lookback             INTEGER NOT NULL,
  check_first_listed           INTEGER NOT NULL,
  check_first_backlog_listed   INTEGER NOT NULL,
  check_first_held             INTEGER NOT NULL,
  below_line_expected_carriers DOUBLE NOT NULL,    -- summed calibrated probability below the line
  horizon_expected_carriers    DOUBLE NOT NULL,    -- summed calibrated probability listed or queued (clinic route)
  backlog_size                 INTEGER NOT NULL,   -- backlog queued + below the line
  backlog_weekly_places        INTEGER NOT NULL,   -- C - P: places a week the prospective flow leaves
  weeks_to_clear               DOUBLE,             -- backlog_size / backlog_weekly_places
  PRIMARY KEY (as_of, clinic_id)
);
