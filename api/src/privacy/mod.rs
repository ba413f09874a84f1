//! The person's rights over their data (issue 18; `docs/privacy.md`).
//!
//! - [`erasure`]: asking for, cancelling, ordering and carrying out erasures;
//!   [`ledger`]: the erasure ledger outside the database.
//!
//! The sealing itself is `projections::vault`; which fields are personal is
//! `domain::personal`; the one-time sealing of a store written before is
//! `crate::encryption_migration` (below the service, which runs it at start).

pub mod erasure;
pub mod ledger;
