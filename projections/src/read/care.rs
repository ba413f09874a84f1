//! The care relationships of a person, with the providers' profiles and the
//! grants: two queries whatever the number of relationships (the grants of
//! all of them in one, grouped here).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::portal::Section;
use uuid::Uuid;

use super::{malformed, opt_text, opt_time, text, time, uuid, Scope};
use crate::db::{Db, DbError};
use crate::engine::Engine;

/// Whose relationships.
#[derive(Debug, Clone, Copy)]
pub enum Party {
    /// The service user's team.
    User(Uuid),
    /// The provider's relationships.
    Provider(Uuid),
}

/// A provider's profile as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderRow {
    pub display_name: String,
    pub profession: domain::care::Profession,
    pub registered_at: DateTime<Utc>,
}

/// A grant as stored (expired ones included: the caller decides at its time).
#[derive(Debug, Clone, PartialEq)]
pub struct GrantRow {
    pub section: Section,
    pub granted_at: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

/// A relationship as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationshipRow {
    pub relationship_id: Uuid,
    pub user_id: Uuid,
    pub provider_id: Uuid,
    pub state: domain::care::RelationshipState,
    /// The side that invited.
    pub invited_by: domain::care::Side,
    pub invited_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub since: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub break_glass_until: Option<DateTime<Utc>>,
    pub provider: Option<ProviderRow>,
    /// By section, in the order of `Section::ALL`.
    pub grants: Vec<GrantRow>,
}

/// Most relationships one list returns.
pub const RELATIONSHIPS_MAX: i64 = 1000;

/// The relationships of `party` within `scope`, oldest invitation first;
/// declined and ended ones only with `include_closed`.
pub async fn relationships(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    party: Party,
    include_closed: bool,
) -> Result<Vec<RelationshipRow>, DbError> {
    let (rels, providers, grants) = (
        engine.table(crate::care::NAME, "care_relationships"),
        engine.table(crate::care::NAME, "care_providers"),
        engine.table(crate::care::NAME, "care_grants"),
    );
    let (column, person) = match party {
        Party::User(id) => ("r.user_id", id),
        Party::Provider(id) => ("r.provider_id", id),
    };
    let closed = if include_closed {
        ""
    } else {
        " AND r.state IN ('invited', 'active')"
    };
    let selected = format!("{column} = $1 AND r.organisation = $2{closed}");
    let rows = sqlx::query(&format!(
        "SELECT r.relationship_id, r.user_id, r.provider_id, r.state, r.invited_by, \
         r.invited_at, r.expires_at, r.since, r.ended_at, r.break_glass_until, \
         p.display_name, p.profession, p.registered_at \
         FROM {rels} r LEFT JOIN {providers} p ON p.provider_id = r.provider_id \
         WHERE {selected} ORDER BY r.invited_at, r.relationship_id LIMIT {RELATIONSHIPS_MAX}"
    ))
    .bind(person.to_string())
    .bind(scope.organisation)
    .fetch_all(&db.pool)
    .await?;
    let grant_rows = sqlx::query(&format!(
        "SELECT g.relationship_id, g.section, g.granted_at, g.until FROM {grants} g \
         JOIN {rels} r ON r.relationship_id = g.relationship_id WHERE {selected}"
    ))
    .bind(person.to_string())
    .bind(scope.organisation)
    .fetch_all(&db.pool)
    .await?;
    let mut grants_of: HashMap<Uuid, Vec<GrantRow>> = HashMap::new();
    for g in &grant_rows {
        let name = text(g, &grants, "section")?;
        let section = Section::parse(&name)
            .ok_or_else(|| malformed(&grants, "section", format!("unknown section `{name}`")))?;
        grants_of
            .entry(uuid(g, &grants, "relationship_id")?)
            .or_default()
            .push(GrantRow {
                section,
                granted_at: time(g, &grants, "granted_at")?,
                until: opt_time(g, &grants, "until")?,
            });
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let relationship_id = uuid(row, &rels, "relationship_id")?;
        let provider = match opt_text(row, &providers, "display_name")? {
            Some(display_name) => Some(ProviderRow {
                display_name,
                profession: super::named(row, &providers, "profession")?,
                registered_at: time(row, &providers, "registered_at")?,
            }),
            None => None,
        };
        let mut grants = grants_of.remove(&relationship_id).unwrap_or_default();
        grants.sort_by_key(|g| g.section.index());
        out.push(RelationshipRow {
            relationship_id,
            user_id: uuid(row, &rels, "user_id")?,
            provider_id: uuid(row, &rels, "provider_id")?,
            state: super::named(row, &rels, "state")?,
            invited_by: super::named(row, &rels, "invited_by")?,
            invited_at: time(row, &rels, "invited_at")?,
            expires_at: opt_time(row, &rels, "expires_at")?,
            since: opt_time(row, &rels, "since")?,
            ended_at: opt_time(row, &rels, "ended_at")?,
            break_glass_until: opt_time(row, &rels, "break_glass_until")?,
            provider,
            grants,
        });
    }
    Ok(out)
}

/// A provider registered in the organisation.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRow {
    pub provider_id: Uuid,
    pub profile: ProviderRow,
}

/// Most providers one list returns.
pub const PROVIDERS_MAX: i64 = 1000;

/// The providers registered in `scope`'s organisation, by name.
pub async fn providers(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
) -> Result<Vec<ProfileRow>, DbError> {
    let table = engine.table(crate::care::NAME, "care_providers");
    let rows = sqlx::query(&format!(
        "SELECT provider_id, display_name, profession, registered_at FROM {table} \
         WHERE organisation = $1 ORDER BY display_name, provider_id LIMIT {PROVIDERS_MAX}"
    ))
    .bind(scope.organisation)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ProfileRow {
                provider_id: uuid(row, &table, "provider_id")?,
                profile: ProviderRow {
                    display_name: text(row, &table, "display_name")?,
                    profession: super::named(row, &table, "profession")?,
                    registered_at: time(row, &table, "registered_at")?,
                },
            })
        })
        .collect()
}

/// A break-glass opening as stored: the relationship's parties and the event.
#[derive(Debug, Clone, PartialEq)]
pub struct OpeningRow {
    pub relationship_id: Uuid,
    pub user_id: Uuid,
    pub provider_id: Uuid,
    /// Sequence number of the `BreakGlassOpened` event in its relationship.
    pub sequence: i64,
    pub event: domain::care::CareEvent,
}

/// Every break-glass opening in relationships of `scope`'s organisation (of
/// one provider, if given), oldest first, reading the relationships' own
/// events (the projection only names the relationships).
pub async fn break_glass_openings(
    engine: &Engine,
    db: &Db,
    scope: Scope<'_>,
    provider: Option<Uuid>,
) -> Result<Vec<OpeningRow>, DbError> {
    let rels = engine.table(crate::care::NAME, "care_relationships");
    let payload = db.backend.json_text("e.payload");
    let rows = sqlx::query(&format!(
        "SELECT r.relationship_id, r.user_id, r.provider_id, e.sequence, {payload} AS payload \
         FROM {rels} r JOIN events e ON e.aggregate_type = $1 AND e.aggregate_id = r.relationship_id \
         WHERE r.organisation = $2 AND e.event_type = 'BreakGlassOpened' \
           AND ($3 = '' OR r.provider_id = $3) \
         ORDER BY e.position"
    ))
    .bind(domain::care::RELATIONSHIP_TYPE)
    .bind(scope.organisation)
    .bind(provider.map(|p| p.to_string()).unwrap_or_default())
    .fetch_all(&db.pool)
    .await?;
    let mut read = rows
        .iter()
        .map(|row| {
            Ok((
                uuid(row, &rels, "relationship_id")?,
                uuid(row, &rels, "user_id")?,
                uuid(row, &rels, "provider_id")?,
                sqlx::Row::try_get::<i64, _>(row, "sequence")?,
                sqlx::Row::try_get::<String, _>(row, "payload")?,
            ))
        })
        .collect::<Result<Vec<_>, DbError>>()?;
    // The reason is the provider's words, sealed (`crate::vault`).
    let ids: Vec<String> = read.iter().map(|r| r.0.to_string()).collect();
    let mut items: Vec<(crate::vault::Ident<'_>, &mut String)> = read
        .iter_mut()
        .zip(&ids)
        .map(|(r, id)| {
            (
                crate::vault::Ident {
                    aggregate_type: domain::care::RELATIONSHIP_TYPE,
                    aggregate_id: id,
                    sequence: r.3,
                    event_type: "BreakGlassOpened",
                },
                &mut r.4,
            )
        })
        .collect();
    db.vault.open_all(&mut items).await?;
    read.into_iter()
        .map(|(relationship_id, user_id, provider_id, sequence, text)| {
            Ok(OpeningRow {
                relationship_id,
                user_id,
                provider_id,
                sequence,
                event: serde_json::from_str(&text)
                    .map_err(|e| malformed("events", "payload", e.to_string()))?,
            })
        })
        .collect()
}
