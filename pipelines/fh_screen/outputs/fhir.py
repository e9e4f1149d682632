"""Referral proposals for each lipid clinic as a FHIR R4 Bundle of ServiceRequests.

One ``worklists/fhir/<clinic>.json`` per clinic with tonight's clinic-route patients
(listed or reminder). Each resource is built as plain data and validated by
``fhir.resources.R4B`` before it is written, so a malformed bundle fails the run instead
of reaching a clinic system.

Decisions:
* ``intent`` is ``proposal``: the worklist suggests, the GP decides and orders.
* ``priority`` comes from the run's rank: the most urgent tenth of the run's candidates
  (at least one) is ``urgent``, everyone else ``routine``; the rank itself is in the note.
* Identifiers use ``urn:fh-screen:*`` systems because the extract's ids are regional
  pseudonyms, not national identifiers; ``subject.reference`` is added only when the id
  is a valid FHIR id.
* Codes: SNOMED CT 3457005 "Patient referral" (category) and 398036000 "Familial
  hypercholesterolemia (disorder)" with ICD-10 E78.0 (reason); shared clinical brief §10.3.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from pathlib import Path

import polars as pl

from fh_screen.store import files
from fh_screen.context import RunContext

SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
PATIENT_SYSTEM = "urn:fh-screen:patient-id"
PRACTICE_SYSTEM = "urn:fh-screen:practice-id"
CLINIC_SYSTEM = "urn:fh-screen:clinic-id"
REFERRAL_SYSTEM = "urn:fh-screen:referral"
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
URGENT_FRACTION = 0.10
REASON = {
    "coding": [
        {"system": SNOMED, "code": "398036000", "display": "Familial hypercholesterolemia (disorder)"},
        {"system": ICD10, "code": "E78.0", "display": "Pure hypercholesterolaemia"},
    ],
    "text": "Suspected familial hypercholesterolaemia",
}
CATEGORY = {"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]}


def _uuid(as_of, patient_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:fh-screen:referral:{as_of.isoformat()}:{patient_id}"))


def service_request(row: dict, view: dict, requester: str, clinic_name: str, as_of, urgent_up_to: int) -> dict:
    """One ServiceRequest (plain data) for a listed clinic-route patient."""
    pid = row["patient_id"]
    subject = {"identifier": {"system": PATIENT_SYSTEM, "value": pid}}
    if FHIR_ID.match(pid):
        subject["reference"] = f"Patient/{pid}"
    reasons = "; ".join(r["text"] for r in view["reasons"])
    return {
        "resourceType": "ServiceRequest",
        "id": _uuid(as_of, pid),
        "identifier": [{"system": REFERRAL_SYSTEM, "value": f"{as_of.isoformat()}/{pid}"}],
        "status": "active",
        "intent": "proposal",
        "category": [CATEGORY],
        "priority": "urgent" if row["rank"] <= urgent_up_to else "routine",
        "code": {"text": "Lipid clinic assessment for suspected familial hypercholesterolaemia"},
        "subject": subject,
        "authoredOn": as_of.isoformat(),
        "requester": {
            "type": "Organization",
            "identifier": {"system": PRACTICE_SYSTEM, "value": row["practice_id"]},
            "display": requester,
        },
        "performer": [{
            "type": "Organization",
            "identifier": {"system": CLINIC_SYSTEM, "value": row["clinic_id"]},
            "display": clinic_name,
        }],
        "reasonCode": [REASON],
        "note": [{"text": f"Rank {row['rank']} ({row['event']}). {reasons}. {view['action']}"}],
    }


def bundle(clinic_id: str, requests: list[dict], as_of) -> dict:
    """A validated collection Bundle; raises if fhir.resources rejects it."""
    from fhir.resources.R4B.bundle import Bundle

    data = {
        "resourceType": "Bundle",
        "identifier": {"system": REFERRAL_SYSTEM, "value": f"{clinic_id}/{as_of.isoformat()}"},
        "type": "collection",
        "timestamp": f"{as_of.isoformat()}T00:00:00+00:00",
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in requests],
    }
    Bundle.model_validate(data)
    return data


def write_bundles(listed: pl.DataFrame, candidates: int, practices, ctx: RunContext, folder: Path) -> int:
    """Write one bundle per clinic with clinic-route patients tonight; return how many.

    ``candidates`` is the number ranked tonight (listed and queued), the base of priority.
    """
    views = {v["patient_id"]: v for p in practices for v in p.patients}
    headings = {p.practice_id: p.heading for p in practices}
    names = {c.clinic_id: c.name for c in ctx.settings.clinics}
    to_clinics = listed.filter(
        (pl.col("route") == "refer_lipid_clinic") & pl.col("clinic_id").is_not_null()
    ).sort("rank")
    if to_clinics.height == 0:
        return 0
    urgent_up_to = max(1, math.ceil(URGENT_FRACTION * candidates))
    out = files.ensure_dir(folder / "fhir")
    written = 0
    for (clinic_id,), group in to_clinics.group_by(["clinic_id"], maintain_order=True):
        requests = [
            service_request(r, views[r["patient_id"]], headings[r["practice_id"]], names.get(clinic_id, clinic_id),
                            ctx.as_of, urgent_up_to)
            for r in group.iter_rows(named=True)
        ]
        data = bundle(clinic_id, requests, ctx.as_of)
        files.write_text(files.child_path(out, f"{clinic_id}.json"), json.dumps(data, ensure_ascii=False, indent=1))
        written += 1
    return written
