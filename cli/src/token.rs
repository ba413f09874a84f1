//! `portal token`: a bearer token minted with the configured key.

use api::auth::Role;
use api::settings::Settings;
use uuid::Uuid;

use crate::Outcome;

#[derive(clap::Args)]
pub struct Args {
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
    /// SMART on FHIR scopes for the FHIR facade, space-separated
    /// (`user/*.rs`, `patient/Goal.rs`); none when omitted.
    #[arg(long)]
    scope: Option<String>,
    /// With --scope: the patient (person id) the token's `patient/` scopes
    /// reach (SMART's launch context).
    #[arg(long, requires = "scope")]
    patient: Option<Uuid>,
}

pub fn run(args: Args, settings: Settings) -> Outcome {
    let keys = api::auth::TokenKeys::new(&settings.resolve_token_key()?);
    let ttl = args
        .ttl
        .unwrap_or(i64::try_from(settings.tokens.ttl.as_secs()).unwrap_or(i64::MAX));
    let token = match &args.scope {
        Some(scope) => {
            keys.mint_scoped(args.subject, args.role, &args.org, ttl, scope, args.patient)?
        }
        None => keys.mint(args.subject, args.role, &args.org, ttl)?,
    };
    println!("{token}");
    Ok(())
}
