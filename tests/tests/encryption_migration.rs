//! A store written by the release before encryption (issue 18): the first
//! start seals every personal field in place, once, and proves it.
//!
//! The fixture (`tests/fixtures/store-before-encryption`) is that release's
//! simulator output: every row of its events table, its trail key and its
//! witness. The rows go into a fresh store of either kind as they were.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::PathBuf;

use domain::personal;
use portal_tests::*;
use serde_json::Value;
use sqlx::Row;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/store-before-encryption")
}

fn rows() -> Vec<Value> {
    std::fs::read_to_string(fixture().join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Loads the fixture's rows and keys into `db`, as the old release left them.
async fn load(db: &TestDb) {
    portal_cli(db, &["migrate"]).await;
    for file in ["trail.key", "witness.key"] {
        std::fs::copy(fixture().join(file), db.dir.join(file)).unwrap();
    }
    std::fs::create_dir_all(db.dir.join("witness")).unwrap();
    for entry in std::fs::read_dir(fixture().join("witness")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), db.dir.join("witness").join(entry.file_name())).unwrap();
    }
    let read = read_db(db).await;
    let insert = match db.store {
        Store::Postgres => {
            "INSERT INTO events (position, aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata, recorded_at) OVERRIDING SYSTEM VALUE VALUES \
             ($1, $2, $3, $4, $5, $6, CAST($7 AS json), CAST($8 AS json), CAST($9 AS timestamptz))"
        }
        Store::Sqlite => {
            "INSERT INTO events (position, aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        }
    };
    let mut tx = read.pool.begin().await.unwrap();
    for row in rows() {
        sqlx::query(insert)
            .bind(row["position"].as_i64().unwrap())
            .bind(row["aggregate_type"].as_str().unwrap())
            .bind(row["aggregate_id"].as_str().unwrap())
            .bind(row["sequence"].as_i64().unwrap())
            .bind(row["event_type"].as_str().unwrap())
            .bind(row["event_version"].as_str().unwrap())
            .bind(row["payload"].as_str().unwrap())
            .bind(row["metadata"].as_str().unwrap())
            .bind(row["recorded_at"].as_str().unwrap())
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    if db.store == Store::Postgres {
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('events', 'position'), \
             (SELECT MAX(position) FROM events))",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

/// The personal texts of one stored payload, as its declaration names them.
fn personal_texts(aggregate_type: &str, event_type: &str, payload: &str) -> Vec<String> {
    let Some(declared) = domain::declarations::declared(aggregate_type, event_type) else {
        return vec![];
    };
    let mut value: Value = serde_json::from_str(payload).unwrap();
    let Some(fields) = personal::fields_of(&mut value, event_type) else {
        return vec![];
    };
    let mut texts = Vec::new();
    for p in declared.personal {
        collect(personal::take(fields, p.path), &mut texts);
    }
    texts
}

fn collect(value: Option<Value>, out: &mut Vec<String>) {
    match value {
        Some(Value::String(s)) if s.len() >= 6 => out.push(s),
        Some(Value::Array(items)) => items.into_iter().for_each(|v| collect(Some(v), out)),
        Some(Value::Object(map)) => map.into_iter().for_each(|(_, v)| collect(Some(v), out)),
        _ => {}
    }
}

async fn a_store_of_the_previous_release_is_sealed_once(store: Store) {
    let db = fresh_db(store).await;
    load(&db).await;
    let old = rows();
    // Texts the old release stored in clear, outside the trail.
    let plain: HashSet<String> = old
        .iter()
        .filter(|r| r["aggregate_type"] != "AccessTrail")
        .flat_map(|r| {
            personal_texts(
                r["aggregate_type"].as_str().unwrap(),
                r["event_type"].as_str().unwrap(),
                r["payload"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        plain.len() >= 15,
        "the fixture holds personal texts: {}",
        plain.len()
    );

    let server = Server::start(&db).await;
    wait_caught_up(&server).await;
    server.stop().await;

    let read = read_db(&db).await;
    // One run, recorded with its proof.
    let runs = sqlx::query("SELECT events, sealed, proof FROM encryption_migrations")
        .fetch_all(&read.pool)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    let sealed: i64 = runs[0].try_get("sealed").unwrap();
    let proof: String = runs[0].try_get("proof").unwrap();
    let proof: Value = serde_json::from_str(&proof).unwrap();
    assert!(sealed > 100, "{proof}");
    assert_eq!(
        proof["sha256_of_old_payloads"], proof["sha256_of_sealed_payloads_opened"],
        "{proof}"
    );

    // Every row kept its place, type, metadata and time; personal payloads
    // are sealed and open to what they were; no text is left in clear.
    let stored = all_events(&read).await;
    let raw = payloads_of_all(&read).await;
    assert_eq!(stored.len(), old.len());
    let mut rewritten = 0;
    for (event, row) in stored.iter().zip(&old) {
        assert_eq!(event.checkpoint.position, row["position"].as_i64().unwrap());
        assert_eq!(event.aggregate_id, row["aggregate_id"].as_str().unwrap());
        assert_eq!(event.sequence, row["sequence"].as_i64().unwrap());
        assert_eq!(event.event_type, row["event_type"].as_str().unwrap());
        let was: Value = serde_json::from_str(row["payload"].as_str().unwrap()).unwrap();
        let is: Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(
            is, was,
            "event {} opens to its old payload",
            event.checkpoint.position
        );
        let now = &raw[&event.checkpoint.position];
        if now.contains("\"$sealed\"") {
            rewritten += 1;
        }
        if row["aggregate_type"] != "AccessTrail" {
            for text in &plain {
                assert!(
                    !now.contains(text.as_str()),
                    "event {} still holds {text:?} in clear: {now}",
                    event.checkpoint.position
                );
            }
        }
    }
    assert_eq!(rewritten, sealed);

    // The trail still verifies, witness included.
    let witness = db.dir.join("witness").display().to_string();
    let (ok, out, err) = portal_cli_status(&db, &["audit", "verify", "--witness", &witness]).await;
    assert!(ok, "{out}{err}");

    // A second start changes nothing.
    let server = Server::start(&db).await;
    server.stop().await;
    let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM encryption_migrations")
        .fetch_one(&read.pool)
        .await
        .unwrap();
    assert_eq!(runs, 1);
    let again = payloads_of_all(&read).await;
    assert_eq!(again, raw);
}

/// Every stored payload text by position, as the store holds it.
async fn payloads_of_all(read: &projections::Db) -> std::collections::BTreeMap<i64, String> {
    let sql = match read.backend {
        projections::Backend::Postgres => "SELECT position, payload::text AS payload FROM events",
        projections::Backend::Sqlite => "SELECT position, payload FROM events",
    };
    sqlx::query(sql)
        .fetch_all(&read.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.try_get("position").unwrap(),
                r.try_get("payload").unwrap(),
            )
        })
        .collect()
}

both_stores!(
    previous_release,
    a_store_of_the_previous_release_is_sealed_once
);
