//! The `portal` command line: the service and every tool beside it, one
//! file per subcommand.
#![forbid(unsafe_code)]
// See `portal_tools`: the merged schema nests deeper than the default limit in release builds.
#![recursion_limit = "256"]

use std::path::PathBuf;
use std::process::ExitCode;

use api::settings::Settings;
use clap::{Parser, Subcommand};

mod audit;
mod bench;
mod person;
mod projections;
mod research;
mod serve;
mod simulate;
mod token;

/// What a subcommand returns: an error is printed and exits 1.
type Outcome = Result<(), Box<dyn std::error::Error>>;

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
    Token(token::Args),
    /// Inspect or rebuild projections.
    Projections {
        #[command(subcommand)]
        command: projections::Command,
    },
    /// Check the access trail.
    Audit {
        #[command(subcommand)]
        command: audit::Command,
    },
    /// A person's data, in one archive.
    Person {
        #[command(subcommand)]
        command: person::Command,
    },
    /// Research outputs of a study.
    Research {
        #[command(subcommand)]
        command: research::Command,
    },
    /// Drive a seeded synthetic study through the real command path, at
    /// simulated times (PORTAL_DATABASE_URL names where it goes).
    Simulate(simulate::Args),
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Measurements used by `ops/bench` (not tests).
    Bench {
        #[command(subcommand)]
        command: bench::Command,
    },
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if settings.log.format == "json" {
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

async fn run(command: Command, settings: Settings) -> Outcome {
    match command {
        Command::Serve => serve::serve(settings).await,
        Command::Migrate => serve::migrate(settings).await,
        Command::Token(args) => token::run(args, settings),
        Command::Projections { command } => projections::run(command, settings).await,
        Command::Audit { command } => audit::run(command, settings).await,
        Command::Research { command } => research::run(command, settings).await,
        Command::Person { command } => person::run(command, settings).await,
        Command::Simulate(args) => simulate::run(args, settings).await,
        Command::Schema => {
            print!("{}", api::schema::sdl());
            Ok(())
        }
        Command::Bench { command } => bench::run(command, settings).await,
    }
}
