//! Folded aggregates kept between commands (`api::aggregate_cache`) stay
//! true when another instance writes to the same aggregate: a command
//! decided on a kept aggregate that conflicts at the append, or is refused,
//! is decided again on the stored events, so a goal set through one instance
//! can be achieved through the other, whose kept portal predates it, and a
//! rating through the first lands after the other's writes.
#![allow(clippy::unwrap_used)]

use portal_tests::*;
use serde_json::json;

const RATE: &str = r#"mutation($s: Int!) { rateStatus(domain: "housing", score: $s) { version } }"#;
const SET: &str =
    r#"mutation($t: String!) { setGoal(domain: "housing", title: $t) { version goal { id } } }"#;
const ACHIEVE: &str = "mutation($g: ID!) { achieveGoal(goalId: $g) { version } }";

async fn two_instances_share_one_portal(store: Store) {
    let db = fresh_db(store).await;
    let a = Server::start(&db).await;
    let other_witness = db.dir.join("witness-b").display().to_string();
    let b = Server::start_with(&db, &[("PORTAL_WITNESS_DIR", &other_witness)]).await;
    let user = open_user(&a, "clinic").await;
    let token = user.client.token.clone();
    let (on_a, on_b) = (a.client(token.clone()), b.client(token));

    let mut version = 1;
    for round in 0..5 {
        // A keeps the portal as of its own last command; B appends after it.
        let v = on_a.data(RATE, json!({ "s": round % 10 + 1 })).await;
        version += 1;
        assert_eq!(v["rateStatus"]["version"], version.to_string());
        let set = on_b
            .data(SET, json!({ "t": format!("goal {round}") }))
            .await;
        version += 1;
        assert_eq!(set["setGoal"]["version"], version.to_string());
        let goal = set["setGoal"]["goal"]["id"].as_str().unwrap().to_string();
        // A must fold B's goal in: with a stale portal it would not know it.
        let done = on_a.data(ACHIEVE, json!({ "g": goal })).await;
        version += 1;
        assert_eq!(done["achieveGoal"]["version"], version.to_string());
        // And achieving it again through B is refused on B's folded state.
        let again = on_b.error_code(ACHIEVE, json!({ "g": goal })).await;
        assert_eq!(again, "FAILED_PRECONDITION", "round {round}");
    }
    a.stop().await;
    b.stop().await;
}
both_stores!(
    kept_aggregates_fold_what_another_instance_appended,
    two_instances_share_one_portal
);
