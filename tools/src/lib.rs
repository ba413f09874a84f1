//! Tools beside the service, kept out of the crate that serves GraphQL:
//! the research export and plots, the seeded simulation, and the
//! benchmarks. The `portal` command line offers them as subcommands.
#![forbid(unsafe_code)]
// The schema's merged `Mutation` (one part per module) nests deep enough in
// async-graphql's resolver futures to pass the default limit in release builds.
#![recursion_limit = "256"]

pub mod bench;
pub mod bench_fhir;
pub mod bench_forum;
pub mod bench_research;
pub mod error;
pub mod export;
pub mod plot;
pub mod simulate;

pub use error::{Error, Result};
