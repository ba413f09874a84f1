//! The research fold on hand-made streams of real event payloads.

use chrono::TimeZone;
use cqrs_es::DomainEvent;
use domain::agreement::{AgreementEvent, Initiative, ReplyTime, Terms};
use domain::messaging::ConversationEvent;
use domain::portal::PortalEvent;
use domain::study::{EnrolmentEvent, Used};

use super::*;

const STUDY: Uuid = Uuid::from_u128(0x5);
const USER: Uuid = Uuid::from_u128(0x1);
const PROVIDER: Uuid = Uuid::from_u128(0x2);
const THREAD: Uuid = Uuid::from_u128(0x7);

/// Monday 2 March 2026, 09:00 UTC, plus `minutes`.
fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("valid")
        + Duration::minutes(minutes)
}

fn info() -> StudyInfo {
    StudyInfo {
        study_id: STUDY,
        organisation: "org".into(),
        title: "t".into(),
        protocol_id: "p".into(),
        starts_on: NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
        ends_on: NaiveDate::from_ymd_opt(2026, 12, 31).expect("date"),
        researchers: vec![Uuid::from_u128(9)],
    }
}

#[derive(Default)]
struct Stream {
    fold: Option<Fold>,
    position: i64,
}

impl Stream {
    fn until(as_of: DateTime<Utc>) -> Self {
        Stream {
            fold: Some(Fold::until(as_of)),
            position: 0,
        }
    }
    fn fold(&mut self) -> &mut Fold {
        self.fold.get_or_insert_with(Fold::default)
    }
    fn push<E: DomainEvent>(&mut self, aggregate_type: &str, id: Uuid, event: E) {
        self.position += 1;
        let payload = serde_json::to_string(&event).expect("serialises");
        let position = self.position;
        self.fold()
            .apply(
                position,
                aggregate_type,
                &id.to_string(),
                &event.event_type(),
                &payload,
            )
            .expect("folds");
    }
    fn used(
        &mut self,
        who: Uuid,
        role: ParticipantRole,
        module: Module,
        write: bool,
        at: DateTime<Utc>,
    ) {
        self.position += 1;
        let payload = serde_json::to_string(&Used {
            participant_id: who,
            role,
            module,
            write,
            at,
        })
        .expect("serialises");
        let position = self.position;
        self.fold()
            .apply(position, "Usage", "writer", "Used", &payload)
            .expect("folds");
    }
    fn enrol(&mut self, who: Uuid, role: ParticipantRole, at: DateTime<Utc>) {
        self.push(
            "Enrolment",
            who,
            EnrolmentEvent::Enrolled {
                study_id: STUDY,
                participant_id: who,
                role,
                at,
            },
        );
    }
    fn withdraw(&mut self, who: Uuid, at: DateTime<Utc>) {
        self.push(
            "Enrolment",
            who,
            EnrolmentEvent::Withdrew {
                study_id: STUDY,
                participant_id: who,
                at,
            },
        );
    }
    fn rate(&mut self, at: DateTime<Utc>) {
        self.push(
            "Portal",
            USER,
            PortalEvent::StatusRated {
                domain: "housing".into(),
                score: 5,
                note: "private words".into(),
                at,
            },
        );
    }
    fn start_thread(&mut self, at: DateTime<Utc>) {
        self.push(
            "Conversation",
            THREAD,
            ConversationEvent::ConversationStarted {
                conversation_id: THREAD,
                organisation: "org".into(),
                user_id: USER,
                providers: vec![PROVIDER],
                subject: "s".into(),
                started_by: PROVIDER,
                at,
            },
        );
    }
    fn message(&mut self, by: Uuid, starts_exchange: bool, at: DateTime<Utc>) {
        let side = if by == USER {
            Side::ServiceUser
        } else {
            Side::Provider
        };
        self.push(
            "Conversation",
            THREAD,
            ConversationEvent::MessagePosted {
                message_id: Uuid::new_v4(),
                by,
                side,
                body: "words".into(),
                starts_exchange,
                at,
            },
        );
    }
    /// The provider proposes and the user accepts an agreement: look in
    /// weekly, the user replies within a day, the provider within `hours`.
    fn agree(&mut self, hours: i32) {
        let relationship = relationship_id(USER, PROVIDER);
        let terms = Terms {
            initiative: Initiative::Both,
            provider_looks_in_days: 7,
            user_replies_within: ReplyTime::Hours(24),
            provider_replies_within: ReplyTime::Hours(hours),
            opened_together: false,
            notes: String::new(),
        };
        self.push(
            "Agreement",
            relationship,
            AgreementEvent::AgreementProposed {
                version: 1,
                by: Side::Provider,
                counter: false,
                terms,
                at: t(1),
            },
        );
        self.push(
            "Agreement",
            relationship,
            AgreementEvent::AgreementAccepted {
                version: 1,
                by: Side::ServiceUser,
                at: t(2),
            },
        );
    }

    fn tables(&mut self, as_of: DateTime<Utc>) -> Vec<Table> {
        self.fold()
            .tables(&info(), as_of, Duration::minutes(30), &HashSet::new())
    }
}

fn table<'a>(tables: &'a [Table], name: &str) -> &'a Table {
    tables.iter().find(|t| t.name == name).expect("table")
}

fn ints(row: &[Cell]) -> Vec<i64> {
    row.iter()
        .map(|c| match c {
            Cell::Int(v) => *v,
            Cell::Null => -1,
            _ => -2,
        })
        .collect()
}

#[test]
fn weeks_start_on_monday() {
    assert_eq!(week_of(t(0)).to_string(), "2026-03-02");
    // Sunday 8 March, 23:59.
    assert_eq!(
        week_of(t(60 * 24 * 6 + 14 * 60 + 59)).to_string(),
        "2026-03-02"
    );
    assert_eq!(week_of(t(60 * 24 * 7)).to_string(), "2026-03-09");
}

#[test]
fn a_visit_ends_after_thirty_quiet_minutes() {
    let mut s = Stream::default();
    s.enrol(USER, ParticipantRole::ServiceUser, t(0));
    let u = ParticipantRole::ServiceUser;
    s.used(USER, u, Module::ControlPanel, false, t(1));
    s.used(USER, u, Module::Medications, false, t(30)); // 29 minutes later: same visit
    s.used(USER, u, Module::ControlPanel, true, t(60)); // 30 minutes later: a new one
    s.used(USER, u, Module::ControlPanel, false, t(61));
    let tables = s.tables(t(600));
    let weeks = table(&tables, "participant_weeks");
    assert_eq!(weeks.rows.len(), 1);
    assert_eq!(
        ints(&weeks.rows[0][2..4]),
        vec![2, 4],
        "2 visits, 4 requests"
    );
    let modules = table(&tables, "participant_module_weeks");
    let control: Vec<&Vec<Cell>> = modules
        .rows
        .iter()
        .filter(|r| r[2] == Cell::Text("control_panel".into()))
        .collect();
    assert_eq!(
        ints(&control[0][3..6]),
        vec![2, 2, 1],
        "in 2 visits, 2 views, 1 write"
    );
    let popularity = table(&tables, "module_weeks");
    assert_eq!(popularity.rows.len(), 2);
}

#[test]
fn only_enrolled_time_counts_and_as_of_cuts_the_stream() {
    let mut s = Stream::until(t(60 * 24 * 10));
    s.rate(t(0)); // before enrolling: not counted
    s.enrol(USER, ParticipantRole::ServiceUser, t(10));
    s.rate(t(20));
    s.withdraw(USER, t(30));
    s.rate(t(40)); // withdrawn: not counted
    s.enrol(USER, ParticipantRole::ServiceUser, t(60 * 24 * 7));
    s.rate(t(60 * 24 * 7 + 1));
    s.rate(t(60 * 24 * 11)); // after the as-of time: left out
    let tables = s.tables(t(60 * 24 * 10));
    let weeks = table(&tables, "participant_weeks");
    let ratings: Vec<i64> = weeks.rows.iter().map(|r| ints(&r[4..5])[0]).collect();
    assert_eq!(ratings, vec![1, 1], "one rating in each enrolled week");
    let participants = table(&tables, "participants");
    // 20 minutes, then 3 days from the second enrolment to the as-of time.
    assert_eq!(ints(&participants.rows[0][3..4]), vec![3]);
    // Withdrawn since: left out entirely.
    let excluded = HashSet::from([USER]);
    let fold = s.fold();
    let none = fold.tables(&info(), t(60 * 24 * 10), Duration::minutes(30), &excluded);
    assert!(none
        .iter()
        .all(|t| t.rows.is_empty() || t.name == "study_weeks"));
    assert!(table(&none, "study_weeks").rows.is_empty());
}

#[test]
fn replies_initiation_latency_and_agreement_adherence() {
    let mut s = Stream::default();
    s.enrol(USER, ParticipantRole::ServiceUser, t(0));
    s.enrol(PROVIDER, ParticipantRole::Provider, t(0));
    s.agree(2);
    s.start_thread(t(10));
    s.message(PROVIDER, true, t(10)); // provider starts an exchange
    s.message(USER, false, t(70)); // user replies after 60 min (due in 24 h: on time)
    s.message(USER, false, t(80)); // same run
    s.message(PROVIDER, false, t(70 + 180)); // provider replies 180 min after the run began (due in 2 h: late)
    s.message(USER, true, t(60 * 24 * 2)); // a new exchange, and a (late) reply
    s.message(PROVIDER, true, t(60 * 24 * 3)); // the same, the provider a day later
                                               // ... unanswered, due at the as-of time
    let tables = s.tables(t(60 * 24 * 4));
    let pairs = table(&tables, "relationship_weeks");
    assert_eq!(pairs.rows.len(), 1);
    let row = ints(&pairs.rows[0][3..]);
    // exchanges user/provider, user replies n/median/p90, provider replies
    // n/median/p90, agreement version, user due/on time, provider due/on time
    assert_eq!(
        row,
        vec![1, 2, 2, 3600, 157_800, 2, 10_800, 86_400, 1, 3, 1, 2, 0, 0, 7],
        "{:?}",
        pairs.rows[0]
    );
    let study = table(&tables, "study_weeks");
    let ratio = study.column("initiation_ratio").expect("column");
    assert_eq!(ints(&study.rows[0][ratio - 2..ratio]), vec![1, 2]);
    assert_eq!(study.rows[0][ratio], Cell::Float(2.0));
    assert_eq!(
        ints(&study.rows[0][ratio + 1..]),
        vec![2, 3600, 2, 10_800, 3, 1, 2, 0]
    );
    let weeks = table(&tables, "participant_weeks");
    let user = weeks
        .rows
        .iter()
        .find(|r| r[0] == Cell::Text(USER.to_string()))
        .expect("user");
    assert_eq!(
        ints(&user[8..11]),
        vec![3, 3, 0],
        "sent, received, threads started"
    );
}

#[test]
fn nearest_rank_percentiles() {
    assert_eq!(nearest_rank(&[], 0.5), None);
    assert_eq!(nearest_rank(&[7], 0.9), Some(7));
    let ten: Vec<i64> = (1..=10).collect();
    assert_eq!(nearest_rank(&ten, 0.5), Some(5));
    assert_eq!(nearest_rank(&ten, 0.9), Some(9));
    assert_eq!(nearest_rank(&[1, 2, 3], 0.5), Some(2));
}

#[test]
fn engagement_bands() {
    assert_eq!(engagement_band(0, 30), "never");
    assert_eq!(engagement_band(1, 60), "less_than_monthly");
    assert_eq!(engagement_band(1, 30), "monthly");
    assert_eq!(engagement_band(1, 7), "weekly");
    assert_eq!(engagement_band(5, 7), "daily");
}

#[test]
fn only_the_study_period_counts() {
    let mut s = Stream::default();
    s.enrol(USER, ParticipantRole::ServiceUser, t(0));
    s.used(
        USER,
        ParticipantRole::ServiceUser,
        Module::ControlPanel,
        false,
        t(60),
    ); // Monday 2 March
    s.used(
        USER,
        ParticipantRole::ServiceUser,
        Module::ControlPanel,
        false,
        t(60 * 24 + 60),
    ); // Tuesday
    let later = StudyInfo {
        starts_on: NaiveDate::from_ymd_opt(2026, 3, 3).expect("date"),
        ends_on: NaiveDate::from_ymd_opt(2026, 3, 3).expect("date"),
        ..info()
    };
    let tables = s.fold().tables(
        &later,
        t(60 * 24 * 5),
        Duration::minutes(30),
        &HashSet::new(),
    );
    let participants = table(&tables, "participants");
    assert_eq!(
        ints(&participants.rows[0][3..5]),
        vec![1, 1],
        "one day, one visit"
    );
}

#[test]
fn provider_look_ins_per_week_beside_the_agreed_interval() {
    use domain::trail::{AccessRecord, Basis};
    let mut s = Stream::default();
    s.enrol(USER, ParticipantRole::ServiceUser, t(0));
    s.enrol(PROVIDER, ParticipantRole::Provider, t(0));
    let relationship = relationship_id(USER, PROVIDER);
    s.agree(24);
    let look = |minutes: i64, basis: Basis| AccessRecord {
        reader_id: PROVIDER,
        reader_role: "provider".into(),
        reader_organisation: "org".into(),
        subject_id: Some(USER),
        organisation: "org".into(),
        section: "core".into(),
        query: "controlPanel".into(),
        basis,
        relationship_id: Some(relationship),
        basis_sequence: Some(3),
        refusal: None,
        detail: None,
        request_id: "r".into(),
        client_address: None,
        at: t(minutes),
        attempts: 1,
        first_at: None,
        prev_hash: String::new(),
    };
    // Two looks on Monday, one on Wednesday, one refused on Thursday.
    for (minutes, basis) in [
        (60, Basis::Grant),
        (120, Basis::Grant),
        (60 * 48, Basis::Grant),
        (60 * 72, Basis::Refused),
    ] {
        s.position += 1;
        let payload = serde_json::to_string(&look(minutes, basis)).expect("serialises");
        let position = s.position;
        s.fold()
            .apply(position, "AccessTrail", "chain", "AccessRecorded", &payload)
            .expect("folds");
    }
    let tables = s.tables(t(60 * 24 * 5));
    let pairs = table(&tables, "relationship_weeks");
    assert_eq!(
        pairs.rows.len(),
        1,
        "a relationship with looks and no messages"
    );
    let days = pairs.column("provider_look_days").expect("column");
    assert_eq!(ints(&pairs.rows[0][days..]), vec![2, 7]);
}
