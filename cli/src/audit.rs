//! `portal audit verify`: every chain of the access trail against its hashes.

use api::settings::Settings;
use clap::Subcommand;

use crate::Outcome;

#[derive(Subcommand)]
pub enum Command {
    /// Check every chain of the access trail against its hashes; report the
    /// first record where each broken chain breaks. Exits 1 if any does.
    Verify,
}

pub async fn run(command: Command, settings: Settings) -> Outcome {
    let Command::Verify = command;
    api::service::migrate(&settings).await?;
    if !settings.has_trail_key() {
        return Err(format!(
                    "no access-trail key: set PORTAL_TRAIL_KEY or PORTAL_DATA_DIR to the service's ({} does not exist)",
                    settings.store.data_dir.join("trail.key").display()
                )
                .into());
    }
    let db = projections::Db::connect(&settings.store.database_url, 2).await?;
    let trail = api::trail::Trail::new(&settings.resolve_trail_key()?);
    let report = trail.verify(&db).await?;
    for b in &report.breaks {
        println!(
            "BROKEN chain {} at record {} (position {}): {}",
            b.chain, b.sequence, b.position, b.reason
        );
    }
    println!(
        "{} records in {} chains checked: {}",
        report.records,
        report.chains,
        if report.breaks.is_empty() {
            "intact".to_string()
        } else {
            format!("{} broken", report.breaks.len())
        }
    );
    if !report.breaks.is_empty() {
        return Err("the access trail does not verify".into());
    }
    Ok(())
}
