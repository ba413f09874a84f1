//! `portal research export|plot`: a study's measures as files.

use std::path::PathBuf;

use api::settings::Settings;
use clap::Subcommand;
use uuid::Uuid;

use crate::Outcome;

#[derive(Subcommand)]
pub enum Command {
    /// Draw a study's weekly engagement per module, its retention curve and
    /// its initiation ratio over time, as SVG and PNG. Only reads.
    Plot {
        /// The study's id.
        #[arg(long)]
        study: Uuid,
        /// The time the data is as of (RFC 3339); default now.
        #[arg(long)]
        as_of: Option<chrono::DateTime<chrono::Utc>>,
        /// Folder for the figures (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Write every measure of a study, computed from the events as they stood
    /// at `--as-of`, with pseudonyms, and a manifest. Only reads: point
    /// PORTAL_DATABASE_URL at a read-only replica or a copy.
    Export {
        /// The study's id.
        #[arg(long)]
        study: Uuid,
        /// The time the data is as of (RFC 3339), not in the future: the same
        /// time gives the same files.
        #[arg(long)]
        as_of: chrono::DateTime<chrono::Utc>,
        /// csv or parquet.
        #[arg(long, value_enum, default_value = "csv")]
        format: portal_tools::export::Format,
        /// Folder for the files (created if missing; existing tables replaced).
        #[arg(long)]
        out: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
}

pub async fn run(command: Command, settings: Settings) -> Outcome {
    match command {
        Command::Export {
            study,
            as_of,
            format,
            out,
            quiet,
        } => {
            let request = portal_tools::export::ExportRequest {
                study,
                as_of,
                format,
                out,
                progress: !quiet,
            };
            let summary = portal_tools::export::export(&settings, &request).await?;
            for (file, rows) in &summary.files {
                println!("{file}: {rows} rows");
            }
            println!(
                "{} events read, {} of them up to the as-of time (last position {}), in {:.2} s ({:.0} events/s)",
                summary.events,
                summary.used,
                summary.position,
                summary.seconds,
                summary.events as f64 / summary.seconds.max(1e-9)
            );
        }
        Command::Plot {
            study,
            as_of,
            out,
            quiet,
        } => {
            let request = portal_tools::plot::PlotRequest {
                study,
                as_of: as_of.unwrap_or_else(api::clock::wall),
                out,
                progress: !quiet,
            };
            for path in portal_tools::plot::plot(&settings, &request).await? {
                println!("{}", path.display());
            }
        }
    }
    Ok(())
}
