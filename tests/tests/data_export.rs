//! A person's whole data in one archive (issue 18), on both stores, over
//! HTTP and from the command line.
//!
//! A service user writes into every part of the service, with a provider, a
//! study and the forum; then each asks for their export, follows it to
//! ready, and downloads it by its link. The archive is read by Python's
//! `zipfile` and `csv`, and its JSON document validated against the
//! committed schema by `jsonschema` (from PyPI): everything written is in
//! the part it belongs to, nothing of anyone else's, and every CSV file has
//! a row per record. The reading and each download are in the access trail;
//! a link that was tampered with is refused; an erasure ends the export.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use api::auth::Role;
use portal_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

const ORG: &str = "clinic";

const GOAL: &str = "Export goal of the Avocet";
const NOTE: &str = "Status note on the Avocet";
const MEDICATION: &str = "Avocetine twenty";
const PLAN: &str = "Warning sign: Avocet quiet";
const NETWORK: &str = "Cousin Avocetta";
const REFLECTION: &str = "Breathing felt like an Avocet";
const SUBJECT: &str = "About the Avocet visit";
const MESSAGE: &str = "The Avocet visit went well";
const PSEUDONYM: &str = "Avocet Nine";
const TOPIC: &str = "Avocets at night";
const POST: &str = "My Avocet nights";
const AGREEMENT: &str = "We talk about the Avocet on Mondays";
/// The provider's words, in the user's conversation.
const REPLY: &str = "Glad the Avocet visit went well";
/// Someone else's: never in the user's archive.
const OTHERS_GOAL: &str = "Another person's Godwit goal";
const OTHERS_REPLY: &str = "A Godwit reply by someone else";

const SCRIPT: &str = r#"
import csv, io, json, sys, zipfile
import jsonschema
archive, schema_path = sys.argv[1], sys.argv[2]
with open(schema_path) as f:
    schema = json.load(f)
z = zipfile.ZipFile(archive)
names = sorted(z.namelist())
doc = json.loads(z.read("person-export.json"))
inner_schema = json.loads(z.read("person-export.schema.json"))
validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
jsonschema.Draft202012Validator.check_schema(schema)
errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)][:20]
csvs = {}
for name in names:
    if name.endswith(".csv"):
        rows = list(csv.DictReader(io.StringIO(z.read(name).decode("utf-8"))))
        csvs[name[:-4]] = {"rows": len(rows), "text": json.dumps(rows)}
print(json.dumps({"names": names, "errors": errors, "schema_same": inner_schema == schema, "csv": csvs, "doc": doc}))
"#;

/// The archive at `path`, read and validated by Python.
async fn read_archive(path: &std::path::Path) -> Value {
    let python = std::env::var("PORTAL_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let schema = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/person-export.schema.json"
    );
    let out = tokio::process::Command::new(python)
        .args(["-c", SCRIPT, &path.display().to_string(), schema])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        read["errors"],
        json!([]),
        "the document does not follow its schema"
    );
    assert_eq!(
        read["schema_same"], true,
        "the archive carries the committed schema"
    );
    // A CSV file per part, a row per record.
    let parts = read["doc"]["parts"].as_object().unwrap();
    assert_eq!(parts.len(), 16);
    for (name, part) in parts {
        let records = part["records"].as_array().unwrap().len();
        assert_eq!(read["csv"][name]["rows"], json!(records), "{name}.csv");
    }
    read
}

/// The text of one part of the archive (JSON records), and of its CSV file.
fn part(read: &Value, name: &str) -> (String, String) {
    (
        read["doc"]["parts"][name]["records"].to_string(),
        read["csv"][name]["text"].as_str().unwrap().to_string(),
    )
}

/// Asserts `texts` are in part `name`, both in the JSON and in the CSV.
fn holds(read: &Value, name: &str, texts: &[&str]) {
    let (records, csv) = part(read, name);
    for text in texts {
        assert!(records.contains(text), "{name} lacks {text:?}: {records}");
        assert!(csv.contains(text), "{name}.csv lacks {text:?}");
    }
}

/// Asks for `client`'s export, follows it until ready, and downloads it
/// into `dir`; the export's last view and the file.
async fn export(
    server: &Server,
    client: &Client,
    dir: &std::path::Path,
) -> (Value, std::path::PathBuf) {
    let asked = client
        .data(
            "mutation { requestDataExport { id state eventsTotal } }",
            json!({}),
        )
        .await;
    let id = asked["requestDataExport"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let view = loop {
        let seen = client
            .data(
                "query($id: ID!) { dataExport(id: $id) { id state progress eventsScanned eventsTotal finishedAt expiresAt downloadUrl sizeBytes records error } }",
                json!({ "id": id }),
            )
            .await["dataExport"]
            .clone();
        match seen["state"].as_str().unwrap() {
            "READY" => break seen,
            "FAILED" => panic!("the export failed: {seen}"),
            _ => {
                assert!(Instant::now() < deadline, "not ready in time: {seen}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(view["progress"], json!(1.0), "{view}");
    let scanned: i64 = view["eventsScanned"].as_str().unwrap().parse().unwrap();
    assert!(scanned > 0, "{view}");
    assert!(view["expiresAt"].is_string(), "{view}");
    let url = view["downloadUrl"].as_str().unwrap();
    assert!(url.starts_with(&format!("/exports/{id}/archive?")), "{url}");
    let http = reqwest::Client::new();
    let fetched = http
        .get(format!("{}{url}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["content-type"], "application/zip");
    assert_eq!(fetched.headers()["cache-control"], "no-store");
    let bytes = fetched.bytes().await.unwrap();
    assert_eq!(view["sizeBytes"], json!(bytes.len().to_string()), "{view}");
    let path = dir.join(format!("{id}.zip"));
    std::fs::write(&path, &bytes).unwrap();
    (view, path)
}

/// `client` starts a conversation with `provider`, who replies.
async fn converse(client: &Client, provider: &Provider, subject: &str, body: &str, reply: &str) {
    let conversation = client
        .data(
            "mutation($s: String!, $b: String!, $p: ID!) { startConversation(subject: $s, body: $b, providerIds: [$p]) { conversation { uuid } } }",
            json!({ "s": subject, "b": body, "p": provider.id }),
        )
        .await["startConversation"]["conversation"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    provider
        .client
        .data(
            "mutation($c: ID!, $b: String!) { postMessage(conversationId: $c, body: $b) { version } }",
            json!({ "c": conversation, "b": reply }),
        )
        .await;
}

async fn everything_written_is_in_the_archive(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let admin = server.client(Some(token(Uuid::new_v4(), Role::Admin, ORG)));
    let user = open_user(&server, ORG).await;
    let provider = register_provider(&server, ORG, "Dr Avocet Okafor").await;
    let relationship = relate(&user, &provider).await;
    grant(&user, &relationship, &["CORE", "MEDICATIONS"], None).await;
    let c = &user.client;
    let writes = [
        ("mutation($v: String!) { setGoal(domain: \"housing\", title: $v) { version } }", GOAL),
        ("mutation($v: String!) { rateStatus(domain: \"housing\", score: 6, note: $v) { version } }", NOTE),
        ("mutation($v: String!) { addMedication(name: $v, dose: \"25 mg\", schedule: \"nightly\") { version } }", MEDICATION),
        ("mutation($v: String!) { reviseCrisisPlan(plan: { warningSigns: [$v] }) { version } }", PLAN),
        ("mutation($v: String!) { addPerson(displayName: $v, relation: FAMILY, closeness: 4) { version } }", NETWORK),
        ("mutation($v: String!) { chooseForumName(name: $v) { name } }", PSEUDONYM),
    ];
    for (mutation, value) in writes {
        c.data(mutation, json!({ "v": value })).await;
    }
    let entry = Uuid::new_v4().to_string();
    c.data(
        "mutation($u: UUID!) { startExercise(exercise: \"mindfulness\", uuid: $u) { version } }",
        json!({ "u": entry }),
    )
    .await;
    c.data(
        "mutation($e: ID!, $r: String!) { completeExercise(entryId: $e, reflection: $r) { version } }",
        json!({ "e": entry, "r": REFLECTION }),
    )
    .await;
    converse(c, &provider, SUBJECT, MESSAGE, REPLY).await;
    let post = c
        .data(
            "mutation($t: String!, $b: String!) { openTopic(category: \"sleep\", title: $t, body: $b) { post { id } } }",
            json!({ "t": TOPIC, "b": POST }),
        )
        .await["openTopic"]["post"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.data(
        "mutation($r: ID!, $t: AgreementTermsInput!) { proposeAgreement(relationshipId: $r, terms: $t) { agreement { pending { version } } } }",
        json!({ "r": relationship, "t": {
            "initiative": "BOTH", "providerLooksInDays": 7,
            "userRepliesWithin": { "value": 3, "unit": "WORKING_DAYS" },
            "providerRepliesWithin": { "value": 48, "unit": "HOURS" },
            "openedTogether": true, "notes": AGREEMENT } }),
    )
    .await;
    let study = admin
        .data(
            "mutation($r: [ID!]!) { registerStudy(title: \"Avocet study\", protocolId: \"AV-1\", startsOn: \"2026-01-01\", endsOn: \"2030-12-31\", researcherIds: $r) { study { uuid } } }",
            json!({ "r": [Uuid::new_v4()] }),
        )
        .await["registerStudy"]["study"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    c.data(
        "mutation($s: ID!) { enrolInStudy(studyId: $s) { version } }",
        json!({ "s": study }),
    )
    .await;
    // A recorded read by the provider.
    provider
        .client
        .data(
            "query($p: ID) { medications(portalId: $p) { name } }",
            json!({ "p": user.id }),
        )
        .await;
    // Someone else, with the same provider: nothing of theirs goes in.
    let other = open_user(&server, ORG).await;
    other
        .client
        .data(
            "mutation($v: String!) { setGoal(domain: \"housing\", title: $v) { version } }",
            json!({ "v": OTHERS_GOAL }),
        )
        .await;
    relate(&other, &provider).await;
    converse(&other.client, &provider, "Godwit", "Godwit", OTHERS_REPLY).await;

    // A moderator hides the user's post: the user learns it, not by whom.
    let moderator_id = Uuid::new_v4();
    let moderator = server.client(Some(token(moderator_id, Role::Moderator, ORG)));
    moderator
        .data(
            "mutation($p: ID!) { hidePost(postId: $p, reason: \"Hidden for the Avocet rule\") { post { id } } }",
            json!({ "p": post }),
        )
        .await;
    // An erasure asked for and taken back.
    c.data(
        "mutation { requestErasure { erasure { state } } }",
        json!({}),
    )
    .await;
    c.data(
        "mutation { cancelErasure { erasure { state } } }",
        json!({}),
    )
    .await;

    // Who may: service users and providers, for themselves.
    for role in [
        Role::Researcher,
        Role::Auditor,
        Role::Admin,
        Role::Moderator,
    ] {
        let someone = server.client(Some(token(Uuid::new_v4(), role, ORG)));
        assert_eq!(
            someone
                .error_code("mutation { requestDataExport { id } }", json!({}))
                .await,
            "FORBIDDEN",
            "{role:?}"
        );
    }
    assert_eq!(
        server
            .client(None)
            .error_code("mutation { requestDataExport { id } }", json!({}))
            .await,
        "UNAUTHENTICATED"
    );

    // The user's archive.
    let (view, path) = export(&server, c, &db.dir).await;
    let read = read_archive(&path).await;
    assert_eq!(read["doc"]["person_id"], json!(user.id.to_string()));
    assert_eq!(read["doc"]["organisation"], ORG);
    holds(&read, "core", &[GOAL, NOTE, "PortalOpened"]);
    holds(&read, "medications", &[MEDICATION]);
    holds(&read, "crisis_plan", &[PLAN]);
    holds(&read, "network", &[NETWORK]);
    holds(&read, "exercises", &[REFLECTION]);
    holds(&read, "messages", &[SUBJECT, MESSAGE, REPLY]);
    holds(&read, "forum", &[PSEUDONYM, TOPIC, POST]);
    holds(&read, "agreements", &[AGREEMENT]);
    holds(&read, "relationships", &["Invited", "InvitationAccepted"]);
    holds(&read, "consent", &["ConsentGranted", "medications"]);
    holds(&read, "studies", &["Avocet study", "Enrolled"]);
    holds(
        &read,
        "access_log",
        &[&provider.id.to_string(), "medications"],
    );
    let whole = read["doc"].to_string();
    for theirs in [OTHERS_GOAL, OTHERS_REPLY, "Godwit"] {
        assert!(
            !whole.contains(theirs),
            "someone else's {theirs:?} is in the archive"
        );
    }
    assert_eq!(read["doc"]["parts"]["profile"]["records"], json!([]));
    holds(
        &read,
        "forum",
        &["PostHidden", "Hidden for the Avocet rule"],
    );
    holds(&read, "erasure", &["ErasureRequested", "ErasureCancelled"]);
    // Who hid it is not said; nor are the provider's address and request id.
    assert!(
        !read["doc"].to_string().contains(&moderator_id.to_string()),
        "the moderator is named"
    );
    for record in read["doc"]["parts"]["access_log"]["records"]
        .as_array()
        .unwrap()
    {
        if record["actor_id"] != json!(user.id.to_string()) {
            let data = record["data"].as_object().unwrap();
            for hidden in ["client_address", "request_id", "detail"] {
                assert!(
                    !data.contains_key(hidden),
                    "{hidden} of another's read: {record}"
                );
            }
        }
    }

    // The link works more than once, until it expires.
    let url = view["downloadUrl"].as_str().unwrap();
    let http = reqwest::Client::new();
    let twice = http
        .get(format!("{}{url}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 200);
    // Another person cannot follow it; a changed link is refused.
    let id = view["id"].as_str().unwrap();
    let seen = other
        .client
        .data(
            "query($id: ID!) { dataExport(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(seen["dataExport"], Value::Null);
    let later = url.replace("expires=", "expires=9");
    let refused = http
        .get(format!("{}{later}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");

    // The provider's archive: their profile, the relationship, both
    // conversations, the read they made; none of the portal's content.
    let (_, provider_path) = export(&server, &provider.client, &db.dir).await;
    let theirs = read_archive(&provider_path).await;
    holds(&theirs, "profile", &["Dr Avocet Okafor"]);
    holds(&theirs, "messages", &[MESSAGE, REPLY, OTHERS_REPLY]);
    holds(
        &theirs,
        "relationships",
        &[&user.id.to_string(), &other.id.to_string()],
    );
    holds(
        &theirs,
        "reads_made",
        &[&user.id.to_string(), "medications"],
    );
    holds(&theirs, "agreements", &[AGREEMENT]);
    let whole = theirs["doc"].to_string();
    for portal_text in [GOAL, MEDICATION, PLAN, NETWORK, PSEUDONYM, POST] {
        assert!(
            !whole.contains(portal_text),
            "{portal_text:?} in the provider's archive"
        );
    }

    // The readings and downloads are in the trail, as the person's own.
    wait_caught_up(&server).await;
    let store = read_db(&db).await;
    let records: Vec<Value> = payloads_of(&store, "AccessTrail")
        .await
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .filter(|r: &Value| r["section"] == "export")
        .collect();
    // The user's: one reading, two downloads; the provider's: one and one.
    for (person, role, downloads) in [(user.id, "service_user", 2), (provider.id, "provider", 1)] {
        for (query, n) in [("requestDataExport", 1), ("download", downloads)] {
            let found = records
                .iter()
                .filter(|r| {
                    r["reader_id"] == json!(person.to_string())
                        && r["subject_id"] == json!(person.to_string())
                        && r["reader_role"] == role
                        && r["basis"] == "owner"
                        && r["query"] == query
                })
                .count();
            assert_eq!(found, n, "{query} of {role}: {records:?}");
        }
    }
    // An auditor sees them in the access log.
    let auditor = server.client(Some(token(Uuid::new_v4(), Role::Auditor, ORG)));
    let log = auditor
        .data(
            "query($p: ID) { accessTrail(subjectId: $p, section: EXPORT) { nodes { section query basis } } }",
            json!({ "p": user.id }),
        )
        .await;
    assert!(log.to_string().contains("EXPORT"), "{log}");

    // Once erased, there is nothing to export, and the link stops working.
    admin
        .data(
            "mutation($p: ID!) { orderErasure(personId: $p) { erasure { state } } }",
            json!({ "p": user.id }),
        )
        .await;
    assert_eq!(
        c.error_code("mutation { requestDataExport { id } }", json!({}))
            .await,
        "FAILED_PRECONDITION"
    );
    let gone = http
        .get(format!("{}{url}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    server.stop().await;

    // The operators' way, from the command line, for the provider.
    let out = db.dir.join("provider-cli.zip");
    let printed = portal_cli(
        &db,
        &[
            "person",
            "export",
            "--person",
            &provider.id.to_string(),
            "--organisation",
            ORG,
            "--reason",
            "Request by letter of 2026-11-20",
            "--out",
            &out.display().to_string(),
        ],
    )
    .await;
    assert!(printed.contains("records"), "{printed}");
    let by_cli = read_archive(&out).await;
    holds(&by_cli, "profile", &["Dr Avocet Okafor"]);
    holds(&by_cli, "messages", &[OTHERS_REPLY]);
    let store = read_db(&db).await;
    let operator = payloads_of(&store, "AccessTrail")
        .await
        .iter()
        .map(|p| serde_json::from_str::<Value>(p).unwrap())
        .filter(|r| r["section"] == "export" && r["query"] == "portal person export")
        .count();
    assert_eq!(operator, 1, "the command line's reading is recorded");
}

both_stores!(archive, everything_written_is_in_the_archive);
