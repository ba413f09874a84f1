"""A providers' system reading the FHIR facade through real FHIR tools.

Usage: fhir_client.py BASE TOKEN PATIENT

SMART Health IT's `fhirclient` (its R4 models check every resource as
they are built) reads the CapabilityStatement, then searches each resource
type for PATIENT, following the Bundles' `next` links page by page, and
reads each resource found by its id. Every resource, and every Bundle, is
also validated with the `fhir.resources` R4 (4.0.1) models. Prints, as
JSON: per type, the ids found by search and by read, the totals, and the
resources as read; a validation failure exits non-zero.
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
    search = client_model.where(struct=dict(query, _count="2"))
    page = search.perform(server)  # a fhirclient Bundle: checked as built
    found, totals, pages = [], [], 0
    while True:
        pages += 1
        raw = page.as_json()
        fhir.resources.bundle.Bundle.parse_obj(raw)
        totals.append(page.total)
        for entry in page.entry or []:
            found.append(entry.resource.id)
            validator.parse_obj(entry.resource.as_json())
        nxt = [link.url for link in page.link or [] if link.relation == "next"]
        if not nxt:
            break
        page = bundle.Bundle(server.request_json(nxt[0]))
    read = {}
    for rid in found:
        resource = client_model.read(rid, server)  # checked as built
        as_json = resource.as_json()
        validator.parse_obj(as_json)
        read[rid] = as_json
    out["types"][name] = {
        "found": found,
        "totals": sorted(set(totals)),
        "pages": pages,
        "read": read,
    }
print(json.dumps(out))
