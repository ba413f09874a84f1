//! The write side of Portal: aggregates, their commands, events and rules.
//!
//! Nothing here performs IO or reads the clock: ids and times arrive inside the
//! commands, so every rule is a pure function that a given/when/then test can pin.
#![forbid(unsafe_code)]

pub mod agreement;
pub mod care;
pub mod catalogue;
pub mod portal;
pub mod text;
pub mod trail;
