//! GraphQL for the peer-support forum (issue 17; `docs/forum.md`).
//!
//! Who takes part how is `domain::access::forum_part`: service users as
//! peers under a pseudonym, providers as staff under their profile's name
//! and profession, moderators under a forum name; auditors read the
//! moderation log only; researchers, admins and other organisations see
//! nothing of it. No answer to a member carries the person id of another:
//! authors are shown by name and kind. Only an admin learns who is behind a
//! name (`forumNameHolder`), with a stated reason, recorded in that person's
//! access trail.
//!
//! `rules`: who takes part how, and the checks before a write; `views`: what
//! a member reads (the `forum` field, topics, posts, live updates' parts);
//! `moderation`: the queue, concerns, the log, name history and
//! resolution; `mutation`: every change; `watch`: concerns raised again.

mod moderation;
mod mutation;
mod rules;
mod views;
mod watch;

pub(crate) use moderation::concern_node;
pub use moderation::{
    ConcernAction, FlaggedPost, ForumConcern, ForumFlag, ForumNameChange, ForumNameHolder,
    ForumSilence, ModerationEntry, ModerationQuery, ModerationQueue,
};
pub use mutation::{ForumConcernPayload, ForumMutation, ForumPostPayload, ForumTopicPayload};
pub(crate) use views::{follows, post_node, shown_author, topic_node};
pub use views::{
    FlagReason, ForumAuthor, ForumCategory, ForumMe, ForumMemberKind, ForumPost, ForumQuery,
    ForumQuote, ForumRevision, ForumTopicView, ForumView,
};
pub use watch::watch_concerns;
