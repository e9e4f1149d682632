"""One row per patient as of the run date: lipid history, untreated LDL-C, treatment, secondary causes, family evidence."""
