//! Who may read which section of a portal: one pure function over the actor
//! (person, role, organisation), the portal (its owner and organisation) and
//! the care relationship between them as its events leave it.
//!
//! The owner reads everything in their portal, within their organisation. A
//! provider reads a section while their care relationship with the owner is
//! active and holds a grant of that section that has not run out, or (the
//! crisis plan only) while a break-glass opening lasts. Nobody else reads
//! portal content: not other service users, auditors, admins, moderators or
//! researchers, and nobody of another organisation, whatever id they carry.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::care::{self, Basis, CareRelationship, RelationshipState};
use crate::portal::Section;

/// What a person is in the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    ServiceUser,
    Provider,
    Moderator,
    Researcher,
    Auditor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::ServiceUser,
        Role::Provider,
        Role::Moderator,
        Role::Researcher,
        Role::Auditor,
        Role::Admin,
    ];
}

/// Who is asking: identity is the person within their organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub person: Uuid,
    pub role: Role,
    pub organisation: String,
}

/// A portal as access decisions need it.
#[derive(Debug, Clone, Copy)]
pub struct PortalRef<'a> {
    /// The owner's person id (also the portal's id).
    pub owner: Uuid,
    pub organisation: &'a str,
}

/// Why a read may happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadBasis {
    /// The owner, in their own portal.
    Owner,
    /// A grant of the section in force; `sequence` is the granting event's.
    Grant { relationship: Uuid, sequence: i64 },
    /// A break-glass opening in force (crisis plan only).
    BreakGlass { relationship: Uuid, sequence: i64 },
}

/// Why it may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadRefusal {
    /// The owner's id, but the portal is of another organisation.
    OwnerElsewhere,
    /// Anyone without an active relationship with the owner in the portal's
    /// organisation: they learn nothing more (not even whether it exists).
    NotYours,
    /// A provider in an active relationship, without a grant of the section.
    NotGranted,
}

/// May `actor` read `section` of `portal` at `at`? `relationship` is the care
/// relationship between the portal's owner and the actor, folded from its
/// events, if the actor is a provider and it exists.
pub fn read_section(
    actor: &Actor,
    portal: PortalRef<'_>,
    relationship: Option<&CareRelationship>,
    section: Section,
    at: DateTime<Utc>,
) -> Result<ReadBasis, ReadRefusal> {
    if actor.role == Role::ServiceUser && actor.person == portal.owner {
        return if actor.organisation == portal.organisation {
            Ok(ReadBasis::Owner)
        } else {
            Err(ReadRefusal::OwnerElsewhere)
        };
    }
    if actor.organisation != portal.organisation || actor.role != Role::Provider {
        return Err(ReadRefusal::NotYours);
    }
    let Some(relationship) = relationship.filter(|r| {
        r.state == RelationshipState::Active
            && r.provider_id == Some(actor.person)
            && r.user_id == Some(portal.owner)
            && r.organisation == portal.organisation
    }) else {
        return Err(ReadRefusal::NotYours);
    };
    let id = care::relationship_id(portal.owner, actor.person);
    match relationship.basis(section, at) {
        Some(Basis::Grant(grant)) => Ok(ReadBasis::Grant {
            relationship: id,
            sequence: grant.sequence,
        }),
        Some(Basis::BreakGlass(bg)) => Ok(ReadBasis::BreakGlass {
            relationship: id,
            sequence: bg.sequence,
        }),
        None => Err(ReadRefusal::NotGranted),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::care::{BreakGlassCode, CareEvent, Side};
    use cqrs_es::Aggregate;

    const OWNER: Uuid = Uuid::from_u128(1);
    const PROVIDER: Uuid = Uuid::from_u128(2);
    const ORG: &str = "clinic-a";

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    fn fold(events: Vec<CareEvent>) -> CareRelationship {
        let mut r = CareRelationship::default();
        for e in events {
            r.apply(e);
        }
        r
    }

    fn invited() -> CareEvent {
        CareEvent::Invited {
            relationship_id: care::relationship_id(OWNER, PROVIDER),
            user_id: OWNER,
            provider_id: PROVIDER,
            organisation: ORG.into(),
            by: Side::ServiceUser,
            expires_at: t(60),
            at: t(0),
        }
    }

    fn accepted() -> CareEvent {
        CareEvent::InvitationAccepted {
            by: Side::Provider,
            at: t(1),
        }
    }

    fn granted(section: Section, until: Option<i64>) -> CareEvent {
        CareEvent::ConsentGranted {
            section,
            until: until.map(t),
            at: t(2),
        }
    }

    /// The relationship states the table runs through, by name.
    fn relationships() -> Vec<(&'static str, Option<CareRelationship>)> {
        let glass = CareEvent::BreakGlassOpened {
            code: BreakGlassCode::Other,
            reason: "found unconscious".into(),
            until: t(120),
            at: t(3),
        };
        vec![
            ("none", None),
            ("invited", Some(fold(vec![invited()]))),
            ("active, no grant", Some(fold(vec![invited(), accepted()]))),
            (
                "active, medications granted",
                Some(fold(vec![
                    invited(),
                    accepted(),
                    granted(Section::Medications, None),
                ])),
            ),
            (
                "active, medications granted until earlier",
                Some(fold(vec![
                    invited(),
                    accepted(),
                    granted(Section::Medications, Some(10)),
                ])),
            ),
            (
                "active, medications granted then revoked",
                Some(fold(vec![
                    invited(),
                    accepted(),
                    granted(Section::Medications, None),
                    CareEvent::ConsentRevoked {
                        section: Section::Medications,
                        at: t(4),
                    },
                ])),
            ),
            (
                "active, break-glass open",
                Some(fold(vec![invited(), accepted(), glass.clone()])),
            ),
            (
                "ended, medications granted before",
                Some(fold(vec![
                    invited(),
                    accepted(),
                    granted(Section::Medications, None),
                    CareEvent::RelationshipEnded {
                        by: Side::ServiceUser,
                        at: t(5),
                    },
                ])),
            ),
        ]
    }

    /// What the rules say, written out independently of `read_section`.
    fn expected(
        role: Role,
        own: bool,
        same_org: bool,
        relationship: &str,
        section: Section,
    ) -> Result<&'static str, ReadRefusal> {
        if role == Role::ServiceUser && own {
            return if same_org {
                Ok("owner")
            } else {
                Err(ReadRefusal::OwnerElsewhere)
            };
        }
        if role != Role::Provider || !same_org || own {
            return Err(ReadRefusal::NotYours);
        }
        match relationship {
            "none" | "invited" | "ended, medications granted before" => Err(ReadRefusal::NotYours),
            "active, medications granted" if section == Section::Medications => Ok("grant"),
            "active, break-glass open" if section == Section::CrisisPlan => Ok("break glass"),
            _ => Err(ReadRefusal::NotGranted),
        }
    }

    #[test]
    fn roles_by_portals_by_relationships_by_sections() {
        let at = t(30);
        let mut cases = 0;
        for role in Role::ALL {
            for own in [true, false] {
                for same_org in [true, false] {
                    for (name, relationship) in relationships() {
                        for section in Section::ALL {
                            let actor = Actor {
                                person: if own { OWNER } else { PROVIDER },
                                role,
                                organisation: if same_org { ORG } else { "clinic-b" }.into(),
                            };
                            let portal = PortalRef {
                                owner: OWNER,
                                organisation: ORG,
                            };
                            let got =
                                read_section(&actor, portal, relationship.as_ref(), section, at)
                                    .map(|b| match b {
                                        ReadBasis::Owner => "owner",
                                        ReadBasis::Grant { .. } => "grant",
                                        ReadBasis::BreakGlass { .. } => "break glass",
                                    });
                            assert_eq!(
                                got,
                                expected(role, own, same_org, name, section),
                                "{role:?}, own {own}, same organisation {same_org}, {name}, {section:?}"
                            );
                            cases += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 6 * 2 * 2 * 8 * 5);
    }

    #[test]
    fn a_grant_names_its_relationship_and_event() {
        let relationship = fold(vec![invited(), accepted(), granted(Section::Network, None)]);
        let actor = Actor {
            person: PROVIDER,
            role: Role::Provider,
            organisation: ORG.into(),
        };
        let portal = PortalRef {
            owner: OWNER,
            organisation: ORG,
        };
        assert_eq!(
            read_section(&actor, portal, Some(&relationship), Section::Network, t(30)),
            Ok(ReadBasis::Grant {
                relationship: care::relationship_id(OWNER, PROVIDER),
                sequence: 3
            })
        );
        // Someone else's relationship passed in by mistake grants nothing.
        let stranger = Actor {
            person: Uuid::from_u128(9),
            ..actor
        };
        assert_eq!(
            read_section(
                &stranger,
                portal,
                Some(&relationship),
                Section::Network,
                t(30)
            ),
            Err(ReadRefusal::NotYours)
        );
    }
}
