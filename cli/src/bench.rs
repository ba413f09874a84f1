//! `portal bench ...`: the measurements `ops/bench` takes (not tests).

use api::settings::Settings;
use clap::Subcommand;

use crate::Outcome;

#[derive(Subcommand)]
pub enum Command {
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
    /// A provider's FHIR search of a patient's Goals beside the GraphQL
    /// read of the same goals, and `me` (the cheapest query).
    Fhir {
        /// Base URL of the server, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        url: String,
        /// Concurrent readers (each a provider of their own patient).
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// How long each read runs.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Goals per patient (two activities each).
        #[arg(long, default_value_t = 20)]
        goals: usize,
    },
    /// Token checks per second: the local HS256 key beside an identity
    /// provider's EdDSA and ES256 tokens with its keys cached (in process).
    Tokens {
        /// How long each kind runs.
        #[arg(long, default_value_t = 3)]
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
    /// Append a forum of many topics and posts straight into the store,
    /// and print each member's token and 50 topics (for `ops/wrk.lua`).
    ForumSeed {
        /// Topics.
        #[arg(long, default_value_t = 10_000)]
        topics: usize,
        /// Posts, the topics' opening posts included.
        #[arg(long, default_value_t = 200_000)]
        posts: usize,
        /// Members (service users with a forum name) writing them.
        #[arg(long, default_value_t = 64)]
        members: usize,
        /// The organisation.
        #[arg(long, default_value = "bench")]
        org: String,
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

pub async fn run(command: Command, settings: Settings) -> Outcome {
    match command {
        Command::Load {
            url,
            clients,
            readers,
            seconds,
            kind,
            enrolled,
        } => {
            portal_tools::bench::load(&settings, &url, clients, readers, seconds, &kind, enrolled)
                .await?
        }
        Command::Access {
            url,
            clients,
            seconds,
        } => portal_tools::bench::access(&settings, &url, clients, seconds).await?,
        Command::Fhir {
            url,
            clients,
            seconds,
            goals,
        } => portal_tools::bench_fhir::fhir(&settings, &url, clients, seconds, goals).await?,
        Command::Tokens { seconds } => portal_tools::bench_fhir::tokens(seconds).await?,
        Command::Messaging {
            url,
            pairs,
            clients,
            seconds,
        } => portal_tools::bench::messaging(&settings, &url, pairs, clients, seconds).await?,
        Command::ForumSeed {
            topics,
            posts,
            members,
            org,
        } => {
            portal_tools::bench_forum::forum_seed(&settings, &org, topics, posts, members).await?;
        }
        Command::Seed { events, portals } => {
            let spacing = chrono::Duration::milliseconds(1);
            portal_tools::bench::seed(&settings, events, portals, spacing).await?;
        }
        Command::ResearchData {
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
            let made = portal_tools::bench_research::research_data(settings, base, copies).await?;
            println!("{}", serde_json::to_string(&made)?);
        }
        Command::AsOf {
            url,
            events,
            samples,
        } => portal_tools::bench::as_of(&settings, &url, events, samples).await?,
    }
    Ok(())
}
