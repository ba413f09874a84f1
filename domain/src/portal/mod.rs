//! The service user's portal: life domains with status ratings, goals and activities.
//!
//! One aggregate per service user (its id is the owner's subject id), so that one
//! person's edits are ordered and checked together while different people never
//! contend.

mod aggregate;
mod commands;
mod errors;
mod events;

pub use aggregate::{Activity, ActivityState, Goal, GoalState, LifeDomain, Portal};
pub use commands::PortalCommand;
pub use errors::{ErrorKind, PortalError};
pub use events::PortalEvent;

/// Limits on portal input, stated once so the schema descriptions can quote them.
pub mod limits {
    /// Longest goal or activity title, in characters.
    pub const TITLE_MAX: usize = 200;
    /// Longest goal description, status note or reason, in characters.
    pub const NOTE_MAX: usize = 2000;
    /// Longest life-domain display name, in characters.
    pub const DOMAIN_NAME_MAX: usize = 60;
    /// Longest life-domain key, in characters (`a-z`, `0-9`, `_`).
    pub const DOMAIN_KEY_MAX: usize = 40;
    /// Most custom life domains per portal.
    pub const CUSTOM_DOMAINS_MAX: usize = 30;
    /// Most goals (of any state) per portal.
    pub const GOALS_MAX: usize = 1000;
    /// Most activities per goal.
    pub const ACTIVITIES_PER_GOAL_MAX: usize = 200;
    /// Lowest and highest status score.
    pub const SCORE_MIN: i32 = 1;
    /// Highest status score.
    pub const SCORE_MAX: i32 = 10;
}

/// The default life domains every portal starts with: (key, display name).
pub const DEFAULT_DOMAINS: &[(&str, &str)] = &[
    ("employment", "Employment"),
    ("education", "Education"),
    ("housing", "Housing"),
    ("economy", "Economy"),
    ("physical_health", "Physical health"),
    ("mental_health", "Mental health"),
    ("social_network", "Social network"),
    ("leisure", "Leisure"),
];
