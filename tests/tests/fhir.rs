//! The FHIR R4 facade (issue 19, parts 3 and 4), over HTTP against the real
//! `portal serve` on both stores: a providers' system reads each resource
//! type through SMART Health IT's `fhirclient`, every resource validated
//! with the `fhir.resources` R4 models (tests/python/fhir_client.py), and
//! the facade keeps GraphQL's rules: a provider's read is recorded under
//! their grant and refused without one, SMART scopes narrow what a token
//! reaches, and each refusal is an OperationOutcome with our error code.
#![allow(clippy::unwrap_used)]

use api::auth::{Role, Secret, TokenKeys};
use portal_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

const ORG: &str = "clinic";

fn scoped(subject: Uuid, role: Role, org: &str, scope: &str) -> String {
    launched(subject, role, org, scope, None)
}

/// A SMART app's token with a patient context (`patient` claim).
fn launched(subject: Uuid, role: Role, org: &str, scope: &str, patient: Option<Uuid>) -> String {
    TokenKeys::new(&Secret::new(TEST_KEY))
        .mint_scoped(subject, role, org, 3600, scope, patient)
        .unwrap()
}

/// A GET of the facade: status, body, and the `WWW-Authenticate` header.
async fn get(server: &Server, path: &str, token: Option<&str>) -> (u16, Value, Option<String>) {
    let mut request = reqwest::Client::new().get(format!("{}/fhir/R4/{path}", server.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let media = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body: Value = response.json().await.unwrap();
    if path != ".well-known/smart-configuration" {
        assert!(
            media.starts_with("application/fhir+json"),
            "{path}: {media}"
        );
    }
    (status, body, challenge)
}

/// The error code an OperationOutcome carries.
fn outcome_code(body: &Value) -> &str {
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    body["issue"][0]["details"]["coding"][0]["code"]
        .as_str()
        .unwrap()
}

/// Runs tests/python/fhir_client.py for `patient` with `token`.
async fn fhir_client(server: &Server, token: &str, patient: Uuid, types: Option<&str>) -> Value {
    let python = std::env::var("PORTAL_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/fhir_client.py");
    let base = format!("{}/fhir/R4/", server.base);
    let patient = patient.to_string();
    let mut args = vec![script, &base, token, &patient];
    if let Some(types) = types {
        args.push(types);
    }
    let out = tokio::process::Command::new(python)
        .args(&args)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "fhir_client.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The user's data: two goals (one achieved, with activities), two
/// medications (one stopped), a conversation with the provider.
async fn fill(user: &User, provider: &Provider) -> Uuid {
    let c = &user.client;
    let goal = |title: &str| {
        c.data(
            "mutation($t: String!) { setGoal(domain: \"employment\", title: $t, description: \"step by step\") { goal { id } } }",
            json!({ "t": title }),
        )
    };
    let first = goal("Find a volunteer job").await["setGoal"]["goal"]["id"].clone();
    goal("Sleep before midnight").await;
    for title in ["Call the volunteer centre", "Visit the library"] {
        let planned = c
            .data(
                "mutation($g: ID!, $t: String!) { planActivity(goalId: $g, title: $t) { activity { id } } }",
                json!({ "g": first, "t": title }),
            )
            .await;
        if title.starts_with("Call") {
            let id = planned["planActivity"]["activity"]["id"].clone();
            c.data(
                "mutation($a: ID!) { completeActivity(activityId: $a) { version } }",
                json!({ "a": id }),
            )
            .await;
        }
    }
    c.data(
        "mutation($g: ID!) { achieveGoal(goalId: $g) { version } }",
        json!({ "g": first }),
    )
    .await;
    let med = c
        .data(
            "mutation { addMedication(name: \"Sertraline\", dose: \"50 mg\", schedule: \"mornings\", purpose: \"mood\", prescriber: \"Dr Vos\") { medication { id } } }",
            json!({}),
        )
        .await["addMedication"]["medication"]["id"]
        .clone();
    c.data(
        "mutation { addMedication(name: \"Melatonin\", dose: \"1 mg\", schedule: \"nightly\") { version } }",
        json!({}),
    )
    .await;
    c.data(
        "mutation($m: ID!) { stopMedication(medicationId: $m, reason: \"side effects\") { version } }",
        json!({ "m": med }),
    )
    .await;
    let conversation = c
        .data(
            "mutation($p: ID!) { startConversation(subject: \"Next visit\", body: \"Can we meet on Monday?\", providerIds: [$p]) { conversation { uuid } } }",
            json!({ "p": provider.id }),
        )
        .await["startConversation"]["conversation"]["uuid"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    provider
        .client
        .data(
            "mutation($c: ID!) { postMessage(conversationId: $c, body: \"Monday at ten works\") { version } }",
            json!({ "c": conversation }),
        )
        .await;
    conversation
}

/// How many reads of `section` by `reader` the auditor sees for `subject`.
async fn reads(
    server: &Server,
    auditor: &Client,
    subject: Uuid,
    reader: Uuid,
    section: &str,
    basis: &str,
) -> usize {
    // The trail's projection has caught up with the records just written.
    wait_caught_up(server).await;
    let trail = auditor
        .data(
            "query($s: ID!) { accessTrail(subjectId: $s, first: 500) { nodes { readerId section basis } } }",
            json!({ "s": subject }),
        )
        .await;
    trail["accessTrail"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| {
            n["readerId"] == json!(reader) && n["section"] == section && n["basis"] == basis
        })
        .count()
}

async fn a_providers_system_reads_through_fhir(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let user = open_user(&server, ORG).await;
    let provider = register_provider(&server, ORG, "Nurse Ada").await;
    let relationship = relate(&user, &provider).await;
    grant(&user, &relationship, &["CORE", "MEDICATIONS"], None).await;
    let conversation = fill(&user, &provider).await;
    // Someone else's data, never in the user's answers.
    let other = open_user(&server, ORG).await;
    other
        .client
        .data(
            "mutation { setGoal(domain: \"employment\", title: \"Another person's goal\") { version } }",
            json!({}),
        )
        .await;
    let auditor_id = Uuid::new_v4();
    let auditor = server.client(Some(token(auditor_id, Role::Auditor, ORG)));

    // The provider's system, with `user/*.rs`: every type but AuditEvent
    // (the access log is the user's and the auditors').
    let system = scoped(provider.id, Role::Provider, ORG, "openid user/*.rs");
    let types = "Patient,Goal,CarePlan,MedicationStatement,Consent,Communication";
    let read = fhir_client(&server, &system, user.id, Some(types)).await;
    assert_eq!(read["served"].as_array().unwrap().len(), 7);
    let t = &read["types"];
    let count = |name: &str| t[name]["found"].as_array().unwrap().len();
    assert_eq!(count("Patient"), 1);
    assert_eq!(count("Goal"), 2);
    assert_eq!(count("CarePlan"), 2);
    assert_eq!(count("MedicationStatement"), 2);
    assert_eq!(count("Consent"), 2);
    assert_eq!(count("Communication"), 2);
    // Pages of one, followed by their `next` links; the total is the whole match.
    for name in [
        "Goal",
        "CarePlan",
        "MedicationStatement",
        "Consent",
        "Communication",
    ] {
        assert_eq!(
            (t[name]["pages"].as_u64(), &t[name]["totals"]),
            (Some(2), &json!([2])),
            "{name}"
        );
    }
    for name in [
        "Goal",
        "CarePlan",
        "MedicationStatement",
        "Consent",
        "Communication",
    ] {
        assert_eq!(
            t[name]["read"].as_object().unwrap().len(),
            count(name),
            "{name}: each found resource read by its id"
        );
    }
    let goals: Vec<&Value> = t["Goal"]["read"].as_object().unwrap().values().collect();
    let achieved = goals
        .iter()
        .find(|g| g["description"]["text"] == "Find a volunteer job")
        .unwrap();
    assert_eq!(achieved["lifecycleStatus"], "completed");
    assert_eq!(
        achieved["achievementStatus"]["coding"][0]["code"],
        "achieved"
    );
    assert_eq!(
        achieved["subject"]["reference"],
        format!("Patient/{}", user.id)
    );
    assert!(!t.to_string().contains("Another person's goal"));
    let plan = t["CarePlan"]["read"]
        .as_object()
        .unwrap()
        .values()
        .find(|p| p["title"] == "Find a volunteer job")
        .unwrap();
    let steps: Vec<(&str, &str)> = plan["activity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["detail"]["description"].as_str().unwrap(),
                a["detail"]["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("Call the volunteer centre", "completed"),
            ("Visit the library", "not-started")
        ]
    );
    let meds: Vec<(&str, &str)> = t["MedicationStatement"]["read"]
        .as_object()
        .unwrap()
        .values()
        .map(|m| {
            (
                m["medicationCodeableConcept"]["text"].as_str().unwrap(),
                m["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(meds.contains(&("Sertraline", "stopped")) && meds.contains(&("Melatonin", "active")));
    let bodies: Vec<&str> = t["Communication"]["read"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["payload"][0]["contentString"].as_str().unwrap())
        .collect();
    assert!(bodies.contains(&"Can we meet on Monday?") && bodies.contains(&"Monday at ten works"));
    assert!(t["Communication"]["found"]
        .as_array()
        .unwrap()
        .iter()
        .all(|id| id.as_str().unwrap().starts_with(
            &Uuid::parse_str(&conversation.to_string())
                .unwrap()
                .simple()
                .to_string()
        )));
    let consents: Vec<(&str, &str)> = t["Consent"]["read"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| {
            (
                c["provision"]["code"][0]["coding"][0]["code"]
                    .as_str()
                    .unwrap(),
                c["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        consents.contains(&("core", "active")) && consents.contains(&("medications", "active"))
    );
    // Each read of the portal went through the consent rules and into the
    // trail under the grant.
    assert!(reads(&server, &auditor, user.id, provider.id, "CORE", "GRANT").await >= 5);
    assert!(
        reads(
            &server,
            &auditor,
            user.id,
            provider.id,
            "MEDICATIONS",
            "GRANT"
        )
        .await
            >= 3
    );

    // Revoked: refused, recorded as refused, and the consent shows it.
    user.client
        .data(
            "mutation($r: ID!) { revokeAccess(relationshipId: $r, section: MEDICATIONS) { version } }",
            json!({ "r": relationship }),
        )
        .await;
    let path = format!("MedicationStatement?patient=Patient/{}", user.id);
    let (status, body, _) = get(&server, &path, Some(&system)).await;
    assert_eq!((status, outcome_code(&body)), (403, "FORBIDDEN"));
    assert_eq!(
        reads(
            &server,
            &auditor,
            user.id,
            provider.id,
            "MEDICATIONS",
            "REFUSED"
        )
        .await,
        1
    );
    let (status, bundle, _) = get(
        &server,
        &format!("Consent?patient={}&_lastUpdated=ge2020-01-01", user.id),
        Some(&system),
    )
    .await;
    assert_eq!(status, 200);
    let medications = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .find(|c| c["provision"]["code"][0]["coding"][0]["code"] == "medications")
        .unwrap();
    assert_eq!(medications["status"], "inactive");
    assert!(medications["provision"]["period"]["end"].is_string());

    // Scopes narrow, never widen: `user/Goal.rs` reads goals, not the
    // (still granted) core Patient; a `patient/` scope without the patient
    // in its context reaches nobody else.
    let goals_only = scoped(provider.id, Role::Provider, ORG, "user/Goal.rs");
    let goals_path = format!("Goal?patient={}", user.id);
    assert_eq!(get(&server, &goals_path, Some(&goals_only)).await.0, 200);
    let (status, body, challenge) =
        get(&server, &format!("Patient/{}", user.id), Some(&goals_only)).await;
    assert_eq!((status, outcome_code(&body)), (403, "FORBIDDEN"));
    assert!(challenge.unwrap().contains("insufficient_scope"));
    let patient_scoped = scoped(provider.id, Role::Provider, ORG, "patient/*.rs");
    assert_eq!(
        get(&server, &goals_path, Some(&patient_scoped)).await.0,
        403
    );
    // Whose a Consent is shows once it is read: a scope without Consent
    // gets nothing of it.
    let consent_id = t["Consent"]["found"][0].as_str().unwrap();
    let (status, _, _) = get(&server, &format!("Consent/{consent_id}"), Some(&goals_only)).await;
    assert_eq!(status, 403);
    let message_id = t["Communication"]["found"][0].as_str().unwrap();
    let (status, _, _) = get(
        &server,
        &format!("Communication/{message_id}"),
        Some(&goals_only),
    )
    .await;
    assert_eq!(status, 403);
    // A SMART app launched for this patient: `patient/` scopes reach them
    // (searches default to them), and nobody else.
    let app = launched(
        provider.id,
        Role::Provider,
        ORG,
        "patient/Goal.rs",
        Some(user.id),
    );
    let (status, bundle, _) = get(&server, "Goal", Some(&app)).await;
    assert_eq!((status, bundle["total"].as_u64()), (200, Some(2)));
    let (status, _, _) = get(&server, &format!("Goal?patient={}", other.id), Some(&app)).await;
    assert_eq!(status, 403);
    // A SMART app's token is for FHIR only: GraphQL does not take it (it
    // would read with the provider's whole role).
    for scope in [
        "openid user/*.rs",
        "patient/Observation.rs",
        "user/Goal.rs?category=x",
    ] {
        let app = server.client(Some(scoped(provider.id, Role::Provider, ORG, scope)));
        let code = app.error_code("{ me { personId } }", json!({})).await;
        assert_eq!(code, "UNAUTHENTICATED", "{scope}");
    }
    let plain = server.client(Some(scoped(
        provider.id,
        Role::Provider,
        ORG,
        "openid profile",
    )));
    let me = plain.data("{ me { role } }", json!({})).await;
    assert_eq!(me["me"]["role"], "PROVIDER");
    // A token with no scopes at all reads nothing through FHIR.
    let unscoped = token(provider.id, Role::Provider, ORG);
    assert_eq!(get(&server, &goals_path, Some(&unscoped)).await.0, 403);
    // No token: 401 with a challenge.
    let (status, body, challenge) = get(&server, &goals_path, None).await;
    assert_eq!((status, outcome_code(&body)), (401, "UNAUTHENTICATED"));
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    // A provider elsewhere, or without a relationship: nothing.
    let stranger = scoped(Uuid::new_v4(), Role::Provider, ORG, "user/*.rs");
    let (status, body, _) = get(&server, &goals_path, Some(&stranger)).await;
    assert_eq!((status, outcome_code(&body)), (404, "NOT_FOUND"));
    let elsewhere = scoped(provider.id, Role::Provider, "other-clinic", "user/*.rs");
    let (status, body, _) = get(&server, &goals_path, Some(&elsewhere)).await;
    assert_eq!((status, outcome_code(&body)), (404, "NOT_FOUND"));
    let (status, _, _) = get(&server, &format!("Consent/{consent_id}"), Some(&elsewhere)).await;
    assert_eq!(status, 404);
    // The access log is not a provider's to read.
    let (status, _, _) = get(
        &server,
        &format!("AuditEvent?patient={}", user.id),
        Some(&system),
    )
    .await;
    assert_eq!(status, 403);

    // Bad input is refused with a reason, not ignored.
    for bad in [
        format!("Goal?patient={}&category=x", user.id),
        format!("Goal?patient={}&_count=0", user.id),
        format!("Goal?patient={}&_lastUpdated=soon", user.id),
        "Goal?patient=Patient/nobody".to_string(),
    ] {
        let (status, body, _) = get(&server, &bad, Some(&system)).await;
        assert_eq!(
            (status, outcome_code(&body)),
            (400, "BAD_USER_INPUT"),
            "{bad}"
        );
    }
    let (status, body, _) = get(&server, "Observation?patient=x", Some(&system)).await;
    assert_eq!((status, outcome_code(&body)), (404, "NOT_FOUND"));
    let (status, _, _) = get(&server, "Goal/not-an-id", Some(&system)).await;
    assert_eq!(status, 404);
    // _lastUpdated in the future finds nothing.
    let (_, bundle, _) = get(
        &server,
        &format!("Goal?patient={}&_lastUpdated=gt2999-01-01", user.id),
        Some(&system),
    )
    .await;
    assert_eq!(bundle["total"], 0);

    // The user reads their own data, the access log among it, as AuditEvents.
    let own = scoped(user.id, Role::ServiceUser, ORG, "patient/*.rs");
    let mine = fhir_client(&server, &own, user.id, None).await;
    let events = mine["types"]["AuditEvent"]["read"].as_object().unwrap();
    assert!(!events.is_empty());
    assert!(events.values().any(|e| {
        e["outcome"] == "4"
            && e["agent"][0]["who"]["identifier"]["value"] == format!("urn:uuid:{}", provider.id)
    }));
    assert!(events
        .values()
        .all(|e| e["entity"][0]["what"]["reference"] == format!("Patient/{}", user.id)));
    // A `patient/` scope of the user does not reach another user.
    let (status, _, _) = get(&server, &format!("Goal?patient={}", other.id), Some(&own)).await;
    assert_eq!(status, 403);
    // An auditor reads the same trail.
    let audit = scoped(auditor_id, Role::Auditor, ORG, "user/AuditEvent.rs");
    let (status, bundle, _) = get(
        &server,
        &format!("AuditEvent?patient={}&_count=200", user.id),
        Some(&audit),
    )
    .await;
    assert_eq!(status, 200);
    assert!(bundle["total"].as_u64().unwrap() >= events.len() as u64);

    // What the facade says of itself.
    let (status, statement, _) = get(&server, "metadata", None).await;
    assert_eq!(
        (status, statement["fhirVersion"].as_str()),
        (200, Some("4.0.1"))
    );
    let (status, smart, _) = get(&server, ".well-known/smart-configuration", None).await;
    assert_eq!(status, 200);
    assert!(smart["scopes_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("patient/Goal.rs")));
    server.stop().await;
}

both_stores!(fhir_facade, a_providers_system_reads_through_fhir);

/// Refusals for want of a scope count against the reader's refusal
/// allowance, as the consent rules' refusals do.
async fn scope_refusals_are_bounded(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start_with(&db, &[("PORTAL_REFUSALS_PER_MINUTE", "2")]).await;
    let user = open_user(&server, ORG).await;
    let provider = register_provider(&server, ORG, "Nurse Ada").await;
    let relationship = relate(&user, &provider).await;
    grant(&user, &relationship, &["CORE"], None).await;
    let goals_only = scoped(provider.id, Role::Provider, ORG, "user/Goal.rs");
    let patient = format!("Patient/{}", user.id);
    let statuses: Vec<u16> = reads_in_a_row(&server, &patient, &goals_only, 3).await;
    assert_eq!(statuses, vec![403, 403, 429]);
    // The goals the scope does allow are read as before, limits apart.
    let goals = format!("Goal?patient={}", user.id);
    assert_eq!(get(&server, &goals, Some(&goals_only)).await.0, 200);
    server.stop().await;
}

/// `n` reads of `path` in a row: their statuses.
async fn reads_in_a_row(server: &Server, path: &str, token: &str, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        statuses.push(get(server, path, Some(token)).await.0);
    }
    statuses
}

both_stores!(scope_limits, scope_refusals_are_bounded);
