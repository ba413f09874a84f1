//! Who may do what, as pure functions over the actor and what the events
//! say. Reading a portal section: one function over the actor
//! (person, role, organisation), the portal (its owner and organisation) and
//! the care relationship between them as its events leave it.
//!
//! The owner reads everything in their portal, within their organisation. A
//! provider reads a section while their care relationship with the owner is
//! active and holds a grant of that section that has not run out, or (the
//! crisis plan only) while a break-glass opening lasts. Nobody else reads
//! portal content: not other service users, auditors, admins, moderators or
//! researchers, and nobody of another organisation, whatever id they carry.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::care::{self, Basis, CareRelationship, RelationshipState, Side};
use crate::messaging::Conversation;
use crate::portal::Section;
use crate::study::StudyInfo;

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

/// The organisation of a portal that does not exist: none (an organisation
/// is 1-100 printable bytes, so no actor is of it).
pub const NO_ORGANISATION: &str = "";

/// Why it may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadRefusal {
    /// The owner's id, but the portal is of another organisation.
    OwnerElsewhere,
    /// A role that never reads someone else's portal (a service user, a
    /// researcher, an auditor, an admin, a moderator): refused whoever the
    /// portal is, so the refusal tells nothing of it.
    NotThisRole,
    /// A provider without an active relationship with the owner in the
    /// portal's organisation: for them there is no such portal (they learn
    /// nothing more, not even whether it exists).
    Unknown,
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
    if actor.role != Role::Provider {
        return Err(ReadRefusal::NotThisRole);
    }
    if actor.organisation != portal.organisation {
        return Err(ReadRefusal::Unknown);
    }
    let Some(relationship) = relationship.filter(|r| {
        r.state == RelationshipState::Active
            && r.provider_id == Some(actor.person)
            && r.user_id == Some(portal.owner)
            && r.organisation == portal.organisation
    }) else {
        return Err(ReadRefusal::Unknown);
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

/// Whether the actor's id is a person of their own organisation as far as
/// the identities known for it say: the organisation its portal was opened
/// in and the one its provider profile was registered in, where they exist.
/// A token of one organisation that carries the id of a person of another
/// is not that person, and acts as no one.
pub fn same_person(
    actor: &Actor,
    portal_organisation: Option<&str>,
    profile_organisation: Option<&str>,
) -> bool {
    [portal_organisation, profile_organisation]
        .into_iter()
        .flatten()
        .all(|org| org == actor.organisation)
}

/// Which side of a care relationship the actor is on: the service user or
/// the provider of it, in its organisation. `None` for anyone else (they
/// learn nothing of relationships not theirs), other roles included.
pub fn relationship_side(actor: &Actor, relationship: &CareRelationship) -> Option<Side> {
    if relationship.organisation != actor.organisation {
        return None;
    }
    match actor.role {
        Role::ServiceUser if relationship.user_id == Some(actor.person) => Some(Side::ServiceUser),
        Role::Provider if relationship.provider_id == Some(actor.person) => Some(Side::Provider),
        _ => None,
    }
}

/// Which side of `conversation` the actor is on: the service user whose
/// thread it is, or a provider who is or was in it. `None` for anyone else,
/// of another organisation above all, whatever id they carry.
pub fn conversation_side(actor: &Actor, conversation: &Conversation) -> Option<Side> {
    if conversation.id.is_none() || conversation.organisation != actor.organisation {
        return None;
    }
    match actor.role {
        Role::ServiceUser if conversation.user_id == Some(actor.person) => Some(Side::ServiceUser),
        Role::Provider
            if conversation.participants.get(&actor.person) == Some(&Side::Provider)
                || conversation.removed.contains_key(&actor.person) =>
        {
            Some(Side::Provider)
        }
        _ => None,
    }
}

/// Whether anyone can still write in the thread: some provider in it is in
/// an active relationship with its user (`active` says who is, now).
pub fn conversation_open(conversation: &Conversation, active: impl Fn(Uuid) -> bool) -> bool {
    conversation
        .participants
        .iter()
        .any(|(id, side)| *side == Side::Provider && active(*id))
}

/// Whether the actor, on `side` of the thread, may write in it now: a
/// provider while still in it and their relationship is active; the user
/// while the thread is open.
pub fn may_post(
    actor: &Actor,
    side: Side,
    conversation: &Conversation,
    active: impl Fn(Uuid) -> bool,
) -> bool {
    match side {
        Side::Provider => {
            conversation.participants.contains_key(&actor.person) && active(actor.person)
        }
        Side::ServiceUser => conversation_open(conversation, active),
    }
}

/// Whether the actor may mark messages read (and has any unread): a
/// provider whose relationship ended reads nothing new, so has neither.
pub fn may_mark_read(actor: &Actor, side: Side, active: impl Fn(Uuid) -> bool) -> bool {
    side == Side::ServiceUser || active(actor.person)
}

/// What a role may do, beyond what the rules of each thing decide (whose
/// portal, which side of a relationship, a grant in force): the one table of
/// role permissions, tested below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duty {
    /// Keep a portal of one's own: open and change it, read one's own access
    /// log and disclosures (service users).
    KeepPortal,
    /// Keep a professional profile and a caseload (providers).
    KeepProfile,
    /// Register studies (admins).
    RegisterStudies,
    /// Add exercises to the organisation's catalogue (admins).
    ManageCatalogue,
    /// Search the organisation's access trail (auditors).
    SearchTrail,
    /// Read a study's aggregate measures (researchers, of their own studies).
    ReadStudyMeasures,
    /// See studies at all (everyone but auditors and moderators).
    SeeStudies,
}

impl Duty {
    pub const ALL: [Duty; 7] = [
        Duty::KeepPortal,
        Duty::KeepProfile,
        Duty::RegisterStudies,
        Duty::ManageCatalogue,
        Duty::SearchTrail,
        Duty::ReadStudyMeasures,
        Duty::SeeStudies,
    ];
}

/// Whether the actor's role carries `duty` (within their organisation: the
/// things a duty reaches are always looked up in the actor's organisation).
pub fn has_duty(actor: &Actor, duty: Duty) -> bool {
    match duty {
        Duty::KeepPortal => actor.role == Role::ServiceUser,
        Duty::KeepProfile => actor.role == Role::Provider,
        Duty::RegisterStudies | Duty::ManageCatalogue => actor.role == Role::Admin,
        Duty::SearchTrail => actor.role == Role::Auditor,
        Duty::ReadStudyMeasures => actor.role == Role::Researcher,
        Duty::SeeStudies => !matches!(actor.role, Role::Auditor | Role::Moderator),
    }
}

/// The side of care the actor's role takes part on: service users and
/// providers have care relationships, conversations and agreements (which
/// ones is for [`relationship_side`] and [`conversation_side`]); other roles
/// have none.
pub fn care_side(actor: &Actor) -> Option<Side> {
    match actor.role {
        Role::ServiceUser => Some(Side::ServiceUser),
        Role::Provider => Some(Side::Provider),
        _ => None,
    }
}

/// Whether the actor takes part in studies as a participant (and has a
/// portal's worth of use to count): service users and providers.
pub fn may_take_part_in_studies(actor: &Actor) -> bool {
    matches!(actor.role, Role::ServiceUser | Role::Provider)
}

/// How the actor sees a study.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StudySight {
    /// Everything, researchers and enrolment counts included: the
    /// organisation's admins and the study's own researchers.
    Member,
    /// As a possible or actual participant: while the study is open for
    /// enrolment, or they are enrolled.
    Participant { enrolled: bool },
    /// Not at all.
    Hidden,
}

/// How `actor` sees `study` on `today`, `enrolled` saying whether they are
/// enrolled in it now.
pub fn study_sight(
    actor: &Actor,
    study: &StudyInfo,
    enrolled: bool,
    today: NaiveDate,
) -> StudySight {
    if study.organisation != actor.organisation {
        return StudySight::Hidden;
    }
    match actor.role {
        Role::Admin => StudySight::Member,
        Role::Researcher if study.researchers.contains(&actor.person) => StudySight::Member,
        Role::ServiceUser | Role::Provider if enrolled || today <= study.ends_on => {
            StudySight::Participant { enrolled }
        }
        _ => StudySight::Hidden,
    }
}

/// How the actor takes part in an organisation's forum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForumPart {
    /// Reads and writes, appearing as this kind of member: service users
    /// (peers), providers (staff) and moderators of the organisation.
    Member(crate::forum::MemberKind),
    /// Reads the moderation log, never posts: the organisation's auditors.
    LogReader,
    /// Nothing of the forum: researchers, admins, and everyone of another
    /// organisation.
    Outside,
}

/// How `actor` takes part in the forum of `organisation`.
pub fn forum_part(actor: &Actor, organisation: &str) -> ForumPart {
    use crate::forum::MemberKind;
    if actor.organisation != organisation {
        return ForumPart::Outside;
    }
    match actor.role {
        Role::ServiceUser => ForumPart::Member(MemberKind::Peer),
        Role::Provider => ForumPart::Member(MemberKind::Staff),
        Role::Moderator => ForumPart::Member(MemberKind::Moderator),
        Role::Auditor => ForumPart::LogReader,
        Role::Researcher | Role::Admin => ForumPart::Outside,
    }
}

/// Whether the actor moderates the forum of `organisation`: hides and
/// restores posts, closes topics, silences members, sets categories, sees
/// the queue, concerns and name history.
pub fn may_moderate(actor: &Actor, organisation: &str) -> bool {
    forum_part(actor, organisation) == ForumPart::Member(crate::forum::MemberKind::Moderator)
}

/// Whether the actor reads the moderation log of `organisation`:
/// moderators and auditors.
pub fn may_read_moderation_log(actor: &Actor, organisation: &str) -> bool {
    may_moderate(actor, organisation) || forum_part(actor, organisation) == ForumPart::LogReader
}

/// Whether the actor may learn who is behind a forum name of
/// `organisation`: its admins only (with a stated reason, recorded in the
/// person's access trail). Moderators moderate names, never people.
pub fn may_resolve_forum_name(actor: &Actor, organisation: &str) -> bool {
    actor.role == Role::Admin && actor.organisation == organisation
}

/// Whether the actor may ask for their own erasure (and cancel it while it
/// waits): service users, whose portal it is. A provider's professional
/// record is erased on the organisation's order.
pub fn may_request_erasure(actor: &Actor) -> bool {
    actor.role == Role::ServiceUser
}

/// Whether the actor may carry out an erasure the organisation ordered, of
/// a person of `organisation`: its admins.
pub fn may_order_erasure(actor: &Actor, organisation: &str) -> bool {
    actor.role == Role::Admin && actor.organisation == organisation
}

/// Whether the actor may have everything the service holds about them in
/// one archive (`crate::export`): service users and providers, whose
/// portals, relationships and conversations these are. The organisation's
/// other roles ask it, through its operators (`portal person export`).
pub fn may_export_own_data(actor: &Actor) -> bool {
    matches!(actor.role, Role::ServiceUser | Role::Provider)
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
        if role != Role::Provider {
            return Err(ReadRefusal::NotThisRole);
        }
        if !same_org || own {
            return Err(ReadRefusal::Unknown);
        }
        match relationship {
            "none" | "invited" | "ended, medications granted before" => Err(ReadRefusal::Unknown),
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

    /// A portal that does not exist belongs to no organisation: a provider
    /// learns only that it is not theirs to know of, as for another
    /// organisation's; other roles are refused for their role.
    #[test]
    fn a_portal_that_does_not_exist_is_answered_as_one_of_nobody() {
        let nowhere = PortalRef {
            owner: OWNER,
            organisation: NO_ORGANISATION,
        };
        for role in Role::ALL {
            let actor = Actor {
                person: PROVIDER,
                role,
                organisation: ORG.into(),
            };
            let got = read_section(&actor, nowhere, None, Section::Core, t(30));
            let want = if role == Role::Provider {
                ReadRefusal::Unknown
            } else {
                ReadRefusal::NotThisRole
            };
            assert_eq!(got, Err(want), "{role:?}");
        }
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
            Err(ReadRefusal::Unknown)
        );
    }

    fn thread(org: &str) -> Conversation {
        let mut c = Conversation {
            id: Some(Uuid::from_u128(50)),
            organisation: org.into(),
            user_id: Some(OWNER),
            ..Conversation::default()
        };
        c.participants.insert(OWNER, Side::ServiceUser);
        c.participants.insert(PROVIDER, Side::Provider);
        c.removed.insert(Uuid::from_u128(3), t(5));
        c
    }

    #[test]
    fn sides_writing_and_reading_of_a_thread() {
        let conversation = thread(ORG);
        let removed = Uuid::from_u128(3);
        let stranger = Uuid::from_u128(4);
        // (who, role, organisation, side expected)
        let people = [
            (OWNER, Role::ServiceUser, ORG, Some(Side::ServiceUser)),
            (OWNER, Role::ServiceUser, "clinic-b", None),
            (OWNER, Role::Provider, ORG, None),
            (PROVIDER, Role::Provider, ORG, Some(Side::Provider)),
            (PROVIDER, Role::Provider, "clinic-b", None),
            (PROVIDER, Role::ServiceUser, ORG, None),
            (removed, Role::Provider, ORG, Some(Side::Provider)),
            (stranger, Role::Provider, ORG, None),
            (stranger, Role::ServiceUser, ORG, None),
        ];
        for (person, role, organisation, side) in people {
            let actor = Actor {
                person,
                role,
                organisation: organisation.into(),
            };
            assert_eq!(
                conversation_side(&actor, &conversation),
                side,
                "{person} {role:?} {organisation}"
            );
            for roles in Role::ALL {
                let other = Actor {
                    role: roles,
                    ..actor.clone()
                };
                if !matches!(roles, Role::ServiceUser | Role::Provider) {
                    assert_eq!(conversation_side(&other, &conversation), None);
                }
            }
            let Some(side) = side else { continue };
            for provider_active in [true, false] {
                let active = |id: Uuid| id == PROVIDER && provider_active;
                let post = may_post(&actor, side, &conversation, active);
                let mark = may_mark_read(&actor, side, active);
                match (person, provider_active) {
                    // The user writes while some provider is active.
                    (OWNER, active_now) => {
                        assert_eq!(post, active_now);
                        assert!(mark);
                    }
                    // The provider, while active.
                    (PROVIDER, active_now) => {
                        assert_eq!(post, active_now);
                        assert_eq!(mark, active_now);
                    }
                    // A provider who left writes and marks nothing.
                    _ => {
                        assert!(!post);
                        assert!(!mark);
                    }
                }
            }
        }
        assert!(!conversation_open(&conversation, |_| false));
        assert!(conversation_open(&conversation, |id| id == PROVIDER));
        // A provider who left does not keep the thread open.
        assert!(!conversation_open(&conversation, |id| id == removed));
        let elsewhere = thread("clinic-b");
        let actor = Actor {
            person: OWNER,
            role: Role::ServiceUser,
            organisation: ORG.into(),
        };
        assert_eq!(conversation_side(&actor, &elsewhere), None);
    }

    #[test]
    fn sides_of_a_relationship() {
        let relationship = fold(vec![invited(), accepted()]);
        for role in Role::ALL {
            for person in [OWNER, PROVIDER, Uuid::from_u128(7)] {
                for organisation in [ORG, "clinic-b"] {
                    let actor = Actor {
                        person,
                        role,
                        organisation: organisation.into(),
                    };
                    let expected = match (role, person, organisation) {
                        (Role::ServiceUser, OWNER, ORG) => Some(Side::ServiceUser),
                        (Role::Provider, PROVIDER, ORG) => Some(Side::Provider),
                        _ => None,
                    };
                    assert_eq!(
                        relationship_side(&actor, &relationship),
                        expected,
                        "{role:?} {person} {organisation}"
                    );
                }
            }
        }
        // A relationship that never was has no sides.
        let actor = Actor {
            person: OWNER,
            role: Role::ServiceUser,
            organisation: String::new(),
        };
        assert_eq!(
            relationship_side(&actor, &CareRelationship::default()),
            None
        );
    }

    #[test]
    fn an_id_of_another_organisation_is_no_one() {
        let actor = Actor {
            person: OWNER,
            role: Role::ServiceUser,
            organisation: ORG.into(),
        };
        assert!(same_person(&actor, None, None));
        assert!(same_person(&actor, Some(ORG), None));
        assert!(same_person(&actor, Some(ORG), Some(ORG)));
        assert!(!same_person(&actor, Some("clinic-b"), None));
        assert!(!same_person(&actor, None, Some("clinic-b")));
        assert!(!same_person(&actor, Some(ORG), Some("clinic-b")));
    }

    #[test]
    fn duties_by_role() {
        use Role::*;
        // Role × duty: the whole table, written out.
        let table: [(Duty, &[Role]); 7] = [
            (Duty::KeepPortal, &[ServiceUser]),
            (Duty::KeepProfile, &[Provider]),
            (Duty::RegisterStudies, &[Admin]),
            (Duty::ManageCatalogue, &[Admin]),
            (Duty::SearchTrail, &[Auditor]),
            (Duty::ReadStudyMeasures, &[Researcher]),
            (
                Duty::SeeStudies,
                &[ServiceUser, Provider, Researcher, Admin],
            ),
        ];
        assert_eq!(table.len(), Duty::ALL.len());
        for (duty, roles) in table {
            for role in Role::ALL {
                let actor = Actor {
                    person: OWNER,
                    role,
                    organisation: ORG.into(),
                };
                assert_eq!(
                    has_duty(&actor, duty),
                    roles.contains(&role),
                    "{role:?} {duty:?}"
                );
            }
        }
        for role in Role::ALL {
            let actor = Actor {
                person: OWNER,
                role,
                organisation: ORG.into(),
            };
            let side = match role {
                ServiceUser => Some(Side::ServiceUser),
                Provider => Some(Side::Provider),
                _ => None,
            };
            assert_eq!(care_side(&actor), side, "{role:?}");
            assert_eq!(may_take_part_in_studies(&actor), side.is_some(), "{role:?}");
        }
    }

    #[test]
    fn who_sees_a_study() {
        let researcher = Uuid::from_u128(20);
        let study = StudyInfo {
            study_id: Uuid::from_u128(30),
            organisation: ORG.into(),
            title: "t".into(),
            protocol_id: "p".into(),
            starts_on: NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
            ends_on: NaiveDate::from_ymd_opt(2026, 6, 30).expect("date"),
            researchers: vec![researcher],
        };
        let open = NaiveDate::from_ymd_opt(2026, 3, 1).expect("date");
        let over = NaiveDate::from_ymd_opt(2026, 9, 1).expect("date");
        for role in Role::ALL {
            for person in [OWNER, researcher] {
                for organisation in [ORG, "clinic-b"] {
                    for enrolled in [false, true] {
                        for today in [open, over] {
                            let actor = Actor {
                                person,
                                role,
                                organisation: organisation.into(),
                            };
                            let expected = if organisation != ORG {
                                StudySight::Hidden
                            } else {
                                match role {
                                    Role::Admin => StudySight::Member,
                                    Role::Researcher if person == researcher => StudySight::Member,
                                    Role::ServiceUser | Role::Provider
                                        if enrolled || today == open =>
                                    {
                                        StudySight::Participant { enrolled }
                                    }
                                    _ => StudySight::Hidden,
                                }
                            };
                            assert_eq!(
                                study_sight(&actor, &study, enrolled, today),
                                expected,
                                "{role:?} {person} {organisation} enrolled {enrolled} {today}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Given each role in its own and another organisation, when the forum
    /// asks how they take part, then members are service users (peers),
    /// providers (staff) and moderators of the organisation; auditors read
    /// the moderation log only; researchers, admins and everyone of another
    /// organisation see nothing; only moderators moderate; only admins
    /// resolve a name to a person.
    #[test]
    fn forum_parts_by_role_and_organisation() {
        use crate::forum::MemberKind;
        for role in Role::ALL {
            for organisation in [ORG, "clinic-b"] {
                let actor = Actor {
                    person: OWNER,
                    role,
                    organisation: organisation.into(),
                };
                let here = organisation == ORG;
                let part = forum_part(&actor, ORG);
                let expected = match role {
                    _ if !here => ForumPart::Outside,
                    Role::ServiceUser => ForumPart::Member(MemberKind::Peer),
                    Role::Provider => ForumPart::Member(MemberKind::Staff),
                    Role::Moderator => ForumPart::Member(MemberKind::Moderator),
                    Role::Auditor => ForumPart::LogReader,
                    Role::Researcher | Role::Admin => ForumPart::Outside,
                };
                assert_eq!(part, expected, "{role:?} of {organisation}");
                assert_eq!(
                    may_moderate(&actor, ORG),
                    here && role == Role::Moderator,
                    "{role:?} of {organisation} moderates"
                );
                assert_eq!(
                    may_read_moderation_log(&actor, ORG),
                    here && matches!(role, Role::Moderator | Role::Auditor),
                    "{role:?} of {organisation} reads the log"
                );
                assert_eq!(
                    may_resolve_forum_name(&actor, ORG),
                    here && role == Role::Admin,
                    "{role:?} of {organisation} resolves names"
                );
            }
        }
    }

    #[test]
    fn erasure_is_asked_by_its_person_and_ordered_by_admins_of_their_organisation() {
        for role in Role::ALL {
            for organisation in [ORG, "elsewhere"] {
                let actor = Actor {
                    person: OWNER,
                    role,
                    organisation: organisation.to_string(),
                };
                assert_eq!(
                    may_request_erasure(&actor),
                    role == Role::ServiceUser,
                    "{role:?} asks"
                );
                assert_eq!(
                    may_order_erasure(&actor, ORG),
                    role == Role::Admin && organisation == ORG,
                    "{role:?} of {organisation} orders"
                );
                assert_eq!(
                    may_export_own_data(&actor),
                    matches!(role, Role::ServiceUser | Role::Provider),
                    "{role:?} exports their own data"
                );
            }
        }
    }
}
