-- Cascade (family testing) state, owned by the cascade step.
-- cascade_ledger: one row per (index case, relative) the region has offered testing to;
--   relative_id '' is the row of an index case with no known relative.
-- cascade_letters: one row per (index case, recipient) ever written to; a pair is written
--   to once, on sent_on (the run date when the letter was first generated).

CREATE TABLE IF NOT EXISTS cascade_ledger (
  index_patient_id VARCHAR NOT NULL,   -- [PD]
  relative_id      VARCHAR NOT NULL,   -- [PD] '' = no relative known
  relationship     VARCHAR NOT NULL,   -- what the relative is to the index case
  degree           INTEGER,            -- 1 or 2; NULL for index_only
  status           VARCHAR NOT NULL,   -- untested tested already_diagnosed moved outside_region deceased index_only
  status_detail    VARCHAR NOT NULL,   -- plain English
  letter           VARCHAR,            -- letters/<file>.pdf that covers this relative
  letter_sent_on   DATE,
  reminder_due     DATE,
  closed_on        DATE,               -- a test or clinic result arrived after the letter
  result           VARCHAR,            -- likely uncertain unlikely (relatives' LDL cut-offs), not_fh, fh_genetic, fh_clinical, fh_diagnosis
  result_date      DATE,
  updated_on       DATE NOT NULL,
  PRIMARY KEY (index_patient_id, relative_id)
);

CREATE TABLE IF NOT EXISTS cascade_letters (
  index_patient_id VARCHAR NOT NULL,   -- [PD]
  patient_id       VARCHAR NOT NULL,   -- [PD] the recipient (named patient_id so erasure finds it)
  kind             VARCHAR NOT NULL,   -- index (with the family letter) / relative
  language         VARCHAR NOT NULL,   -- da / en
  file             VARCHAR NOT NULL,   -- letters/<file>.pdf
  sent_on          DATE NOT NULL,
  PRIMARY KEY (index_patient_id, patient_id)
);
