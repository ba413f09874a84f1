"""A providers' system reading the FHIR facade through real FHIR tools.

Usage: fhir_client.py BASE TOKEN PATIENT

SMART Health IT's `fhirclient` (its R4 models check every resource as
they are built) reads the CapabilityStatement, then searches each resource
type for PATIENT in pages of one, following the Bundles' `next` links, and
reads each resource found by its id. The server's JSON, as sent, of every
Bundle and resource is also validated with the `fhir.resources` R4 (4.0.1)
models. Prints, as JSON: per type, the ids found, the totals, the pages
and the resources as read; a validation failure exits non-zero.
"""

import json
import sys

from fhirclient import client
from fhirclient.models import (
    auditevent,
    bundle,
    careplan,
    communication,
    consent,
    goal,
    medicationstatement,
    patient,
)
import fhir.resources.auditevent
import fhir.resources.bundle
import fhir.resources.capabilitystatement
import fhir.resources.careplan
import fhir.resources.communication
import fhir.resources.consent
import fhir.resources.goal
import fhir.resources.medicationstatement
import fhir.resources.patient

base, token, patient_id = sys.argv[1], sys.argv[2], sys.argv[3]

TYPES = {
    "Patient": (patient.Patient, fhir.resources.patient.Patient),
    "Goal": (goal.Goal, fhir.resources.goal.Goal),
    "CarePlan": (careplan.CarePlan, fhir.resources.careplan.CarePlan),
    "MedicationStatement": (
        medicationstatement.MedicationStatement,
        fhir.resources.medicationstatement.MedicationStatement,
    ),
    "Consent": (consent.Consent, fhir.resources.consent.Consent),
    "Communication": (
        communication.Communication,
        fhir.resources.communication.Communication,
    ),
    "AuditEvent": (auditevent.AuditEvent, fhir.resources.auditevent.AuditEvent),
}

smart = client.FHIRClient(settings={"app_id": "portal-test", "api_base": base})
server = smart.server
server.session.headers["Authorization"] = "Bearer " + token

# The CapabilityStatement, as fhirclient reads it and fhir.resources checks it.
server.get_capability()
statement = server.request_json("metadata")
fhir.resources.capabilitystatement.CapabilityStatement.parse_obj(statement)
served = [r["type"] for r in statement["rest"][0]["resource"]]

wanted = sys.argv[4].split(",") if len(sys.argv) > 4 else list(TYPES)
out = {"served": served, "types": {}}
for name in wanted:
    client_model, validator = TYPES[name]
    query = {"_id": patient_id} if name == "Patient" else {"patient": "Patient/" + patient_id}
    # Pages of one, so that every search with two matches follows a `next` link.
    path = client_model.where(struct=dict(query, _count="1")).construct()
    found, totals, pages = [], [], 0
    while path:
        pages += 1
        assert pages <= 50, f"{name}: next links that do not end"
        raw = server.request_json(path)
        # The server's own JSON, as sent, through both sets of models.
        fhir.resources.bundle.Bundle.parse_obj(raw)
        page = bundle.Bundle(raw)
        totals.append(page.total)
        for entry, raw_entry in zip(page.entry or [], raw.get("entry", [])):
            found.append(entry.resource.id)
            validator.parse_obj(raw_entry["resource"])
        nxt = [link.url for link in page.link or [] if link.relation == "next"]
        path = nxt[0] if nxt else None
    read = {}
    for rid in found:
        raw = server.request_json(f"{name}/{rid}")
        validator.parse_obj(raw)
        client_model(raw)  # fhirclient's models check it as built (strict)
        assert client_model.read(rid, server).id == rid
        read[rid] = raw
    out["types"][name] = {
        "found": found,
        "totals": sorted(set(totals)),
        "pages": pages,
        "read": read,
    }
print(json.dumps(out))
