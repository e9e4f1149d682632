"""The FH scorer: a calibrated probability from the shared patient features.

Labels are what a region really has: lipid-clinic outcomes of earlier referrals and
existing FH diagnoses, i.e. a few positives among many unlabelled people. The model is
trained as positive-unlabelled (Elkan & Noto 2008) and its probability rescaled by the
estimated labelling rate; see models/fh_gbm/MODEL_CARD.md.
"""
