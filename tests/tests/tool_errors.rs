//! The tools fail honestly: a bad argument, a study that is not there or a
//! folder that cannot be written ends the command with a non-zero exit and
//! a message naming the problem (never the service's "internal error").
#![allow(clippy::unwrap_used)]

use portal_tests::*;
use uuid::Uuid;

/// Runs `portal args`, which must fail; its stderr.
async fn fails(db: &TestDb, args: &[&str]) -> String {
    let (ok, out, err) = portal_cli_status(db, args).await;
    assert!(!ok, "portal {args:?} succeeded: {out}");
    assert!(
        !err.contains("internal error"),
        "the detail is shown, not hidden: {err}"
    );
    err
}

async fn tool_errors(store: Store) {
    let db = fresh_db(store).await;
    portal_cli(&db, &["migrate"]).await;
    let as_of = chrono::Utc::now().to_rfc3339();
    let out = db.dir.join("out");
    let out = out.to_str().unwrap();

    // No research key yet: say where one comes from.
    let missing = Uuid::new_v4().to_string();
    let export = |study: &str, out: &str| {
        [
            "research", "export", "--study", study, "--as-of", &as_of, "--out", out, "--quiet",
        ]
        .map(str::to_string)
    };
    let args = export(&missing, out);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = fails(&db, &args).await;
    assert!(
        err.contains("no research key") && err.contains("PORTAL_RESEARCH_KEY"),
        "{err}"
    );
    assert!(!db.dir.join("out").exists(), "nothing was written");

    // A study that does not exist is named, with the argument to check.
    let study = portal_cli(
        &db,
        &[
            "simulate",
            "--users",
            "2",
            "--providers",
            "1",
            "--months",
            "1",
        ],
    )
    .await;
    let study = study
        .lines()
        .find_map(|l| l.strip_prefix("study "))
        .unwrap()
        .trim()
        .to_string();
    let err = fails(&db, &args).await;
    assert!(
        err.contains(&format!("no study {missing}")) && err.contains("--study"),
        "{err}"
    );

    // An --out that cannot be a folder: the path and the reason.
    let blocker = db.dir.join("a-file");
    std::fs::write(&blocker, "not a folder").unwrap();
    let unwritable = blocker.join("out");
    let args = export(&study, unwritable.to_str().unwrap());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = fails(&db, &args).await;
    assert!(
        err.contains(&unwritable.display().to_string()) && err.contains("directory"),
        "{err}"
    );
    let err = fails(
        &db,
        &[
            "research",
            "plot",
            "--study",
            &study,
            "--out",
            unwritable.to_str().unwrap(),
            "--quiet",
        ],
    )
    .await;
    assert!(
        err.contains(&unwritable.display().to_string()) && err.contains("directory"),
        "{err}"
    );
    // The same study exports once the folder can be made.
    let args = export(&study, out);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    portal_cli(&db, &args).await;
    assert!(db.dir.join("out").join("manifest.json").exists());

    // A bad argument of the simulation says what is allowed.
    let err = fails(&db, &["simulate", "--users", "0"]).await;
    assert!(err.contains("--users 1-100000"), "{err}");
}

both_stores!(research_export_and_simulate_errors_are_named, tool_errors);
