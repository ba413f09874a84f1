use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What a service user asks their portal to do. Ids and times are chosen by the
/// caller (the API), never inside the aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum PortalCommand {
    /// Create the portal for its owner, within an organisation.
    OpenPortal {
        owner: Uuid,
        organisation: String,
        at: DateTime<Utc>,
    },
    /// Add a life domain of the user's own beside the default set.
    AddLifeDomain {
        key: String,
        name: String,
        at: DateTime<Utc>,
    },
    /// Record how a life domain stands now: a 1-10 self-rating with a note.
    RateStatus {
        domain: String,
        score: i32,
        note: String,
        at: DateTime<Utc>,
    },
    /// Set a new goal in a life domain.
    SetGoal {
        goal_id: Uuid,
        domain: String,
        title: String,
        description: String,
        at: DateTime<Utc>,
    },
    /// Change the wording of an open goal.
    ReviseGoal {
        goal_id: Uuid,
        title: String,
        description: String,
        at: DateTime<Utc>,
    },
    /// Mark an open goal as achieved.
    AchieveGoal { goal_id: Uuid, at: DateTime<Utc> },
    /// Give up an open goal, optionally saying why.
    AbandonGoal {
        goal_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    /// Plan a concrete step under an open goal.
    PlanActivity {
        goal_id: Uuid,
        activity_id: Uuid,
        title: String,
        at: DateTime<Utc>,
    },
    /// Mark a planned activity as done.
    CompleteActivity {
        activity_id: Uuid,
        at: DateTime<Utc>,
    },
    /// Drop a planned activity, optionally saying why.
    DropActivity {
        activity_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
}
