//! `portal projections status|rebuild`.

use api::service::Service;
use api::settings::Settings;
use clap::Subcommand;

use crate::Outcome;

#[derive(Subcommand)]
pub enum Command {
    /// Show each projection's slot, checkpoint and lag.
    Status,
    /// Rebuild from position 0 into a fresh slot, then switch to it.
    Rebuild {
        /// Projection name.
        name: Option<String>,
        /// Rebuild every projection.
        #[arg(long)]
        all: bool,
    },
}

pub async fn run(command: Command, settings: Settings) -> Outcome {
    let service = Service::open(settings).await?;
    match command {
        Command::Status => {
            println!(
                "{:<16} {:>4} {:>7} {:>12} {:>12} {:>10}  updated",
                "projection", "slot", "version", "position", "applied", "lag"
            );
            for s in service.engine.status().await? {
                println!(
                    "{:<16} {:>4} {:>7} {:>12} {:>12} {:>10}  {}",
                    s.name,
                    s.active_slot,
                    s.version,
                    s.checkpoint.position,
                    s.events_applied,
                    s.lag_events,
                    s.updated_at
                );
            }
        }
        Command::Rebuild { name, all } => {
            let names: Vec<String> = match (name, all) {
                (_, true) => service
                    .engine
                    .names()
                    .into_iter()
                    .map(String::from)
                    .collect(),
                (Some(name), false) => vec![name],
                (None, false) => return Err("name a projection or pass --all".into()),
            };
            for name in names {
                let started = std::time::Instant::now();
                let events = service.engine.rebuild(&name).await?;
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "rebuilt {name}: {events} events in {secs:.2}s ({:.0} events/s)",
                    events as f64 / secs.max(1e-9)
                );
            }
        }
    }
    Ok(())
}
