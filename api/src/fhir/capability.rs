//! What the facade says of itself: the CapabilityStatement at `metadata`
//! and SMART's `.well-known/smart-configuration`.

use serde_json::{json, Value};

use crate::settings::Settings;

/// The search parameters every resource type takes.
fn search_params(kind: &str) -> Vec<Value> {
    let mut params = vec![
        json!({ "name": "_id", "type": "token", "documentation": "The resource's id." }),
        json!({ "name": "_lastUpdated", "type": "date",
                "documentation": "meta.lastUpdated, with the prefixes eq, ne, gt, lt, ge and le; several are all applied." }),
    ];
    if kind != "Patient" {
        params.push(json!({ "name": "patient", "type": "reference",
            "documentation": "The patient (Patient/<id>); a service user's own when omitted. `subject` is taken as the same." }));
    }
    params
}

/// The CapabilityStatement of the facade at `base`.
pub fn statement(base: &str, started: chrono::DateTime<chrono::Utc>) -> Value {
    let resources: Vec<Value> = domain::smart::RESOURCES
        .iter()
        .map(|kind| {
            json!({
                "type": kind,
                "interaction": [{ "code": "read" }, { "code": "search-type" }],
                "searchParam": search_params(kind),
            })
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "publisher": "Portal",
        "kind": "instance",
        "software": { "name": "Portal", "version": env!("CARGO_PKG_VERSION") },
        "implementation": {
            "description": "Portal's read-only FHIR R4 facade over recovery portals: the same consent rules and access trail as its GraphQL API.",
            "url": base,
        },
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "documentation": "Read and search only. Every request needs a bearer token with SMART v2 scopes (patient/, user/ or system/ <Type>.rs); a provider's read is recorded in the access trail under the service user's consent, and refused without it. Searches page with _count (1-200, default 50) and _offset.",
            "security": {
                "cors": false,
                "service": [{ "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR",
                    "display": "SMART-on-FHIR",
                }]}],
                "description": "OAuth 2 bearer tokens of each organisation's own OpenID provider (see .well-known/smart-configuration), with SMART v2 scopes.",
            },
            "resource": resources,
        }],
    })
}

/// SMART App Launch's discovery document: the scopes and capabilities
/// served. Each organisation logs in at its own OpenID provider: with one
/// configured, its issuer and endpoints (`endpoints`, from its discovery
/// document) are given here; with several, the issuers are listed and each
/// one's own discovery document gives its endpoints.
pub fn smart_configuration(settings: &Settings, endpoints: Option<Value>) -> Value {
    let mut scopes: Vec<String> = vec!["openid".into(), "fhirUser".into(), "launch/patient".into()];
    for context in ["patient", "user", "system"] {
        scopes.push(format!("{context}/*.rs"));
        for kind in domain::smart::RESOURCES {
            scopes.push(format!("{context}/{kind}.rs"));
        }
    }
    let mut body = json!({
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": [
            "permission-v2",
            "permission-v1",
            "permission-patient",
            "permission-user",
        ],
        "issuers": settings.tokens.issuers.iter().map(|i| json!({
            "organisation": i.organisation,
            "issuer": i.issuer,
        })).collect::<Vec<_>>(),
    });
    if let [only] = &settings.tokens.issuers[..] {
        body["issuer"] = json!(only.issuer);
    }
    if let Some(Value::Object(endpoints)) = endpoints {
        for (name, value) in endpoints {
            body[name] = value;
        }
    }
    body
}
