"""Training and validation of the FH scorer.

Labels are what a region really has: lipid-clinic outcomes of earlier referrals and
existing FH diagnoses, i.e. a few positives among many unlabelled people. The scorers are
trained on many synthetic worlds and validated on whole held-out worlds; the score is turned
into a probability by the region calibration of the score step
(``docs/model-calibration.md``, ``models/fh_gbm/MODEL_CARD.md``).
"""
