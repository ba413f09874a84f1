//! The person's rights over their data (issue 18; `docs/privacy.md`).
//!
//! - [`migration`]: the one-time sealing of events written before personal
//!   data was encrypted.
//!
//! The sealing itself is `projections::vault`; which fields are personal is
//! `domain::personal`.

pub mod migration;
