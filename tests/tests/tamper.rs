//! The tamper suite: an insider with the database (append-only triggers
//! off) and, for some attacks, the trail key, attacks a live store on both
//! stores; `portal audit verify` (with the witness where the attack needs it)
//! must report each attack at the first broken record, and the service must
//! refuse to start on a store that lost what the witness signed.
//! docs/access-trail.md lists the attacks and what catches each.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use api::auth::Role;
use portal_tests::*;
use serde_json::{json, Value};
use sqlx::Row;
use uuid::Uuid;

const MEDS: &str = "query($p: ID) { medications(portalId: $p) { name } }";
const RECORDS: i64 = 4;

/// Runs `sql` on the store with its append-only triggers off.
async fn tamper(db: &TestDb, sql: &str) {
    tamper_all(db, &[sql.to_string()]).await
}

/// Runs `statements` in one transaction with the append-only triggers off.
async fn tamper_all(db: &TestDb, statements: &[String]) {
    let read = read_db(db).await;
    let mut tx = read.pool.begin().await.unwrap();
    match db.store {
        Store::Postgres => {
            sqlx::query("ALTER TABLE events DISABLE TRIGGER USER")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        Store::Sqlite => {
            for trigger in ["events_no_update", "events_no_delete"] {
                sqlx::query(&format!("DROP TRIGGER IF EXISTS {trigger}"))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
        }
    }
    for sql in statements {
        sqlx::query(sql)
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    if db.store == Store::Postgres {
        sqlx::query("ALTER TABLE events ENABLE TRIGGER USER")
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// A record as stored, every column as text.
#[derive(Debug, Clone)]
struct Row_ {
    sequence: i64,
    position: i64,
    event_type: String,
    event_version: String,
    recorded_at: String,
    payload: String,
    metadata: String,
}

async fn records(db: &TestDb, chain: &str) -> Vec<Row_> {
    let read = read_db(db).await;
    let sql = match db.store {
        Store::Postgres => {
            "SELECT sequence, position, event_type, event_version, payload::text AS payload, \
             metadata::text AS metadata, \
             to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS recorded_at \
             FROM events WHERE aggregate_type = 'AccessTrail' AND aggregate_id = $1 ORDER BY sequence"
        }
        Store::Sqlite => {
            "SELECT sequence, position, event_type, event_version, payload, metadata, recorded_at \
             FROM events WHERE aggregate_type = 'AccessTrail' AND aggregate_id = $1 ORDER BY sequence"
        }
    };
    sqlx::query(sql)
        .bind(chain)
        .fetch_all(&read.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| Row_ {
            sequence: r.get("sequence"),
            position: r.get("position"),
            event_type: r.get("event_type"),
            event_version: r.get("event_version"),
            recorded_at: r.get("recorded_at"),
            payload: r.get("payload"),
            metadata: r.get("metadata"),
        })
        .collect()
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn json_literal(store: Store, text: &str) -> String {
    match store {
        Store::Postgres => format!("CAST({} AS json)", quote(text)),
        Store::Sqlite => quote(text),
    }
}

fn where_record(chain: &str, sequence: i64) -> String {
    format!("aggregate_type = 'AccessTrail' AND aggregate_id = '{chain}' AND sequence = {sequence}")
}

/// Deletes a record and inserts `row` in its place (PostgreSQL will not
/// update an identity column), keeping every other column as given.
fn replace(store: Store, chain: &str, old_sequence: i64, row: &Row_) -> Vec<String> {
    let recorded_at = match store {
        Store::Postgres => format!("CAST({} AS timestamptz)", quote(&row.recorded_at)),
        Store::Sqlite => quote(&row.recorded_at),
    };
    let overriding = match store {
        Store::Postgres => "OVERRIDING SYSTEM VALUE ",
        Store::Sqlite => "",
    };
    vec![
        format!("DELETE FROM events WHERE {}", where_record(chain, old_sequence)),
        format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
             payload, metadata, position, recorded_at) {overriding}VALUES ('AccessTrail', '{chain}', {}, {}, {}, {}, {}, {}, {recorded_at})",
            row.sequence,
            quote(&row.event_type),
            quote(&row.event_version),
            json_literal(store, &row.payload),
            json_literal(store, &row.metadata),
            row.position,
        ),
    ]
}

/// Seals `rows` (in order, from the first one's predecessor `prev`) with the
/// trail key, as someone holding it would to make a rewritten chain verify.
fn reseal(key: &str, chain: &str, prev: &str, rows: &mut [Row_]) {
    let mut prev = prev.to_string();
    for row in rows {
        let mut payload: Value = serde_json::from_str(&row.payload).unwrap();
        payload["prev_hash"] = json!(prev);
        row.payload = payload.to_string();
        let mut meta: Value = serde_json::from_str(&row.metadata).unwrap();
        meta.as_object_mut().unwrap().remove("hash");
        row.event_version = api::seal::VERSION.to_string();
        let fields = api::seal::Stored {
            chain,
            sequence: row.sequence,
            position: row.position,
            event_type: &row.event_type,
            event_version: &row.event_version,
            recorded_at: &row.recorded_at,
            payload: &row.payload,
            metadata: "",
        };
        let (metadata, seal) = api::seal::seal(key.as_bytes(), &fields, &meta);
        row.metadata = metadata;
        prev = seal;
    }
}

fn seal_of(row: &Row_) -> String {
    api::seal::claimed(&row.metadata).unwrap()
}

/// The access log's live slot.
async fn log_table(db: &TestDb) -> String {
    let read = read_db(db).await;
    let slot: String =
        sqlx::query_scalar("SELECT active_slot FROM projection_slots WHERE name = 'access'")
            .fetch_one(&read.pool)
            .await
            .unwrap();
    format!("access_log_{slot}")
}

/// The line `verify` printed about `chain` (BROKEN or ACCESS LOG).
fn line_about<'a>(out: &'a str, kind: &str, chain: &str) -> Option<&'a str> {
    out.lines()
        .find(|l| l.starts_with(kind) && l.contains(&format!("chain {chain} ")))
}

fn reported(out: &str, kind: &str, chain: &str, record: i64, why: &str) {
    let line = line_about(out, kind, chain)
        .unwrap_or_else(|| panic!("{kind} chain {chain} not reported:\n{out}"));
    assert!(
        line.contains(&format!("record {record} ")) || line.contains(&format!("record {record})")),
        "expected record {record}: {line}"
    );
    assert!(line.contains(why), "expected `{why}`: {line}");
}

/// A service with `n` people whose portals a provider read `RECORDS` times
/// each, stopped (so the witness signed a last checkpoint); their chains.
async fn trail_of(db: &TestDb, n: usize) -> (Vec<String>, Value, Uuid) {
    let server = Server::start_with(db, &[("PORTAL_WITNESS_INTERVAL_SECONDS", "1")]).await;
    let kari = register_provider(&server, "clinic", "Kari").await;
    let mut chains = Vec::new();
    for i in 0..n {
        let user = open_user(&server, "clinic").await;
        let rel = relate(&user, &kari).await;
        grant(&user, &rel, &["MEDICATIONS"], None).await;
        for _ in 0..RECORDS {
            kari.client.data(MEDS, json!({ "p": user.id })).await;
        }
        chains.push(user.id.to_string());
        if i == n / 2 {
            // A checkpoint in the middle, so the witness has more than one.
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
    }
    wait_caught_up(&server).await;
    let url = format!("{}/trail/witness", server.base);
    let http = reqwest::Client::new();
    let status = |token: Option<String>| {
        let mut request = http.get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // Auditors only: the checkpoints count the whole deployment.
    assert_eq!(status(None).await, 401);
    assert_eq!(status(Some(kari.client.token.clone().unwrap())).await, 403);
    let auditor = token(Uuid::new_v4(), Role::Auditor, "clinic");
    let published: Value = http
        .get(&url)
        .bearer_auth(auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    server.stop().await;
    (chains, published, kari.id)
}

async fn verify(db: &TestDb, witness: bool) -> (bool, String) {
    let dir = db.dir.join("witness").display().to_string();
    let mut args = vec!["audit", "verify"];
    if witness {
        args.extend(["--witness", dir.as_str()]);
    }
    let (ok, out, err) = portal_cli_status(db, &args).await;
    (ok, format!("{out}{err}"))
}

async fn every_attack_is_reported(store: Store) {
    let db = fresh_db(store).await;
    let (c, published, _) = trail_of(&db, 20).await;
    let (ok, out) = verify(&db, true).await;
    assert!(ok, "an untouched trail verifies: {out}");
    assert!(out.contains("80 records in 20 chains checked"), "{out}");
    let key = std::fs::read_to_string(db.dir.join("trail.key")).unwrap();
    let key = key.trim();
    let log = log_table(&db).await;
    let text = |column: &str| match store {
        Store::Postgres => format!("{column}::text"),
        Store::Sqlite => column.to_string(),
    };
    let json = |column: &str, expr: String| match store {
        Store::Postgres => format!("{column} = CAST({expr} AS json)"),
        Store::Sqlite => format!("{column} = {expr}"),
    };

    // 0. The payload of record 2 claims another section.
    tamper(
        &db,
        &format!(
            "UPDATE events SET {} WHERE {}",
            json(
                "payload",
                format!(
                    "REPLACE({}, '\"medications\"', '\"network\"')",
                    text("payload")
                )
            ),
            where_record(&c[0], 2)
        ),
    )
    .await;
    // 1. A metadata field of record 2 (the request it answered).
    tamper(
        &db,
        &format!(
            "UPDATE events SET {} WHERE {}",
            json(
                "metadata",
                format!(
                    "REPLACE({}, '\"request_id\":\"', '\"request_id\":\"x')",
                    text("metadata")
                )
            ),
            where_record(&c[1], 2)
        ),
    )
    .await;
    // 2. The time record 2 was recorded.
    let mut r = records(&db, &c[2]).await;
    let at = chrono::DateTime::parse_from_rfc3339(&r[1].recorded_at).unwrap();
    r[1].recorded_at = (at + chrono::Duration::seconds(1))
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    tamper_all(&db, &replace(store, &c[2], 2, &r[1])).await;
    // 3. Record 2's event version.
    tamper(
        &db,
        &format!(
            "UPDATE events SET event_version = '1' WHERE {}",
            where_record(&c[3], 2)
        ),
    )
    .await;
    // 4. Record 2's event type.
    tamper(
        &db,
        &format!(
            "UPDATE events SET event_type = 'Other' WHERE {}",
            where_record(&c[4], 2)
        ),
    )
    .await;
    // 5. Records 2 and 3 swap global positions.
    let r = records(&db, &c[5]).await;
    let (mut a, mut b) = (r[1].clone(), r[2].clone());
    std::mem::swap(&mut a.position, &mut b.position);
    let mut swap = replace(
        store,
        &c[5],
        2,
        &Row_ {
            position: -1,
            ..a.clone()
        },
    );
    swap.extend(replace(store, &c[5], 3, &b));
    swap.extend(replace(store, &c[5], 2, &a));
    tamper_all(&db, &swap).await;
    // 6. Record 3 deleted.
    tamper(
        &db,
        &format!("DELETE FROM events WHERE {}", where_record(&c[6], 3)),
    )
    .await;
    // 7. A fifth record forged without the key.
    let r = records(&db, &c[7]).await;
    let mut forged = r[3].clone();
    forged.sequence = 5;
    forged.position = 1_000_000;
    let mut payload: Value = serde_json::from_str(&forged.payload).unwrap();
    payload["prev_hash"] = json!(seal_of(&r[3]));
    payload["reader_id"] = json!(Uuid::new_v4());
    forged.payload = payload.to_string();
    forged.metadata = forged
        .metadata
        .replacen(&seal_of(&r[3]), &"f".repeat(64), 1);
    tamper_all(&db, &replace(store, &c[7], 5, &forged)).await;
    // 8. The newest record deleted.
    tamper(
        &db,
        &format!("DELETE FROM events WHERE {}", where_record(&c[8], 4)),
    )
    .await;
    // 9. The newest record deleted with its access-log row.
    let r = records(&db, &c[9]).await;
    tamper_all(
        &db,
        &[
            format!("DELETE FROM events WHERE {}", where_record(&c[9], 4)),
            format!("DELETE FROM {log} WHERE position = {}", r[3].position),
        ],
    )
    .await;
    // 10. Record 2 edited and the chain re-sealed with the trail key.
    let mut r = records(&db, &c[10]).await;
    let prev = seal_of(&r[0]);
    let mut payload: Value = serde_json::from_str(&r[1].payload).unwrap();
    payload["section"] = json!("network");
    r[1].payload = payload.to_string();
    reseal(key, &c[10], &prev, &mut r[1..]);
    let mut statements = Vec::new();
    for row in &r[1..] {
        statements.extend(replace(store, &c[10], row.sequence, row));
    }
    tamper_all(&db, &statements).await;
    // 11. Record 2 deleted and the rest renumbered and re-chained with the key.
    let r = records(&db, &c[11]).await;
    let mut rest: Vec<Row_> = r[2..].to_vec();
    for row in &mut rest {
        row.sequence -= 1;
    }
    reseal(key, &c[11], &seal_of(&r[0]), &mut rest);
    let mut statements = vec![format!(
        "DELETE FROM events WHERE aggregate_type = 'AccessTrail' AND aggregate_id = '{}' AND sequence >= 2",
        c[11]
    )];
    for row in &rest {
        statements.extend(replace(store, &c[11], row.sequence, row));
    }
    statements.push(format!(
        "DELETE FROM {log} WHERE chain = '{}' AND sequence >= 2",
        c[11]
    ));
    tamper_all(&db, &statements).await;
    // 12. The tail (records 3 and 4) cut off, with its access-log rows.
    tamper_all(
        &db,
        &[
            format!(
                "DELETE FROM events WHERE aggregate_type = 'AccessTrail' AND aggregate_id = '{}' AND sequence >= 3",
                c[12]
            ),
            format!("DELETE FROM {log} WHERE chain = '{}' AND sequence >= 3", c[12]),
        ],
    )
    .await;
    // 13. An access-log row says a granted read was refused.
    tamper(
        &db,
        &format!(
            "UPDATE {log} SET basis = 'refused', refusal = 'FORBIDDEN' WHERE chain = '{}' AND sequence = 2",
            c[13]
        ),
    )
    .await;
    // 14. An access-log row deleted.
    tamper(
        &db,
        &format!(
            "DELETE FROM {log} WHERE chain = '{}' AND sequence = 2",
            c[14]
        ),
    )
    .await;
    // 15. An access-log row made up, for a record the store never had.
    tamper(
        &db,
        &format!(
            "INSERT INTO {log} SELECT position + 900000, chain, 9, organisation, subject_id, \
             reader_id, reader_role, reader_organisation, section, query, basis, relationship_id, \
             basis_sequence, refusal, detail, at, request_id, client_address, attempts, first_at FROM {log} \
             WHERE chain = '{}' AND sequence = 4",
            c[15]
        ),
    )
    .await;
    // 16. Record 4 moved into another person's chain.
    let other = Uuid::new_v4().to_string();
    tamper(
        &db,
        &format!(
            "UPDATE events SET aggregate_id = '{other}' WHERE {}",
            where_record(&c[16], 4)
        ),
    )
    .await;
    // 17. Record 4 renumbered 5.
    tamper(
        &db,
        &format!(
            "UPDATE events SET sequence = 5 WHERE {}",
            where_record(&c[17], 4)
        ),
    )
    .await;
    // 18. A whole chain gone, with its access-log rows.
    tamper_all(
        &db,
        &[
            format!(
                "DELETE FROM events WHERE aggregate_type = 'AccessTrail' AND aggregate_id = '{}'",
                c[18]
            ),
            format!("DELETE FROM {log} WHERE chain = '{}'", c[18]),
        ],
    )
    .await;
    // 19. Record 1's payload and metadata copied over record 3 (a replay).
    let r = records(&db, &c[19]).await;
    let replayed = Row_ {
        payload: r[0].payload.clone(),
        metadata: r[0].metadata.clone(),
        ..r[2].clone()
    };
    tamper_all(&db, &replace(store, &c[19], 3, &replayed)).await;

    // Without the witness, everything that needs no key is found.
    let (ok, out) = verify(&db, false).await;
    assert!(!ok, "{out}");
    reported(&out, "BROKEN", &c[0], 2, "altered");
    reported(&out, "BROKEN", &c[1], 2, "altered");
    reported(&out, "BROKEN", &c[2], 2, "altered");
    reported(&out, "BROKEN", &c[3], 2, "altered");
    reported(&out, "BROKEN", &c[4], 2, "unexpected event type");
    reported(&out, "BROKEN", &c[5], 2, "altered");
    reported(&out, "BROKEN", &c[6], 3, "missing");
    reported(&out, "BROKEN", &c[7], 5, "altered");
    reported(&out, "BROKEN", &c[8], 4, "the access log had it");
    reported(
        &out,
        "ACCESS LOG",
        &c[13],
        2,
        "differs from its record in basis, refusal",
    );
    reported(&out, "ACCESS LOG", &c[14], 2, "no row");
    reported(&out, "BROKEN", &c[15], 9, "the access log had it");
    reported(&out, "BROKEN", &c[16], 4, "the access log had it");
    reported(&out, "BROKEN", &other, 4, "missing");
    reported(&out, "BROKEN", &c[17], 4, "the access log had it");
    reported(
        &out,
        "ACCESS LOG",
        &c[17],
        5,
        "differs from its record in sequence",
    );
    reported(&out, "BROKEN", &c[19], 3, "altered");
    // These leave nothing in the store or the log to see them by.
    for i in [9, 10, 11, 12, 18] {
        assert!(line_about(&out, "BROKEN", &c[i]).is_none(), "{i}: {out}");
    }

    // The witness signed them.
    let (ok, out) = verify(&db, true).await;
    assert!(!ok, "{out}");
    reported(&out, "BROKEN", &c[9], 4, "checkpoint");
    reported(&out, "BROKEN", &c[10], 2, "not the one checkpoint");
    reported(&out, "BROKEN", &c[11], 2, "not the one checkpoint");
    reported(&out, "BROKEN", &c[12], 3, "checkpoint");
    reported(&out, "BROKEN", &c[18], 1, "checkpoint");
    // And the first break is still the first: the witness moves none later.
    reported(&out, "BROKEN", &c[6], 3, "missing");
    assert!(out.contains("20 chains checked, against"), "{out}");

    // The service will not start on a store that lost what the witness signed.
    let (ok, _, err) = portal_cli_status(&db, &["projections", "status"]).await;
    assert!(
        !ok && err.contains("lost records the witness signed"),
        "{err}"
    );

    // The published checkpoints are the folder's, and verify takes the key
    // the auditor fetched; a different key finds nothing signed.
    let file = std::fs::read_to_string(db.dir.join("witness/checkpoints.jsonl")).unwrap();
    let lines: Vec<Value> = file
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let checkpoints = published["checkpoints"].as_array().unwrap();
    assert!(!checkpoints.is_empty(), "{published}");
    assert!(
        lines.len() >= checkpoints.len() && lines.len() >= 2,
        "{file}"
    );
    for (p, l) in checkpoints.iter().zip(&lines) {
        assert_eq!(p["checkpoint"], l["checkpoint"]);
        assert_eq!(p["signature"], l["signature"]);
        assert!(p.get("records").is_none(), "no chain names are published");
    }
    let public = published["publicKey"].as_str().unwrap();
    let dir = db.dir.join("witness").display().to_string();
    let (ok, out, _) = portal_cli_status(
        &db,
        &["audit", "verify", "--witness", &dir, "--public-key", public],
    )
    .await;
    assert!(!ok && out.contains("BROKEN chain"), "{out}");
    assert!(!out.contains("WITNESS"), "{out}");
    let stranger = "11".repeat(32);
    let (ok, out, err) = portal_cli_status(
        &db,
        &[
            "audit",
            "verify",
            "--witness",
            &dir,
            "--public-key",
            &stranger,
        ],
    )
    .await;
    assert!(!ok, "{out}{err}");
    assert!(
        out.contains("is not signed by the witness key") || err.contains("public key"),
        "{out}{err}"
    );

    // A checkpoint removed from the witness folder shows.
    let kept: Vec<&str> = file
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 0)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(
        db.dir.join("witness/checkpoints.jsonl"),
        kept.join("\n") + "\n",
    )
    .unwrap();
    let (ok, out) = verify(&db, true).await;
    assert!(
        !ok && out.contains("WITNESS checkpoint 2 does not follow"),
        "{out}"
    );
}
both_stores!(
    every_attack_on_the_trail_is_reported,
    every_attack_is_reported
);

/// Records removed after the service stopped: the next start refuses; the
/// override starts it, signs the loss, and verify keeps reporting it. A
/// rebuild of the access log never drops the removed record's row.
async fn a_store_that_lost_witnessed_records_is_refused(store: Store) {
    let db = fresh_db(store).await;
    let (c, _, kari) = trail_of(&db, 3).await;
    let log = log_table(&db).await;

    // The newest record, answered just before the stop, is deleted.
    tamper(
        &db,
        &format!("DELETE FROM events WHERE {}", where_record(&c[0], 4)),
    )
    .await;
    let (ok, _, err) = portal_cli_status(&db, &["projections", "status"]).await;
    assert!(!ok, "{err}");
    assert!(
        err.contains(&format!("chain {} record 4", c[0]))
            && err.contains("PORTAL_ACCEPT_WITNESS_LOSS"),
        "{err}"
    );
    // A rebuild cannot make its row disappear either, override or not.
    let accept = [("PORTAL_ACCEPT_WITNESS_LOSS", "true")];
    let (ok, _, err) = portal_cli_env(&db, &["projections", "rebuild", "access"], &accept).await;
    assert!(
        !ok && err.contains("would drop rows the live slot has"),
        "{err}"
    );
    let (_, out) = verify(&db, false).await;
    reported(&out, "BROKEN", &c[0], 4, "the access log had it");

    // The whole trail and the access log emptied.
    tamper_all(
        &db,
        &[
            "DELETE FROM events WHERE aggregate_type = 'AccessTrail'".to_string(),
            format!("DELETE FROM {log}"),
        ],
    )
    .await;
    let (ok, _, err) = portal_cli_status(&db, &["projections", "status"]).await;
    assert!(
        !ok && err.contains("3 access-trail chain(s) lost records"),
        "{err}"
    );
    let (ok, out) = verify(&db, false).await;
    assert!(ok, "without the witness nothing is left to see: {out}");
    let (ok, out) = verify(&db, true).await;
    assert!(!ok, "{out}");
    for chain in &c {
        reported(&out, "BROKEN", chain, 1, "checkpoint");
    }

    // Serving anyway is possible, and signed.
    let server = Server::start_with(&db, &accept).await;
    let user = open_user(&server, "clinic").await;
    let reader = server.client(Some(token(Uuid::new_v4(), Role::Provider, "clinic")));
    reader.error_code(MEDS, json!({ "p": user.id })).await;
    // New records take the lost ones' places in the first chain.
    let kari = server.client(Some(token(kari, Role::Provider, "clinic")));
    for _ in 0..2 {
        kari.data(MEDS, json!({ "p": c[0] })).await;
    }
    server.stop().await;
    let (ok, out) = verify(&db, true).await;
    assert!(!ok, "{out}");
    assert!(out.contains("ACCEPTED LOSS checkpoint"), "{out}");
    assert!(out.contains("12 witnessed record(s)"), "{out}");
    // The lost records are still reported: new ones in their places are
    // not the ones witnessed.
    reported(&out, "BROKEN", &c[0], 1, "not the one checkpoint");
    reported(&out, "BROKEN", &c[1], 1, "checkpoint");
    // Once accepted, the service starts again without the override.
    let server = Server::start(&db).await;
    server.stop().await;
}
both_stores!(
    a_store_that_lost_witnessed_records_is_refused_at_start,
    a_store_that_lost_witnessed_records_is_refused
);

/// The trail key: another key will not start the service; without one,
/// nothing verifies and none is made.
async fn the_trail_key_is_checked(store: Store) {
    let db = fresh_db(store).await;
    trail_of(&db, 1).await;
    let key = db.dir.join("trail.key");
    let right = std::fs::read_to_string(&key).unwrap();
    std::fs::write(&key, "x".repeat(64)).unwrap();
    let (ok, _, err) = portal_cli_status(&db, &["audit", "verify"]).await;
    assert!(
        !ok && err.contains("does not verify"),
        "another key verifies nothing: {err}"
    );
    let (ok, _, err) = portal_cli_status(&db, &["projections", "status"]).await;
    assert!(
        !ok && err
            .contains("none of the access trail's newest records was made with this trail key"),
        "{err}"
    );
    std::fs::write(&key, &right).unwrap();

    std::fs::remove_file(&key).unwrap();
    let (ok, _, err) = portal_cli_status(&db, &["audit", "verify"]).await;
    assert!(!ok && err.contains("no access-trail key"), "{err}");
    let (ok, _, err) = portal_cli_status(&db, &["projections", "status"]).await;
    assert!(
        !ok && err.contains("written with a key this service does not have"),
        "{err}"
    );
    assert!(!key.exists(), "no key was made");

    // A witness folder signed with another key is refused too.
    std::fs::write(&key, &right).unwrap();
    let (ok, _, err) = portal_cli_env(
        &db,
        &["projections", "status"],
        &[("PORTAL_WITNESS_KEY", &"z".repeat(40))],
    )
    .await;
    assert!(!ok && err.contains("signed with another key"), "{err}");

    // A witness removed (or replaced by an empty one) beside sealed records.
    std::fs::remove_dir_all(db.dir.join("witness")).unwrap();
    let (ok, _, err) = portal_cli_status(&db, &["projections", "status"]).await;
    assert!(!ok && err.contains("has no checkpoints"), "{err}");
}
both_stores!(
    the_trail_and_witness_keys_are_checked,
    the_trail_key_is_checked
);
