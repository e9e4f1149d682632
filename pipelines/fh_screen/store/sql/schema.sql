-- Curated store of fh-screen. One DuckDB file per region.
-- Layers: stg_* (one delivery, parsed, replaced each run) -> curated tables below
-- (all deliveries, corrections applied) -> derived tables written by later steps.
-- Units are canonical (see reference/unit_conversions.csv); personal data columns are marked [PD].
-- Keys marked "unique (loader)" are kept unique by the ingest step (duplicates within a delivery
-- are quarantined; a later delivery replaces the row) rather than by a PRIMARY KEY: DuckDB's
-- index makes deleting and re-inserting a million keyed rows take minutes instead of seconds.

CREATE TABLE IF NOT EXISTS deliveries (
  delivery_id   VARCHAR PRIMARY KEY,   -- folder name of the delivery
  content_hash  VARCHAR NOT NULL,      -- sha256 over the delivery's files
  as_of         DATE NOT NULL,
  loaded_at     TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS patients (
  patient_id      VARCHAR NOT NULL,    -- [PD] pseudonymous id; unique (loader)
  birth_date      DATE NOT NULL,       -- [PD]
  sex             VARCHAR NOT NULL,    -- F / M / U
  practice_id     VARCHAR,             -- GP practice; NULL = no GP
  postcode        VARCHAR,             -- [PD]
  deceased_date   DATE,
  moved_out_date  DATE,
  delivery_id     VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS lab_results (
  result_id       VARCHAR NOT NULL,    -- unique (loader); a later delivery's row replaces it
  patient_id      VARCHAR NOT NULL,    -- [PD]
  sampled_at      TIMESTAMP NOT NULL,
  analyte         VARCHAR NOT NULL,    -- canonical: ldl tc hdl tg tsh albumin alat alp ggt creatinine egfr hba1c uacr lpa lpa_molar apob
  method          VARCHAR NOT NULL,    -- measured / calculated (as the code says)
  code            VARCHAR NOT NULL,    -- code as delivered (NPU / LOINC / local)
  value           DOUBLE,              -- canonical unit; for censored values the bound
  unit            VARCHAR NOT NULL,    -- canonical unit
  censored        VARCHAR,             -- '<' or '>' when the lab reported a bound, else NULL
  value_raw       VARCHAR NOT NULL,
  unit_raw        VARCHAR NOT NULL,
  status          VARCHAR NOT NULL,    -- final / corrected / cancelled (cancelled = withdrawn)
  ordering_practice_id VARCHAR,
  delivery_id     VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS medications (
  patient_id    VARCHAR NOT NULL,
  atc_code      VARCHAR NOT NULL,
  dispensed_on  DATE NOT NULL,
  strength_mg   DOUBLE,
  delivery_id   VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS diagnoses (
  patient_id    VARCHAR NOT NULL,
  icd10_code    VARCHAR NOT NULL,      -- normalised: upper case, no dot, Danish SKS 'D' prefix removed (DE780B -> E780B, I21.9 -> I219)
  icd10_raw     VARCHAR NOT NULL,
  diagnosed_on  DATE NOT NULL,
  delivery_id   VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS relations (
  patient_id    VARCHAR NOT NULL,
  relative_id   VARCHAR NOT NULL,
  relationship  VARCHAR NOT NULL,      -- what the relative is to the patient: parent / child / sibling
  delivery_id   VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS family_history (
  patient_id    VARCHAR NOT NULL,
  item          VARCHAR NOT NULL,
  recorded_on   DATE NOT NULL,
  delivery_id   VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS clinic_outcomes (
  patient_id    VARCHAR NOT NULL,
  outcome_date  DATE NOT NULL,
  outcome       VARCHAR NOT NULL,      -- fh_genetic fh_clinical not_fh did_not_attend declined pending
  gene          VARCHAR,
  delivery_id   VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS contacts (
  patient_id    VARCHAR NOT NULL,      -- unique (loader)
  full_name     VARCHAR,               -- [PD]
  address       VARCHAR,               -- [PD]
  postcode      VARCHAR,               -- [PD]
  city          VARCHAR,
  language      VARCHAR,               -- da / en
  delivery_id   VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS quarantine (
  delivery_id   VARCHAR NOT NULL,
  table_name    VARCHAR NOT NULL,
  row_number    BIGINT,                -- 1-based data row in the delivered file (header excluded)
  row_key       VARCHAR,               -- result_id / patient_id where available
  rule          VARCHAR NOT NULL,      -- machine code of the rule broken, e.g. ingest.unparseable_value
  reason        VARCHAR NOT NULL,      -- plain-language reason
  raw           VARCHAR NOT NULL       -- the row as delivered, JSON
);

-- Which store this is: a random id made once, recorded in every run's manifest so that an
-- output folder is never replaced by the run of another store (another region), and the
-- per-store key of the erasure register (used when FH_SCREEN_ERASURE_KEY is not set).
CREATE TABLE IF NOT EXISTS store_identity (
  store_id      VARCHAR NOT NULL,
  erasure_key   BLOB NOT NULL
);

-- Incremental nights (fh_screen.store.changes): which patients the next night's features step
-- recomputes. The load step and an erasure note every patient named by a row they write or
-- remove; the features step plans from these notes (and the date boundaries), not from the
-- whole store. A store made before the notes kept per-patient input fingerprints instead:
-- they are dropped (that store's next night is a full pass: its code digest differs).
DROP TABLE IF EXISTS incr_fingerprints;
CREATE TABLE IF NOT EXISTS incr_changes (
  patient_id    VARCHAR NOT NULL,      -- [PD] named by a row loaded, replaced or removed
  noted         BIGINT NOT NULL,       -- 1 + the highest mark when noted (0: kept by a plan); a plan takes the notes up to its mark
  seq           BIGINT,                -- the features night that planned it (NULL: not yet); kept for a rerun
  links         BOOLEAN NOT NULL       -- their family graph changed (a relation, an erasure), not their own inputs
);

CREATE TABLE IF NOT EXISTS incr_steps (
  step          VARCHAR NOT NULL,      -- features / rules: each per-patient step's last two completed nights
  seq           BIGINT NOT NULL,       -- the features night it has caught up with (counts up)
  as_of         DATE NOT NULL,
  full_seq      BIGINT NOT NULL,       -- the night of its last full pass
  full_as_of    DATE NOT NULL,
  logic         VARCHAR NOT NULL       -- digest of code, reference data and settings of that night
);

CREATE TABLE IF NOT EXISTS incr_recompute (
  patient_id    VARCHAR NOT NULL,      -- [PD] recomputed by the features step on night seq
  seq           BIGINT NOT NULL        -- kept until every later per-patient step has caught up
);

-- Erasure register: one keyed hash (HMAC-SHA256) per erased person, applied at ingest so a
-- later extract that still holds them does not load them again. It names nobody: without
-- the key (FH_SCREEN_ERASURE_KEY, else store_identity.erasure_key) an id cannot be tested.
CREATE TABLE IF NOT EXISTS erasure_register (
  id_hash       VARCHAR NOT NULL,
  key_check     VARCHAR NOT NULL,      -- HMAC of a fixed text: which key made id_hash
  erased_on     DATE NOT NULL
);
