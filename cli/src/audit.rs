//! `portal audit verify`: every chain of the access trail against its seals,
//! the access log against the chains, and (with `--witness`) the store
//! against the witness's signed checkpoints.

use std::path::PathBuf;

use api::settings::Settings;
use clap::Subcommand;

use crate::Outcome;

#[derive(Subcommand)]
pub enum Command {
    /// Check every chain of the access trail against its seals and the
    /// access log against the chains; report the first record where each
    /// broken chain breaks. Exits 1 if anything does not hold.
    Verify {
        /// Also check that every record the witness in this folder signed is
        /// in the store as signed (catches removed tails, rewritten chains and
        /// dropped tables, even by someone holding the trail key).
        #[arg(long)]
        witness: Option<PathBuf>,
        /// The witness's public key (hex), as published by `GET
        /// /trail/witness`; by default the folder's `witness.pub`, which
        /// proves less (whoever rewrote the folder could replace it).
        #[arg(long, requires = "witness")]
        public_key: Option<String>,
    },
}

pub async fn run(command: Command, settings: Settings) -> Outcome {
    let Command::Verify {
        witness,
        public_key,
    } = command;
    api::service::migrate(&settings).await?;
    if !settings.has_trail_key() {
        return Err(format!(
                    "no access-trail key: set PORTAL_TRAIL_KEY or PORTAL_DATA_DIR to the service's ({} does not exist)",
                    settings.store.data_dir.join("trail.key").display()
                )
                .into());
    }
    let history = match &witness {
        Some(dir) => {
            let hex =
                match public_key {
                    Some(hex) => hex,
                    None => std::fs::read_to_string(dir.join(api::witness::PUBLIC_KEY)).map_err(
                        |e| format!("{}: {e}", dir.join(api::witness::PUBLIC_KEY).display()),
                    )?,
                };
            let key = api::witness::public_key(&hex).map_err(|e| format!("public key: {e}"))?;
            let history = api::witness::History::load(dir, &key, true)?;
            if history.unreadable > 0 {
                println!(
                    "NOTE {} line(s) of the witness file are not checkpoints (a write cut short by a crash)",
                    history.unreadable
                );
            }
            if history.checkpoints.is_empty() && history.problems.is_empty() {
                return Err(format!("{} holds no checkpoints", dir.display()).into());
            }
            Some(history)
        }
        None => None,
    };
    let db = projections::Db::connect(&settings.store.database_url, 2).await?;
    // With the master key, sealed details are compared too (never made here).
    if settings.has_master_key() {
        db.vault.unlock(projections::vault::MasterKey::derive(
            settings.resolve_master_key()?.expose(),
        ));
    }
    let key = settings.resolve_trail_key()?;
    let report = api::verify::verify_with(key.expose().as_bytes(), &db, history.as_ref()).await?;
    for problem in &report.witness {
        println!("WITNESS {problem}");
    }
    for (number, lost) in &report.accepted_losses {
        println!(
            "ACCEPTED LOSS checkpoint {number} signed that {lost} witnessed record(s) were gone when the service was started anyway"
        );
    }
    for b in &report.breaks {
        println!(
            "BROKEN chain {} at record {} (position {}): {}",
            b.chain, b.sequence, b.position, b.reason
        );
    }
    for m in &report.log {
        println!(
            "ACCESS LOG position {} (chain {} record {}): {}",
            m.position, m.chain, m.sequence, m.reason
        );
    }
    let witnessed = match &history {
        Some(h) => format!(", against {} witnessed checkpoint(s)", h.checkpoints.len()),
        None => String::new(),
    };
    println!(
        "{} records in {} chains checked{witnessed}: {}",
        report.records,
        report.chains,
        if report.intact() {
            "intact".to_string()
        } else {
            format!(
                "{} broken, {} access-log row(s) wrong, {} witness problem(s)",
                report.breaks.len(),
                report.log.len(),
                report.witness.len()
            )
        }
    );
    if !report.intact() {
        return Err("the access trail does not verify".into());
    }
    Ok(())
}
