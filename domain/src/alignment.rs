//! Alignment (issue 5): whether each side of a care relationship keeps its
//! expectation agreement at a given time. Pure: the service gathers the
//! agreement in force, the relationship's messages and the provider's looks
//! up to that time, and this computes the answer.

use chrono::{DateTime, Datelike, Duration, Utc, Weekday};

use crate::agreement::{ReplyTime, Terms};
use crate::care::Side;

/// When a reply to a message written at `at` is due.
pub fn reply_due(at: DateTime<Utc>, within: ReplyTime) -> DateTime<Utc> {
    match within {
        ReplyTime::Hours(h) => at + Duration::hours(i64::from(h)),
        ReplyTime::WorkingDays(days) => {
            // Count whole working days (Monday-Friday, UTC) forward from `at`.
            let mut due = at;
            let mut left = days;
            while left > 0 {
                due += Duration::days(1);
                if !matches!(due.weekday(), Weekday::Sat | Weekday::Sun) {
                    left -= 1;
                }
            }
            due
        }
    }
}

/// One message of a thread of the relationship: its thread, side and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub thread: u128,
    pub side: Side,
    pub at: DateTime<Utc>,
}

/// How one side keeps the agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Keeping {
    /// Messages from the other side this side has not answered past the agreed time.
    pub overdue_replies: u32,
    /// The earliest due time among them.
    pub overdue_since: Option<DateTime<Utc>>,
}

/// The alignment of a relationship at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alignment {
    pub user: Keeping,
    pub provider: Keeping,
    /// When the provider last looked at the portal (up to the time asked).
    pub last_look: Option<DateTime<Utc>>,
    /// When the next look is due (from the last look, or from when the
    /// agreement came into force if there was none since).
    pub look_due: DateTime<Utc>,
    /// True when the look is overdue.
    pub look_overdue: bool,
}

impl Alignment {
    /// True when neither side is behind.
    pub fn aligned(&self) -> bool {
        self.user.overdue_replies == 0 && self.provider.overdue_replies == 0 && !self.look_overdue
    }
}

/// Alignment at `at` under `terms` in force since `since`, given every
/// message of the relationship's threads written up to `at` (any order) and
/// the provider's last look at the portal up to `at`. A message is answered
/// by any later message of the other side in the same thread; only messages
/// written since the agreement came into force count.
pub fn alignment(
    terms: &Terms,
    since: DateTime<Utc>,
    messages: &[Written],
    last_look: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Alignment {
    let mut messages: Vec<Written> = messages.iter().copied().filter(|m| m.at <= at).collect();
    messages.sort_by_key(|m| (m.thread, m.at));
    let mut user = Keeping::default();
    let mut provider = Keeping::default();
    for (i, m) in messages.iter().enumerate() {
        if m.at < since {
            continue;
        }
        let answerer = match m.side {
            Side::ServiceUser => Side::Provider,
            Side::Provider => Side::ServiceUser,
        };
        let answered = messages[i + 1..]
            .iter()
            .any(|later| later.thread == m.thread && later.side == answerer);
        if answered {
            continue;
        }
        let (keeping, within) = match answerer {
            Side::ServiceUser => (&mut user, terms.user_replies_within),
            Side::Provider => (&mut provider, terms.provider_replies_within),
        };
        let due = reply_due(m.at, within);
        if due < at {
            keeping.overdue_replies += 1;
            keeping.overdue_since = Some(keeping.overdue_since.map_or(due, |d| d.min(due)));
        }
    }
    let from = last_look.filter(|l| *l >= since).unwrap_or(since);
    let look_due = from + Duration::days(i64::from(terms.provider_looks_in_days));
    Alignment {
        user,
        provider,
        last_look,
        look_due,
        look_overdue: look_due < at,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::agreement::Initiative;

    fn t(day: u32, hour: u32) -> DateTime<Utc> {
        // 2026-06-01 is a Monday.
        Utc.with_ymd_and_hms(2026, 6, day, hour, 0, 0).unwrap()
    }

    fn terms() -> Terms {
        Terms {
            initiative: Initiative::Both,
            provider_looks_in_days: 7,
            user_replies_within: ReplyTime::WorkingDays(2),
            provider_replies_within: ReplyTime::Hours(24),
            opened_together: false,
            notes: String::new(),
        }
    }

    fn w(thread: u128, side: Side, at: DateTime<Utc>) -> Written {
        Written { thread, side, at }
    }

    #[test]
    fn working_days_skip_the_weekend() {
        // Friday 5 June 10:00 + 2 working days = Tuesday 9 June 10:00.
        assert_eq!(reply_due(t(5, 10), ReplyTime::WorkingDays(2)), t(9, 10));
        assert_eq!(reply_due(t(1, 10), ReplyTime::WorkingDays(1)), t(2, 10));
        assert_eq!(reply_due(t(1, 10), ReplyTime::Hours(30)), t(2, 16));
    }

    #[test]
    fn an_unanswered_message_is_overdue_after_the_agreed_time_and_an_answer_clears_it() {
        let msgs = [w(1, Side::ServiceUser, t(1, 9))];
        let before = alignment(&terms(), t(1, 0), &msgs, Some(t(1, 8)), t(2, 8));
        assert_eq!(before.provider.overdue_replies, 0, "not due yet");
        let after = alignment(&terms(), t(1, 0), &msgs, Some(t(1, 8)), t(2, 10));
        assert_eq!(after.provider.overdue_replies, 1);
        assert_eq!(after.provider.overdue_since, Some(t(2, 9)));
        assert!(!after.aligned());
        let answered = [msgs[0], w(1, Side::Provider, t(2, 12))];
        let now = alignment(&terms(), t(1, 0), &answered, Some(t(1, 8)), t(3, 10));
        assert_eq!(now.provider.overdue_replies, 0);
        // The provider's reply now waits for the user: 2 working days.
        assert_eq!(now.user.overdue_replies, 0);
        let later = alignment(&terms(), t(1, 0), &answered, Some(t(1, 8)), t(4, 13));
        assert_eq!(later.user.overdue_replies, 1);
        // Asked for a past date, the answer is what it was then.
        let past = alignment(&terms(), t(1, 0), &answered, Some(t(1, 8)), t(2, 11));
        assert_eq!(past.provider.overdue_replies, 1);
    }

    #[test]
    fn answers_count_in_their_own_thread_only() {
        let msgs = [
            w(1, Side::ServiceUser, t(1, 9)),
            w(2, Side::Provider, t(1, 10)),
        ];
        let a = alignment(&terms(), t(1, 0), &msgs, Some(t(1, 8)), t(5, 9));
        assert_eq!(a.provider.overdue_replies, 1);
        assert_eq!(a.user.overdue_replies, 1);
    }

    #[test]
    fn the_provider_looks_in_as_often_as_agreed() {
        let a = alignment(&terms(), t(1, 0), &[], Some(t(2, 12)), t(9, 11));
        assert_eq!(a.look_due, t(9, 12));
        assert!(!a.look_overdue);
        let a = alignment(&terms(), t(1, 0), &[], Some(t(2, 12)), t(9, 13));
        assert!(a.look_overdue);
        // Never looked since the agreement: due a week after it came into force.
        let a = alignment(&terms(), t(1, 0), &[], None, t(8, 1));
        assert_eq!(a.look_due, t(8, 0));
        assert!(a.look_overdue);
    }

    #[test]
    fn messages_before_the_agreement_do_not_count() {
        let msgs = [w(1, Side::ServiceUser, t(1, 9))];
        let a = alignment(&terms(), t(3, 0), &msgs, Some(t(3, 1)), t(5, 9));
        assert_eq!(a.provider.overdue_replies, 0);
        assert!(a.aligned());
    }
}
