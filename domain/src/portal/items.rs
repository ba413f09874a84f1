//! The toolbox's items (medications, people on the network map, the crisis
//! plan) and the checks of their input: the types that commands, events,
//! the aggregate and the views share. The rules that decide toolbox
//! commands are in `toolbox.rs`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::errors::PortalError;
use super::limits::*;
use crate::refusal::InputError;
use crate::text;

/// How a person on the network map is related to the service user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    Family,
    Friend,
    Professional,
    Peer,
    Other,
}

/// A kind of support a person gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportKind {
    /// Listening, comfort, encouragement.
    Emotional,
    /// Help with everyday tasks.
    Practical,
    /// Advice and information.
    Informational,
    /// Company and shared activities.
    Social,
    /// Money or material help.
    Financial,
    /// Anything else.
    Other,
}

/// Where a medication stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MedicationState {
    Active,
    Paused,
    Stopped,
}

impl MedicationState {
    /// Lower-case name used in messages and read models.
    pub fn as_str(self) -> &'static str {
        match self {
            MedicationState::Active => "active",
            MedicationState::Paused => "paused",
            MedicationState::Stopped => "stopped",
        }
    }
}

/// Someone to contact in a crisis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrisisContact {
    pub name: String,
    pub phone: String,
    pub when_to_call: String,
}

/// The content of one revision of the crisis plan. Every revision holds the
/// whole document, so any revision is readable from its one event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrisisPlan {
    pub warning_signs: Vec<String>,
    pub what_helps: Vec<String>,
    pub what_does_not_help: Vec<String>,
    pub contacts: Vec<CrisisContact>,
    pub own_words: String,
}

/// What the aggregate keeps of a medication to decide commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Medication {
    pub name: String,
    pub dose: String,
    pub schedule: String,
    pub state: MedicationState,
}

/// What the aggregate keeps of a person on the network map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub display_name: String,
    pub relation: RelationKind,
    pub closeness: i32,
    pub support: Vec<SupportKind>,
    pub removed: bool,
}

/// A person's details as a command gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonDetails {
    pub display_name: String,
    pub relation: RelationKind,
    pub closeness: i32,
    pub support: Vec<SupportKind>,
}

pub(super) fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// Checks every item of a list section of the crisis plan.
pub(super) fn plan_list(field: &'static str, items: &[String]) -> Result<Vec<String>, PortalError> {
    if items.len() > PLAN_LIST_MAX {
        return Err(PortalError::TooManyItems {
            field,
            max: PLAN_LIST_MAX,
        });
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            text::required(item, PLAN_ITEM_MAX).map_err(|problem| PortalError::InvalidItem {
                field,
                index,
                problem,
            })
        })
        .collect()
}

/// A phone number as people write them: digits with spaces, `+`, `-`, `.`,
/// `(` and `)`; at least 3 digits.
pub(super) fn phone_ok(phone: &str) -> bool {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    (3..=PHONE_MAX).contains(&phone.chars().count())
        && digits >= 3
        && phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-.()".contains(c))
}

/// Checks a whole crisis plan and returns it as it will be stored (trimmed).
pub fn checked_plan(plan: CrisisPlan) -> Result<CrisisPlan, PortalError> {
    let warning_signs = plan_list("warningSigns", &plan.warning_signs)?;
    let what_helps = plan_list("whatHelps", &plan.what_helps)?;
    let what_does_not_help = plan_list("whatDoesNotHelp", &plan.what_does_not_help)?;
    if plan.contacts.len() > PLAN_CONTACTS_MAX {
        return Err(PortalError::TooManyItems {
            field: "contacts",
            max: PLAN_CONTACTS_MAX,
        });
    }
    let mut contacts: Vec<CrisisContact> = Vec::with_capacity(plan.contacts.len());
    for (index, c) in plan.contacts.iter().enumerate() {
        let item = |field| {
            move |problem| PortalError::InvalidItem {
                field,
                index,
                problem,
            }
        };
        let name = text::required(&c.name, PERSON_NAME_MAX).map_err(item("contacts.name"))?;
        let phone = c.phone.trim().to_string();
        if !phone_ok(&phone) {
            return Err(PortalError::InvalidPhone { index });
        }
        let when_to_call =
            text::optional(&c.when_to_call, PLAN_ITEM_MAX).map_err(item("contacts.whenToCall"))?;
        if contacts.iter().any(|other| same_name(&other.name, &name)) {
            return Err(PortalError::DuplicateName {
                item: "crisis contact",
                name,
            });
        }
        contacts.push(CrisisContact {
            name,
            phone,
            when_to_call,
        });
    }
    let own_words =
        text::optional(&plan.own_words, OWN_WORDS_MAX).map_err(InputError::text("ownWords"))?;
    let plan = CrisisPlan {
        warning_signs,
        what_helps,
        what_does_not_help,
        contacts,
        own_words,
    };
    if plan == CrisisPlan::default() {
        return Err(PortalError::EmptyCrisisPlan);
    }
    Ok(plan)
}

/// Checks a person's details and returns them as stored (trimmed, support
/// kinds sorted without repeats).
pub(super) fn checked_person(details: PersonDetails) -> Result<PersonDetails, InputError> {
    let display_name = text::required(&details.display_name, PERSON_NAME_MAX)
        .map_err(InputError::text("displayName"))?;
    if !(CLOSENESS_MIN..=CLOSENESS_MAX).contains(&details.closeness) {
        return Err(InputError::OutOfRange {
            field: "closeness",
            got: details.closeness,
            min: CLOSENESS_MIN,
            max: CLOSENESS_MAX,
        });
    }
    let support: BTreeSet<SupportKind> = details.support.into_iter().collect();
    Ok(PersonDetails {
        display_name,
        relation: details.relation,
        closeness: details.closeness,
        support: support.into_iter().collect(),
    })
}
