use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Facts recorded in a portal. Never edited or removed; a new version of an
/// event gets a new `event_version` and an upcaster, not a rewrite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PortalEvent {
    PortalOpened {
        owner: Uuid,
        organisation: String,
        at: DateTime<Utc>,
    },
    LifeDomainAdded {
        key: String,
        name: String,
        at: DateTime<Utc>,
    },
    StatusRated {
        domain: String,
        score: i32,
        note: String,
        at: DateTime<Utc>,
    },
    GoalSet {
        goal_id: Uuid,
        domain: String,
        title: String,
        description: String,
        at: DateTime<Utc>,
    },
    GoalRevised {
        goal_id: Uuid,
        title: String,
        description: String,
        at: DateTime<Utc>,
    },
    GoalAchieved {
        goal_id: Uuid,
        at: DateTime<Utc>,
    },
    GoalAbandoned {
        goal_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    ActivityPlanned {
        goal_id: Uuid,
        activity_id: Uuid,
        title: String,
        at: DateTime<Utc>,
    },
    ActivityCompleted {
        goal_id: Uuid,
        activity_id: Uuid,
        at: DateTime<Utc>,
    },
    ActivityDropped {
        goal_id: Uuid,
        activity_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
}

impl PortalEvent {
    /// When the fact happened, as stated by the command that caused it.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            PortalEvent::PortalOpened { at, .. }
            | PortalEvent::LifeDomainAdded { at, .. }
            | PortalEvent::StatusRated { at, .. }
            | PortalEvent::GoalSet { at, .. }
            | PortalEvent::GoalRevised { at, .. }
            | PortalEvent::GoalAchieved { at, .. }
            | PortalEvent::GoalAbandoned { at, .. }
            | PortalEvent::ActivityPlanned { at, .. }
            | PortalEvent::ActivityCompleted { at, .. }
            | PortalEvent::ActivityDropped { at, .. } => *at,
        }
    }

    /// The goal this event concerns, if any (activities belong to their goal).
    pub fn goal_id(&self) -> Option<Uuid> {
        match self {
            PortalEvent::GoalSet { goal_id, .. }
            | PortalEvent::GoalRevised { goal_id, .. }
            | PortalEvent::GoalAchieved { goal_id, .. }
            | PortalEvent::GoalAbandoned { goal_id, .. }
            | PortalEvent::ActivityPlanned { goal_id, .. }
            | PortalEvent::ActivityCompleted { goal_id, .. }
            | PortalEvent::ActivityDropped { goal_id, .. } => Some(*goal_id),
            _ => None,
        }
    }

    /// The id of the thing this event created, for mutation results.
    pub fn created_id(&self) -> Option<String> {
        match self {
            PortalEvent::PortalOpened { owner, .. } => Some(owner.to_string()),
            PortalEvent::LifeDomainAdded { key, .. } => Some(key.clone()),
            PortalEvent::GoalSet { goal_id, .. } => Some(goal_id.to_string()),
            PortalEvent::ActivityPlanned { activity_id, .. } => Some(activity_id.to_string()),
            _ => None,
        }
    }
}

impl DomainEvent for PortalEvent {
    fn event_type(&self) -> String {
        match self {
            PortalEvent::PortalOpened { .. } => "PortalOpened",
            PortalEvent::LifeDomainAdded { .. } => "LifeDomainAdded",
            PortalEvent::StatusRated { .. } => "StatusRated",
            PortalEvent::GoalSet { .. } => "GoalSet",
            PortalEvent::GoalRevised { .. } => "GoalRevised",
            PortalEvent::GoalAchieved { .. } => "GoalAchieved",
            PortalEvent::GoalAbandoned { .. } => "GoalAbandoned",
            PortalEvent::ActivityPlanned { .. } => "ActivityPlanned",
            PortalEvent::ActivityCompleted { .. } => "ActivityCompleted",
            PortalEvent::ActivityDropped { .. } => "ActivityDropped",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
