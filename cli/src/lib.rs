//! The `portal` command line: serve, migrate, mint tokens, manage projections.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use api::auth::Role;
use api::service::Service;
use api::settings::Settings;
use clap::{Parser, Subcommand};
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "portal",
    version,
    about = "Event-sourced recovery portal service"
)]
struct Cli {
    /// Settings file (TOML); default `PORTAL_CONFIG` or `./portal.toml` if present.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (migrates first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Mint a bearer token with the configured key, for local use.
    Token {
        /// service_user, provider, moderator, researcher, auditor or admin.
        #[arg(long)]
        role: Role,
        /// The person's id.
        #[arg(long)]
        subject: Uuid,
        /// The person's organisation.
        #[arg(long)]
        org: String,
        /// Lifetime in seconds (default from settings).
        #[arg(long)]
        ttl: Option<i64>,
    },
    /// Inspect or rebuild projections.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Check the access trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Research outputs of a study.
    Research {
        #[command(subcommand)]
        command: ResearchCommand,
    },
    /// Drive a seeded synthetic study through the real command path, at
    /// simulated times (PORTAL_DATABASE_URL names where it goes).
    Simulate {
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
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Measurements used by `ops/bench` (not tests).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Drive a running server with writers and control-panel readers.
    Load {
        /// Base URL of the server, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        url: String,
        /// Concurrent writers, each on its own portal.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Concurrent control-panel readers.
        #[arg(long, default_value_t = 0)]
        readers: usize,
        /// How long to run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// What the writers do: mix, status, medication, network, crisis_plan or exercise.
        #[arg(long, default_value = "mix")]
        kind: String,
        /// Enrol every user in a study first, so every request is also a usage record.
        #[arg(long)]
        enrolled: bool,
    },
    /// Make the research export benchmark's data set in PORTAL_DATABASE_URL:
    /// a cohort through the real command path, then copies of it under new
    /// ids. Prints one JSON line.
    ResearchData {
        /// Service users of the base cohort.
        #[arg(long, default_value_t = 100)]
        users: usize,
        /// Providers of the base cohort.
        #[arg(long, default_value_t = 10)]
        providers: usize,
        /// Months of use.
        #[arg(long, default_value_t = 24)]
        months: u32,
        /// Seed of the simulation.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// How many copies of the cohort to add.
        #[arg(long, default_value_t = 99)]
        copies: usize,
        /// Workers playing the cohort.
        #[arg(long, default_value_t = 8)]
        workers: usize,
        /// Multiply every visit rate of the cohort.
        #[arg(long, default_value_t = 1.0)]
        activity: f64,
    },
    /// Seed one large portal into the store a running server uses, then time
    /// reads as of earlier times.
    AsOf {
        /// Base URL of the server, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        url: String,
        /// How many events the portal has.
        #[arg(long, default_value_t = 10_000)]
        events: usize,
        /// Requests per query.
        #[arg(long, default_value_t = 200)]
        samples: usize,
    },
    /// Time reads of a portal by its owner next to the same reads by a
    /// provider with a grant (each recorded in the access trail).
    Access {
        /// Base URL of the server, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        url: String,
        /// Concurrent readers (each pair: one owner, one provider).
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// How long each phase runs.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Messages with read receipts end to end, and delivery latency to
    /// WebSocket subscribers.
    Messaging {
        /// Base URL of the server, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        url: String,
        /// User-provider pairs, each with a thread; twice as many subscribers.
        #[arg(long, default_value_t = 500)]
        pairs: usize,
        /// Concurrent writers.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// How long to write.
        #[arg(long, default_value_t = 8)]
        seconds: u64,
    },
    /// Append valid portal events in bulk straight into the store.
    Seed {
        /// About how many events.
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Over how many portals.
        #[arg(long, default_value_t = 10_000)]
        portals: usize,
    },
}

#[derive(Subcommand)]
enum ResearchCommand {
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

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every chain of the access trail against its hashes; report the
    /// first record where each broken chain breaks. Exits 1 if any does.
    Verify,
}

#[derive(Subcommand)]
enum ProjectionsCommand {
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

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if settings.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Parses the command line and runs it; `main` of the `portal` binary.
pub fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("portal: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async_main())
}

async fn async_main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(error) => {
            eprintln!("portal: {error}");
            return ExitCode::from(2);
        }
    };
    init_logging(&settings);
    match run(cli.command, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("portal: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(&settings.bind).await?;
            let addr = listener.local_addr()?;
            let service = Arc::new(Service::open(settings).await?);
            println!("portal listening on http://{addr}");
            println!("GraphiQL: http://{addr}/   GraphQL: POST http://{addr}/graphql");
            api::http::serve(service, listener, api::http::shutdown_signal()).await?;
        }
        Command::Migrate => {
            api::service::migrate(&settings).await?;
            println!("migrations applied");
        }
        Command::Token {
            role,
            subject,
            org,
            ttl,
        } => {
            let keys = api::auth::TokenKeys::new(&settings.resolve_token_key()?);
            let ttl = ttl.unwrap_or(settings.token_ttl_seconds as i64);
            println!("{}", keys.mint(subject, role, &org, ttl)?);
        }
        Command::Projections { command } => {
            let service = Service::open(settings).await?;
            match command {
                ProjectionsCommand::Status => {
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
                ProjectionsCommand::Rebuild { name, all } => {
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
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            api::service::migrate(&settings).await?;
            if !settings.has_trail_key() {
                return Err(format!(
                    "no access-trail key: set PORTAL_TRAIL_KEY or PORTAL_DATA_DIR to the service's ({} does not exist)",
                    settings.data_dir.join("trail.key").display()
                )
                .into());
            }
            let db = projections::Db::connect(&settings.database_url, 2).await?;
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
        }
        Command::Research {
            command:
                ResearchCommand::Export {
                    study,
                    as_of,
                    format,
                    out,
                    quiet,
                },
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
        Command::Simulate {
            users,
            providers,
            months,
            seed,
            org,
            start,
            workers,
            activity,
        } => {
            if !(1..=100_000).contains(&users)
                || providers > 100_000
                || !(1..=120).contains(&months)
                || !(0.1..=10.0).contains(&activity)
            {
                return Err(
                    "--users 1-100000, --providers 0-100000, --months 1-120, --activity 0.1-10"
                        .into(),
                );
            }
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
        }
        Command::Research {
            command:
                ResearchCommand::Plot {
                    study,
                    as_of,
                    out,
                    quiet,
                },
        } => {
            let request = portal_tools::plot::PlotRequest {
                study,
                as_of: as_of.unwrap_or_else(api::clock::now),
                out,
                progress: !quiet,
            };
            for path in portal_tools::plot::plot(&settings, &request).await? {
                println!("{}", path.display());
            }
        }
        Command::Schema => print!("{}", api::schema::sdl()),
        Command::Bench { command } => match command {
            BenchCommand::Load {
                url,
                clients,
                readers,
                seconds,
                kind,
                enrolled,
            } => portal_tools::bench::load(
                &settings, &url, clients, readers, seconds, &kind, enrolled,
            )
            .await
            .map_err(|e| e.to_string())?,
            BenchCommand::Access {
                url,
                clients,
                seconds,
            } => portal_tools::bench::access(&settings, &url, clients, seconds)
                .await
                .map_err(|e| e.to_string())?,
            BenchCommand::Messaging {
                url,
                pairs,
                clients,
                seconds,
            } => portal_tools::bench::messaging(&settings, &url, pairs, clients, seconds)
                .await
                .map_err(|e| e.to_string())?,
            BenchCommand::Seed { events, portals } => {
                let spacing = chrono::Duration::milliseconds(1);
                portal_tools::bench::seed(&settings, events, portals, spacing)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            BenchCommand::ResearchData {
                users,
                providers,
                months,
                seed,
                copies,
                workers,
                activity,
            } => {
                let base = portal_tools::simulate::SimulateRequest {
                    users,
                    providers,
                    months,
                    seed,
                    organisation: "bench".into(),
                    start: None,
                    workers: workers.clamp(1, 64),
                    activity: activity.clamp(0.1, 10.0),
                };
                let made =
                    portal_tools::bench_research::research_data(settings, base, copies).await?;
                println!("{}", serde_json::to_string(&made)?);
            }
            BenchCommand::AsOf {
                url,
                events,
                samples,
            } => portal_tools::bench::as_of(&settings, &url, events, samples)
                .await
                .map_err(|e| e.to_string())?,
        },
    }
    Ok(())
}
