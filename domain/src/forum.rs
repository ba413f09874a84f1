//! The peer-support forum of an organisation (issue 17): pseudonyms,
//! categories and silences in one `Forum` aggregate per organisation; each
//! topic with its posts, flags and concerns in a `ForumTopic` aggregate; what
//! each member follows and has read in a `ForumReader` aggregate per person.
//!
//! Members take part as peers (service users, under a pseudonym), staff
//! (providers, under their profile's name and profession) or moderators
//! (under a forum name, marked as moderators). Who may read what of the
//! forum is in [`crate::access`]; what a post shows to whom is
//! [`post_shown`]; the weights of flags are [`flag_weight`].
//!
//! Nothing is deleted: an edit keeps every revision, a withdrawn post keeps
//! that it was written and withdrawn (its text leaves every view), a hidden
//! post can be restored.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::personal::{optional, text, Declarations, Declared, Owner};
use crate::refusal::{ErrorKind, InputError, Refusal};
use crate::text;

/// Aggregate type of an organisation's forum (id: the organisation).
pub const FORUM_TYPE: &str = "Forum";
/// Aggregate type of a topic (id: the topic's uuid).
pub const TOPIC_TYPE: &str = "ForumTopic";
/// Aggregate type of what a member follows and has read (id: [`reader_id`]).
pub const READER_TYPE: &str = "ForumReader";

/// Shortest and longest forum name (pseudonym), in characters.
pub const NAME_MIN: usize = 3;
pub const NAME_MAX: usize = 30;
/// Longest topic title.
pub const TITLE_MAX: usize = 150;
/// Longest post.
pub const POST_MAX: usize = 10_000;
/// Longest reason of a moderation action or flag, and a concern's note.
pub const REASON_MAX: usize = 500;
/// Longest category title and description.
pub const CATEGORY_TITLE_MAX: usize = 60;
pub const CATEGORY_DESCRIPTION_MAX: usize = 300;
/// Longest category key.
pub const CATEGORY_KEY_MAX: usize = 40;
/// Most categories of a forum, retired ones included.
pub const CATEGORIES_MAX: usize = 40;
/// Most posts of a topic (the first included): start another topic beyond it.
pub const POSTS_MAX: usize = 5_000;
/// Most revisions of one post.
pub const REVISIONS_MAX: u32 = 100;
/// Most topics one member follows.
pub const FOLLOWS_MAX: usize = 1_000;
/// Longest silence.
pub const SILENCE_MAX_DAYS: i64 = 365;

/// Names nobody may take: they would pass for the service or its staff.
const RESERVED: [&str; 8] = [
    "admin",
    "administrator",
    "moderator",
    "moderators",
    "staff",
    "portal",
    "system",
    "anonymous",
];

/// The categories of a new forum: (key, title, description).
pub const DEFAULT_CATEGORIES: [(&str, &str, &str); 6] = [
    (
        "everyday_life",
        "Everyday life",
        "Getting through the day, routines, small wins.",
    ),
    (
        "work_and_school",
        "Work and school",
        "Jobs, studies, going back, staying on.",
    ),
    (
        "sleep",
        "Sleep",
        "Sleeping badly, sleeping well, what helped.",
    ),
    (
        "medication",
        "Medication",
        "Experiences with medication (not medical advice).",
    ),
    (
        "relationships",
        "Relationships",
        "Family, friends, partners, being alone.",
    ),
    (
        "recovery_stories",
        "Recovery stories",
        "How it went, what helped, hope.",
    ),
];

/// How a member appears in the forum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberKind {
    /// A service user, under their pseudonym.
    Peer,
    /// A provider, under their name and profession.
    Staff,
    /// A moderator, under their forum name.
    Moderator,
}

impl MemberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::Peer => "peer",
            MemberKind::Staff => "staff",
            MemberKind::Moderator => "moderator",
        }
    }

    pub fn parse(value: &str) -> Option<MemberKind> {
        [MemberKind::Peer, MemberKind::Staff, MemberKind::Moderator]
            .into_iter()
            .find(|k| k.as_str() == value)
    }
}

/// How much a flag weighs, by who flags (in the manner of Discourse's
/// reviewable scores, where staff flags count for more): a peer 1, staff 2,
/// a moderator 3. With the default threshold of 3, three peers, a peer and a
/// staff member, or one moderator hide a post pending review.
pub fn flag_weight(kind: MemberKind) -> u32 {
    match kind {
        MemberKind::Peer => 1,
        MemberKind::Staff => 2,
        MemberKind::Moderator => 3,
    }
}

/// Why a post was flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagReason {
    OffTopic,
    Hurtful,
    PrivateInformation,
    Spam,
    /// Said in the flag's note (required).
    Other,
}

impl FlagReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FlagReason::OffTopic => "off_topic",
            FlagReason::Hurtful => "hurtful",
            FlagReason::PrivateInformation => "private_information",
            FlagReason::Spam => "spam",
            FlagReason::Other => "other",
        }
    }

    pub fn parse(value: &str) -> Option<FlagReason> {
        [
            FlagReason::OffTopic,
            FlagReason::Hurtful,
            FlagReason::PrivateInformation,
            FlagReason::Spam,
            FlagReason::Other,
        ]
        .into_iter()
        .find(|r| r.as_str() == value)
    }

    /// What the author of a post hidden by flags is told.
    pub fn explained(self) -> &'static str {
        match self {
            FlagReason::OffTopic => "members flagged it as off-topic",
            FlagReason::Hurtful => "members flagged it as hurtful",
            FlagReason::PrivateInformation => "members flagged it as sharing private information",
            FlagReason::Spam => "members flagged it as spam",
            FlagReason::Other => "members flagged it",
        }
    }
}

/// What a moderator did about a concern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcernAction {
    /// Reached out to the person (a message, a call).
    ContactedPerson,
    /// Passed it to the person's care team or the crisis service.
    ContactedCareTeam,
    /// Called emergency services.
    EmergencyServices,
    /// Posted or sent support resources.
    SharedResources,
    /// Looked, and no action was needed.
    NoActionNeeded,
}

impl ConcernAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ConcernAction::ContactedPerson => "contacted_person",
            ConcernAction::ContactedCareTeam => "contacted_care_team",
            ConcernAction::EmergencyServices => "emergency_services",
            ConcernAction::SharedResources => "shared_resources",
            ConcernAction::NoActionNeeded => "no_action_needed",
        }
    }

    pub fn parse(value: &str) -> Option<ConcernAction> {
        [
            ConcernAction::ContactedPerson,
            ConcernAction::ContactedCareTeam,
            ConcernAction::EmergencyServices,
            ConcernAction::SharedResources,
            ConcernAction::NoActionNeeded,
        ]
        .into_iter()
        .find(|a| a.as_str() == value)
    }
}

/// A rule of the forum refused a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForumError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("field `name` {0}")]
    BadName(&'static str),
    /// The caller may not do this ([`ErrorKind::Forbidden`]).
    #[error("{0}")]
    NotAllowed(&'static str),
    #[error("{item} {id} does not exist")]
    Unknown { item: &'static str, id: String },
    #[error("{item} {id} already exists")]
    Duplicate { item: &'static str, id: String },
    #[error("the name is taken: choose another")]
    NameTaken,
    #[error("at most {max} {items} are allowed")]
    TooMany { items: &'static str, max: usize },
    #[error("{item} is {state} and cannot be {action}")]
    WrongState {
        item: &'static str,
        state: &'static str,
        action: &'static str,
    },
    #[error("nothing would change: {0}")]
    NothingChanged(&'static str),
}

impl Refusal for ForumError {
    fn kind(&self) -> ErrorKind {
        match self {
            ForumError::Input(input) => input.kind(),
            ForumError::BadName(_) => ErrorKind::BadInput,
            ForumError::NotAllowed(_) => ErrorKind::Forbidden,
            ForumError::Unknown { .. } => ErrorKind::NotFound,
            ForumError::Duplicate { .. }
            | ForumError::NameTaken
            | ForumError::TooMany { .. }
            | ForumError::WrongState { .. }
            | ForumError::NothingChanged(_) => ErrorKind::FailedPrecondition,
        }
    }
}

/// A forum name as stored: trimmed, with single spaces. Rules: 3-30
/// characters of letters (any script), digits, spaces, `-`, `_` and `.`,
/// starting with a letter or digit, not one of the reserved names.
pub fn check_name(value: &str) -> Result<String, ForumError> {
    let name = value.split_whitespace().collect::<Vec<_>>().join(" ");
    let count = name.chars().count();
    if !(NAME_MIN..=NAME_MAX).contains(&count) {
        return Err(ForumError::BadName("must be 3-30 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'))
    {
        return Err(ForumError::BadName(
            "may hold letters, digits, spaces, `-`, `_` and `.` only",
        ));
    }
    if !name.starts_with(char::is_alphanumeric) {
        return Err(ForumError::BadName("must start with a letter or a digit"));
    }
    if RESERVED.contains(&name_key(&name).as_str()) {
        return Err(ForumError::BadName(
            "is reserved: it would pass for the service or its staff",
        ));
    }
    Ok(name)
}

/// The key two names are the same under: case-insensitive, and `-`, `_`,
/// `.` and spaces alike (so `Sun_Flower` and `sun flower` are one name).
pub fn name_key(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
        .chars()
        .map(|c| if matches!(c, '-' | '_' | '.') { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The id of a member's [`ForumReader`] aggregate: their organisation and person.
pub fn reader_id(organisation: &str, person: Uuid) -> String {
    format!("{organisation}/{person}")
}

// ---------------------------------------------------------------------------
// The organisation's forum: names, categories, silences.

/// A category as the forum holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Category {
    pub key: String,
    pub title: String,
    pub description: String,
    pub retired: bool,
}

/// A silence in force or past.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub person: Uuid,
    pub until: DateTime<Utc>,
    pub lifted: bool,
}

/// An organisation's forum as its events leave it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Forum {
    pub organisation: Option<String>,
    /// Each member's current name and kind (peers and moderators).
    pub names: BTreeMap<Uuid, (String, MemberKind)>,
    /// Who holds each name, by [`name_key`].
    pub holders: BTreeMap<String, Uuid>,
    pub categories: Vec<Category>,
    pub silences: BTreeMap<Uuid, Silence>,
}

/// What members and moderators ask of the forum.
#[derive(Debug, Clone, PartialEq)]
pub enum ForumCommand {
    /// Opens the forum with the default categories (the service does it on first use).
    Open {
        organisation: String,
        at: DateTime<Utc>,
    },
    /// A peer or moderator chooses (or changes) their forum name.
    ChooseName {
        person: Uuid,
        kind: MemberKind,
        name: String,
        at: DateTime<Utc>,
    },
    AddCategory {
        key: String,
        title: String,
        description: String,
        by: Uuid,
        at: DateTime<Utc>,
    },
    RetireCategory {
        key: String,
        reason: String,
        by: Uuid,
        at: DateTime<Utc>,
    },
    /// Silences a member until `until` (they read, and cannot write).
    Silence {
        silence_id: Uuid,
        person: Uuid,
        /// How the member appears, for the moderation log.
        shown_as: String,
        until: DateTime<Utc>,
        reason: String,
        by: Uuid,
        at: DateTime<Utc>,
    },
    LiftSilence {
        silence_id: Uuid,
        reason: String,
        by: Uuid,
        at: DateTime<Utc>,
    },
}

/// What happened to the forum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ForumEvent {
    ForumOpened {
        organisation: String,
        categories: Vec<Category>,
        at: DateTime<Utc>,
    },
    NameChosen {
        person: Uuid,
        kind: MemberKind,
        name: String,
        /// The name it replaces, for moderators' history.
        previous: Option<String>,
        at: DateTime<Utc>,
    },
    CategoryAdded {
        category: Category,
        by: Uuid,
        at: DateTime<Utc>,
    },
    CategoryRetired {
        key: String,
        reason: String,
        by: Uuid,
        at: DateTime<Utc>,
    },
    MemberSilenced {
        silence_id: Uuid,
        person: Uuid,
        shown_as: String,
        until: DateTime<Utc>,
        reason: String,
        by: Uuid,
        at: DateTime<Utc>,
    },
    SilenceLifted {
        silence_id: Uuid,
        reason: String,
        by: Uuid,
        at: DateTime<Utc>,
    },
}

/// The forum's own events: a pseudonym is its holder's, a silence's words
/// are about the silenced member, a moderator's reasons are the
/// moderator's; categories are the organisation's (`crate::personal`).
pub const FORUM_PERSONAL_DATA: Declarations = Declarations {
    aggregate_type: FORUM_TYPE,
    events: &[
        Declared::clear("ForumOpened", &["organisation", "categories", "at"]),
        Declared {
            event_type: "NameChosen",
            owner: Owner::Field("person"),
            personal: &[text("name"), optional("previous")],
            clear: &["person", "kind", "at"],
        },
        Declared::clear("CategoryAdded", &["category", "by", "at"]),
        Declared {
            event_type: "CategoryRetired",
            owner: Owner::Field("by"),
            personal: &[text("reason")],
            clear: &["key", "by", "at"],
        },
        Declared {
            event_type: "MemberSilenced",
            owner: Owner::Field("person"),
            personal: &[text("shown_as"), text("reason")],
            clear: &["silence_id", "person", "until", "by", "at"],
        },
        Declared {
            event_type: "SilenceLifted",
            owner: Owner::Field("by"),
            personal: &[text("reason")],
            clear: &["silence_id", "by", "at"],
        },
    ],
};

impl DomainEvent for ForumEvent {
    fn event_type(&self) -> String {
        match self {
            ForumEvent::ForumOpened { .. } => "ForumOpened",
            ForumEvent::NameChosen { .. } => "NameChosen",
            ForumEvent::CategoryAdded { .. } => "CategoryAdded",
            ForumEvent::CategoryRetired { .. } => "CategoryRetired",
            ForumEvent::MemberSilenced { .. } => "MemberSilenced",
            ForumEvent::SilenceLifted { .. } => "SilenceLifted",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1".to_string()
    }
}

fn reason(value: &str) -> Result<String, ForumError> {
    Ok(text::required(value, REASON_MAX).map_err(InputError::text("reason"))?)
}

impl Forum {
    /// Whether the member is silenced at `at`.
    pub fn silenced(&self, person: Uuid, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.silences
            .values()
            .filter(|s| s.person == person && !s.lifted && s.until > at)
            .map(|s| s.until)
            .max()
    }

    /// The category of `key`, if the forum has it and it is not retired.
    pub fn open_category(&self, key: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.key == key && !c.retired)
    }

    /// The events a command causes, or the rule it breaks.
    pub fn decide(&self, command: ForumCommand) -> Result<Vec<ForumEvent>, ForumError> {
        if self.organisation.is_none() && !matches!(command, ForumCommand::Open { .. }) {
            return Err(ForumError::WrongState {
                item: "the forum",
                state: "not open yet",
                action: "changed",
            });
        }
        match command {
            ForumCommand::Open { organisation, at } => {
                if self.organisation.is_some() {
                    return Err(ForumError::NothingChanged("the forum is open"));
                }
                Ok(vec![ForumEvent::ForumOpened {
                    organisation,
                    categories: DEFAULT_CATEGORIES
                        .iter()
                        .map(|(key, title, description)| Category {
                            key: key.to_string(),
                            title: title.to_string(),
                            description: description.to_string(),
                            retired: false,
                        })
                        .collect(),
                    at,
                }])
            }
            ForumCommand::ChooseName {
                person,
                kind,
                name,
                at,
            } => {
                if kind == MemberKind::Staff {
                    return Err(ForumError::NotAllowed(
                        "staff take part under their profile's name",
                    ));
                }
                let name = check_name(&name)?;
                let key = name_key(&name);
                let previous = self.names.get(&person).map(|(n, _)| n.clone());
                match self.holders.get(&key) {
                    Some(holder) if *holder != person => return Err(ForumError::NameTaken),
                    _ => {}
                }
                if previous.as_deref() == Some(name.as_str()) {
                    return Err(ForumError::NothingChanged("that is your name already"));
                }
                Ok(vec![ForumEvent::NameChosen {
                    person,
                    kind,
                    name,
                    previous,
                    at,
                }])
            }
            ForumCommand::AddCategory {
                key,
                title,
                description,
                by,
                at,
            } => {
                if !text::key_ok(&key, CATEGORY_KEY_MAX) {
                    return Err(InputError::InvalidDomainKey {
                        max: CATEGORY_KEY_MAX,
                    }
                    .into());
                }
                if self.categories.iter().any(|c| c.key == key) {
                    return Err(ForumError::Duplicate {
                        item: "category",
                        id: key,
                    });
                }
                if self.categories.len() >= CATEGORIES_MAX {
                    return Err(ForumError::TooMany {
                        items: "categories",
                        max: CATEGORIES_MAX,
                    });
                }
                let title = text::required(&title, CATEGORY_TITLE_MAX)
                    .map_err(InputError::text("title"))?;
                let description = text::optional(&description, CATEGORY_DESCRIPTION_MAX)
                    .map_err(InputError::text("description"))?;
                Ok(vec![ForumEvent::CategoryAdded {
                    category: Category {
                        key,
                        title,
                        description,
                        retired: false,
                    },
                    by,
                    at,
                }])
            }
            ForumCommand::RetireCategory {
                key,
                reason: why,
                by,
                at,
            } => {
                if !text::key_ok(&key, CATEGORY_KEY_MAX) {
                    return Err(InputError::InvalidDomainKey {
                        max: CATEGORY_KEY_MAX,
                    }
                    .into());
                }
                let Some(category) = self.categories.iter().find(|c| c.key == key) else {
                    return Err(ForumError::Unknown {
                        item: "category",
                        id: key,
                    });
                };
                if category.retired {
                    return Err(ForumError::NothingChanged("the category is retired"));
                }
                Ok(vec![ForumEvent::CategoryRetired {
                    key,
                    reason: reason(&why)?,
                    by,
                    at,
                }])
            }
            ForumCommand::Silence {
                silence_id,
                person,
                shown_as,
                until,
                reason: why,
                by,
                at,
            } => {
                if person == by {
                    return Err(ForumError::NotAllowed(
                        "a moderator cannot silence themselves",
                    ));
                }
                if until <= at || until > at + Duration::days(SILENCE_MAX_DAYS) {
                    return Err(ForumError::NotAllowed(
                        "a silence ends within a year from now",
                    ));
                }
                if self.silences.contains_key(&silence_id) {
                    return Err(ForumError::Duplicate {
                        item: "silence",
                        id: silence_id.to_string(),
                    });
                }
                Ok(vec![ForumEvent::MemberSilenced {
                    silence_id,
                    person,
                    shown_as,
                    until,
                    reason: reason(&why)?,
                    by,
                    at,
                }])
            }
            ForumCommand::LiftSilence {
                silence_id,
                reason: why,
                by,
                at,
            } => {
                let Some(silence) = self.silences.get(&silence_id) else {
                    return Err(ForumError::Unknown {
                        item: "silence",
                        id: silence_id.to_string(),
                    });
                };
                if silence.lifted || silence.until <= at {
                    return Err(ForumError::NothingChanged("the silence is over"));
                }
                Ok(vec![ForumEvent::SilenceLifted {
                    silence_id,
                    reason: reason(&why)?,
                    by,
                    at,
                }])
            }
        }
    }
}

impl Aggregate for Forum {
    const TYPE: &'static str = FORUM_TYPE;
    type Command = ForumCommand;
    type Event = ForumEvent;
    type Error = ForumError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            ForumEvent::ForumOpened {
                organisation,
                categories,
                ..
            } => {
                self.organisation = Some(organisation);
                self.categories = categories;
            }
            ForumEvent::NameChosen {
                person, kind, name, ..
            } => {
                if let Some((old, _)) = self.names.get(&person) {
                    self.holders.remove(&name_key(old));
                }
                self.holders.insert(name_key(&name), person);
                self.names.insert(person, (name, kind));
            }
            ForumEvent::CategoryAdded { category, .. } => self.categories.push(category),
            ForumEvent::CategoryRetired { key, .. } => {
                if let Some(c) = self.categories.iter_mut().find(|c| c.key == key) {
                    c.retired = true;
                }
            }
            ForumEvent::MemberSilenced {
                silence_id,
                person,
                until,
                ..
            } => {
                self.silences.insert(
                    silence_id,
                    Silence {
                        person,
                        until,
                        lifted: false,
                    },
                );
            }
            ForumEvent::SilenceLifted { silence_id, .. } => {
                if let Some(s) = self.silences.get_mut(&silence_id) {
                    s.lifted = true;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Topics: posts, edits, support, flags, moderation, concerns.

/// Who acts in a topic, as the topic's rules need them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub person: Uuid,
    pub kind: MemberKind,
}

impl Member {
    fn moderator(self) -> bool {
        self.kind == MemberKind::Moderator
    }
}

/// Why a post is hidden.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hidden {
    /// The moderator who hid it; None when flags reached the threshold.
    pub by: Option<Uuid>,
    pub reason: String,
}

/// A post as the topic's rules need it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PostState {
    pub id: Uuid,
    pub author: Uuid,
    pub revisions: u32,
    pub withdrawn: bool,
    pub hidden: Option<Hidden>,
    /// Everyone who ever flagged it (one flag per person per post).
    pub flaggers: BTreeSet<Uuid>,
    /// The score of flags since the last review, and their reasons by weight.
    pub score: u32,
    pub reasons: BTreeMap<String, u32>,
    pub supporters: BTreeSet<Uuid>,
}

/// A concern for someone's safety raised on a post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConcernState {
    pub post: Uuid,
    pub raised_by: Uuid,
    pub raised_at: DateTime<Utc>,
    pub opened: bool,
    pub resolved: bool,
    /// How many times it was raised again, unopened.
    pub rounds: u32,
    /// When it was raised, or last raised again.
    pub last_raised: DateTime<Utc>,
}

/// A topic as its events leave it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Topic {
    pub id: Option<Uuid>,
    pub organisation: String,
    pub category: String,
    pub author: Option<Uuid>,
    pub closed: bool,
    pub posts: Vec<PostState>,
    pub concerns: BTreeMap<Uuid, ConcernState>,
    pub last_at: Option<DateTime<Utc>>,
}

/// What members, moderators and the service ask of a topic.
#[derive(Debug, Clone, PartialEq)]
pub enum TopicCommand {
    Open {
        topic_id: Uuid,
        organisation: String,
        category: String,
        title: String,
        post_id: Uuid,
        body: String,
        by: Member,
        at: DateTime<Utc>,
    },
    Reply {
        post_id: Uuid,
        body: String,
        /// A post of this topic it quotes.
        quote_of: Option<Uuid>,
        by: Member,
        at: DateTime<Utc>,
    },
    /// The author changes their post (and, for the first post, the title).
    Edit {
        post_id: Uuid,
        body: String,
        title: Option<String>,
        by: Member,
        at: DateTime<Utc>,
    },
    /// The author withdraws their post: its text leaves every view.
    Withdraw {
        post_id: Uuid,
        by: Member,
        at: DateTime<Utc>,
    },
    Support {
        post_id: Uuid,
        by: Member,
        at: DateTime<Utc>,
    },
    Unsupport {
        post_id: Uuid,
        by: Member,
        at: DateTime<Utc>,
    },
    Flag {
        post_id: Uuid,
        by: Member,
        reason: FlagReason,
        note: String,
        /// The score at which a post is hidden pending review (a setting).
        threshold: u32,
        at: DateTime<Utc>,
    },
    Hide {
        post_id: Uuid,
        reason: String,
        by: Member,
        at: DateTime<Utc>,
    },
    Restore {
        post_id: Uuid,
        reason: String,
        by: Member,
        at: DateTime<Utc>,
    },
    Close {
        reason: String,
        by: Member,
        at: DateTime<Utc>,
    },
    Reopen {
        reason: String,
        by: Member,
        at: DateTime<Utc>,
    },
    /// "I am worried about this person": hides nothing, reaches moderators.
    RaiseConcern {
        concern_id: Uuid,
        post_id: Uuid,
        note: String,
        by: Member,
        at: DateTime<Utc>,
    },
    /// A moderator opened the concern (saw it, with the guidance).
    OpenConcern {
        concern_id: Uuid,
        by: Member,
        at: DateTime<Utc>,
    },
    /// A moderator records what was done.
    ResolveConcern {
        concern_id: Uuid,
        action: ConcernAction,
        note: String,
        by: Member,
        at: DateTime<Utc>,
    },
    /// The service raises an unopened concern again, unless it was raised
    /// within `every` (so that two instances watching at once raise it once).
    RaiseConcernAgain {
        concern_id: Uuid,
        every: Duration,
        at: DateTime<Utc>,
    },
}

/// What happened in a topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TopicEvent {
    TopicOpened {
        topic_id: Uuid,
        organisation: String,
        category: String,
        title: String,
        post_id: Uuid,
        author: Uuid,
        kind: MemberKind,
        body: String,
        at: DateTime<Utc>,
    },
    ReplyPosted {
        post_id: Uuid,
        author: Uuid,
        kind: MemberKind,
        body: String,
        quote_of: Option<Uuid>,
        /// 2 for the first reply (the opening post is 1).
        number: u32,
        at: DateTime<Utc>,
    },
    PostEdited {
        post_id: Uuid,
        body: String,
        title: Option<String>,
        /// 2 for the first edit (the original is revision 1).
        revision: u32,
        at: DateTime<Utc>,
    },
    PostWithdrawn {
        post_id: Uuid,
        at: DateTime<Utc>,
    },
    SupportGiven {
        post_id: Uuid,
        by: Uuid,
        at: DateTime<Utc>,
    },
    SupportTakenBack {
        post_id: Uuid,
        by: Uuid,
        at: DateTime<Utc>,
    },
    PostFlagged {
        post_id: Uuid,
        by: Uuid,
        kind: MemberKind,
        reason: FlagReason,
        note: String,
        weight: u32,
        /// The post's score after this flag.
        score: u32,
        at: DateTime<Utc>,
    },
    PostHidden {
        post_id: Uuid,
        /// The moderator; None when the flags' score reached the threshold.
        by: Option<Uuid>,
        reason: String,
        at: DateTime<Utc>,
    },
    PostRestored {
        post_id: Uuid,
        by: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    TopicClosed {
        by: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    TopicReopened {
        by: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    ConcernRaised {
        concern_id: Uuid,
        post_id: Uuid,
        by: Uuid,
        note: String,
        at: DateTime<Utc>,
    },
    ConcernOpened {
        concern_id: Uuid,
        by: Uuid,
        at: DateTime<Utc>,
    },
    ConcernResolved {
        concern_id: Uuid,
        by: Uuid,
        action: ConcernAction,
        note: String,
        at: DateTime<Utc>,
    },
    ConcernRaisedAgain {
        concern_id: Uuid,
        /// 1 the first time it is raised again.
        round: u32,
        at: DateTime<Utc>,
    },
}

/// A topic's events: posts and titles are their authors', flags, concerns
/// and moderation reasons their writers' (`crate::personal`).
pub const TOPIC_PERSONAL_DATA: Declarations = Declarations {
    aggregate_type: TOPIC_TYPE,
    events: &[
        Declared {
            event_type: "TopicOpened",
            owner: Owner::Field("author"),
            personal: &[text("title"), text("body")],
            clear: &[
                "topic_id",
                "organisation",
                "category",
                "post_id",
                "author",
                "kind",
                "at",
            ],
        },
        Declared {
            event_type: "ReplyPosted",
            owner: Owner::Field("author"),
            personal: &[text("body")],
            clear: &["post_id", "author", "kind", "quote_of", "number", "at"],
        },
        Declared {
            event_type: "PostEdited",
            owner: Owner::Actor,
            personal: &[text("body"), optional("title")],
            clear: &["post_id", "revision", "at"],
        },
        Declared::clear("PostWithdrawn", &["post_id", "at"]),
        Declared::clear("SupportGiven", &["post_id", "by", "at"]),
        Declared::clear("SupportTakenBack", &["post_id", "by", "at"]),
        Declared {
            event_type: "PostFlagged",
            owner: Owner::Field("by"),
            personal: &[text("note")],
            clear: &["post_id", "by", "kind", "reason", "weight", "score", "at"],
        },
        Declared {
            event_type: "PostHidden",
            owner: Owner::Writer("by"),
            personal: &[text("reason")],
            clear: &["post_id", "by", "at"],
        },
        Declared {
            event_type: "PostRestored",
            owner: Owner::Field("by"),
            personal: &[text("reason")],
            clear: &["post_id", "by", "at"],
        },
        Declared {
            event_type: "TopicClosed",
            owner: Owner::Field("by"),
            personal: &[text("reason")],
            clear: &["by", "at"],
        },
        Declared {
            event_type: "TopicReopened",
            owner: Owner::Field("by"),
            personal: &[text("reason")],
            clear: &["by", "at"],
        },
        Declared {
            event_type: "ConcernRaised",
            owner: Owner::Field("by"),
            personal: &[text("note")],
            clear: &["concern_id", "post_id", "by", "at"],
        },
        Declared::clear("ConcernOpened", &["concern_id", "by", "at"]),
        Declared {
            event_type: "ConcernResolved",
            owner: Owner::Field("by"),
            personal: &[text("note")],
            clear: &["concern_id", "by", "action", "at"],
        },
        Declared::clear("ConcernRaisedAgain", &["concern_id", "round", "at"]),
    ],
};

impl DomainEvent for TopicEvent {
    fn event_type(&self) -> String {
        match self {
            TopicEvent::TopicOpened { .. } => "TopicOpened",
            TopicEvent::ReplyPosted { .. } => "ReplyPosted",
            TopicEvent::PostEdited { .. } => "PostEdited",
            TopicEvent::PostWithdrawn { .. } => "PostWithdrawn",
            TopicEvent::SupportGiven { .. } => "SupportGiven",
            TopicEvent::SupportTakenBack { .. } => "SupportTakenBack",
            TopicEvent::PostFlagged { .. } => "PostFlagged",
            TopicEvent::PostHidden { .. } => "PostHidden",
            TopicEvent::PostRestored { .. } => "PostRestored",
            TopicEvent::TopicClosed { .. } => "TopicClosed",
            TopicEvent::TopicReopened { .. } => "TopicReopened",
            TopicEvent::ConcernRaised { .. } => "ConcernRaised",
            TopicEvent::ConcernOpened { .. } => "ConcernOpened",
            TopicEvent::ConcernResolved { .. } => "ConcernResolved",
            TopicEvent::ConcernRaisedAgain { .. } => "ConcernRaisedAgain",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl TopicEvent {
    /// When it happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            TopicEvent::TopicOpened { at, .. }
            | TopicEvent::ReplyPosted { at, .. }
            | TopicEvent::PostEdited { at, .. }
            | TopicEvent::PostWithdrawn { at, .. }
            | TopicEvent::SupportGiven { at, .. }
            | TopicEvent::SupportTakenBack { at, .. }
            | TopicEvent::PostFlagged { at, .. }
            | TopicEvent::PostHidden { at, .. }
            | TopicEvent::PostRestored { at, .. }
            | TopicEvent::TopicClosed { at, .. }
            | TopicEvent::TopicReopened { at, .. }
            | TopicEvent::ConcernRaised { at, .. }
            | TopicEvent::ConcernOpened { at, .. }
            | TopicEvent::ConcernResolved { at, .. }
            | TopicEvent::ConcernRaisedAgain { at, .. } => *at,
        }
    }
}

fn post_body(value: &str) -> Result<String, ForumError> {
    Ok(text::required(value, POST_MAX).map_err(InputError::text("body"))?)
}

fn title(value: &str) -> Result<String, ForumError> {
    Ok(text::required(value, TITLE_MAX).map_err(InputError::text("title"))?)
}

fn moderators_only(by: Member) -> Result<(), ForumError> {
    if by.moderator() {
        Ok(())
    } else {
        Err(ForumError::NotAllowed("only moderators do this"))
    }
}

impl Topic {
    fn post(&self, id: Uuid) -> Result<&PostState, ForumError> {
        self.posts
            .iter()
            .find(|p| p.id == id)
            .ok_or(ForumError::Unknown {
                item: "post",
                id: id.to_string(),
            })
    }

    fn concern(&self, id: Uuid) -> Result<&ConcernState, ForumError> {
        self.concerns.get(&id).ok_or(ForumError::Unknown {
            item: "concern",
            id: id.to_string(),
        })
    }

    fn live_post(&self, id: Uuid, action: &'static str) -> Result<&PostState, ForumError> {
        let post = self.post(id)?;
        if post.withdrawn {
            return Err(ForumError::WrongState {
                item: "the post",
                state: "withdrawn",
                action,
            });
        }
        Ok(post)
    }

    /// The events a command causes, or the rule it breaks.
    pub fn decide(&self, command: TopicCommand) -> Result<Vec<TopicEvent>, ForumError> {
        if self.id.is_none() && !matches!(command, TopicCommand::Open { .. }) {
            return Err(ForumError::Unknown {
                item: "topic",
                id: String::new(),
            });
        }
        let clamp = |at: DateTime<Utc>| self.last_at.map_or(at, |last| at.max(last));
        match command {
            TopicCommand::Open {
                topic_id,
                organisation,
                category,
                title: t,
                post_id,
                body,
                by,
                at,
            } => {
                if self.id.is_some() {
                    return Err(ForumError::Duplicate {
                        item: "topic",
                        id: topic_id.to_string(),
                    });
                }
                Ok(vec![TopicEvent::TopicOpened {
                    topic_id,
                    organisation,
                    category,
                    title: title(&t)?,
                    post_id,
                    author: by.person,
                    kind: by.kind,
                    body: post_body(&body)?,
                    at,
                }])
            }
            TopicCommand::Reply {
                post_id,
                body,
                quote_of,
                by,
                at,
            } => {
                if self.closed && !by.moderator() {
                    return Err(ForumError::WrongState {
                        item: "the topic",
                        state: "closed",
                        action: "replied to",
                    });
                }
                if self.posts.iter().any(|p| p.id == post_id) {
                    return Err(ForumError::Duplicate {
                        item: "post",
                        id: post_id.to_string(),
                    });
                }
                if self.posts.len() >= POSTS_MAX {
                    return Err(ForumError::TooMany {
                        items: "posts in a topic",
                        max: POSTS_MAX,
                    });
                }
                if let Some(quoted) = quote_of {
                    self.live_post(quoted, "quoted")?;
                }
                Ok(vec![TopicEvent::ReplyPosted {
                    post_id,
                    author: by.person,
                    kind: by.kind,
                    body: post_body(&body)?,
                    quote_of,
                    number: self.posts.len() as u32 + 1,
                    at: clamp(at),
                }])
            }
            TopicCommand::Edit {
                post_id,
                body,
                title: new_title,
                by,
                at,
            } => {
                let post = self.live_post(post_id, "edited")?;
                if post.author != by.person {
                    return Err(ForumError::NotAllowed("only the author edits a post"));
                }
                if post.revisions >= REVISIONS_MAX {
                    return Err(ForumError::TooMany {
                        items: "revisions of a post",
                        max: REVISIONS_MAX as usize,
                    });
                }
                let first = self.posts.first().is_some_and(|p| p.id == post_id);
                let new_title = match new_title {
                    Some(_) if !first => {
                        return Err(ForumError::NotAllowed(
                            "only the topic's first post carries its title",
                        ))
                    }
                    Some(t) => Some(title(&t)?),
                    None => None,
                };
                Ok(vec![TopicEvent::PostEdited {
                    post_id,
                    body: post_body(&body)?,
                    title: new_title,
                    revision: post.revisions + 1,
                    at: clamp(at),
                }])
            }
            TopicCommand::Withdraw { post_id, by, at } => {
                let post = self.live_post(post_id, "withdrawn")?;
                if post.author != by.person {
                    return Err(ForumError::NotAllowed("only the author withdraws a post"));
                }
                Ok(vec![TopicEvent::PostWithdrawn {
                    post_id,
                    at: clamp(at),
                }])
            }
            TopicCommand::Support { post_id, by, at } => {
                let post = self.live_post(post_id, "supported")?;
                if post.author == by.person {
                    return Err(ForumError::NotAllowed("you cannot support your own post"));
                }
                if post.supporters.contains(&by.person) {
                    return Err(ForumError::NothingChanged("you support this post already"));
                }
                Ok(vec![TopicEvent::SupportGiven {
                    post_id,
                    by: by.person,
                    at: clamp(at),
                }])
            }
            TopicCommand::Unsupport { post_id, by, at } => {
                let post = self.post(post_id)?;
                if !post.supporters.contains(&by.person) {
                    return Err(ForumError::NothingChanged("you do not support this post"));
                }
                Ok(vec![TopicEvent::SupportTakenBack {
                    post_id,
                    by: by.person,
                    at: clamp(at),
                }])
            }
            TopicCommand::Flag {
                post_id,
                by,
                reason: why,
                note,
                threshold,
                at,
            } => {
                let post = self.live_post(post_id, "flagged")?;
                if post.author == by.person {
                    return Err(ForumError::NotAllowed("you cannot flag your own post"));
                }
                if post.flaggers.contains(&by.person) {
                    return Err(ForumError::NothingChanged("you flagged this post already"));
                }
                let note = if why == FlagReason::Other {
                    reason(&note)?
                } else {
                    text::optional(&note, REASON_MAX).map_err(InputError::text("note"))?
                };
                let at = clamp(at);
                let weight = flag_weight(by.kind);
                let score = post.score + weight;
                let mut events = vec![TopicEvent::PostFlagged {
                    post_id,
                    by: by.person,
                    kind: by.kind,
                    reason: why,
                    note,
                    weight,
                    score,
                    at,
                }];
                if post.hidden.is_none() && score >= threshold.max(1) {
                    // The reason that weighs most says why.
                    let mut reasons = post.reasons.clone();
                    *reasons.entry(why.as_str().to_string()).or_default() += weight;
                    let top = reasons
                        .iter()
                        .max_by_key(|(_, w)| **w)
                        .and_then(|(r, _)| FlagReason::parse(r))
                        .unwrap_or(why);
                    events.push(TopicEvent::PostHidden {
                        post_id,
                        by: None,
                        reason: format!("hidden pending review: {}", top.explained()),
                        at,
                    });
                }
                Ok(events)
            }
            TopicCommand::Hide {
                post_id,
                reason: why,
                by,
                at,
            } => {
                moderators_only(by)?;
                let post = self.live_post(post_id, "hidden")?;
                if post.hidden.is_some() {
                    return Err(ForumError::NothingChanged("the post is hidden"));
                }
                Ok(vec![TopicEvent::PostHidden {
                    post_id,
                    by: Some(by.person),
                    reason: reason(&why)?,
                    at: clamp(at),
                }])
            }
            TopicCommand::Restore {
                post_id,
                reason: why,
                by,
                at,
            } => {
                moderators_only(by)?;
                let post = self.live_post(post_id, "restored")?;
                if post.hidden.is_none() {
                    return Err(ForumError::NothingChanged("the post is not hidden"));
                }
                Ok(vec![TopicEvent::PostRestored {
                    post_id,
                    by: by.person,
                    reason: reason(&why)?,
                    at: clamp(at),
                }])
            }
            TopicCommand::Close {
                reason: why,
                by,
                at,
            } => {
                moderators_only(by)?;
                if self.closed {
                    return Err(ForumError::NothingChanged("the topic is closed"));
                }
                Ok(vec![TopicEvent::TopicClosed {
                    by: by.person,
                    reason: reason(&why)?,
                    at: clamp(at),
                }])
            }
            TopicCommand::Reopen {
                reason: why,
                by,
                at,
            } => {
                moderators_only(by)?;
                if !self.closed {
                    return Err(ForumError::NothingChanged("the topic is open"));
                }
                Ok(vec![TopicEvent::TopicReopened {
                    by: by.person,
                    reason: reason(&why)?,
                    at: clamp(at),
                }])
            }
            TopicCommand::RaiseConcern {
                concern_id,
                post_id,
                note,
                by,
                at,
            } => {
                self.live_post(post_id, "raised concern about")?;
                if self.concerns.contains_key(&concern_id) {
                    return Err(ForumError::Duplicate {
                        item: "concern",
                        id: concern_id.to_string(),
                    });
                }
                // One open concern per person per post; once resolved, a
                // new worry can be raised again.
                if self
                    .concerns
                    .values()
                    .any(|c| c.post == post_id && c.raised_by == by.person && !c.resolved)
                {
                    return Err(ForumError::NothingChanged(
                        "your concern about this post is with the moderators already",
                    ));
                }
                let note = text::optional(&note, REASON_MAX).map_err(InputError::text("note"))?;
                Ok(vec![TopicEvent::ConcernRaised {
                    concern_id,
                    post_id,
                    by: by.person,
                    note,
                    at: clamp(at),
                }])
            }
            TopicCommand::OpenConcern { concern_id, by, at } => {
                moderators_only(by)?;
                let concern = self.concern(concern_id)?;
                if concern.opened {
                    return Err(ForumError::NothingChanged("the concern is open already"));
                }
                Ok(vec![TopicEvent::ConcernOpened {
                    concern_id,
                    by: by.person,
                    at: clamp(at),
                }])
            }
            TopicCommand::ResolveConcern {
                concern_id,
                action,
                note,
                by,
                at,
            } => {
                moderators_only(by)?;
                let concern = self.concern(concern_id)?;
                if concern.resolved {
                    return Err(ForumError::NothingChanged("the concern is resolved"));
                }
                let at = clamp(at);
                let note = text::optional(&note, REASON_MAX).map_err(InputError::text("note"))?;
                let mut events = Vec::new();
                // Recording what was done means it was seen.
                if !concern.opened {
                    events.push(TopicEvent::ConcernOpened {
                        concern_id,
                        by: by.person,
                        at,
                    });
                }
                events.push(TopicEvent::ConcernResolved {
                    concern_id,
                    by: by.person,
                    action,
                    note,
                    at,
                });
                Ok(events)
            }
            TopicCommand::RaiseConcernAgain {
                concern_id,
                every,
                at,
            } => {
                let concern = self.concern(concern_id)?;
                if concern.opened || concern.resolved {
                    return Err(ForumError::NothingChanged("a moderator has the concern"));
                }
                if !concern_due(concern.last_raised, every, at) {
                    return Err(ForumError::NothingChanged(
                        "the concern was raised again lately",
                    ));
                }
                Ok(vec![TopicEvent::ConcernRaisedAgain {
                    concern_id,
                    round: concern.rounds + 1,
                    at: clamp(at),
                }])
            }
        }
    }
}

impl Aggregate for Topic {
    const TYPE: &'static str = TOPIC_TYPE;
    type Command = TopicCommand;
    type Event = TopicEvent;
    type Error = ForumError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        self.last_at = Some(event.at());
        fn post(topic: &mut Topic, id: Uuid) -> Option<&mut PostState> {
            topic.posts.iter_mut().find(|p| p.id == id)
        }
        match event {
            TopicEvent::TopicOpened {
                topic_id,
                organisation,
                category,
                post_id,
                author,
                ..
            } => {
                self.id = Some(topic_id);
                self.organisation = organisation;
                self.category = category;
                self.author = Some(author);
                self.posts.push(PostState {
                    id: post_id,
                    author,
                    revisions: 1,
                    ..PostState::default()
                });
            }
            TopicEvent::ReplyPosted {
                post_id, author, ..
            } => self.posts.push(PostState {
                id: post_id,
                author,
                revisions: 1,
                ..PostState::default()
            }),
            TopicEvent::PostEdited {
                post_id, revision, ..
            } => {
                if let Some(p) = post(self, post_id) {
                    p.revisions = revision;
                }
            }
            TopicEvent::PostWithdrawn { post_id, .. } => {
                if let Some(p) = post(self, post_id) {
                    p.withdrawn = true;
                }
            }
            TopicEvent::SupportGiven { post_id, by, .. } => {
                if let Some(p) = post(self, post_id) {
                    p.supporters.insert(by);
                }
            }
            TopicEvent::SupportTakenBack { post_id, by, .. } => {
                if let Some(p) = post(self, post_id) {
                    p.supporters.remove(&by);
                }
            }
            TopicEvent::PostFlagged {
                post_id,
                by,
                reason,
                weight,
                score,
                ..
            } => {
                if let Some(p) = post(self, post_id) {
                    p.flaggers.insert(by);
                    p.score = score;
                    *p.reasons.entry(reason.as_str().to_string()).or_default() += weight;
                }
            }
            TopicEvent::PostHidden {
                post_id,
                by,
                reason,
                ..
            } => {
                if let Some(p) = post(self, post_id) {
                    p.hidden = Some(Hidden { by, reason });
                }
            }
            TopicEvent::PostRestored { post_id, .. } => {
                // Reviewed: the flags so far are answered; new ones count anew.
                if let Some(p) = post(self, post_id) {
                    p.hidden = None;
                    p.score = 0;
                    p.reasons.clear();
                }
            }
            TopicEvent::TopicClosed { .. } => self.closed = true,
            TopicEvent::TopicReopened { .. } => self.closed = false,
            TopicEvent::ConcernRaised {
                concern_id,
                post_id,
                by,
                at,
                ..
            } => {
                self.concerns.insert(
                    concern_id,
                    ConcernState {
                        post: post_id,
                        raised_by: by,
                        raised_at: at,
                        opened: false,
                        resolved: false,
                        rounds: 0,
                        last_raised: at,
                    },
                );
            }
            TopicEvent::ConcernOpened { concern_id, .. } => {
                if let Some(c) = self.concerns.get_mut(&concern_id) {
                    c.opened = true;
                }
            }
            TopicEvent::ConcernResolved { concern_id, .. } => {
                if let Some(c) = self.concerns.get_mut(&concern_id) {
                    c.resolved = true;
                }
            }
            TopicEvent::ConcernRaisedAgain {
                concern_id,
                round,
                at,
            } => {
                if let Some(c) = self.concerns.get_mut(&concern_id) {
                    c.rounds = round;
                    c.last_raised = at;
                }
            }
        }
    }
}

/// What a post shows to one reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostShown {
    /// Its text (and revisions count, quote).
    pub text: bool,
    /// Why it is hidden (never by whom).
    pub hidden_reason: bool,
}

/// What a post shows to a reader: a withdrawn post shows no text to anyone
/// (moderators included); a hidden one shows its text to moderators and to
/// its author, who also see why it was hidden; others see that a post was
/// hidden, not what it said.
pub fn post_shown(
    withdrawn: bool,
    hidden: bool,
    reader_is_author: bool,
    moderator: bool,
) -> PostShown {
    if withdrawn {
        return PostShown {
            text: false,
            hidden_reason: false,
        };
    }
    if !hidden {
        return PostShown {
            text: true,
            hidden_reason: false,
        };
    }
    let sees = reader_is_author || moderator;
    PostShown {
        text: sees,
        hidden_reason: sees,
    }
}

/// Whether a member may write (post, reply, edit, flag, support) at `at`:
/// not while silenced.
pub fn may_write(silenced_until: Option<DateTime<Utc>>, at: DateTime<Utc>) -> bool {
    silenced_until.is_none_or(|until| until <= at)
}

/// Whether an unopened concern raised (or last raised again) at `last` is
/// due to be raised again at `now`, after `every`.
pub fn concern_due(last: DateTime<Utc>, every: Duration, now: DateTime<Utc>) -> bool {
    now - last >= every
}

// ---------------------------------------------------------------------------
// What a member follows and has read.

/// A member's follows and read marks, as their events leave them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reader {
    pub follows: BTreeSet<Uuid>,
    /// How many posts of each topic the member has read.
    pub read: BTreeMap<Uuid, u32>,
}

/// What a member asks of their follows and read marks.
#[derive(Debug, Clone, PartialEq)]
pub enum ReaderCommand {
    /// `following`: whether the member follows it now, as the forum's read
    /// model says (authors follow the topics they post in without asking).
    Follow {
        topic_id: Uuid,
        following: bool,
        at: DateTime<Utc>,
    },
    Unfollow {
        topic_id: Uuid,
        following: bool,
        at: DateTime<Utc>,
    },
    /// Marks the first `count` posts of the topic read (`posts`: how many it has).
    MarkRead {
        topic_id: Uuid,
        count: u32,
        posts: u32,
        at: DateTime<Utc>,
    },
}

/// What happened to a member's follows and read marks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReaderEvent {
    TopicFollowed {
        topic_id: Uuid,
        at: DateTime<Utc>,
    },
    TopicUnfollowed {
        topic_id: Uuid,
        at: DateTime<Utc>,
    },
    TopicRead {
        topic_id: Uuid,
        count: u32,
        at: DateTime<Utc>,
    },
}

/// What a member follows and has read: no personal text.
pub const READER_PERSONAL_DATA: Declarations = Declarations {
    aggregate_type: READER_TYPE,
    events: &[
        Declared::clear("TopicFollowed", &["topic_id", "at"]),
        Declared::clear("TopicUnfollowed", &["topic_id", "at"]),
        Declared::clear("TopicRead", &["topic_id", "count", "at"]),
    ],
};

impl DomainEvent for ReaderEvent {
    fn event_type(&self) -> String {
        match self {
            ReaderEvent::TopicFollowed { .. } => "TopicFollowed",
            ReaderEvent::TopicUnfollowed { .. } => "TopicUnfollowed",
            ReaderEvent::TopicRead { .. } => "TopicRead",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl Reader {
    pub fn decide(&self, command: ReaderCommand) -> Result<Vec<ReaderEvent>, ForumError> {
        match command {
            ReaderCommand::Follow {
                topic_id,
                following,
                at,
            } => {
                if following {
                    return Err(ForumError::NothingChanged("you follow this topic already"));
                }
                if self.follows.len() >= FOLLOWS_MAX {
                    return Err(ForumError::TooMany {
                        items: "followed topics",
                        max: FOLLOWS_MAX,
                    });
                }
                Ok(vec![ReaderEvent::TopicFollowed { topic_id, at }])
            }
            ReaderCommand::Unfollow {
                topic_id,
                following,
                at,
            } => {
                if !following {
                    return Err(ForumError::NothingChanged("you do not follow this topic"));
                }
                Ok(vec![ReaderEvent::TopicUnfollowed { topic_id, at }])
            }
            ReaderCommand::MarkRead {
                topic_id,
                count,
                posts,
                at,
            } => {
                let count = count.min(posts);
                if self.read.get(&topic_id).copied().unwrap_or(0) >= count {
                    return Err(ForumError::NothingChanged("you have read that far already"));
                }
                Ok(vec![ReaderEvent::TopicRead {
                    topic_id,
                    count,
                    at,
                }])
            }
        }
    }
}

impl Aggregate for Reader {
    const TYPE: &'static str = READER_TYPE;
    type Command = ReaderCommand;
    type Event = ReaderEvent;
    type Error = ForumError;
    type Services = ();

    crate::handle_by_decide!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            ReaderEvent::TopicFollowed { topic_id, .. } => {
                self.follows.insert(topic_id);
            }
            ReaderEvent::TopicUnfollowed { topic_id, .. } => {
                self.follows.remove(&topic_id);
            }
            ReaderEvent::TopicRead {
                topic_id, count, ..
            } => {
                self.read.insert(topic_id, count);
            }
        }
    }
}

#[cfg(test)]
#[path = "forum_tests.rs"]
mod tests;
