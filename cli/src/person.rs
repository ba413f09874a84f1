//! `portal person export|export-schema`: everything the service holds about
//! one person, in one archive, for the operators who answer a request the
//! person made outside the portal (GDPR art. 15 and 20). The person's own
//! way is `requestDataExport` in the API.

use std::path::PathBuf;

use api::privacy::archive;
use api::settings::Settings;
use clap::Subcommand;
use uuid::Uuid;

use crate::Outcome;

#[derive(Subcommand)]
pub enum Command {
    /// Write a person's data export (a ZIP file: JSON following the schema,
    /// a CSV file per part). The reading is recorded in the access trail
    /// before the file is written: as the organisation's (an admin's, with
    /// the nil id) with the reason given.
    Export {
        /// The person's id.
        #[arg(long)]
        person: Uuid,
        /// Their organisation (identity is scoped to it).
        #[arg(long)]
        organisation: String,
        /// Why the operator reads it (recorded, sealed with the person's key).
        #[arg(long)]
        reason: String,
        /// The file to write; it must not exist.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the export's JSON Schema (`docs/person-export.schema.json`).
    ExportSchema,
}

pub async fn run(command: Command, settings: Settings) -> Outcome {
    match command {
        Command::ExportSchema => {
            println!("{}", serde_json::to_string_pretty(&archive::json_schema())?);
            Ok(())
        }
        Command::Export {
            person,
            organisation,
            reason,
            out,
        } => {
            let reason = reason.trim();
            if reason.is_empty() || reason.len() > 500 {
                return Err("--reason: say in 1-500 characters why the data is read".into());
            }
            if out.exists() {
                return Err(format!("{} exists: choose a new file", out.display()).into());
            }
            let service = api::service::Service::open(settings).await?;
            if service
                .erasure(&organisation, person)
                .await?
                .erased
                .is_some()
            {
                return Err("this person was erased: there is no data of theirs to export".into());
            }
            let now = api::clock::wall();
            let gathered = archive::gather(
                &service.db,
                person,
                &organisation,
                now,
                archive::OPERATOR_MAX_BYTES,
                &|_| {},
            )
            .await?;
            let mut record = api::privacy::export::own_reading(
                person,
                "admin",
                &organisation,
                "portal person export",
                &Uuid::new_v4().to_string(),
                None,
                now,
            );
            record.reader_id = Uuid::nil();
            record.basis = domain::trail::Basis::Admin;
            record.detail = Some(reason.to_string());
            service.record_reading(record).await?;
            let bytes = archive::to_zip(&gathered)?;
            api::settings::write_private(&out, &bytes)
                .map_err(|e| format!("{}: {e}", out.display()))?;
            println!(
                "{}: {} records of {} events read (as of position {}), {} bytes",
                out.display(),
                gathered.records(),
                gathered.events_scanned,
                gathered.last_position,
                bytes.len()
            );
            Ok(())
        }
    }
}
