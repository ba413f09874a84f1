//! Break-glass is bounded per provider across all their relationships, each
//! opening reaches the service user live, and the organisation's auditors
//! see every opening, with the reads made under it, in one report.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use api::auth::Role;
use futures::SinkExt;
use portal_tests::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as Frame;
use uuid::Uuid;

const GLASS: &str = "mutation($r: ID!) { breakGlass(relationshipId: $r, reason: RISK_TO_SELF, \
    explanation: \"not answering, last message worrying\") { version } }";
const PLAN: &str = "query($p: ID) { crisisPlan(portalId: $p) { warningSigns } }";
const UPDATES: &str = "subscription { liveUpdates { kind relationshipId byId body reason until } }";
const REPORT: &str = "query($f: DateTime!, $t: DateTime!) { breakGlassReport(from: $f, to: $t) { \
    relationshipId subjectId providerId reason explanation openedAt until basisSequence reads } }";

/// The next live update, if one comes in time.
async fn update(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        let frame = next_frame(socket, wait).await?;
        if frame["type"] == "next" {
            return Some(frame["payload"]["data"]["liveUpdates"].clone());
        }
    }
}

async fn subscribe(socket: &mut Socket) {
    let start = json!({ "type": "subscribe", "id": "1", "payload": { "query": UPDATES } });
    socket
        .send(Frame::Text(start.to_string().into()))
        .await
        .unwrap();
    let first = update(socket, Duration::from_secs(10)).await.unwrap();
    assert_eq!(first["kind"], "SUBSCRIBED");
}

async fn break_glass_is_bounded_heard_and_reported(store: Store) {
    let db = fresh_db(store).await;
    let server = Server::start_with(&db, &[("PORTAL_BREAK_GLASS_PER_PROVIDER_PER_DAY", "2")]).await;
    let kari = register_provider(&server, "clinic", "Kari").await;
    let ola = register_provider(&server, "clinic", "Ola").await;
    let mut users = Vec::new();
    for _ in 0..3 {
        let user = open_user(&server, "clinic").await;
        let rel = relate(&user, &kari).await;
        users.push((user, rel));
    }
    let (first, first_rel) = &users[0];
    let ola_rel = relate(first, &ola).await;

    // The person hears of each opening of their plan, live; nobody else does.
    let mut theirs = connect(&server, first.client.token.as_ref().unwrap())
        .await
        .unwrap();
    subscribe(&mut theirs).await;
    let mut someone_else = connect(&server, users[1].0.client.token.as_ref().unwrap())
        .await
        .unwrap();
    subscribe(&mut someone_else).await;
    let from = chrono::Utc::now() - chrono::Duration::minutes(1);

    kari.client.data(GLASS, json!({ "r": first_rel })).await;
    let heard = update(&mut theirs, Duration::from_secs(10))
        .await
        .expect("the person hears of it");
    assert_eq!(heard["kind"], "BREAK_GLASS", "{heard}");
    assert_eq!(heard["byId"], kari.id.to_string());
    assert_eq!(heard["reason"], "RISK_TO_SELF");
    assert_eq!(heard["body"], "not answering, last message worrying");
    assert!(heard["until"].is_string());
    assert!(
        update(&mut someone_else, Duration::from_millis(700))
            .await
            .is_none(),
        "another person hears nothing"
    );
    for _ in 0..2 {
        kari.client.data(PLAN, json!({ "p": first.id })).await;
    }

    // A second relationship: allowed. A third: the provider's own limit,
    // although that relationship never had one.
    kari.client.data(GLASS, json!({ "r": users[1].1 })).await;
    let code = kari
        .client
        .error_code(GLASS, json!({ "r": users[2].1 }))
        .await;
    assert_eq!(code, "FAILED_PRECONDITION");
    let refused = kari.client.gql(GLASS, json!({ "r": users[2].1 })).await;
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("the most allowed for one provider"),
        "{refused}"
    );
    // Another provider has their own allowance.
    ola.client.data(GLASS, json!({ "r": ola_rel })).await;
    let heard = update(&mut theirs, Duration::from_secs(10)).await.unwrap();
    assert_eq!(heard["byId"], ola.id.to_string());

    // The organisation's auditors see every opening and the reads under it.
    wait_caught_up(&server).await;
    let auditor = server.client(Some(token(Uuid::new_v4(), Role::Auditor, "clinic")));
    let to = chrono::Utc::now() + chrono::Duration::minutes(1);
    let report = auditor
        .data(
            REPORT,
            json!({ "f": from.to_rfc3339(), "t": to.to_rfc3339() }),
        )
        .await;
    let entries = report["breakGlassReport"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{report}");
    assert_eq!(entries[0]["providerId"], kari.id.to_string());
    assert_eq!(entries[0]["subjectId"], first.id.to_string());
    assert_eq!(entries[0]["reads"], 2);
    assert_eq!(entries[1]["subjectId"], users[1].0.id.to_string());
    assert_eq!(entries[1]["reads"], 0);
    assert_eq!(entries[2]["providerId"], ola.id.to_string());
    assert_eq!(
        entries[2]["explanation"],
        "not answering, last message worrying"
    );
    // Another organisation's auditor sees none of them; a provider may not ask.
    let outsider = server.client(Some(token(Uuid::new_v4(), Role::Auditor, "elsewhere")));
    let none = outsider
        .data(
            REPORT,
            json!({ "f": from.to_rfc3339(), "t": to.to_rfc3339() }),
        )
        .await;
    assert_eq!(none["breakGlassReport"], json!([]));
    let code = kari
        .client
        .error_code(
            REPORT,
            json!({ "f": from.to_rfc3339(), "t": to.to_rfc3339() }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    // A period before the openings holds none.
    let early = auditor
        .data(
            REPORT,
            json!({ "f": (from - chrono::Duration::days(2)).to_rfc3339(), "t": (from - chrono::Duration::days(1)).to_rfc3339() }),
        )
        .await;
    assert_eq!(early["breakGlassReport"], json!([]));
    server.stop().await;
}
both_stores!(
    break_glass_is_bounded_per_provider_heard_live_and_reported,
    break_glass_is_bounded_heard_and_reported
);
