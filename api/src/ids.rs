//! Global object identification, as the Relay specification and GitHub's
//! and Shopify's APIs have it: every object with an identity has an opaque
//! `id` unique across types (`NodeId`), and every `ID` argument is read
//! here, with the type it must name. Also the `BigInt` scalar for positions
//! and versions, which outgrow GraphQL's 32-bit `Int`. The bottom of the API:
//! it knows no resolver (`node` serves `node(id:)` on top of them).
//!
//! A global id is base64url (no padding) of `Type:part:part`, for example
//! `Goal:<portal uuid>:<goal uuid>`: the parts are what the typed field needs
//! to find the object, so resolving one needs no lookup table. Clients must
//! treat it as opaque.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value, ID};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use uuid::Uuid;

use crate::error::ApiError;

/// What a global id names, with what the typed field needs to find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeId {
    ControlPanel {
        portal: Uuid,
    },
    Goal {
        portal: Uuid,
        goal: Uuid,
    },
    Activity {
        portal: Uuid,
        goal: Uuid,
        activity: Uuid,
    },
    Medication {
        portal: Uuid,
        medication: Uuid,
    },
    NetworkPerson {
        portal: Uuid,
        person: Uuid,
    },
    CrisisPlan {
        portal: Uuid,
        revision: i32,
    },
    ExerciseEntry {
        portal: Uuid,
        entry: Uuid,
    },
    ProviderProfile {
        provider: Uuid,
    },
    Relationship {
        relationship: Uuid,
    },
    Agreement {
        relationship: Uuid,
    },
    Conversation {
        conversation: Uuid,
    },
    Message {
        conversation: Uuid,
        message: Uuid,
    },
    Study {
        study: Uuid,
    },
    ForumTopic {
        topic: Uuid,
    },
    ForumPost {
        topic: Uuid,
        post: Uuid,
    },
    ForumConcern {
        topic: Uuid,
        concern: Uuid,
    },
}

impl NodeId {
    /// The GraphQL type the id names.
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeId::ControlPanel { .. } => "ControlPanel",
            NodeId::Goal { .. } => "Goal",
            NodeId::Activity { .. } => "Activity",
            NodeId::Medication { .. } => "Medication",
            NodeId::NetworkPerson { .. } => "NetworkPerson",
            NodeId::CrisisPlan { .. } => "CrisisPlan",
            NodeId::ExerciseEntry { .. } => "ExerciseEntry",
            NodeId::ProviderProfile { .. } => "ProviderProfile",
            NodeId::Relationship { .. } => "Relationship",
            NodeId::Agreement { .. } => "Agreement",
            NodeId::Conversation { .. } => "Conversation",
            NodeId::Message { .. } => "Message",
            NodeId::Study { .. } => "Study",
            NodeId::ForumTopic { .. } => "ForumTopic",
            NodeId::ForumPost { .. } => "ForumPost",
            NodeId::ForumConcern { .. } => "ForumConcern",
        }
    }

    /// The opaque global id.
    pub fn id(&self) -> ID {
        let parts = match *self {
            NodeId::ControlPanel { portal } => vec![portal.to_string()],
            NodeId::Goal { portal, goal } => vec![portal.to_string(), goal.to_string()],
            NodeId::Activity {
                portal,
                goal,
                activity,
            } => vec![portal.to_string(), goal.to_string(), activity.to_string()],
            NodeId::Medication { portal, medication } => {
                vec![portal.to_string(), medication.to_string()]
            }
            NodeId::NetworkPerson { portal, person } => {
                vec![portal.to_string(), person.to_string()]
            }
            NodeId::CrisisPlan { portal, revision } => {
                vec![portal.to_string(), revision.to_string()]
            }
            NodeId::ExerciseEntry { portal, entry } => vec![portal.to_string(), entry.to_string()],
            NodeId::ProviderProfile { provider } => vec![provider.to_string()],
            NodeId::Relationship { relationship } | NodeId::Agreement { relationship } => {
                vec![relationship.to_string()]
            }
            NodeId::Conversation { conversation } => vec![conversation.to_string()],
            NodeId::Message {
                conversation,
                message,
            } => vec![conversation.to_string(), message.to_string()],
            NodeId::Study { study } => vec![study.to_string()],
            NodeId::ForumTopic { topic } => vec![topic.to_string()],
            NodeId::ForumPost { topic, post } => vec![topic.to_string(), post.to_string()],
            NodeId::ForumConcern { topic, concern } => {
                vec![topic.to_string(), concern.to_string()]
            }
        };
        let text = format!("{}:{}", self.type_name(), parts.join(":"));
        ID(URL_SAFE_NO_PAD.encode(text))
    }

    /// The id a global id string names; None for anything that is not one.
    pub fn decode(id: &str) -> Option<NodeId> {
        if id.len() > 200 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(id).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.split(':');
        let kind = parts.next()?;
        let rest: Vec<&str> = parts.collect();
        let uuid = |i: usize| rest.get(i).and_then(|s| Uuid::parse_str(s).ok());
        let node = match (kind, rest.len()) {
            ("ControlPanel", 1) => NodeId::ControlPanel { portal: uuid(0)? },
            ("Goal", 2) => NodeId::Goal {
                portal: uuid(0)?,
                goal: uuid(1)?,
            },
            ("Activity", 3) => NodeId::Activity {
                portal: uuid(0)?,
                goal: uuid(1)?,
                activity: uuid(2)?,
            },
            ("Medication", 2) => NodeId::Medication {
                portal: uuid(0)?,
                medication: uuid(1)?,
            },
            ("NetworkPerson", 2) => NodeId::NetworkPerson {
                portal: uuid(0)?,
                person: uuid(1)?,
            },
            ("CrisisPlan", 2) => NodeId::CrisisPlan {
                portal: uuid(0)?,
                revision: rest[1].parse().ok().filter(|r| *r > 0)?,
            },
            ("ExerciseEntry", 2) => NodeId::ExerciseEntry {
                portal: uuid(0)?,
                entry: uuid(1)?,
            },
            ("ProviderProfile", 1) => NodeId::ProviderProfile { provider: uuid(0)? },
            ("Relationship", 1) => NodeId::Relationship {
                relationship: uuid(0)?,
            },
            ("Agreement", 1) => NodeId::Agreement {
                relationship: uuid(0)?,
            },
            ("Conversation", 1) => NodeId::Conversation {
                conversation: uuid(0)?,
            },
            ("Message", 2) => NodeId::Message {
                conversation: uuid(0)?,
                message: uuid(1)?,
            },
            ("Study", 1) => NodeId::Study { study: uuid(0)? },
            ("ForumTopic", 1) => NodeId::ForumTopic { topic: uuid(0)? },
            ("ForumPost", 2) => NodeId::ForumPost {
                topic: uuid(0)?,
                post: uuid(1)?,
            },
            ("ForumConcern", 2) => NodeId::ForumConcern {
                topic: uuid(0)?,
                concern: uuid(1)?,
            },
            _ => return None,
        };
        Some(node)
    }
}

/// An `ID` argument that names an object: its global `id`, or its bare
/// `uuid` (what exports, the command line and other systems know).
fn parse(id: &ID) -> Result<Result<Uuid, NodeId>, ApiError> {
    if let Ok(uuid) = Uuid::parse_str(id) {
        return Ok(Ok(uuid));
    }
    NodeId::decode(id)
        .map(Err)
        .ok_or_else(|| ApiError::BadInput(format!("`{}` is not an id", clip(id))))
}

pub(crate) fn clip(id: &str) -> String {
    id.chars().take(60).collect()
}

fn wrong_type(id: &ID, node: NodeId, want: &str) -> ApiError {
    ApiError::BadInput(format!(
        "`{}` is the id of a {}, not of a {want}",
        clip(id),
        node.type_name()
    ))
}

/// A portal named by an argument: the owner's person id, or a control
/// panel's global id.
pub fn portal(id: Option<&ID>) -> Result<Option<Uuid>, ApiError> {
    let Some(id) = id else { return Ok(None) };
    match parse(id)? {
        Ok(uuid) => Ok(Some(uuid)),
        Err(NodeId::ControlPanel { portal }) => Ok(Some(portal)),
        Err(other) => Err(wrong_type(id, other, "portal")),
    }
}

/// An item of a portal named by an argument, with the portal it is in:
/// from its global id, or from the `portalId` argument beside a bare uuid.
/// A global id of one portal beside a `portalId` of another is refused.
pub fn portal_item(
    id: &ID,
    portal_id: Option<&ID>,
    want: &str,
    pick: impl Fn(NodeId) -> Option<(Uuid, Uuid)>,
) -> Result<(Option<Uuid>, Uuid), ApiError> {
    let named = portal(portal_id)?;
    match parse(id)? {
        Ok(uuid) => Ok((named, uuid)),
        Err(node) => {
            let (portal, item) = pick(node).ok_or_else(|| wrong_type(id, node, want))?;
            if named.is_some_and(|named| named != portal) {
                return Err(ApiError::BadInput(format!(
                    "`{}` names a {want} of another portal than `portalId`",
                    clip(id)
                )));
            }
            Ok((Some(portal), item))
        }
    }
}

/// A goal named by an argument (see `portal_item`).
pub fn goal(id: &ID, portal_id: Option<&ID>) -> Result<(Option<Uuid>, Uuid), ApiError> {
    portal_item(id, portal_id, "Goal", |node| match node {
        NodeId::Goal { portal, goal } => Some((portal, goal)),
        _ => None,
    })
}

/// An activity named by an argument (see `portal_item`).
pub fn activity(id: &ID, portal_id: Option<&ID>) -> Result<(Option<Uuid>, Uuid), ApiError> {
    portal_item(id, portal_id, "Activity", |node| match node {
        NodeId::Activity {
            portal, activity, ..
        } => Some((portal, activity)),
        _ => None,
    })
}

/// A medication named by an argument (see `portal_item`).
pub fn medication(id: &ID, portal_id: Option<&ID>) -> Result<(Option<Uuid>, Uuid), ApiError> {
    portal_item(id, portal_id, "Medication", |node| match node {
        NodeId::Medication { portal, medication } => Some((portal, medication)),
        _ => None,
    })
}

/// A person on the network map named by an argument (see `portal_item`).
pub fn network_person(id: &ID, portal_id: Option<&ID>) -> Result<(Option<Uuid>, Uuid), ApiError> {
    portal_item(id, portal_id, "NetworkPerson", |node| match node {
        NodeId::NetworkPerson { portal, person } => Some((portal, person)),
        _ => None,
    })
}

/// An object outside portals named by an argument: its uuid, or a global
/// id of the kind `pick` accepts.
pub fn object(
    id: &ID,
    want: &str,
    pick: impl Fn(NodeId) -> Option<Uuid>,
) -> Result<Uuid, ApiError> {
    match parse(id)? {
        Ok(uuid) => Ok(uuid),
        Err(node) => pick(node).ok_or_else(|| wrong_type(id, node, want)),
    }
}

/// An exercise log entry named by an argument (see `portal_item`).
pub fn exercise_entry(id: &ID) -> Result<(Option<Uuid>, Uuid), ApiError> {
    portal_item(id, None, "ExerciseEntry", |node| match node {
        NodeId::ExerciseEntry { portal, entry } => Some((portal, entry)),
        _ => None,
    })
}

/// A care relationship named by an argument (an agreement's id names its
/// relationship too).
pub fn relationship(id: &ID) -> Result<Uuid, ApiError> {
    object(id, "Relationship", |node| match node {
        NodeId::Relationship { relationship } | NodeId::Agreement { relationship } => {
            Some(relationship)
        }
        _ => None,
    })
}

/// A conversation named by an argument.
pub fn conversation(id: &ID) -> Result<Uuid, ApiError> {
    object(id, "Conversation", |node| match node {
        NodeId::Conversation { conversation } => Some(conversation),
        _ => None,
    })
}

/// A message named by an argument.
pub fn message(id: &ID) -> Result<Uuid, ApiError> {
    object(id, "Message", |node| match node {
        NodeId::Message { message, .. } => Some(message),
        _ => None,
    })
}

/// A study named by an argument.
pub fn study(id: &ID) -> Result<Uuid, ApiError> {
    object(id, "Study", |node| match node {
        NodeId::Study { study } => Some(study),
        _ => None,
    })
}

/// A forum topic named by an argument.
pub fn forum_topic(id: &ID) -> Result<Uuid, ApiError> {
    object(id, "ForumTopic", |node| match node {
        NodeId::ForumTopic { topic } => Some(topic),
        _ => None,
    })
}

/// A forum post named by an argument: its global id (which names its
/// topic too), or its bare uuid (the topic is then looked up).
pub fn forum_post(id: &ID) -> Result<(Option<Uuid>, Uuid), ApiError> {
    match parse(id)? {
        Ok(post) => Ok((None, post)),
        Err(NodeId::ForumPost { topic, post }) => Ok((Some(topic), post)),
        Err(_) => Err(ApiError::BadInput(format!(
            "`{}` is not the id of a ForumPost",
            clip(id)
        ))),
    }
}

/// A concern named by an argument: its global id (with its topic).
pub fn forum_concern(id: &ID) -> Result<(Uuid, Uuid), ApiError> {
    match NodeId::decode(id) {
        Some(NodeId::ForumConcern { topic, concern }) => Ok((topic, concern)),
        _ => Err(ApiError::BadInput(format!(
            "`{}` is not the id of a ForumConcern",
            clip(id)
        ))),
    }
}

/// A person named by an argument: their person id (the identity
/// provider's subject), or the global id of their provider profile.
pub fn person(id: &ID) -> Result<Uuid, ApiError> {
    object(id, "person", |node| match node {
        NodeId::ProviderProfile { provider } => Some(provider),
        NodeId::ControlPanel { portal } => Some(portal),
        _ => None,
    })
}

/// A person's id as the schema gives it: the identity provider's subject.
pub fn person_id(uuid: Uuid) -> ID {
    ID(uuid.to_string())
}

/// A whole number that may outgrow 32 bits (event positions, versions,
/// sequence numbers), sent as a decimal string as GitHub's `BigInt` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BigInt(pub i64);

/// A whole number that may outgrow 32 bits (event positions, versions and
/// sequence numbers), sent as a decimal string; a string or a number is
/// accepted as input.
#[Scalar]
impl ScalarType for BigInt {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => s
                .parse()
                .map(BigInt)
                .map_err(|_| InputValueError::custom("a BigInt is a whole number as a string")),
            Value::Number(n) => n
                .as_i64()
                .map(BigInt)
                .ok_or_else(|| InputValueError::custom("a BigInt is a whole number")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

impl std::fmt::Display for BigInt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<i64> for BigInt {
    fn from(n: i64) -> Self {
        BigInt(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn global_ids_round_trip_and_are_typed() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let all = [
            NodeId::ControlPanel { portal: a },
            NodeId::Goal { portal: a, goal: b },
            NodeId::Activity {
                portal: a,
                goal: b,
                activity: a,
            },
            NodeId::Medication {
                portal: a,
                medication: b,
            },
            NodeId::NetworkPerson {
                portal: a,
                person: b,
            },
            NodeId::CrisisPlan {
                portal: a,
                revision: 3,
            },
            NodeId::ExerciseEntry {
                portal: a,
                entry: b,
            },
            NodeId::ProviderProfile { provider: a },
            NodeId::Relationship { relationship: a },
            NodeId::Agreement { relationship: a },
            NodeId::Conversation { conversation: a },
            NodeId::Message {
                conversation: a,
                message: b,
            },
            NodeId::Study { study: a },
        ];
        let mut seen = std::collections::HashSet::new();
        for node in all {
            let id = node.id();
            assert!(seen.insert(id.to_string()), "two nodes share {id:?}");
            assert!(!id.contains('='), "no padding in {id:?}");
            assert_eq!(NodeId::decode(&id), Some(node));
        }
        // The same uuid as a relationship and as its agreement: two ids.
        assert_ne!(
            NodeId::Relationship { relationship: a }.id(),
            NodeId::Agreement { relationship: a }.id()
        );
    }

    #[test]
    fn malformed_ids_decode_to_nothing() {
        let u = Uuid::new_v4();
        for bad in [
            String::new(),
            "not base64!".into(),
            URL_SAFE_NO_PAD.encode("Goal"),
            URL_SAFE_NO_PAD.encode(format!("Goal:{u}")),
            URL_SAFE_NO_PAD.encode(format!("Goal:{u}:{u}:{u}")),
            URL_SAFE_NO_PAD.encode(format!("Unknown:{u}")),
            URL_SAFE_NO_PAD.encode(format!("Goal:{u}:nope")),
            URL_SAFE_NO_PAD.encode(format!("CrisisPlan:{u}:0")),
            URL_SAFE_NO_PAD.encode(format!("CrisisPlan:{u}:-1")),
            "A".repeat(201),
        ] {
            assert_eq!(NodeId::decode(&bad), None, "{bad}");
        }
    }

    #[test]
    fn arguments_take_a_global_id_or_a_uuid_of_the_right_type() {
        let (p, g) = (Uuid::new_v4(), Uuid::new_v4());
        let goal_id = NodeId::Goal { portal: p, goal: g }.id();
        assert_eq!(goal(&goal_id, None).unwrap(), (Some(p), g));
        let panel = NodeId::ControlPanel { portal: p }.id();
        assert_eq!(goal(&goal_id, Some(&panel)).unwrap(), (Some(p), g));
        assert_eq!(
            goal(&ID(g.to_string()), Some(&ID(p.to_string()))).unwrap(),
            (Some(p), g)
        );
        // Another portal than the id's own.
        let other = ID(Uuid::new_v4().to_string());
        assert!(matches!(
            goal(&goal_id, Some(&other)),
            Err(ApiError::BadInput(_))
        ));
        // A medication's id where a goal's is asked for.
        let medication_id = NodeId::Medication {
            portal: p,
            medication: g,
        }
        .id();
        assert!(matches!(
            goal(&medication_id, None),
            Err(ApiError::BadInput(_))
        ));
        assert!(matches!(
            relationship(&ID("x".into())),
            Err(ApiError::BadInput(_))
        ));
        let agreement = NodeId::Agreement { relationship: g }.id();
        assert_eq!(relationship(&agreement).unwrap(), g);
        assert!(matches!(study(&agreement), Err(ApiError::BadInput(_))));
    }

    #[test]
    fn big_ints_travel_as_strings() {
        let big = BigInt(i64::MAX);
        assert_eq!(big.to_value(), Value::String(i64::MAX.to_string()));
        assert_eq!(
            <BigInt as ScalarType>::parse(Value::String("9007199254740993".into())).unwrap(),
            BigInt(9_007_199_254_740_993)
        );
        assert_eq!(
            <BigInt as ScalarType>::parse(Value::Number(42.into())).unwrap(),
            BigInt(42)
        );
        assert!(<BigInt as ScalarType>::parse(Value::String("4.2".into())).is_err());
        assert!(<BigInt as ScalarType>::parse(Value::Boolean(true)).is_err());
    }
}
