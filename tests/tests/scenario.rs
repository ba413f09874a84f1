//! A client developer's scenario through every area of the API with
//! Python's `gql` (`tests/python/scenario.py`, from the venv `ops/py-env`
//! makes), over HTTP and over its graphql-transport-ws transport, on both
//! stores. gql introspects the schema first and validates every document
//! against it, so a field the scenario names and the schema lacks fails here.
#![allow(clippy::unwrap_used)]

use api::auth::Role;
use portal_tests::*;
use serde_json::json;
use uuid::Uuid;

async fn scenario(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start(&db).await;
    let org = "clinic-a";
    let mut people = serde_json::Map::new();
    for (name, role) in [
        ("user", Role::ServiceUser),
        ("provider", Role::Provider),
        ("auditor", Role::Auditor),
        ("admin", Role::Admin),
        ("researcher", Role::Researcher),
    ] {
        let id = Uuid::new_v4();
        people.insert(
            name.into(),
            json!({ "id": id.to_string(), "token": token(id, role, org) }),
        );
    }
    let python = std::env::var("PORTAL_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/scenario.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&server.base)
        .arg(serde_json::Value::Object(people).to_string())
        .output()
        .await
        .unwrap_or_else(|e| panic!("{python}: {e} (ops/test installs gql)"));
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("scenario ok"),
        "gql scenario: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop().await;
}

both_stores!(python_scenario, scenario);
