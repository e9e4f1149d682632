"""FHIR R4 referral bundles per clinic, validated with fhir.resources."""

import json
import sys
from datetime import date
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import referrals_factory as f  # noqa: E402

from fh_screen.outputs import fhir as referral_fhir# noqa: E402
from fh_screen.config import Clinic# noqa: E402
from fh_screen.stages.referrals.step import referrals_step# noqa: E402


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fhir")
    rows = [f.rule(f"p{i}", dlcn_points=20 - i) for i in range(12)]
    rows += [
        f.rule("odd id/ä", dlcn_points=7),
        f.rule("check", route="check_secondary_cause_first", secondary_cause="TSH 14", dlcn_points=5),
        f.rule("kid", age_years=10, is_child=True, dlcn_points=None),
        f.rule("over", dlcn_points=6, practice_id="P2"),
    ]
    cfg = f.settings(clinics=[
        Clinic(clinic_id="LK", name="Lipidklinik Nord", weekly_capacity=13, postcodes=["5"]),
        Clinic(clinic_id="PAED", name="Børnelipidklinik", weekly_capacity=5, paediatric=True),
    ])
    db_path = f.build_db(tmp / "r.duckdb", rows)
    ctx = f.context(tmp, db_path, cfg=cfg)
    referrals_step(ctx)
    folder = ctx.work_dir / "worklists" / "fhir"
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json")}


def requests(bundle):
    return [e["resource"] for e in bundle["entry"]]


def test_one_valid_bundle_per_clinic(bundles):
    assert set(bundles) == {"LK", "PAED"}
    for data in bundles.values():
        parsed = Bundle.model_validate(data)
        assert parsed.type == "collection"
        for entry in parsed.entry:
            assert isinstance(entry.resource, ServiceRequest)
            assert entry.fullUrl == f"urn:uuid:{entry.resource.id}"


def test_only_clinic_route_patients_within_capacity_are_sent(bundles):
    subjects = {sr["subject"]["identifier"]["value"] for sr in requests(bundles["LK"])}
    assert subjects == {f"p{i}" for i in range(12)} | {"odd id/ä"}  # 13 places; "over" queued, "check" not sent
    assert [sr["subject"]["identifier"]["value"] for sr in requests(bundles["PAED"])] == ["kid"]


def test_service_request_content(bundles):
    first = requests(bundles["LK"])[0]
    assert first["status"] == "active" and first["intent"] == "proposal"
    assert first["subject"]["reference"] == "Patient/p0"
    assert first["requester"]["identifier"] == {"system": referral_fhir.PRACTICE_SYSTEM, "value": "P1"}
    assert first["performer"][0]["identifier"]["value"] == "LK"
    assert first["performer"][0]["display"] == "Lipidklinik Nord"
    codes = {(c["system"], c["code"]) for c in first["reasonCode"][0]["coding"]}
    assert ("http://snomed.info/sct", "398036000") in codes and ("http://hl7.org/fhir/sid/icd-10", "E78.0") in codes
    assert first["category"][0]["coding"][0]["code"] == "3457005"
    assert first["authoredOn"] == "2026-11-23"
    assert first["note"][0]["text"].startswith("Rank 1 (listed). LDL-C 7.2 mmol/L")


def test_priority_follows_rank(bundles):
    # 16 candidates tonight -> ranks 1..2 are the most urgent tenth (ceil(0.1 * 16) = 2)
    by_rank = {int(sr["note"][0]["text"].split()[1]): sr["priority"] for sr in requests(bundles["LK"])}
    assert by_rank[1] == by_rank[2] == "urgent"
    assert {p for rank, p in by_rank.items() if rank > 2} == {"routine"}


def test_ids_that_are_not_fhir_ids_are_kept_as_identifiers_only(bundles):
    [odd] = [sr for sr in requests(bundles["LK"]) if sr["subject"]["identifier"]["value"] == "odd id/ä"]
    assert "reference" not in odd["subject"]


def test_an_invalid_resource_fails_validation():
    bad = {"resourceType": "ServiceRequest", "id": "x", "status": "active", "intent": "proposal",
           "subject": "Patient/1"}
    with pytest.raises(ValidationError):
        referral_fhir.bundle("LK", [bad], date(2026, 11, 23))
