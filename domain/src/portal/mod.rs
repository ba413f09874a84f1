//! The service user's portal: life domains with status ratings, goals and
//! activities, and the toolbox (medications, network map, crisis plan, exercises).
//!
//! One aggregate per service user (its id is the owner's subject id), so that one
//! person's edits are ordered and checked together while different people never
//! contend.

mod aggregate;
mod commands;
mod errors;
mod events;
mod items;
pub mod limits;
mod toolbox;
pub mod view;

pub use crate::refusal::ErrorKind;
pub use aggregate::{Activity, ActivityState, Goal, GoalState, LifeDomain, Portal};
pub use commands::PortalCommand;
pub use errors::PortalError;
pub use events::{PortalEvent, Section, PERSONAL_DATA};
pub use items::{
    checked_plan, CrisisContact, CrisisPlan, Medication, MedicationState, Person, PersonDetails,
    RelationKind, SupportKind,
};
pub use limits::DEFAULT_DOMAINS;
