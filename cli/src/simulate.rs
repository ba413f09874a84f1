//! `portal simulate`: a seeded synthetic study through the real command
//! path, at simulated times.

use std::sync::Arc;

use api::service::Service;
use api::settings::Settings;

use crate::Outcome;

#[derive(clap::Args)]
pub struct Args {
    /// Service users.
    #[arg(long, default_value_t = 29)]
    users: usize,
    /// Providers.
    #[arg(long, default_value_t = 27)]
    providers: usize,
    /// Months of use (30 days each), ending now unless --start is given.
    #[arg(long, default_value_t = 6)]
    months: u32,
    /// Seed: the same seed gives the same people and actions.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Organisation.
    #[arg(long, default_value = "simulated")]
    org: String,
    /// First day (YYYY-MM-DD).
    #[arg(long)]
    start: Option<chrono::NaiveDate>,
    /// Play groups of providers and their users at once (1: one order).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Multiply every visit rate (an engaged cohort: 2).
    #[arg(long, default_value_t = 1.0)]
    activity: f64,
}

pub async fn run(args: Args, settings: Settings) -> Outcome {
    let Args {
        users,
        providers,
        months,
        seed,
        org,
        start,
        workers,
        activity,
    } = args;
    if !(1..=100_000).contains(&users)
        || providers > 100_000
        || !(1..=120).contains(&months)
        || !(0.1..=10.0).contains(&activity)
    {
        return Err(portal_tools::Error::Input(
            "--users 1-100000, --providers 0-100000, --months 1-120, --activity 0.1-10".into(),
        )
        .into());
    }
    // A synthetic cohort played at simulated times, as fast as it goes: the
    // per-person write limit (wall-clock) is for people, not for this.
    let mut settings = settings;
    settings.server.writes_per_minute = 0;
    settings.server.refusals_per_minute = 0;
    let service = Arc::new(Service::open(settings).await?);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runners = service.engine.spawn(stopped);
    let request = portal_tools::simulate::SimulateRequest {
        users,
        providers,
        months,
        seed,
        organisation: org,
        start,
        workers: workers.clamp(1, 64),
        activity,
    };
    let result = portal_tools::simulate::run(Arc::clone(&service), &request).await;
    let _ = stop.send(true);
    for runner in runners {
        let _ = runner.await;
    }
    let summary = result?;
    println!("study {}", summary.study_id);
    println!("researcher {}", summary.researcher_id);
    println!(
        "{} operations in {:.1} s; refused: {:?}",
        summary.operations, summary.seconds, summary.refused
    );
    Ok(())
}
