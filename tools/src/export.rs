//! `portal research export`: every research measure of one study, computed
//! from the events as they stood at a time, with pseudonyms, as CSV or
//! Parquet files and a manifest.
//!
//! Reproducible: the files depend only on the events recorded up to the
//! as-of time, the withdrawals made since (a withdrawal applies to every
//! export made after it), the research key and the visit gap. The same
//! command on the same data writes the same bytes; nothing in the files
//! records when the export ran.
//!
//! Read-only: one connection, one read-only transaction (`REPEATABLE READ`
//! on PostgreSQL, so a hot-standby replica serves it), nothing but SELECTs.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use domain::study::{EnrolmentEvent, StudyEvent, StudyInfo};
use futures::TryStreamExt;
use hmac::{Hmac, Mac};
use projections::research::{Cell, ColumnType, Fold, Table, PARTICIPANT_COLUMNS};
use projections::Backend;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, Row};
use uuid::Uuid;

use api::settings::{Secret, Settings};

use crate::error::AtPath;
use crate::{Error, Result};

/// The file format of the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Parquet,
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub study: Uuid,
    pub as_of: DateTime<Utc>,
    pub format: Format,
    pub out: PathBuf,
    /// Draw a progress bar on stderr (only if it is a terminal).
    pub progress: bool,
}

/// What an export did.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    /// Events read from the store.
    pub events: u64,
    /// Of those, events up to the as-of time that the measures used.
    pub used: u64,
    /// The last global position among them.
    pub position: i64,
    pub seconds: f64,
    /// (file, rows) written.
    pub files: Vec<(String, usize)>,
}

/// Version of the manifest's and tables' layout.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct Manifest {
    format_version: u32,
    study: ManifestStudy,
    as_of: String,
    /// Last global event position included.
    last_position: i64,
    /// Events up to the as-of time the measures were computed from.
    events_used: u64,
    participants: usize,
    /// Participants left out because they have withdrawn (by the time of export).
    withdrawn_excluded: usize,
    /// Participants left out because they were erased (by the time of
    /// export, whatever `as_of`): nothing of theirs is in any table.
    erased_excluded: usize,
    visit_gap_minutes: u64,
    /// Changes when the research key changes: exports with the same check
    /// share pseudonyms.
    pseudonym_key_check: String,
    tables: Vec<ManifestTable>,
}

#[derive(Serialize)]
struct ManifestStudy {
    id: Uuid,
    title: String,
    protocol_id: String,
    starts_on: String,
    ends_on: String,
}

#[derive(Serialize)]
struct ManifestTable {
    name: &'static str,
    file: String,
    description: &'static str,
    rows: usize,
    sha256: String,
    columns: Vec<ManifestColumn>,
}

#[derive(Serialize)]
struct ManifestColumn {
    name: &'static str,
    #[serde(rename = "type")]
    ty: &'static str,
    nullable: bool,
    description: &'static str,
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
        mac.update(&[0]);
    }
    mac.finalize().into_bytes().into()
}

/// Pseudonyms of one study: a keyed hash under the study's own secret
/// (itself a keyed hash of the study id under the research key), so the
/// same person has unrelated pseudonyms in two studies and nobody without
/// the key can go from a pseudonym back to an id.
pub struct Pseudonyms {
    secret: [u8; 32],
}

impl Pseudonyms {
    /// The pseudonyms of `study` under `key`.
    pub fn new(key: &Secret, study: Uuid) -> Self {
        Pseudonyms {
            secret: hmac(
                key.expose().as_bytes(),
                &[b"portal study pseudonyms", study.as_bytes()],
            ),
        }
    }
    /// The pseudonym of a participant: `p` and 20 hex digits (80 bits).
    pub fn of(&self, participant: Uuid) -> String {
        let digest = hmac(&self.secret, &[participant.as_bytes()]);
        format!("p{}", hex::encode(&digest[..10]))
    }
    /// A short check that changes with the key (not with the participant).
    pub fn check(&self) -> String {
        hex::encode(&hmac(&self.secret, &[b"check"])[..6])
    }
}

/// Runs an export; see the module documentation.
pub async fn export(settings: &Settings, request: &ExportRequest) -> Result<ExportSummary> {
    let started = Instant::now();
    let Computed {
        study,
        tables,
        withdrawn,
        erased,
        fold,
        read,
        key_check,
    } = compute(settings, request.study, request.as_of, request.progress).await?;
    let participants = tables.first().map_or(0, |t| t.rows.len());

    std::fs::create_dir_all(&request.out).at(&request.out)?;
    let mut manifest_tables = Vec::new();
    let mut files = Vec::new();
    for table in &tables {
        let (file, bytes) = match request.format {
            Format::Csv => (format!("{}.csv", table.name), csv(table)),
            Format::Parquet => (format!("{}.parquet", table.name), parquet(table)?),
        };
        write_atomically(&request.out.join(&file), &bytes)?;
        files.push((file.clone(), table.rows.len()));
        manifest_tables.push(ManifestTable {
            name: table.name,
            file,
            description: table.description,
            rows: table.rows.len(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            columns: table
                .columns
                .iter()
                .map(|c| ManifestColumn {
                    name: c.name,
                    ty: c.ty.as_str(),
                    nullable: c.nullable,
                    description: c.description,
                })
                .collect(),
        });
    }
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        study: ManifestStudy {
            id: study.study_id,
            title: study.title.clone(),
            protocol_id: study.protocol_id.clone(),
            starts_on: study.starts_on.to_string(),
            ends_on: study.ends_on.to_string(),
        },
        as_of: request
            .as_of
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        last_position: fold.last_position,
        events_used: fold.events,
        participants,
        withdrawn_excluded: withdrawn.difference(&erased).count(),
        erased_excluded: erased.len(),
        visit_gap_minutes: settings.research.visit_gap.as_secs() / 60,
        pseudonym_key_check: key_check,
        tables: manifest_tables,
    };
    let mut text = serde_json::to_vec_pretty(&manifest)?;
    text.push(b'\n');
    write_atomically(&request.out.join("manifest.json"), &text)?;
    Ok(ExportSummary {
        events: read,
        used: fold.events,
        position: fold.last_position,
        seconds: started.elapsed().as_secs_f64(),
        files,
    })
}

/// What [`compute`] found.
pub struct Computed {
    pub study: StudyInfo,
    /// Every table, pseudonymised.
    pub tables: Vec<Table>,
    /// Participants left out because they have withdrawn.
    pub withdrawn: HashSet<Uuid>,
    /// Participants left out because they were erased (issue 18).
    pub erased: HashSet<Uuid>,
    pub fold: Fold,
    /// Events read.
    pub read: u64,
    /// See [`Pseudonyms::check`].
    pub key_check: String,
}

/// Every table of `study_id` as of `as_of`, pseudonymised: one read-only
/// transaction over the store, then the fold.
pub async fn compute(
    settings: &Settings,
    study_id: Uuid,
    as_of: DateTime<Utc>,
    progress: bool,
) -> Result<Computed> {
    let backend = Backend::from_url(&settings.store.database_url)?;
    if !settings.has_research_key() {
        // A new key would silently give every participant new pseudonyms.
        return Err(Error::Input(format!(
            "no research key: set PORTAL_RESEARCH_KEY, or PORTAL_DATA_DIR to the service's data \
             folder ({} does not exist); the service makes one when it first starts",
            settings.store.data_dir.join("research.key").display()
        )));
    }
    let (key, _) = settings.resolve_research_key()?;
    if as_of > api::clock::wall() {
        return Err(Error::Input(
            "--as-of must not be in the future: the data of a time not yet lived would change"
                .into(),
        ));
    }
    // One connection of the store's own driver (no conversion through the
    // Any driver: rows are borrowed straight from the wire), one read-only
    // transaction for every query.
    macro_rules! prelude {
        ($conn:expr, $payload:literal, $begin:literal) => {{
            let conn = $conn;
            conn.execute($begin).await?;
            let study: Vec<String> = sqlx::query_scalar(concat!(
                "SELECT ",
                $payload,
                " FROM events WHERE aggregate_type = 'Study' AND aggregate_id = $1"
            ))
            .bind(study_id.to_string())
            .fetch_all(&mut *conn)
            .await?;
            let enrolments: Vec<String> = sqlx::query_scalar(concat!(
                "SELECT ",
                $payload,
                " FROM events WHERE aggregate_type = 'Enrolment' ORDER BY position"
            ))
            .fetch_all(&mut *conn)
            .await?;
            let (study, withdrawn) = study_and_withdrawn(study_id, &study, &enrolments)?;
            // Erased people are left out of every table (their erasure
            // streams are `organisation/person`).
            let erased: Vec<String> = sqlx::query_scalar(
                "SELECT aggregate_id FROM events WHERE aggregate_type = 'Erasure' \
                 AND event_type = 'PersonErased'",
            )
            .fetch_all(&mut *conn)
            .await?;
            let participants = participants_of(study_id, &enrolments)?;
            // Erasures of the study's organisation only: ids are scoped to it.
            let erased: HashSet<Uuid> = erased
                .iter()
                .filter(|id| {
                    id.rsplit_once('/').map(|(org, _)| org) == Some(study.organisation.as_str())
                })
                .filter_map(|id| domain::erasure::person_of(id))
                .filter(|p| participants.contains(p))
                .collect();
            let max_position: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
                    .fetch_one(&mut *conn)
                    .await?;
            (
                study,
                withdrawn,
                erased,
                Progress::new(progress, max_position),
            )
        }};
    }
    let mut fold = Fold::until(as_of);
    let mut read = 0u64;
    let (study, withdrawn, erased) = match backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&settings.store.database_url).await?;
            let (study, withdrawn, erased, mut bar) = prelude!(
                &mut conn,
                "payload::text",
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
            );
            // COPY streams the rows as text: far cheaper per row than the
            // row protocol, in the same transaction and snapshot.
            let statement = format!("COPY ({EVENTS_QUERY_PG}) TO STDOUT");
            let mut chunks = conn.copy_out_raw(&statement).await?;
            let mut pending: Vec<u8> = Vec::new();
            while let Some(chunk) = chunks.try_next().await? {
                pending.extend_from_slice(&chunk);
                let Some(end) = pending.iter().rposition(|b| *b == b'\n') else {
                    continue;
                };
                for line in pending[..end].split(|b| *b == b'\n') {
                    let position = copy_row(line, &mut fold)?;
                    read += 1;
                    bar.tick(position, read);
                }
                pending.drain(..=end);
            }
            if !pending.is_empty() {
                return Err(Error::Corrupt(
                    "the event stream ended in the middle of a row".into(),
                ));
            }
            drop(chunks);
            conn.execute("COMMIT").await?;
            bar.finish(read);
            (study, withdrawn, erased)
        }
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&settings.store.database_url).await?;
            let (study, withdrawn, erased, mut bar) = prelude!(&mut conn, "payload", "BEGIN");
            {
                let mut rows = sqlx::query(EVENTS_QUERY_SQLITE).fetch(&mut conn);
                while let Some(row) = rows.try_next().await? {
                    let position: i64 = row.try_get(0)?;
                    let aggregate_type: &str = row.try_get(1)?;
                    let aggregate_id: &str = row.try_get(2)?;
                    let event_type: &str = row.try_get(3)?;
                    let payload: &str = row.try_get(4)?;
                    fold.apply(position, aggregate_type, aggregate_id, event_type, payload)?;
                    read += 1;
                    bar.tick(position, read);
                }
            }
            conn.execute("COMMIT").await?;
            bar.finish(read);
            (study, withdrawn, erased)
        }
    };

    let gap = settings.research.visit_gap_chrono();
    let excluded: HashSet<Uuid> = withdrawn.union(&erased).copied().collect();
    let mut tables = fold.tables(&study, as_of, gap, &excluded);
    let pseudonyms = Pseudonyms::new(&key, study.study_id);
    let mut known = std::collections::HashMap::new();
    for table in &mut tables {
        pseudonymise(table, &pseudonyms, &mut known);
        // Rows in pseudonym order: the fold's order follows the real ids,
        // which would let anyone who knows who is enrolled match them by rank.
        table.rows.sort_by(|a, b| compare_rows(a, b));
    }
    Ok(Computed {
        study,
        tables,
        withdrawn,
        erased,
        fold,
        read,
        key_check: pseudonyms.check(),
    })
}

/// Everyone who ever enrolled in `study_id`.
fn participants_of(study_id: Uuid, enrolments: &[String]) -> Result<HashSet<Uuid>> {
    let mut participants = HashSet::new();
    for row in enrolments {
        let event: EnrolmentEvent = serde_json::from_str(row)?;
        let (study, participant) = event.parties();
        if study == study_id {
            participants.insert(participant);
        }
    }
    Ok(participants)
}

/// The study from its events, and the participants whose latest enrolment
/// event for it is a withdrawal (from every enrolment event, in order).
fn study_and_withdrawn(
    study_id: Uuid,
    study: &[String],
    enrolments: &[String],
) -> Result<(StudyInfo, HashSet<Uuid>)> {
    let mut found = None;
    for row in study {
        let StudyEvent::StudyRegistered { info, .. } = serde_json::from_str(row)?;
        found = Some(info);
    }
    let study = found.ok_or(Error::NoStudy(study_id))?;
    let events = enrolments
        .iter()
        .map(|row| serde_json::from_str::<EnrolmentEvent>(row))
        .collect::<Result<Vec<_>, _>>()?;
    let withdrawn = domain::study::enrolled_now(&events)
        .into_iter()
        .filter(|((of, _), now)| *of == study.study_id && !now)
        .map(|((_, p), _)| p)
        .collect();
    Ok((study, withdrawn))
}

/// The events the measures need, in global order.
const EVENTS_QUERY_PG: &str = "SELECT position, aggregate_type, aggregate_id, event_type, payload FROM events \
     WHERE aggregate_type IN ('Usage', 'Enrolment', 'Portal', 'Conversation', 'Agreement', 'AccessTrail') \
     ORDER BY position";
const EVENTS_QUERY_SQLITE: &str = "SELECT position, aggregate_type, aggregate_id, event_type, payload FROM events \
     WHERE aggregate_type IN ('Usage', 'Enrolment', 'Portal', 'Conversation', 'Agreement', 'AccessTrail') \
     ORDER BY position";

/// Folds one row of `COPY ... TO STDOUT` (text format: tab-separated,
/// backslash escapes); its position.
fn copy_row(line: &[u8], fold: &mut Fold) -> Result<i64> {
    let mut fields = line.split(|b| *b == b'\t');
    let mut next = || {
        fields
            .next()
            .ok_or_else(|| Error::Corrupt("a row with too few columns".into()))
    };
    let (position, aggregate_type, aggregate_id, event_type, payload) =
        (next()?, next()?, next()?, next()?, next()?);
    let text = copy_text;
    let position = std::str::from_utf8(position)
        .ok()
        .and_then(|p| p.parse::<i64>().ok())
        .ok_or_else(|| {
            Error::Corrupt(format!(
                "position {:?} is not a number",
                String::from_utf8_lossy(position)
            ))
        })?;
    fold.apply(
        position,
        &text(aggregate_type)?,
        &text(aggregate_id)?,
        &text(event_type)?,
        &text(payload)?,
    )?;
    Ok(position)
}

/// A COPY text field as text.
fn copy_text(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>> {
    match copy_unescape(bytes) {
        std::borrow::Cow::Borrowed(b) => std::str::from_utf8(b)
            .map(std::borrow::Cow::Borrowed)
            .map_err(|e| Error::Corrupt(format!("a field that is not UTF-8: {e}"))),
        std::borrow::Cow::Owned(v) => String::from_utf8(v)
            .map(std::borrow::Cow::Owned)
            .map_err(|e| Error::Corrupt(format!("a field that is not UTF-8: {e}"))),
    }
}

/// A COPY text field without its backslash escapes (borrowed when it has none).
fn copy_unescape(field: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !field.contains(&b'\\') {
        return std::borrow::Cow::Borrowed(field);
    }
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter();
    while let Some(&b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'r') => out.push(b'\r'),
            Some(b'b') => out.push(8),
            Some(b'f') => out.push(12),
            Some(b'v') => out.push(11),
            Some(&other) => out.push(other),
            None => {}
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Rows compared cell by cell (text, then numbers; null first).
fn compare_rows(a: &[Cell], b: &[Cell]) -> std::cmp::Ordering {
    fn rank(cell: &Cell) -> u8 {
        match cell {
            Cell::Null => 0,
            Cell::Int(_) | Cell::Float(_) => 1,
            Cell::Text(_) => 2,
        }
    }
    for (x, y) in a.iter().zip(b) {
        let order = match (x, y) {
            (Cell::Text(x), Cell::Text(y)) => x.cmp(y),
            (Cell::Int(x), Cell::Int(y)) => x.cmp(y),
            (Cell::Float(x), Cell::Float(y)) => x.total_cmp(y),
            _ => rank(x).cmp(&rank(y)),
        };
        if order.is_ne() {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// Replaces participant ids in the participant columns with pseudonyms.
fn pseudonymise(
    table: &mut Table,
    pseudonyms: &Pseudonyms,
    known: &mut std::collections::HashMap<String, String>,
) {
    let columns: Vec<usize> = table
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| PARTICIPANT_COLUMNS.contains(&c.name))
        .map(|(i, _)| i)
        .collect();
    for row in &mut table.rows {
        for i in &columns {
            if let Cell::Text(id) = &mut row[*i] {
                if let Some(pseudonym) = known.get(id.as_str()) {
                    *id = pseudonym.clone();
                } else if let Ok(parsed) = Uuid::parse_str(id) {
                    let pseudonym = pseudonyms.of(parsed);
                    known.insert(std::mem::take(id), pseudonym.clone());
                    *id = pseudonym;
                }
            }
        }
    }
}

/// Writes `bytes` to `path` by way of a temporary file and a rename, so a
/// reader never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).at(&tmp)?;
    file.write_all(bytes).at(&tmp)?;
    file.sync_all().at(&tmp)?;
    std::fs::rename(&tmp, path).at(path)?;
    Ok(())
}

/// RFC 4180 CSV: a header, then one line per row, `\n` line ends; floats
/// with six decimals; null as an empty field.
pub fn csv(table: &Table) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(64 * (table.rows.len() + 1));
    let quote = |out: &mut String, s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&s.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(s);
        }
    };
    for (i, column) in table.columns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        quote(&mut out, column.name);
    }
    out.push('\n');
    for row in &table.rows {
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match cell {
                Cell::Int(v) => {
                    let _ = write!(out, "{v}");
                }
                Cell::Float(v) => {
                    let _ = write!(out, "{v:.6}");
                }
                Cell::Text(s) => quote(&mut out, s),
                Cell::Null => {}
            }
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// One uncompressed Parquet file with one row group.
pub fn parquet(table: &Table) -> Result<Vec<u8>> {
    use parquet::basic::{LogicalType, Repetition, Type as Physical};
    use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::types::Type;

    let fields = table
        .columns
        .iter()
        .map(|c| {
            let builder = match c.ty {
                ColumnType::Int => Type::primitive_type_builder(c.name, Physical::INT64),
                ColumnType::Float => Type::primitive_type_builder(c.name, Physical::DOUBLE),
                ColumnType::Text => Type::primitive_type_builder(c.name, Physical::BYTE_ARRAY)
                    .with_logical_type(Some(LogicalType::String)),
            };
            builder
                .with_repetition(if c.nullable {
                    Repetition::OPTIONAL
                } else {
                    Repetition::REQUIRED
                })
                .build()
                .map(Arc::new)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let schema = Type::group_type_builder("schema")
        .with_fields(fields)
        .build()?;
    // Plain encoding and statistics per column chunk only: the tables are
    // read whole into R or pandas, where page statistics and dictionaries
    // buy nothing and cost a hash and a min/max per value on every export.
    let properties = WriterProperties::builder()
        .set_created_by(format!("portal {}", env!("CARGO_PKG_VERSION")))
        .set_dictionary_enabled(false)
        .set_statistics_enabled(parquet::file::properties::EnabledStatistics::Chunk)
        .build();
    let mut bytes = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut bytes, Arc::new(schema), Arc::new(properties))?;
    let mut group = writer.next_row_group()?;
    let mut index = 0;
    while let Some(mut column) = group.next_column()? {
        let spec = &table.columns[index];
        let cells = table.rows.iter().map(|row| &row[index]);
        let levels: Vec<i16> = cells
            .clone()
            .map(|c| i16::from(!matches!(c, Cell::Null)))
            .collect();
        let levels = spec.nullable.then_some(levels.as_slice());
        match spec.ty {
            ColumnType::Int => {
                let values: Vec<i64> = cells
                    .filter_map(|c| match c {
                        Cell::Int(v) => Some(*v),
                        _ => None,
                    })
                    .collect();
                column
                    .typed::<Int64Type>()
                    .write_batch(&values, levels, None)?;
            }
            ColumnType::Float => {
                let values: Vec<f64> = cells
                    .filter_map(|c| match c {
                        Cell::Float(v) => Some(*v),
                        _ => None,
                    })
                    .collect();
                column
                    .typed::<DoubleType>()
                    .write_batch(&values, levels, None)?;
            }
            ColumnType::Text => {
                let values: Vec<ByteArray> = cells
                    .filter_map(|c| match c {
                        Cell::Text(s) => Some(ByteArray::from(s.as_str())),
                        _ => None,
                    })
                    .collect();
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&values, levels, None)?;
            }
        }
        column.close()?;
        index += 1;
    }
    group.close()?;
    writer.close()?;
    Ok(bytes)
}

/// A progress bar on stderr, redrawn at most every 200 ms.
struct Progress {
    enabled: bool,
    total: i64,
    started: Instant,
    drawn: Instant,
}

impl Progress {
    fn new(wanted: bool, total: i64) -> Self {
        Progress {
            enabled: wanted && std::io::stderr().is_terminal(),
            total: total.max(1),
            started: Instant::now(),
            drawn: Instant::now(),
        }
    }

    fn tick(&mut self, position: i64, events: u64) {
        if !self.enabled || self.drawn.elapsed().as_millis() < 200 {
            return;
        }
        self.drawn = Instant::now();
        let done = (position as f64 / self.total as f64).clamp(0.0, 1.0);
        let filled = (done * 30.0) as usize;
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = events as f64 / seconds.max(1e-9);
        let left = if done > 0.0 {
            seconds * (1.0 - done) / done
        } else {
            0.0
        };
        eprint!(
            "\r[{}{}] {:>3.0}% {} events, {:.0}/s, {:.0} s left   ",
            "#".repeat(filled),
            ".".repeat(30 - filled),
            done * 100.0,
            events,
            rate,
            left
        );
    }

    fn finish(&self, events: u64) {
        if self.enabled {
            eprintln!(
                "\r[{}] 100% {} events in {:.1} s          ",
                "#".repeat(30),
                events,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_per_study_and_differ_between_studies() {
        let key = Secret::new("k".repeat(32));
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let person = Uuid::from_u128(7);
        let in_a = Pseudonyms::new(&key, a);
        assert_eq!(in_a.of(person), Pseudonyms::new(&key, a).of(person));
        assert_ne!(in_a.of(person), Pseudonyms::new(&key, b).of(person));
        assert_ne!(in_a.of(person), in_a.of(Uuid::from_u128(8)));
        let other_key = Pseudonyms::new(&Secret::new("j".repeat(32)), a);
        assert_ne!(in_a.of(person), other_key.of(person));
        assert_ne!(in_a.check(), other_key.check());
        assert_eq!(in_a.of(person).len(), 21);
        assert!(!in_a.of(person).contains(&person.simple().to_string()[..8]));
    }

    #[test]
    fn a_missing_study_is_named() {
        let study = Uuid::from_u128(42);
        let error = study_and_withdrawn(study, &[], &[]).err();
        assert!(
            matches!(error, Some(Error::NoStudy(id)) if id == study),
            "{error:?}"
        );
        let message = Error::NoStudy(study).to_string();
        assert!(message.contains(&study.to_string()) && message.contains("--study"));
    }

    #[test]
    fn a_file_that_cannot_be_written_is_named() {
        let dir = std::env::temp_dir().join(format!("portal-tools-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let blocker = dir.join("a-file");
        std::fs::write(&blocker, b"not a folder").expect("a temporary file");
        let path = blocker.join("manifest.json");
        let error = write_atomically(&path, b"{}").err();
        let _ = std::fs::remove_dir_all(&dir);
        let Some(Error::Io { path: failed, .. }) = &error else {
            panic!("an I/O error with its path, not {error:?}");
        };
        assert!(failed.starts_with(&blocker), "{}", failed.display());
        let message = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains(&blocker.display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn a_malformed_event_row_says_what_is_wrong() {
        let mut fold = Fold::default();
        let error = copy_row(b"12\tPortal", &mut fold).err();
        assert!(matches!(error, Some(Error::Corrupt(_))), "{error:?}");
        let error = copy_row(b"x1\tPortal\tid\tGoalSet\t{}", &mut fold).err();
        let message = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("\"x1\" is not a number"), "{message}");
    }
}
