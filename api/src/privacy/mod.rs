//! The person's rights over their data (issue 18; `docs/privacy.md`).
//!
//! - [`migration`]: the one-time sealing of events written before personal
//!   data was encrypted.
//! - [`erasure`]: asking for, cancelling, ordering and carrying out erasures;
//!   [`ledger`]: the erasure ledger outside the database.
//!
//! The sealing itself is `projections::vault`; which fields are personal is
//! `domain::personal`.

pub mod erasure;
pub mod ledger;
pub mod migration;
