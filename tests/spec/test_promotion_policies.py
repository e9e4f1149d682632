"""Monthly retraining's policies (``training.retrain``): when a candidate replaces the current
model, how it is named, and what the promotion log records. One table row per case."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pytest

from fh_screen.training.retrain import candidate_identity, decision_record, should_promote


@pytest.mark.parametrize(
    "candidate_ap, current_ap, promoted",
    [
        (0.30, None, True),      # no usable current model: the first candidate is promoted
        (0.00, None, True),      # ... however poor, so the region has a model at all
        (0.30, 0.29, True),      # strictly better ranking of the holdout's positives
        (0.30, 0.30, False),     # a tie keeps the current model: a retrain that learned nothing changes nothing
        (0.30, 0.31, False),     # worse: kept
        (0.0, 0.0, False),
    ],
)
def test_a_candidate_is_promoted_only_when_strictly_better(candidate_ap, current_ap, promoted):
    assert should_promote(candidate_ap, current_ap) is promoted


@pytest.mark.parametrize(
    "as_of, model_hash, version",
    [
        (date(2026, 11, 23), "0123456789abcdef", "2026-11-23.01234567"),
        (date(2026, 11, 23), "fedcba9876543210", "2026-11-23.fedcba98"),   # same date, other data: another version
        (date(2027, 1, 1), "0123456789abcdef", "2027-01-01.01234567"),
    ],
)
def test_a_candidates_version_is_its_date_and_the_start_of_its_hash(as_of, model_hash, version):
    assert candidate_identity(as_of, model_hash) == {"trained_as_of": as_of.isoformat(), "version": version}


@pytest.mark.parametrize(
    "current_version, current_ap, candidate_ap, promoted",
    [
        (None, None, 0.2, True),
        ("2026-10-23.aaaaaaaa", 0.25, 0.2, False),
        ("2026-10-23.aaaaaaaa", 0.2, 0.25, True),
    ],
)
def test_the_log_line_records_both_models_and_the_decision(current_version, current_ap, candidate_ap, promoted):
    y_hold = np.array([0, 1, 0, 0, 1, 0])
    decided = datetime(2026, 11, 24, 3, 0, 1, 999, tzinfo=timezone.utc)
    line = decision_record(date(2026, 11, 23), current_version, "2026-11-23.01234567", y_hold, current_ap,
                           candidate_ap, {"candidate": {}}, decided)
    assert line == {
        "decided_at": "2026-11-24T03:00:01+00:00", "as_of": "2026-11-23",
        "current_version": current_version, "candidate_version": "2026-11-23.01234567",
        "holdout_people": 6, "holdout_positives": 2,
        "current_average_precision": current_ap, "candidate_average_precision": candidate_ap,
        "promoted": promoted, "calibration": {"candidate": {}},
    }
