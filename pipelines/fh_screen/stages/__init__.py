"""The nightly job's stages in data-flow order: ingest, validate, (load), features, rules, score, referrals, cascade, metrics.

Each stage is a package whose ``step`` module is the one edge that reads and writes the store; the other modules are pure."""
