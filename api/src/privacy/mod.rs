//! The person's rights over their data (issue 18; `docs/privacy.md`).
//!
//! - [`erasure`]: asking for, cancelling, ordering and carrying out erasures;
//!   [`ledger`]: the erasure ledger outside the database.
//! - [`export`]: a person's data export as a job they follow, with an
//!   expiring download link (the jobs' registry is `crate::export_jobs`,
//!   below the service); [`archive`]: what the archive holds and how it is
//!   written (JSON with its schema, CSV per part, in a ZIP file).
//!
//! The sealing itself is `projections::vault`; which fields are personal is
//! `domain::personal`; the one-time sealing of a store written before is
//! `crate::encryption_migration` (below the service, which runs it at start).

pub mod archive;
pub mod erasure;
pub mod export;
pub mod ledger;
