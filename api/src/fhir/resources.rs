//! The FHIR R4 resources the facade serves, made from what the GraphQL
//! schema answers (its field names, camelCase): pure functions, so that
//! each mapping is pinned by a unit test and the same rules decide what
//! both APIs show. Codes: FHIR's own value sets where a field requires
//! one; free text for the user's own words (a goal, a medication's name),
//! as the service holds no coded clinical data (see `docs/fhir.md`).

use serde_json::{json, Value};
use uuid::Uuid;

/// The system of identifiers that are our uuids (RFC 3986 URIs).
const URI: &str = "urn:ietf:rfc:3986";

/// A resource's id made of two uuids (the portal's and the item's): 64
/// hex digits, FHIR's longest id, so that a read finds both.
pub fn pair_id(a: Uuid, b: Uuid) -> String {
    format!("{}{}", a.simple(), b.simple())
}

/// The two uuids of a [`pair_id`].
pub fn parse_pair(id: &str) -> Option<(Uuid, Uuid)> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((
        Uuid::parse_str(&id[..32]).ok()?,
        Uuid::parse_str(&id[32..]).ok()?,
    ))
}

/// An id of a uuid and a number: `<uuid hex>-<n>`.
pub fn numbered_id(a: Uuid, n: i64) -> String {
    format!("{}-{n}", a.simple())
}

/// The parts of a [`numbered_id`].
pub fn parse_numbered(id: &str) -> Option<(Uuid, i64)> {
    let (a, n) = id.split_once('-')?;
    if a.len() != 32 {
        return None;
    }
    Some((
        Uuid::parse_str(a).ok()?,
        n.parse().ok().filter(|n| *n >= 0)?,
    ))
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_default()
}

fn uuid_of(value: &Value, field: &str) -> Option<Uuid> {
    value[field].as_str().and_then(|s| Uuid::parse_str(s).ok())
}

/// A date of a GraphQL `DateTime` (FHIR `date`).
fn date(value: &Value) -> Value {
    match value.as_str() {
        Some(at) if at.len() >= 10 => Value::String(at[..10].to_string()),
        _ => Value::Null,
    }
}

fn patient_ref(patient: Uuid) -> Value {
    json!({ "reference": format!("Patient/{patient}") })
}

/// A person who is not a patient (a provider): a logical reference, as the
/// facade serves no Practitioner resources.
fn person_ref(person: &str, display: Option<&str>) -> Value {
    let mut r = json!({
        "type": "Practitioner",
        "identifier": { "system": URI, "value": format!("urn:uuid:{person}") },
    });
    if let Some(display) = display.filter(|d| !d.is_empty()) {
        r["display"] = json!(display);
    }
    r
}

fn uuid_identifier(id: &str) -> Value {
    json!([{ "system": URI, "value": format!("urn:uuid:{id}") }])
}

/// Drops the members left null, empty texts, and the arrays and objects
/// left empty, none of which FHIR's JSON allows.
fn clean(mut resource: Value) -> Value {
    fn empty(value: &Value) -> bool {
        match value {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(items) => items.is_empty(),
            Value::Object(map) => map.is_empty(),
            _ => false,
        }
    }
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.values_mut().for_each(strip);
                map.retain(|_, v| !empty(v));
            }
            Value::Array(items) => {
                items.iter_mut().for_each(strip);
                items.retain(|v| !empty(v));
            }
            _ => {}
        }
    }
    strip(&mut resource);
    resource
}

/// The GraphQL fields a [`patient`] is made of.
pub const PATIENT_FIELDS: &str = "portalId organisation openedAt updatedAt erasedAt";

/// The service user: the minimum (who, active, their organisation). The
/// service keeps no name, birth date or address of anyone.
pub fn patient(panel: &Value) -> Value {
    let id = text(panel, "portalId");
    clean(json!({
        "resourceType": "Patient",
        "id": id,
        "meta": { "lastUpdated": panel["updatedAt"] },
        "identifier": uuid_identifier(id),
        "active": panel["erasedAt"].is_null(),
        "managingOrganization": { "display": panel["organisation"] },
    }))
}

/// The GraphQL fields a [`goal`] and a [`care_plan`] are made of.
pub const GOAL_FIELDS: &str = "uuid domain title description state setAt updatedAt closedAt \
     activities { uuid title state plannedAt updatedAt }";

/// A goal, with its lifecycle and achievement status.
pub fn goal(patient: Uuid, g: &Value) -> Value {
    let goal_id = uuid_of(g, "uuid").unwrap_or_default();
    let (lifecycle, achievement, shown) = match text(g, "state") {
        "ACHIEVED" => ("completed", "achieved", "Achieved"),
        "ABANDONED" => ("cancelled", "not-achieved", "Not Achieved"),
        _ => ("active", "in-progress", "In Progress"),
    };
    let note = match text(g, "description") {
        "" => Value::Null,
        d => json!([{ "text": d }]),
    };
    clean(json!({
        "resourceType": "Goal",
        "id": pair_id(patient, goal_id),
        "meta": { "lastUpdated": g["updatedAt"] },
        "identifier": uuid_identifier(&goal_id.to_string()),
        "lifecycleStatus": lifecycle,
        "achievementStatus": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/goal-achievement",
            "code": achievement,
            "display": shown,
        }]},
        "category": [{ "text": g["domain"] }],
        "description": { "text": g["title"] },
        "subject": patient_ref(patient),
        "startDate": date(&g["setAt"]),
        "statusDate": date(&g["closedAt"]),
        "expressedBy": patient_ref(patient),
        "note": note,
    }))
}

/// A goal's activities as a care plan of their own (one per goal, with the
/// goal's id).
pub fn care_plan(patient: Uuid, g: &Value) -> Value {
    let goal_id = uuid_of(g, "uuid").unwrap_or_default();
    let id = pair_id(patient, goal_id);
    let status = match text(g, "state") {
        "ACHIEVED" => "completed",
        "ABANDONED" => "revoked",
        _ => "active",
    };
    let activities: Vec<Value> = g["activities"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|a| {
            let status = match text(a, "state") {
                "DONE" => "completed",
                "DROPPED" => "cancelled",
                _ => "not-started",
            };
            json!({ "detail": { "status": status, "description": a["title"] } })
        })
        .collect();
    clean(json!({
        "resourceType": "CarePlan",
        "id": id,
        "meta": { "lastUpdated": g["updatedAt"] },
        "identifier": uuid_identifier(&goal_id.to_string()),
        "status": status,
        "intent": "plan",
        "title": g["title"],
        "subject": patient_ref(patient),
        "period": { "start": g["setAt"], "end": g["closedAt"] },
        "created": g["setAt"],
        "author": patient_ref(patient),
        "goal": [{ "reference": format!("Goal/{id}") }],
        "activity": if activities.is_empty() { Value::Null } else { Value::Array(activities) },
    }))
}

/// The GraphQL fields a [`medication_statement`] is made of.
pub const MEDICATION_FIELDS: &str = "uuid name dose schedule purpose prescriber state startedAt \
     updatedAt reason stoppedAt";

/// A medication as the service user reports taking it.
pub fn medication_statement(patient: Uuid, m: &Value) -> Value {
    let medication = uuid_of(m, "uuid").unwrap_or_default();
    let status = match text(m, "state") {
        "PAUSED" => "on-hold",
        "STOPPED" => "stopped",
        _ => "active",
    };
    let dosage = [text(m, "dose"), text(m, "schedule")]
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let some_text = |t: &str| {
        if t.is_empty() {
            Value::Null
        } else {
            json!([{ "text": t }])
        }
    };
    let prescriber = match text(m, "prescriber") {
        "" => Value::Null,
        p => json!([{ "text": format!("Prescriber: {p}") }]),
    };
    clean(json!({
        "resourceType": "MedicationStatement",
        "id": pair_id(patient, medication),
        "meta": { "lastUpdated": m["updatedAt"] },
        "identifier": uuid_identifier(&medication.to_string()),
        "status": status,
        "statusReason": some_text(m["reason"].as_str().unwrap_or_default()),
        "medicationCodeableConcept": { "text": m["name"] },
        "subject": patient_ref(patient),
        "effectivePeriod": { "start": m["startedAt"], "end": m["stoppedAt"] },
        "dateAsserted": m["updatedAt"],
        "informationSource": patient_ref(patient),
        "reasonCode": some_text(text(m, "purpose")),
        "note": prescriber,
        "dosage": if dosage.is_empty() { Value::Null } else { json!([{ "text": dosage }]) },
    }))
}

/// The GraphQL fields of a relationship that [`consents`] are made of.
pub const RELATIONSHIP_FIELDS: &str = "uuid userId providerId status provider { displayName } \
     consentHistory { number section grantedAt until endedAt ending }";

/// Every grant of a relationship, as a Consent each: who (the provider),
/// which section, the period, and whether it is in force now.
pub fn consents(relationship: &Value, now: chrono::DateTime<chrono::Utc>) -> Vec<Value> {
    let Some(rel) = uuid_of(relationship, "uuid") else {
        return Vec::new();
    };
    let Some(patient) = uuid_of(relationship, "userId") else {
        return Vec::new();
    };
    let provider = text(relationship, "providerId");
    let name = relationship["provider"]["displayName"].as_str();
    let active_relationship = text(relationship, "status") == "ACTIVE";
    let records = relationship["consentHistory"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    records
        .iter()
        .map(|r| {
            let until = r["until"]
                .as_str()
                .and_then(|u| chrono::DateTime::parse_from_rfc3339(u).ok());
            let in_force =
                active_relationship && r["ending"].is_null() && until.is_none_or(|u| u > now);
            let end = if r["endedAt"].is_null() {
                r["until"].clone()
            } else {
                r["endedAt"].clone()
            };
            let updated = match until {
                // Ran out: that is when it last changed.
                Some(u) if u <= now && r["endedAt"].is_null() => r["until"].clone(),
                _ if !r["endedAt"].is_null() => r["endedAt"].clone(),
                _ => r["grantedAt"].clone(),
            };
            let section = text(r, "section");
            let ending = match r["ending"].as_str() {
                Some("REVOKED") => json!([{ "text": "revoked by the service user" }]),
                Some("REPLACED") => {
                    json!([{ "text": "replaced by a later grant of the same section" }])
                }
                Some("RELATIONSHIP_ENDED") => json!([{ "text": "the care relationship ended" }]),
                _ => Value::Null,
            };
            clean(json!({
                "resourceType": "Consent",
                "id": numbered_id(rel, r["number"].as_i64().unwrap_or_default()),
                "meta": { "lastUpdated": updated },
                "status": if in_force { "active" } else { "inactive" },
                "scope": { "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                    "display": "Privacy Consent",
                }]},
                "category": [{ "coding": [{
                    "system": "http://loinc.org",
                    "code": "59284-0",
                    "display": "Patient Consent",
                }]}],
                "patient": patient_ref(patient),
                "dateTime": r["grantedAt"],
                "performer": [patient_ref(patient)],
                "policyRule": { "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "OPTIN",
                    "display": "opt-in",
                }]},
                "provision": {
                    "type": "permit",
                    "period": { "start": r["grantedAt"], "end": end },
                    "actor": [{
                        "role": { "coding": [{
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "IRCP",
                            "display": "information recipient",
                        }]},
                        "reference": person_ref(provider, name),
                    }],
                    "action": [{ "coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/consentaction",
                        "code": "access",
                        "display": "Access",
                    }]}],
                    "code": [{
                        "coding": [{ "system": SECTIONS, "code": section.to_lowercase() }],
                        "text": section_name(section),
                    }],
                },
                "extension": if ending.is_null() { Value::Null } else { json!([{
                    "url": ENDING_EXTENSION,
                    "valueString": ending[0]["text"],
                }]) },
            }))
        })
        .collect()
}

/// The code system of the portal's sections.
pub const SECTIONS: &str = "urn:portal:section";

/// The extension saying how a grant stopped before its end.
pub const ENDING_EXTENSION: &str = "urn:portal:fhir:consent-ending";

fn section_name(section: &str) -> &'static str {
    match section {
        "CORE" => "Life domains, status, goals and activities",
        "MEDICATIONS" => "Medications",
        "NETWORK" => "Network map",
        "CRISIS_PLAN" => "Crisis plan",
        "EXERCISES" => "Exercise log",
        _ => "Portal section",
    }
}

/// The GraphQL fields of a conversation that [`communication`]s need.
pub const CONVERSATION_FIELDS: &str = "uuid userId subject participants { personId side }";

/// The GraphQL fields of a message.
pub const MESSAGE_FIELDS: &str = "uuid authorId side body at erased";

/// A message, as a Communication between the service user and providers.
pub fn communication(conversation: &Value, message: &Value) -> Value {
    let c = uuid_of(conversation, "uuid").unwrap_or_default();
    let m = uuid_of(message, "uuid").unwrap_or_default();
    let patient = uuid_of(conversation, "userId").unwrap_or_default();
    let author = text(message, "authorId");
    let party = |person: &str, side: &str| {
        if side == "SERVICE_USER" {
            json!({ "reference": format!("Patient/{person}") })
        } else {
            person_ref(person, None)
        }
    };
    let recipients: Vec<Value> = conversation["participants"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|p| text(p, "personId") != author)
        .map(|p| party(text(p, "personId"), text(p, "side")))
        .collect();
    let payload = if message["erased"].as_bool() == Some(true) {
        Value::Null
    } else {
        json!([{ "contentString": message["body"] }])
    };
    clean(json!({
        "resourceType": "Communication",
        "id": pair_id(c, m),
        "meta": { "lastUpdated": message["at"] },
        "identifier": uuid_identifier(&m.to_string()),
        "status": "completed",
        "subject": patient_ref(patient),
        "topic": { "text": conversation["subject"] },
        "sent": message["at"],
        "sender": party(author, text(message, "side")),
        "recipient": if recipients.is_empty() { Value::Null } else { Value::Array(recipients) },
        "payload": payload,
    }))
}

/// The GraphQL fields of an access-trail entry.
pub const ACCESS_FIELDS: &str = "position at readerId readerName readerRole readerOrganisation \
     subjectId section query basis breakGlass refusal requestId clientAddress attempts firstAt";

/// An access-trail record as an AuditEvent laid out after IHE BALP's
/// PatientRead pattern (not claimed in `meta.profile`: the client
/// application is not known by name, and reads that came over GraphQL are
/// not RESTful ones): a read, its outcome, the reader (the user agent, the
/// requestor), the client's address, the server, the patient, the section
/// read, and the request's id.
pub fn audit_event(patient: Uuid, e: &Value) -> Value {
    let position = e["position"]
        .as_str()
        .and_then(|p| p.parse::<i64>().ok())
        .or_else(|| e["position"].as_i64())
        .unwrap_or_default();
    let refused = text(e, "basis") == "REFUSED";
    let purpose = match text(e, "basis") {
        "GRANT" => Some(("TREAT", "treatment")),
        "BREAK_GLASS" => Some(("ETREAT", "Emergency Treatment")),
        "AUDIT" | "ADMIN" => Some(("HOPERAT", "healthcare operations")),
        "OWNER" => Some(("PATRQT", "patient requested")),
        _ => None,
    };
    let code = |system: &str, code: &str, display: &str| json!({ "system": system, "code": code, "display": display });
    let reader = text(e, "readerId");
    let who = match text(e, "readerRole") {
        "SERVICE_USER" => json!({ "reference": format!("Patient/{reader}") }),
        "PROVIDER" => person_ref(reader, e["readerName"].as_str()),
        _ => json!({ "identifier": { "system": URI, "value": format!("urn:uuid:{reader}") } }),
    };
    let mut agents = vec![json!({
        "type": { "coding": [code(
            "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "IRCP",
            "information recipient",
        )]},
        "who": who,
        "role": [{ "text": e["readerRole"] }],
        "requestor": true,
    })];
    if let Some(address) = e["clientAddress"].as_str() {
        agents.push(json!({
            "type": { "coding": [code(
                "http://dicom.nema.org/resources/ontology/DCM",
                "110153",
                "Source Role ID",
            )]},
            "requestor": false,
            "network": { "address": address, "type": "2" },
        }));
    }
    agents.push(json!({
        "type": { "coding": [code(
            "http://dicom.nema.org/resources/ontology/DCM",
            "110152",
            "Destination Role ID",
        )]},
        "who": { "display": "Portal" },
        "requestor": false,
    }));
    clean(json!({
        "resourceType": "AuditEvent",
        "id": numbered_id(patient, position),
        "meta": { "lastUpdated": e["at"] },
        "type": code(
            "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "rest",
            "Restful Operation",
        ),
        "subtype": [code("http://hl7.org/fhir/restful-interaction", "read", "read")],
        "action": "R",
        "recorded": e["at"],
        "outcome": if refused { "4" } else { "0" },
        "outcomeDesc": e["refusal"],
        "purposeOfEvent": purpose.map(|(c, d)| json!([{ "coding": [code(
            "http://terminology.hl7.org/CodeSystem/v3-ActReason", c, d,
        )]}])),
        "agent": agents,
        "source": {
            "observer": { "display": "Portal" },
            "type": [code(
                "http://terminology.hl7.org/CodeSystem/security-source-type",
                "4",
                "Application Server",
            )],
        },
        "entity": [
            {
                "what": patient_ref(patient),
                "type": code("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person"),
                "role": code("http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient"),
            },
            {
                "type": code("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object"),
                "role": code("http://terminology.hl7.org/CodeSystem/object-role", "4", "Domain Resource"),
                "what": { "display": e["section"] },
                "description": e["section"],
                "detail": [
                    { "type": "query", "valueString": e["query"] },
                    // Refused attempts of one request are one record.
                    match e["attempts"].as_i64() {
                        Some(n) if n > 1 => json!({ "type": "attempts", "valueString": format!("{n} attempts from {}", text(e, "firstAt")) }),
                        _ => Value::Null,
                    },
                ],
            },
            match text(e, "requestId") {
                "" => Value::Null,
                request => json!({
                    "what": { "identifier": { "value": request } },
                    "type": code(
                        "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType",
                        "XrequestId",
                        "Request Id",
                    ),
                }),
            },
        ],
        "extension": if e["breakGlass"].as_bool() == Some(true) { json!([{
            "url": BREAK_GLASS_EXTENSION, "valueBoolean": true,
        }]) } else { Value::Null },
    }))
}

/// The extension marking a read under a break-glass opening.
pub const BREAK_GLASS_EXTENSION: &str = "urn:portal:fhir:break-glass";

/// `meta.lastUpdated` of a resource, for `_lastUpdated` and ordering.
pub fn last_updated(resource: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    resource["meta"]["lastUpdated"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// The members of a JSON object, for tests.
#[cfg(test)]
fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .map(serde_json::Map::keys)
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_hold_both_uuids_within_fhirs_64_characters() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let id = pair_id(a, b);
        assert_eq!(id.len(), 64);
        assert_eq!(parse_pair(&id), Some((a, b)));
        assert_eq!(parse_pair(&id[1..]), None);
        assert_eq!(parse_pair(&format!("{}x", &id[1..])), None);
        let n = numbered_id(a, 42);
        assert_eq!(parse_numbered(&n), Some((a, 42)));
        assert_eq!(parse_numbered(&format!("{a}-1")), None);
        assert_eq!(parse_numbered(&format!("{}--1", a.simple())), None);
    }

    #[test]
    fn a_goals_states_map_to_lifecycle_and_achievement() {
        let p = Uuid::new_v4();
        for (state, lifecycle, achievement) in [
            ("ACTIVE", "active", "in-progress"),
            ("ACHIEVED", "completed", "achieved"),
            ("ABANDONED", "cancelled", "not-achieved"),
        ] {
            let g = json!({ "uuid": Uuid::new_v4(), "domain": "work", "title": "T",
                            "description": "", "state": state, "setAt": "2026-01-02T03:04:05Z",
                            "updatedAt": "2026-01-03T00:00:00Z", "closedAt": null, "activities": [] });
            let r = goal(p, &g);
            assert_eq!(r["lifecycleStatus"], lifecycle);
            assert_eq!(r["achievementStatus"]["coding"][0]["code"], achievement);
            assert_eq!(r["startDate"], "2026-01-02");
            assert_eq!(r["subject"]["reference"], format!("Patient/{p}"));
            // No nulls, no empty note.
            assert!(!keys(&r).contains(&"note") && !keys(&r).contains(&"statusDate"));
            assert!(!keys(&care_plan(p, &g)).contains(&"activity"));
        }
    }

    #[test]
    fn a_care_plan_follows_its_goal_and_activities() {
        let p = Uuid::new_v4();
        let g = json!({ "uuid": Uuid::new_v4(), "domain": "work", "title": "T", "description": "d",
            "state": "ABANDONED", "setAt": "2026-01-02T03:04:05Z", "updatedAt": "2026-01-03T00:00:00Z",
            "closedAt": "2026-01-03T00:00:00Z", "activities": [
                { "uuid": Uuid::new_v4(), "title": "a", "state": "PLANNED" },
                { "uuid": Uuid::new_v4(), "title": "b", "state": "DONE" },
                { "uuid": Uuid::new_v4(), "title": "c", "state": "DROPPED" } ] });
        let plan = care_plan(p, &g);
        assert_eq!(plan["status"], "revoked");
        assert_eq!(
            plan["goal"][0]["reference"],
            format!("Goal/{}", goal(p, &g)["id"].as_str().unwrap())
        );
        let states: Vec<&str> = plan["activity"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["detail"]["status"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["not-started", "completed", "cancelled"]);
        assert_eq!(goal(p, &g)["note"][0]["text"], "d");
    }

    #[test]
    fn a_medication_says_its_state_and_leaves_out_what_is_empty() {
        let p = Uuid::new_v4();
        let m = |state: &str, purpose: &str| {
            json!({ "uuid": Uuid::new_v4(), "name": "Lithium", "dose": "400 mg",
            "schedule": "", "purpose": purpose, "prescriber": "", "state": state,
            "startedAt": "2026-01-02T03:04:05Z", "updatedAt": "2026-01-02T03:04:05Z", "reason": null, "stoppedAt": null })
        };
        let paused = medication_statement(p, &m("PAUSED", ""));
        assert_eq!(paused["status"], "on-hold");
        assert_eq!(paused["dosage"][0]["text"], "400 mg");
        for absent in ["reasonCode", "note", "statusReason"] {
            assert!(!keys(&paused).contains(&absent), "{absent}");
        }
        assert_eq!(
            paused["effectivePeriod"],
            json!({ "start": "2026-01-02T03:04:05Z" })
        );
        let stopped = medication_statement(p, &m("STOPPED", "mood"));
        assert_eq!(
            (
                stopped["status"].as_str(),
                stopped["reasonCode"][0]["text"].as_str()
            ),
            (Some("stopped"), Some("mood"))
        );
    }

    #[test]
    fn a_message_names_its_patient_sender_and_recipients() {
        let (user, provider) = (Uuid::new_v4(), Uuid::new_v4());
        let c = json!({ "uuid": Uuid::new_v4(), "userId": user, "subject": "Visit", "participants": [
            { "personId": user, "side": "SERVICE_USER" }, { "personId": provider, "side": "PROVIDER" } ] });
        let m = |author: Uuid, side: &str, erased: bool| {
            json!({ "uuid": Uuid::new_v4(), "authorId": author,
            "side": side, "body": "hello", "at": "2026-01-02T03:04:05Z", "erased": erased })
        };
        let from_user = communication(&c, &m(user, "SERVICE_USER", false));
        assert_eq!(from_user["sender"]["reference"], format!("Patient/{user}"));
        assert_eq!(
            from_user["recipient"][0]["identifier"]["value"],
            format!("urn:uuid:{provider}")
        );
        assert_eq!(from_user["subject"]["reference"], format!("Patient/{user}"));
        assert_eq!(from_user["payload"][0]["contentString"], "hello");
        let erased = communication(&c, &m(provider, "PROVIDER", true));
        assert!(!keys(&erased).contains(&"payload"));
        assert_eq!(
            erased["recipient"][0]["reference"],
            format!("Patient/{user}")
        );
        let patient = patient(
            &json!({ "portalId": user, "organisation": "o", "updatedAt": "2026-01-02T03:04:05Z", "erasedAt": "2026-01-03T00:00:00Z" }),
        );
        assert_eq!(
            (patient["id"].as_str(), patient["active"].as_bool()),
            (Some(user.to_string().as_str()), Some(false))
        );
    }

    #[test]
    fn a_grant_is_active_only_while_it_stands() {
        let now = chrono::Utc::now();
        let later = (now + chrono::Duration::days(1)).to_rfc3339();
        let earlier = (now - chrono::Duration::days(1)).to_rfc3339();
        let rel = |status: &str, history: Value| {
            json!({ "uuid": Uuid::new_v4(), "userId": Uuid::new_v4(), "providerId": Uuid::new_v4(),
                    "status": status, "provider": { "displayName": "Dr A" }, "consentHistory": history })
        };
        let record = |until: Option<&str>, ending: Option<&str>| {
            json!({ "number": 1, "section": "MEDICATIONS", "grantedAt": earlier, "until": until,
                    "endedAt": ending.map(|_| now.to_rfc3339()), "ending": ending })
        };
        let status = |r: Value| consents(&r, now)[0]["status"].clone();
        assert_eq!(status(rel("ACTIVE", json!([record(None, None)]))), "active");
        assert_eq!(
            status(rel("ACTIVE", json!([record(Some(&later), None)]))),
            "active"
        );
        assert_eq!(
            status(rel("ACTIVE", json!([record(Some(&earlier), None)]))),
            "inactive"
        );
        assert_eq!(
            status(rel("ACTIVE", json!([record(None, Some("REVOKED"))]))),
            "inactive"
        );
        assert_eq!(
            status(rel("ENDED", json!([record(None, None)]))),
            "inactive"
        );
        let c = &consents(&rel("ACTIVE", json!([record(None, Some("REVOKED"))])), now)[0];
        assert_eq!(
            c["provision"]["code"][0]["coding"][0]["code"],
            "medications"
        );
        assert_eq!(c["extension"][0]["url"], ENDING_EXTENSION);
        assert_eq!(c["provision"]["actor"][0]["reference"]["display"], "Dr A");
    }

    #[test]
    fn a_refused_read_is_a_failed_audit_event() {
        let p = Uuid::new_v4();
        let entry = json!({ "position": "17", "at": "2026-01-02T03:04:05Z", "readerId": Uuid::new_v4(),
            "readerName": null, "readerRole": "PROVIDER", "readerOrganisation": "o", "subjectId": p,
            "section": "MEDICATIONS", "query": "medications", "basis": "REFUSED", "breakGlass": false,
            "refusal": "FORBIDDEN", "requestId": Uuid::new_v4(), "clientAddress": null });
        let e = audit_event(p, &entry);
        assert_eq!(e["id"], numbered_id(p, 17));
        assert_eq!(e["outcome"], "4");
        assert_eq!(e["agent"].as_array().unwrap().len(), 2);
        assert!(!keys(&e).contains(&"purposeOfEvent"));
        assert_eq!(e["entity"][0]["what"]["reference"], format!("Patient/{p}"));
    }
}
