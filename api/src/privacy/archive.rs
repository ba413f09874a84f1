//! A person's whole data in one archive (issue 18; GDPR art. 15 and 20).
//!
//! The archive is built from the events themselves, the only complete
//! record: one pass over the global stream, in order, choosing the person's
//! events by their clear fields (`domain::export`, where the rule of what is
//! theirs lives with its tests) and opening only those. It holds:
//!
//! - `person-export.json`: every part, every record, following
//!   `person-export.schema.json` (JSON Schema 2020-12, generated from the
//!   events' declarations by [`json_schema`] and kept in `docs/`);
//! - one CSV file per part, for a spreadsheet: a record per row, the event's
//!   fields flattened into columns;
//! - the schema itself and a README.
//!
//! A record is one stored event: where it stands in the stream, when it was
//! stored, who caused it, and its fields (`data`) as the event holds them,
//! personal ones opened.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use domain::export::{fields, redaction, Choice, EventRef, Part, Redaction, Selector};
use projections::{stream, Checkpoint, Db, StoredEvent};
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::error::ApiError;
pub use crate::export_jobs::Progress;

/// The archive format's name, in every archive.
pub const FORMAT: &str = "portal-person-export";
/// The archive format's version; a change of the records' shape raises it.
pub const FORMAT_VERSION: u32 = 1;
/// The most stored event bytes an archive asked for through the API holds:
/// a person's data past it is refused with a clear error rather than
/// exhausting memory (building it takes a few times this, for two at once).
pub const ARCHIVE_MAX_BYTES: usize = 64 << 20;
/// The bound of an operator's `portal person export`, on their own machine.
pub const OPERATOR_MAX_BYTES: usize = 2 << 30;
/// Events read per batch.
const BATCH: i64 = 2_000;

/// The archive's files.
pub const JSON_FILE: &str = "person-export.json";
pub const SCHEMA_FILE: &str = "person-export.schema.json";

/// One stored event of the person's, as the archive gives it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Record {
    /// Its position in the global event stream.
    pub position: i64,
    /// When the store recorded it (RFC 3339, UTC).
    pub recorded_at: String,
    /// The kind of stream (aggregate type) it belongs to.
    pub stream: String,
    /// The stream's id.
    pub stream_id: String,
    /// Its number within the stream.
    pub sequence: i64,
    /// The event's type.
    pub event: String,
    /// Who caused it; null when it is not the person's to know (a moderator
    /// or a flagger in the forum).
    pub actor_id: Option<String>,
    /// In which role; null with `actor_id`.
    pub actor_role: Option<String>,
    /// The event's fields, personal ones opened.
    pub data: Map<String, Value>,
}

/// Everything gathered for one person.
#[derive(Debug, Clone)]
pub struct Gathered {
    pub person: Uuid,
    pub organisation: String,
    pub generated_at: DateTime<Utc>,
    /// Events read (all of the store's, up to `last_position`).
    pub events_scanned: u64,
    /// The last position read: the archive is as of it.
    pub last_position: i64,
    pub parts: BTreeMap<Part, Vec<Record>>,
}

impl Gathered {
    /// How many records in all.
    pub fn records(&self) -> usize {
        self.parts.values().map(Vec::len).sum()
    }
}

fn corrupt(event: &StoredEvent, e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!(
        "event at position {} does not read: {e}",
        event.checkpoint.position
    ))
}

/// An opened event as a record, with what `redaction` leaves out left out.
fn record_of(event: &StoredEvent, redaction: &Redaction) -> Result<Record, ApiError> {
    let payload: Value = serde_json::from_str(&event.payload).map_err(|e| corrupt(event, e))?;
    let mut data = fields(&payload, &event.event_type)
        .cloned()
        .ok_or_else(|| corrupt(event, "not an object"))?;
    for field in &redaction.fields {
        data.remove(*field);
    }
    let (actor_id, actor_role) = match redaction.actor {
        true => (None, None),
        false => (
            Some(event.metadata.actor_id.clone()),
            Some(event.metadata.actor_role.clone()),
        ),
    };
    Ok(Record {
        position: event.checkpoint.position,
        recorded_at: event.recorded_at.clone(),
        stream: event.aggregate_type.clone(),
        stream_id: event.aggregate_id.clone(),
        sequence: event.sequence,
        event: event.event_type.clone(),
        actor_id,
        actor_role,
        data,
    })
}

/// Reads the whole stream once and gathers what is `person`'s in
/// `organisation`, telling `progress` after every batch; refused past
/// `max_bytes` of their stored events.
pub async fn gather(
    db: &Db,
    person: Uuid,
    organisation: &str,
    generated_at: DateTime<Utc>,
    max_bytes: usize,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Gathered, ApiError> {
    let (_, total) = stream::head(db).await?;
    let total = u64::try_from(total).unwrap_or(0);
    let mut selector = Selector::new(person, organisation);
    let mut kept: Vec<(Checkpoint, Part, Record)> = Vec::new();
    let mut held: Vec<(Uuid, StoredEvent)> = Vec::new();
    let (mut after, mut scanned, mut bytes) = (Checkpoint::default(), 0u64, 0usize);
    loop {
        let batch = stream::read_batch_sealed(db, after, BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.checkpoint;
        scanned += batch.len() as u64;
        let mut chosen: Vec<(Part, Redaction, StoredEvent)> = Vec::new();
        for event in batch {
            let payload: Value =
                serde_json::from_str(&event.payload).map_err(|e| corrupt(&event, e))?;
            let seen = EventRef {
                aggregate_type: &event.aggregate_type,
                aggregate_id: &event.aggregate_id,
                event_type: &event.event_type,
                organisation: &event.metadata.organisation,
                actor: &event.metadata.actor_id,
                payload: &payload,
            };
            match selector.select(&seen) {
                Choice::Skip => {}
                Choice::Take(part) => {
                    let left_out = redaction(person, part, &seen);
                    chosen.push((part, left_out, event));
                }
                Choice::IfEnrolled(study) => held.push((study, event)),
            }
        }
        let (placed, mut events): (Vec<(Part, Redaction)>, Vec<StoredEvent>) = chosen
            .into_iter()
            .map(|(part, left_out, event)| ((part, left_out), event))
            .unzip();
        stream::open_events(db, &mut events).await?;
        for ((part, left_out), event) in placed.into_iter().zip(events) {
            bytes += event.payload.len() + 256;
            kept.push((event.checkpoint, part, record_of(&event, &left_out)?));
        }
        if bytes > max_bytes {
            let hint = if max_bytes < OPERATOR_MAX_BYTES {
                ": the organisation's operators can make it (`portal person export`)"
            } else {
                ""
            };
            return Err(ApiError::FailedPrecondition(format!(
                "this person's data is larger than an archive made here may be ({} MiB){hint}",
                max_bytes >> 20
            )));
        }
        progress(Progress {
            scanned,
            total: total.max(scanned),
        });
    }
    let mut studies: Vec<StoredEvent> = held
        .into_iter()
        .filter(|(study, _)| selector.enrolled(*study))
        .map(|(_, e)| e)
        .collect();
    stream::open_events(db, &mut studies).await?;
    for event in studies {
        kept.push((
            event.checkpoint,
            Part::Studies,
            record_of(&event, &Redaction::default())?,
        ));
    }
    kept.sort_by_key(|(checkpoint, _, _)| *checkpoint);
    let mut parts: BTreeMap<Part, Vec<Record>> = Part::ALL.iter().map(|p| (*p, vec![])).collect();
    for (_, part, record) in kept {
        parts.entry(part).or_default().push(record);
    }
    Ok(Gathered {
        person,
        organisation: organisation.to_string(),
        generated_at,
        events_scanned: scanned,
        last_position: after.position,
        parts,
    })
}

/// The archive's JSON document.
pub fn to_json(gathered: &Gathered) -> Value {
    let parts: Map<String, Value> = gathered
        .parts
        .iter()
        .map(|(part, records)| {
            (
                part.as_str().to_string(),
                json!({ "description": part.description(), "records": records }),
            )
        })
        .collect();
    json!({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "person_id": gathered.person,
        "organisation": gathered.organisation,
        "generated_at": gathered.generated_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "events_scanned": gathered.events_scanned,
        "last_position": gathered.last_position,
        "parts": parts,
    })
}

/// The columns every CSV file starts with.
pub const CSV_COLUMNS: [&str; 8] = [
    "position",
    "recorded_at",
    "stream",
    "stream_id",
    "sequence",
    "event",
    "actor_id",
    "actor_role",
];

/// An event's fields as CSV cells: nested objects flattened to `a.b`, texts
/// as they are, other values as JSON, null as an empty cell.
fn flatten(prefix: &str, fields: &Map<String, Value>, out: &mut BTreeMap<String, String>) {
    for (key, value) in fields {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(inner) => flatten(&name, inner, out),
            Value::Null => {
                out.insert(name, String::new());
            }
            Value::String(text) => {
                out.insert(name, inert(text));
            }
            other => {
                out.insert(name, other.to_string());
            }
        }
    }
}

/// A text as a spreadsheet cell that is never a formula: one that starts
/// with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`
/// (OWASP's advice against CSV injection: others' messages are in it).
fn inert(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_string(),
    }
}

/// One part as CSV: [`CSV_COLUMNS`], then every field any of its records
/// has (`data.` and its path), in name order.
pub fn to_csv(records: &[Record]) -> Result<Vec<u8>, ApiError> {
    let cells: Vec<BTreeMap<String, String>> = records
        .iter()
        .map(|r| {
            let mut cells = BTreeMap::new();
            flatten("", &r.data, &mut cells);
            cells
        })
        .collect();
    let fields: BTreeSet<&String> = cells.iter().flat_map(|c| c.keys()).collect();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header = CSV_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(fields.iter().map(|f| format!("data.{f}")));
    let failed = |e: csv::Error| ApiError::internal(format!("csv: {e}"));
    writer.write_record(header).map_err(failed)?;
    for (record, cells) in records.iter().zip(&cells) {
        let row = [
            record.position.to_string(),
            record.recorded_at.clone(),
            record.stream.clone(),
            record.stream_id.clone(),
            record.sequence.to_string(),
            record.event.clone(),
            record.actor_id.clone().unwrap_or_default(),
            record.actor_role.clone().unwrap_or_default(),
        ]
        .into_iter()
        .chain(
            fields
                .iter()
                .map(|f| cells.get(*f).cloned().unwrap_or_default()),
        );
        writer.write_record(row).map_err(failed)?;
    }
    writer
        .into_inner()
        .map_err(|e| ApiError::internal(format!("csv: {e}")))
}

const README: &str = "\
Everything Portal holds about you, as of the time in person-export.json
(generated_at; last_position is the last event it read).

person-export.json          every part, every record, in one document
person-export.schema.json   the document's JSON Schema (2020-12)
<part>.csv                  one file per part, for a spreadsheet

A record is one stored event: its place in the stream (position), when it
was stored (recorded_at), the stream it belongs to (stream, stream_id,
sequence), what happened (event), who did it (actor_id, actor_role), and
the event's own fields (data; in the CSV files, the columns data.*).
Texts of yours are given as you wrote them (in the CSV files, a text that
starts with = + - or @ has a ' before it, so that a spreadsheet never takes
it for a formula). Every part is described in the JSON document and its
schema. Who did something in the forum to your posts or to you is not
given, nor the addresses of those who read your data: the service never
tells a member either.
";

/// The archive: a ZIP of the JSON document, its schema, a CSV per part and a
/// README.
pub fn to_zip(gathered: &Gathered) -> Result<Vec<u8>, ApiError> {
    let failed = |e: zip::result::ZipError| ApiError::internal(format!("zip: {e}"));
    let io = |e: std::io::Error| ApiError::internal(format!("zip: {e}"));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o600);
    let json = serde_json::to_vec_pretty(&to_json(gathered))
        .map_err(|e| ApiError::internal(format!("json: {e}")))?;
    let schema = serde_json::to_vec_pretty(&json_schema())
        .map_err(|e| ApiError::internal(format!("json: {e}")))?;
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("README.txt".into(), README.as_bytes().to_vec()),
        (JSON_FILE.into(), json),
        (SCHEMA_FILE.into(), schema),
    ];
    for (part, records) in &gathered.parts {
        files.push((format!("{}.csv", part.as_str()), to_csv(records)?));
    }
    for (name, bytes) in files {
        zip.start_file(name, options).map_err(failed)?;
        zip.write_all(&bytes).map_err(io)?;
    }
    Ok(zip.finish().map_err(failed)?.into_inner())
}

/// The schema of one event kind's `data`, from its declaration: every
/// declared field, personal ones said to be.
fn data_schema(declared: &domain::personal::Declared) -> Value {
    let mut properties = Map::new();
    let mut describe = |path: &str, personal: bool| {
        let top = path.split('.').next().unwrap_or(path);
        let nested = path.contains('.');
        let description = match (personal, nested) {
            (true, _) => "Personal data (sealed at rest with its owner's key).",
            (false, _) => "Kept in clear (ids, times, kinds, numbers).",
        };
        let entry = properties.entry(top.to_string()).or_insert_with(|| {
            if nested {
                json!({ "type": "object" })
            } else {
                json!({ "description": description })
            }
        });
        if personal && !nested {
            entry["description"] = json!(description);
        }
    };
    for field in declared.personal {
        describe(field.path, true);
    }
    for field in declared.clear {
        describe(field, false);
    }
    json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    })
}

/// The archive's JSON Schema (2020-12): generated from the events'
/// declarations and the parts, so it follows every change of either;
/// `docs/person-export.schema.json` is this, checked by a test.
pub fn json_schema() -> Value {
    let mut defs = Map::new();
    let mut parts = Map::new();
    for part in Part::ALL {
        let mut kinds = Vec::new();
        for (aggregate_type, event_type) in part.event_kinds() {
            let name = format!("{aggregate_type}.{event_type}");
            if !defs.contains_key(&name) {
                let Some(declared) = domain::declarations::declared(aggregate_type, event_type)
                else {
                    continue;
                };
                defs.insert(
                    name.clone(),
                    json!({
                        "type": "object",
                        "description": format!("A `{event_type}` event of a `{aggregate_type}` stream."),
                        "properties": {
                            "stream": { "const": aggregate_type },
                            "event": { "const": event_type },
                            "data": data_schema(declared),
                        },
                        "required": ["stream", "event"],
                    }),
                );
            }
            kinds.push(json!({ "$ref": format!("#/$defs/{name}") }));
        }
        parts.insert(
            part.as_str().to_string(),
            json!({
                "type": "object",
                "description": part.description(),
                "properties": {
                    "description": { "type": "string" },
                    "records": {
                        "type": "array",
                        "items": { "allOf": [{ "$ref": "#/$defs/record" }, { "oneOf": kinds }] },
                    },
                },
                "required": ["description", "records"],
                "additionalProperties": false,
            }),
        );
    }
    defs.insert(
        "record".into(),
        json!({
            "type": "object",
            "description": "One stored event.",
            "properties": {
                "position": { "type": "integer", "description": "Its position in the global event stream." },
                "recorded_at": { "type": "string", "format": "date-time", "description": "When the store recorded it." },
                "stream": { "type": "string", "description": "The kind of stream it belongs to." },
                "stream_id": { "type": "string", "description": "The stream's id." },
                "sequence": { "type": "integer", "minimum": 1, "description": "Its number within the stream." },
                "event": { "type": "string", "description": "What happened." },
                "actor_id": { "type": ["string", "null"], "description": "Who caused it; null when it is not the person's to know (a moderator or a flagger in the forum)." },
                "actor_role": { "type": ["string", "null"], "description": "In which role; null with actor_id." },
                "data": { "type": "object", "description": "The event's own fields." },
            },
            "required": ["position", "recorded_at", "stream", "stream_id", "sequence", "event", "actor_id", "actor_role", "data"],
            "additionalProperties": false,
        }),
    );
    let names: Vec<&str> = Part::ALL.iter().map(|p| p.as_str()).collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("urn:portal:{FORMAT}:{FORMAT_VERSION}"),
        "title": "Everything Portal holds about one person",
        "description": "A person's data export (GDPR art. 15 and 20): every stored event that is theirs, by part. Generated from the service's event declarations; see docs/privacy.md.",
        "type": "object",
        "properties": {
            "format": { "const": FORMAT },
            "format_version": { "const": FORMAT_VERSION },
            "person_id": { "type": "string", "format": "uuid", "description": "The person." },
            "organisation": { "type": "string", "description": "Their organisation." },
            "generated_at": { "type": "string", "format": "date-time", "description": "When the archive was made." },
            "events_scanned": { "type": "integer", "minimum": 0, "description": "Events read to make it." },
            "last_position": { "type": "integer", "minimum": 0, "description": "The last position read: the archive is as of it." },
            "parts": {
                "type": "object",
                "properties": parts,
                "required": names,
                "additionalProperties": false,
            },
        },
        "required": ["format", "format_version", "person_id", "organisation", "generated_at", "events_scanned", "last_position", "parts"],
        "additionalProperties": false,
        "$defs": defs,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use domain::export::parts_of_kind;

    #[test]
    fn the_schema_in_docs_is_the_generated_one() {
        let generated = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/person-export.schema.json"
        );
        let stored = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            stored == generated,
            "docs/person-export.schema.json is not the schema the code makes: run `cargo run --bin portal -- person export-schema > docs/person-export.schema.json`"
        );
    }

    #[test]
    fn every_event_kind_of_every_part_has_its_fields_in_the_schema() {
        let schema = json_schema();
        let defs = schema["$defs"].as_object().unwrap();
        for part in Part::ALL {
            for (aggregate_type, event_type) in part.event_kinds() {
                let def = &defs[&format!("{aggregate_type}.{event_type}")];
                let declared = domain::declarations::declared(aggregate_type, event_type).unwrap();
                for path in declared
                    .clear
                    .iter()
                    .copied()
                    .chain(declared.personal.iter().map(|p| p.path))
                {
                    let top = path.split('.').next().unwrap();
                    assert!(
                        def["properties"]["data"]["properties"].get(top).is_some(),
                        "{aggregate_type}.{event_type}: {path}"
                    );
                }
                assert!(parts_of_kind(aggregate_type, event_type).contains(&part));
            }
        }
    }

    #[test]
    fn csv_flattens_fields_and_leaves_missing_cells_empty() {
        let record = |position: i64, data: Value| Record {
            position,
            recorded_at: "2026-01-01T00:00:00Z".into(),
            stream: "Portal".into(),
            stream_id: "p".into(),
            sequence: position,
            event: "GoalSet".into(),
            actor_id: Some("a".into()),
            actor_role: Some("service_user".into()),
            data: data.as_object().unwrap().clone(),
        };
        let csv = to_csv(&[
            record(
                1,
                json!({"title": "walk, daily", "terms": {"notes": "n"}, "n": 3}),
            ),
            record(2, json!({"title": null, "list": ["a"]})),
            record(3, json!({"title": "=HYPERLINK(\"x\")", "n": -3})),
        ])
        .unwrap();
        let text = String::from_utf8(csv).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "position,recorded_at,stream,stream_id,sequence,event,actor_id,actor_role,data.list,data.n,data.terms.notes,data.title"
        );
        assert_eq!(
            lines[1],
            "1,2026-01-01T00:00:00Z,Portal,p,1,GoalSet,a,service_user,,3,n,\"walk, daily\""
        );
        assert_eq!(
            lines[2],
            "2,2026-01-01T00:00:00Z,Portal,p,2,GoalSet,a,service_user,\"[\"\"a\"\"]\",,,"
        );
        // A text never reads as a formula; a number stays a number.
        assert_eq!(
            lines[3],
            "3,2026-01-01T00:00:00Z,Portal,p,3,GoalSet,a,service_user,,-3,,\"'=HYPERLINK(\"\"x\"\")\""
        );
    }
}
