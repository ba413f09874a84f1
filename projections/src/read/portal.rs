//! An open portal, found within an organisation. [`Portal`] can only be made
//! by [`locate`] with a [`Scope`], and every reader of a portal's sections
//! takes one: a portal of another organisation cannot be read by mistake.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{text, time, Scope};
use crate::control_panel;
use crate::db::{Db, DbError};
use crate::engine::Engine;

/// An open portal of the scope's organisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Portal {
    id: Uuid,
    organisation: String,
    opened_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
    erased_at: Option<DateTime<Utc>>,
}

impl Portal {
    /// When its owner was erased (issue 18): every reader of it then
    /// answers as of an empty portal.
    pub fn erased_at(&self) -> Option<DateTime<Utc>> {
        self.erased_at
    }

    /// The portal (its owner's subject id).
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The organisation it belongs to (the scope it was found in).
    pub fn organisation(&self) -> &str {
        &self.organisation
    }

    pub fn opened_at(&self) -> DateTime<Utc> {
        self.opened_at
    }

    /// When anything in it last changed.
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }

    /// The sequence number of its latest event.
    pub fn version(&self) -> i64 {
        self.version
    }
}

/// Where a portal id was found.
#[derive(Debug, Clone, PartialEq)]
pub enum Located {
    /// Open, in the scope's organisation.
    Here(Portal),
    /// Open, in another organisation: only its name, for the access rules
    /// (which refuse, and say so only to the owner).
    Elsewhere { organisation: String },
    /// Not open anywhere.
    Nowhere,
}

/// Finds portal `id`, telling whether it is in `scope`'s organisation.
pub async fn locate(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    id: Uuid,
) -> Result<Located, DbError> {
    let changes = engine.changes(control_panel::NAME);
    let kept = changes.and_then(|c| engine.kept.get::<Portal>(c, id));
    let portal = match kept {
        Some(portal) => portal,
        None => {
            let stamp = changes.map(|c| c.stamp());
            let Some(portal) = read_portal(engine, db, id).await? else {
                return Ok(Located::Nowhere);
            };
            let portal = std::sync::Arc::new(portal);
            if let Some(stamp) = stamp {
                engine.kept.keep(id, stamp, std::sync::Arc::clone(&portal));
            }
            portal
        }
    };
    if portal.organisation != scope.organisation {
        return Ok(Located::Elsewhere {
            organisation: portal.organisation.clone(),
        });
    }
    Ok(Located::Here(Portal::clone(&portal)))
}

/// The portal's row, whatever its organisation.
async fn read_portal(engine: &Engine, db: &Db, id: Uuid) -> Result<Option<Portal>, DbError> {
    let table = engine.table(control_panel::NAME, "cp_portals");
    let row = sqlx::query(&format!(
        "SELECT organisation, opened_at, updated_at, version, erased_at FROM {table} WHERE portal_id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(Portal {
        id,
        organisation: text(&row, &table, "organisation")?,
        opened_at: time(&row, &table, "opened_at")?,
        updated_at: time(&row, &table, "updated_at")?,
        version: super::int(&row, &table, "version")?,
        erased_at: super::opt_time(&row, &table, "erased_at")?,
    }))
}

/// The organisation portal `id` is open in, if it is open: for the checks
/// that compare it with a caller's (the one read that is not scoped, since
/// finding the scope is its purpose).
pub async fn organisation_of(
    engine: &Engine,
    db: &Db,
    id: Uuid,
) -> Result<Option<String>, DbError> {
    let table = engine.table(control_panel::NAME, "cp_portals");
    let row = sqlx::query(&format!(
        "SELECT organisation FROM {table} WHERE portal_id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(&db.pool)
    .await?;
    row.map(|row| text(&row, &table, "organisation"))
        .transpose()
}
