//! `portal bench forum-seed`: a forum of many topics and posts, appended
//! straight into the event store as the domain's own events (decided by
//! `domain::forum`), for `ops/bench` to time the topic list, topic pages and
//! posting with `wrk`. The service's write path is what `wrk` then measures.

use std::time::Instant;

use chrono::{Duration, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use domain::forum::{Forum, ForumCommand, Member, MemberKind, Topic, TopicCommand};
use projections::Db;
use serde_json::json;
use uuid::Uuid;

use api::auth::{Role, TokenKeys};
use api::settings::Settings;

use crate::bench::insert_typed_events;
use crate::simulate::Rng;
use crate::Result;

fn row<E: DomainEvent>(
    id: &str,
    sequence: i64,
    event: &E,
) -> Result<(String, i64, String, String)> {
    Ok((
        id.to_string(),
        sequence,
        event.event_type(),
        serde_json::to_string(event)?,
    ))
}

/// Appends a forum of `topics` topics and about `posts` posts (openings
/// included) by `members` peers of `org`, over the last 180 days; replies
/// are spread with a long tail (a few topics are long). Prints, per member,
/// a line `<token> <topic> <topic> ...` (their bearer token and 50 topics)
/// for `ops/wrk.lua`.
pub async fn forum_seed(
    settings: &Settings,
    org: &str,
    topics: usize,
    posts: usize,
    members: usize,
) -> Result<()> {
    api::service::migrate(settings).await?;
    let db = Db::connect(&settings.store.database_url, 4).await?;
    let started = Instant::now();
    let mut rng = Rng(0x5eed_f0f0);
    let metadata = json!({"actor_id": "bench", "actor_role": "service_user", "organisation": org, "request_id": "forum-seed"}).to_string();
    let now = Utc::now();
    let first = now - Duration::days(180);
    let span = (now - first).num_seconds() as f64;

    // The forum and its members' names.
    let people: Vec<Uuid> = (0..members.max(1)).map(|_| rng.uuid()).collect();
    let mut forum = Forum::default();
    let mut rows = Vec::new();
    let mut commands = vec![ForumCommand::Open {
        organisation: org.to_string(),
        at: first,
    }];
    for (i, person) in people.iter().enumerate() {
        commands.push(ForumCommand::ChooseName {
            person: *person,
            kind: MemberKind::Peer,
            name: format!("Member {}", i + 1),
            at: first,
        });
    }
    let mut sequence = 0;
    for command in commands {
        for event in forum
            .decide(command)
            .map_err(|e| crate::Error::Input(format!("forum seed: {e}")))?
        {
            sequence += 1;
            rows.push(row(org, sequence, &event)?);
            forum.apply(event);
        }
    }
    insert_typed_events(&db, domain::forum::FORUM_TYPE, &metadata, rows).await?;

    // Replies per topic: exponential weights, so a few topics are long.
    let replies_total = posts.saturating_sub(topics);
    let weights: Vec<f64> = (0..topics).map(|_| -(1.0 - rng.unit()).ln()).collect();
    let sum: f64 = weights.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    let categories = domain::forum::DEFAULT_CATEGORIES;
    let mut topic_ids = Vec::with_capacity(topics);
    let mut rows = Vec::new();
    let mut written = 0usize;
    for (t, weight) in weights.iter().enumerate() {
        let replies = ((weight / sum) * replies_total as f64).round() as usize;
        let replies = replies.min(domain::forum::POSTS_MAX - 1);
        let topic_id = rng.uuid();
        topic_ids.push(topic_id);
        let opened_at = first + Duration::seconds((span * t as f64 / topics.max(1) as f64) as i64);
        let author = |rng: &mut Rng| Member {
            person: people[rng.below(people.len())],
            kind: MemberKind::Peer,
        };
        let mut topic = Topic::default();
        let mut commands = vec![TopicCommand::Open {
            topic_id,
            organisation: org.to_string(),
            category: categories[rng.below(categories.len())].0.to_string(),
            title: format!("Topic {}", t + 1),
            post_id: rng.uuid(),
            body: "What helped you this week? A few words for whoever reads this.".into(),
            by: author(&mut rng),
            at: opened_at,
        }];
        for r in 0..replies {
            let at = opened_at + Duration::minutes(10 * (r as i64 + 1));
            commands.push(TopicCommand::Reply {
                post_id: rng.uuid(),
                body: "Thank you for writing this; it is the same for me some nights.".into(),
                quote_of: None,
                by: author(&mut rng),
                at: at.min(now),
            });
        }
        let id = topic_id.to_string();
        for (sequence, command) in commands.into_iter().enumerate() {
            for event in topic
                .decide(command)
                .map_err(|e| crate::Error::Input(format!("forum seed: {e}")))?
            {
                rows.push(row(&id, sequence as i64 + 1, &event)?);
                topic.apply(event);
            }
        }
        if rows.len() >= 5_000 || t + 1 == topics {
            written += rows.len();
            insert_typed_events(
                &db,
                domain::forum::TOPIC_TYPE,
                &metadata,
                std::mem::take(&mut rows),
            )
            .await?;
        }
    }
    eprintln!(
        "{}",
        json!({"seeded_topics": topics, "seeded_posts": written, "members": people.len(), "seconds": started.elapsed().as_secs_f64()})
    );
    let keys = TokenKeys::new(&settings.resolve_token_key()?);
    for person in &people {
        let token = keys.mint(*person, Role::ServiceUser, org, 24 * 3600)?;
        let mine: Vec<String> = (0..50)
            .map(|_| topic_ids[rng.below(topic_ids.len())].to_string())
            .collect();
        println!("{token} {}", mine.join(" "));
    }
    Ok(())
}
