//! Two trail writers on one store (as two service instances would be),
//! appending to the same chains at the same time: every record lands once,
//! and the chains verify.
#![allow(clippy::unwrap_used)]

use api::settings::Secret;
use api::trail::Trail;
use domain::trail::{AccessRecord, Basis, GENESIS};
use portal_tests::*;
use projections::EventMetadata;
use uuid::Uuid;

fn record(subject: Uuid, n: usize) -> AccessRecord {
    AccessRecord {
        reader_id: Uuid::from_u128(n as u128),
        reader_role: "provider".into(),
        reader_organisation: "clinic".into(),
        subject_id: Some(subject),
        organisation: "clinic".into(),
        section: "medications".into(),
        query: "medications".into(),
        basis: Basis::Grant,
        relationship_id: Some(Uuid::new_v4()),
        basis_sequence: Some(3),
        refusal: None,
        detail: None,
        request_id: format!("request-{n}"),
        client_address: Some("127.0.0.1".into()),
        at: chrono::Utc::now(),
        attempts: 1,
        first_at: None,
        prev_hash: GENESIS.into(),
    }
}

async fn two_writers(store: Store) {
    let db = fresh_db(store).await;
    portal_cli(&db, &["migrate"]).await;
    let key = Secret::new("trail-test-key-0123456789abcdef0123456789");
    // Records without a detail: nothing to seal, the vault stays locked.
    let vault = read_db(&db).await.vault;
    let writers = [
        Trail::start(&key, &db.url, vault.clone()).unwrap(),
        Trail::start(&key, &db.url, vault).unwrap(),
    ];
    let subjects = [Uuid::new_v4(), Uuid::new_v4()];
    // Rounds of concurrent records, alternating writers and chains, so each
    // writer's remembered chain heads go stale again and again.
    let mut total = 0;
    for round in 0..20 {
        let mut receipts = Vec::new();
        for i in 0..10 {
            let n = round * 10 + i;
            let writer = &writers[(n / 3) % 2];
            let subject = subjects[n % 2];
            receipts.push(writer.submit(record(subject, n), EventMetadata::default()));
        }
        for receipt in receipts {
            receipt.await.unwrap().unwrap();
            total += 1;
        }
    }
    let read = read_db(&db).await;
    let report = Trail::new(&key).verify(&read).await.unwrap();
    assert!(report.breaks.is_empty(), "{report:?}");
    assert_eq!(report.records, total);
    assert_eq!(report.chains, 2);
    let mut readers: Vec<u128> = payloads_of(&read, "AccessTrail")
        .await
        .iter()
        .map(|p| {
            serde_json::from_str::<AccessRecord>(p)
                .unwrap()
                .reader_id
                .as_u128()
        })
        .collect();
    readers.sort_unstable();
    assert_eq!(
        readers,
        (0..total as u128).collect::<Vec<_>>(),
        "each record once"
    );
    // With another key, every chain breaks at its first record.
    let other = Trail::new(&Secret::new("another-key-0123456789abcdef0123456789ab"));
    let report = other.verify(&read).await.unwrap();
    assert_eq!(report.breaks.len(), 2);
    assert!(report.breaks.iter().all(|b| b.sequence == 1));
}
both_stores!(two_writers_share_the_chains, two_writers);
