//! The witness: signed checkpoints of the access trail, kept outside the
//! database.
//!
//! At a set interval (when the trail has grown) and at shutdown, the service
//! takes every record appended since the last checkpoint (chain, sequence,
//! position, seal), updates the head of each chain, and signs a checkpoint
//! with Ed25519: its number, the digest of the checkpoint before it, how far
//! into the store it read, how many chains and records the trail has, a
//! Merkle root over all chain heads (as Certificate Transparency's signed
//! tree heads), and the digest of the records it adds. Each checkpoint is one
//! line of `checkpoints.jsonl` in the witness folder, with those records; the
//! public key is `witness.pub` beside it. `GET /trail/witness` gives the
//! signed checkpoints without the records (chain names are people's ids).
//!
//! With the seal key alone an insider can rewrite a chain so that it
//! verifies; they cannot make the witnessed seals match again without the
//! signing key, nor sign a new history. `portal audit verify --witness`
//! checks every witnessed record against the store; at start the service
//! checks every witnessed head and refuses to run when one is gone or
//! different (`trail.accept_witness_loss` overrides, and says so in the next
//! checkpoint). See docs/access-trail.md.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use futures::TryStreamExt;
use projections::{Backend, Db};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::sync::{watch, Mutex};

use crate::error::ApiError;
use crate::settings::Settings;

/// The checkpoint file in the witness folder.
pub const FILE: &str = "checkpoints.jsonl";
/// The public key file in the witness folder (hex).
pub const PUBLIC_KEY: &str = "witness.pub";
/// The signed checkpoints alone, one per line, rewritten from [`FILE`] at
/// every start: what `GET /trail/witness` reads, by offset, so that a
/// request costs the page it returns, not the length of the history.
pub const SIGNED: &str = "signed.jsonl";
/// `previous` of the first checkpoint.
const NONE: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Records read from the store per query while collecting.
const BATCH: i64 = 5_000;
/// Witnessed heads compared per query at start.
const COMPARE_BATCH: usize = 200;

/// One record as witnessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Witnessed {
    pub chain: String,
    pub sequence: i64,
    pub position: i64,
    pub seal: String,
}

/// How far into the store a checkpoint read, in the order projections read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Through {
    pub tx_id: i64,
    pub position: i64,
}

/// What is signed. Its JSON text (fields in this order) is the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub number: u64,
    /// When it was signed (RFC 3339).
    pub at: String,
    /// SHA-256 of the previous checkpoint's text.
    pub previous: String,
    pub through: Through,
    /// Chains with at least one record.
    pub chains: u64,
    /// Records in all chains (the sum of their heads' sequence numbers).
    pub records: u64,
    /// Merkle root (RFC 6962) over every chain's head, in chain order.
    pub root: String,
    /// SHA-256 of the line's `records` and `accepted` (their JSON text).
    pub changes: String,
    /// Witnessed records found gone at start and accepted as lost.
    pub lost: u64,
}

impl Checkpoint {
    fn text(&self) -> String {
        #[allow(clippy::expect_used)]
        serde_json::to_string(self).expect("a checkpoint serializes")
    }

    fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.text()))
    }
}

/// A checkpoint and its signature: what an outside auditor keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    pub checkpoint: Checkpoint,
    /// Ed25519 signature of the checkpoint's text, hex.
    pub signature: String,
}

/// One line of the checkpoint file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Line {
    pub checkpoint: Checkpoint,
    pub signature: String,
    /// Records appended since the previous checkpoint.
    pub records: Vec<Witnessed>,
    /// Heads accepted as they are in the store after a loss (sequence 0: the
    /// chain is gone).
    #[serde(default)]
    pub accepted: Vec<Witnessed>,
}

fn changes_digest(records: &[Witnessed], accepted: &[Witnessed]) -> String {
    #[allow(clippy::expect_used)]
    let text = serde_json::to_string(&(records, accepted)).expect("records serialize");
    hex::encode(Sha256::digest(text))
}

/// The Merkle tree hash of RFC 6962 over the heads in chain order.
fn root(heads: &BTreeMap<String, Witnessed>) -> String {
    let leaves: Vec<[u8; 32]> = heads
        .values()
        .map(|h| {
            let mut d = Sha256::new();
            d.update([0u8]);
            for field in [
                h.chain.as_str(),
                &h.sequence.to_string(),
                &h.position.to_string(),
                &h.seal,
            ] {
                d.update((field.len() as u64).to_be_bytes());
                d.update(field.as_bytes());
            }
            d.finalize().into()
        })
        .collect();
    fn tree(leaves: &[[u8; 32]]) -> [u8; 32] {
        match leaves.len() {
            0 => Sha256::digest([]).into(),
            1 => leaves[0],
            n => {
                let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                let mut d = Sha256::new();
                d.update([1u8]);
                d.update(tree(&leaves[..k]));
                d.update(tree(&leaves[k..]));
                d.finalize().into()
            }
        }
    }
    hex::encode(tree(&leaves))
}

/// The witnessed history, replayed from a checkpoint file.
#[derive(Debug, Default)]
pub struct History {
    pub checkpoints: Vec<Signed>,
    /// Every witnessed record, by chain and sequence, with the number of
    /// the checkpoint that witnessed it.
    pub records: BTreeMap<String, BTreeMap<i64, (Witnessed, u64)>>,
    /// The head of every chain as of the last checkpoint.
    pub heads: BTreeMap<String, Witnessed>,
    /// What does not hold in the file itself: a bad signature, a missing or
    /// reordered checkpoint, a root that does not match its records.
    pub problems: Vec<String>,
    /// Witnessed records accepted as lost, per checkpoint.
    pub accepted_losses: Vec<(u64, u64)>,
    /// Lines that are not checkpoints (a write cut short by a crash). Not a
    /// problem by itself: a checkpoint removed or altered shows in the next
    /// one's digest of the previous.
    pub unreadable: u64,
}

impl History {
    fn through(&self) -> Through {
        self.checkpoints
            .last()
            .map(|s| s.checkpoint.through)
            .unwrap_or_default()
    }

    fn last(&self) -> (u64, String) {
        self.checkpoints
            .last()
            .map(|s| (s.checkpoint.number, s.checkpoint.digest()))
            .unwrap_or((0, NONE.to_string()))
    }

    /// Replays the checkpoint file in `dir`, checking each line against
    /// `key`; with `records`, keeps every witnessed record (for `verify`),
    /// else only the heads (for the start-up check, whose memory then does
    /// not grow with the trail).
    pub fn load(dir: &Path, key: &VerifyingKey, records: bool) -> Result<History, ApiError> {
        let mut history = History::default();
        let file = match std::fs::File::open(dir.join(FILE)) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(history),
            Err(e) => return Err(ApiError::internal(format!("{}: {e}", dir.display()))),
        };
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(|e| ApiError::internal(format!("{}: {e}", dir.display())))?;
            if line.trim().is_empty() {
                continue;
            }
            let Ok(line) = serde_json::from_str::<Line>(&line) else {
                history.unreadable += 1;
                continue;
            };
            history.replay(line, key, records);
        }
        Ok(history)
    }

    fn replay(&mut self, line: Line, key: &VerifyingKey, keep_records: bool) {
        let c = &line.checkpoint;
        let (number, previous) = self.last();
        let signed = hex::decode(&line.signature)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .is_some_and(|sig| key.verify(c.text().as_bytes(), &sig).is_ok());
        if !signed {
            self.problems.push(format!(
                "checkpoint {} is not signed by the witness key",
                c.number
            ));
            return;
        }
        if c.number != number + 1 || c.previous != previous {
            self.problems.push(format!(
                "checkpoint {} does not follow checkpoint {number}: checkpoints are missing or reordered",
                c.number
            ));
        }
        if changes_digest(&line.records, &line.accepted) != c.changes {
            self.problems.push(format!(
                "checkpoint {}'s records are not the ones it signed",
                c.number
            ));
        }
        // Heads accepted as the store had them after a loss, then the
        // records collected since (the writer applies them in that order).
        for a in &line.accepted {
            if a.sequence == 0 {
                self.heads.remove(&a.chain);
            } else {
                self.heads.insert(a.chain.clone(), a.clone());
            }
        }
        for r in &line.records {
            if keep_records {
                // The first record witnessed at a place stays: one written
                // there after an accepted loss does not replace it.
                self.records
                    .entry(r.chain.clone())
                    .or_default()
                    .entry(r.sequence)
                    .or_insert((r.clone(), c.number));
            }
            let newer = self
                .heads
                .get(&r.chain)
                .is_none_or(|h| h.sequence < r.sequence);
            if newer {
                self.heads.insert(r.chain.clone(), r.clone());
            }
        }
        if c.lost > 0 {
            self.accepted_losses.push((c.number, c.lost));
        }
        if root(&self.heads) != c.root {
            self.problems.push(format!(
                "checkpoint {}'s root does not match the heads it witnessed",
                c.number
            ));
        }
        self.checkpoints.push(Signed {
            checkpoint: line.checkpoint,
            signature: line.signature,
        });
    }
}

/// A witnessed head the store no longer has as witnessed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    pub head: Witnessed,
    /// The store's record at that place, if any: (position, seal).
    pub found: Option<(i64, String)>,
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = &self.head;
        match &self.found {
            None => write!(
                f,
                "chain {} record {} (position {}) is gone",
                h.chain, h.sequence, h.position
            ),
            Some(_) => write!(
                f,
                "chain {} record {} (position {}) is not the record witnessed",
                h.chain, h.sequence, h.position
            ),
        }
    }
}

/// The store's (position, seal) of each `(chain, sequence)` asked for.
async fn stored_at(
    db: &Db,
    places: &[(String, i64)],
) -> Result<BTreeMap<(String, i64), (i64, String)>, ApiError> {
    let mut found = BTreeMap::new();
    for chunk in places.chunks(COMPARE_BATCH) {
        let tuples: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${})", 2 * i + 2, 2 * i + 3))
            .collect();
        let metadata = db.backend.json_text("metadata");
        let sql = format!(
            "SELECT aggregate_id, sequence, position, {metadata} AS metadata FROM events \
             WHERE aggregate_type = $1 AND (aggregate_id, sequence) IN (VALUES {})",
            tuples.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(domain::trail::AGGREGATE_TYPE);
        for (chain, sequence) in chunk {
            query = query.bind(chain).bind(*sequence);
        }
        for row in query.fetch_all(&db.pool).await? {
            let metadata: String = row.try_get("metadata")?;
            found.insert(
                (row.try_get("aggregate_id")?, row.try_get("sequence")?),
                (
                    row.try_get("position")?,
                    crate::seal::claimed(&metadata).unwrap_or_default(),
                ),
            );
        }
    }
    Ok(found)
}

/// The witnessed heads that the store does not have as witnessed.
pub async fn lost_heads(
    db: &Db,
    heads: &BTreeMap<String, Witnessed>,
) -> Result<Vec<Loss>, ApiError> {
    let places: Vec<(String, i64)> = heads
        .values()
        .map(|h| (h.chain.clone(), h.sequence))
        .collect();
    let found = stored_at(db, &places).await?;
    Ok(heads
        .values()
        .filter_map(|h| {
            let at = found.get(&(h.chain.clone(), h.sequence));
            match at {
                Some((position, seal)) if *position == h.position && *seal == h.seal => None,
                _ => Some(Loss {
                    head: h.clone(),
                    found: at.cloned(),
                }),
            }
        })
        .collect())
}

/// The signing key derived from a secret of at least 32 characters.
pub fn signing_key(secret: &str) -> SigningKey {
    SigningKey::from_bytes(&Sha256::digest(secret.as_bytes()).into())
}

/// Reads a public key written as hex (as `witness.pub` holds it).
pub fn public_key(hex_text: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = hex::decode(hex_text.trim())
        .map_err(|e| e.to_string())?
        .try_into()
        .map_err(|_| "a public key is 32 bytes".to_string())?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| e.to_string())
}

struct State {
    history_heads: BTreeMap<String, Witnessed>,
    number: u64,
    previous: String,
    through: Through,
    /// Heads to sign as accepted in the next checkpoint, and how many
    /// witnessed records they gave up.
    accepted: Vec<Witnessed>,
    lost: u64,
}

/// Signs checkpoints of the trail into the witness folder.
pub struct Witness {
    key: SigningKey,
    dir: PathBuf,
    state: Mutex<State>,
    /// Each checkpoint's number and the byte offset of its line in [`SIGNED`].
    offsets: std::sync::RwLock<Vec<(u64, u64)>>,
}

impl Witness {
    /// Opens the witness folder of `settings` (creating it and its key if
    /// needed), replays its checkpoints and compares their heads with the
    /// store. Refuses when the file does not hold together or a witnessed
    /// record is gone, unless `trail.accept_witness_loss`.
    pub async fn open(settings: &Settings, db: &Db) -> Result<Witness, ApiError> {
        let key = signing_key(settings.resolve_witness_key()?.expose());
        let dir = settings.trail.witness_dir(&settings.store.data_dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::internal(format!("witness folder {}: {e}", dir.display())))?;
        let public = hex::encode(key.verifying_key().as_bytes());
        let pub_file = dir.join(PUBLIC_KEY);
        match std::fs::read_to_string(&pub_file) {
            Ok(existing) if existing.trim() == public => {}
            Ok(_) => {
                return Err(ApiError::internal(format!(
                    "the witness folder {} was signed with another key: set the PORTAL_WITNESS_KEY \
                     it was made with, or name a new folder (PORTAL_WITNESS_DIR)",
                    dir.display()
                )))
            }
            Err(_) => std::fs::write(&pub_file, format!("{public}\n"))
                .map_err(|e| ApiError::internal(format!("{}: {e}", pub_file.display())))?,
        }
        if settings.trail.witness_key.is_none() || settings.trail.witness_dir.is_none() {
            tracing::warn!(
                "the access trail's witness {} in the data folder {}: whoever can write there can \
                 rewrite it; in production set PORTAL_WITNESS_KEY from a secret store and \
                 PORTAL_WITNESS_DIR to storage the database's administrators cannot write \
                 (docs/access-trail.md)",
                match (
                    settings.trail.witness_key.is_none(),
                    settings.trail.witness_dir.is_none()
                ) {
                    (true, true) => "key and folder are",
                    (true, false) => "key is",
                    _ => "folder is",
                },
                settings.store.data_dir.display()
            );
        }
        let history = History::load(&dir, &key.verifying_key(), false)?;
        let accept = settings.trail.accept_witness_loss;
        if history.unreadable > 0 {
            tracing::warn!(
                lines = history.unreadable,
                "the witness's checkpoint file has lines that are not checkpoints (a write cut short)"
            );
        }
        // Sealed records are only ever written with a witness: an empty one
        // beside them was deleted or replaced.
        if history.checkpoints.is_empty() && !accept {
            let sealed: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM events WHERE aggregate_type = $1 AND event_version = $2 LIMIT 1",
            )
            .bind(domain::trail::AGGREGATE_TYPE)
            .bind(crate::seal::VERSION)
            .fetch_optional(&db.pool)
            .await?;
            if sealed.is_some() {
                return Err(ApiError::internal(format!(
                    "the witness {} has no checkpoints, but the access trail has records only a \
                     witnessed service writes: the witness was removed or replaced. Restore it, or \
                     set PORTAL_ACCEPT_WITNESS_LOSS=true to start a new one (docs/access-trail.md)",
                    dir.display()
                )));
            }
        }
        if !history.problems.is_empty() && !accept {
            return Err(ApiError::internal(format!(
                "the witness {} does not hold together: {}; set PORTAL_ACCEPT_WITNESS_LOSS=true to \
                 serve anyway (docs/access-trail.md)",
                dir.display(),
                history.problems.join("; ")
            )));
        }
        let losses = lost_heads(db, &history.heads).await?;
        let mut accepted = Vec::new();
        let mut lost = 0u64;
        if !losses.is_empty() {
            let shown: Vec<String> = losses.iter().take(5).map(ToString::to_string).collect();
            let message = format!(
                "{} access-trail chain(s) lost records the witness signed ({}{}): the store was \
                 rolled back or tampered with",
                losses.len(),
                shown.join("; "),
                if losses.len() > 5 { "; ..." } else { "" }
            );
            if !accept {
                return Err(ApiError::internal(format!(
                    "{message}. Run `portal audit verify --witness {}`; set \
                     PORTAL_ACCEPT_WITNESS_LOSS=true to serve anyway (the acceptance is signed \
                     into the next checkpoint)",
                    dir.display()
                )));
            }
            tracing::error!("{message}; serving anyway (PORTAL_ACCEPT_WITNESS_LOSS)");
            let heads = current_heads(db, losses.iter().map(|l| l.head.chain.clone())).await?;
            for loss in &losses {
                let now = heads.get(&loss.head.chain).cloned();
                let kept = now
                    .as_ref()
                    .map_or(0, |h| h.sequence.min(loss.head.sequence));
                lost += (loss.head.sequence - kept).max(1) as u64;
                accepted.push(now.unwrap_or(Witnessed {
                    chain: loss.head.chain.clone(),
                    sequence: 0,
                    position: 0,
                    seal: String::new(),
                }));
            }
        }
        let (number, previous) = history.last();
        let offsets = rewrite_signed(&dir, &history.checkpoints)?;
        // After an accepted loss the store may have been restored from an
        // older copy, its new records placed before where the witness had
        // read: read it all again once.
        let through = if accepted.is_empty() {
            history.through()
        } else {
            Through::default()
        };
        let witness = Witness {
            key,
            offsets: std::sync::RwLock::new(offsets),
            dir,
            state: Mutex::new(State {
                through,
                history_heads: history.heads,
                number,
                previous,
                accepted,
                lost,
            }),
        };
        // A new witness signs at once, so that an empty one beside sealed
        // records can only mean a removed one (and the trail written before
        // it, by earlier versions, is witnessed from the start).
        if history.checkpoints.is_empty() {
            witness.sign(db, true).await?;
        }
        Ok(witness)
    }

    /// The public key, hex.
    pub fn public_key(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// Signs a checkpoint of what the store has appended to the trail since
    /// the last one (if anything); its number.
    pub async fn checkpoint(&self, db: &Db) -> Result<Option<u64>, ApiError> {
        self.sign(db, false).await
    }

    /// [`Witness::checkpoint`]; with `always`, even when nothing was appended.
    async fn sign(&self, db: &Db, always: bool) -> Result<Option<u64>, ApiError> {
        let mut state = self.state.lock().await;
        let (records, through) = collect(db, state.through).await?;
        if records.is_empty() && state.accepted.is_empty() && !always {
            if through != state.through {
                // Only other events passed: nothing to sign, less to read next time.
                state.through = through;
            }
            return Ok(None);
        }
        let mut heads = state.history_heads.clone();
        for a in &state.accepted {
            if a.sequence == 0 {
                heads.remove(&a.chain);
            } else {
                heads.insert(a.chain.clone(), a.clone());
            }
        }
        for r in &records {
            if heads.get(&r.chain).is_none_or(|h| h.sequence < r.sequence) {
                heads.insert(r.chain.clone(), r.clone());
            }
        }
        let checkpoint = Checkpoint {
            number: state.number + 1,
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            previous: state.previous.clone(),
            through,
            chains: heads.len() as u64,
            records: heads.values().map(|h| h.sequence.max(0) as u64).sum(),
            root: root(&heads),
            changes: changes_digest(&records, &state.accepted),
            lost: state.lost,
        };
        let signature = hex::encode(self.key.sign(checkpoint.text().as_bytes()).to_bytes());
        let line = Line {
            checkpoint: checkpoint.clone(),
            signature,
            records,
            accepted: state.accepted.clone(),
        };
        append(&self.dir.join(FILE), &line)?;
        let signed = Signed {
            checkpoint: checkpoint.clone(),
            signature: line.signature.clone(),
        };
        // The checkpoint is witnessed once the main file has it; the file of
        // signed checkpoints alone is rewritten from it at every start.
        match append(&self.dir.join(SIGNED), &signed) {
            Ok(offset) => {
                if let Ok(mut offsets) = self.offsets.write() {
                    offsets.push((checkpoint.number, offset));
                }
            }
            Err(error) => tracing::error!(?error, "the witness's published file was not written"),
        }
        state.number = checkpoint.number;
        state.previous = checkpoint.digest();
        state.through = through;
        state.history_heads = heads;
        state.accepted.clear();
        state.lost = 0;
        Ok(Some(checkpoint.number))
    }

    /// Signs a checkpoint every `interval` until `stopped`, and a last one then.
    pub async fn run(&self, db: Db, interval: Duration, mut stopped: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stop = tokio::select! {
                _ = tick.tick() => false,
                _ = stopped.changed() => true,
            };
            if let Err(error) = self.checkpoint(&db).await {
                tracing::error!(
                    ?error,
                    "the access trail's witness could not sign a checkpoint"
                );
            }
            if stop || *stopped.borrow() {
                return;
            }
        }
    }

    /// Up to `limit` signed checkpoints after number `after`, oldest first:
    /// read from [`SIGNED`] starting at the first one's offset.
    pub fn published(&self, after: u64, limit: usize) -> Result<Vec<Signed>, ApiError> {
        let start = {
            let offsets = self
                .offsets
                .read()
                .map_err(|_| ApiError::internal("witness offsets poisoned"))?;
            let i = offsets.partition_point(|(number, _)| *number <= after);
            match offsets.get(i) {
                Some((_, offset)) => *offset,
                None => return Ok(Vec::new()),
            }
        };
        let mut file = std::fs::File::open(self.dir.join(SIGNED)).map_err(ApiError::internal)?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start))
            .map_err(ApiError::internal)?;
        let mut out = Vec::new();
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(ApiError::internal)?;
            if let Ok(signed) = serde_json::from_str::<Signed>(&line) {
                out.push(signed);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// Writes [`SIGNED`] afresh from `checkpoints` (to a new file, then renamed
/// over the old one); each checkpoint's number and line offset.
fn rewrite_signed(dir: &Path, checkpoints: &[Signed]) -> Result<Vec<(u64, u64)>, ApiError> {
    let mut text = String::new();
    let mut offsets = Vec::with_capacity(checkpoints.len());
    for signed in checkpoints {
        offsets.push((signed.checkpoint.number, text.len() as u64));
        text.push_str(&serde_json::to_string(signed).map_err(ApiError::internal)?);
        text.push('\n');
    }
    let fresh = dir.join(format!("{SIGNED}.new"));
    std::fs::write(&fresh, text)
        .and_then(|()| std::fs::rename(&fresh, dir.join(SIGNED)))
        .map_err(|e| ApiError::internal(format!("{}: {e}", dir.display())))?;
    Ok(offsets)
}

/// Appends `line` as one line of JSON to the file at `path` and flushes
/// it to disk; the offset the line starts at. A line left incomplete by a
/// crash is closed first, so it stays one bad line.
fn append(path: &Path, line: &impl Serialize) -> Result<u64, ApiError> {
    let failed = |e: std::io::Error| ApiError::internal(format!("{}: {e}", path.display()));
    let mut text = serde_json::to_string(line).map_err(ApiError::internal)?;
    text.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(failed)?;
    let mut offset = file.metadata().map_err(failed)?.len();
    if offset > 0 {
        let mut last = [0u8; 1];
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(-1)).map_err(failed)?;
        std::io::Read::read_exact(&mut file, &mut last).map_err(failed)?;
        if last[0] != b'\n' {
            text.insert(0, '\n');
            offset += 1;
        }
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(failed)?;
    Ok(offset)
}

/// Trail records appended after `after`, in the order projections read
/// them (never one while an earlier may still commit), and how far that is.
async fn collect(db: &Db, after: Through) -> Result<(Vec<Witnessed>, Through), ApiError> {
    let sql = match db.backend {
        Backend::Postgres => {
            "SELECT aggregate_type, aggregate_id, sequence, position, tx_id::text::bigint AS tx_id, \
             CASE WHEN aggregate_type = $1 THEN metadata::text END AS metadata FROM events \
             WHERE (tx_id, position) > (($2::bigint)::text::xid8, $3) \
               AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY events.tx_id, events.position LIMIT $4"
        }
        Backend::Sqlite => {
            "SELECT aggregate_type, aggregate_id, sequence, position, tx_id, \
             CASE WHEN aggregate_type = $1 THEN metadata END AS metadata FROM events \
             WHERE position > $3 AND $2 = $2 ORDER BY position LIMIT $4"
        }
    };
    let mut records = Vec::new();
    let mut through = after;
    loop {
        let mut rows = sqlx::query(sql)
            .bind(domain::trail::AGGREGATE_TYPE)
            .bind(through.tx_id)
            .bind(through.position)
            .bind(BATCH)
            .fetch(&db.pool);
        let mut n = 0;
        while let Some(row) = rows.try_next().await? {
            n += 1;
            through = Through {
                tx_id: row.try_get("tx_id")?,
                position: row.try_get("position")?,
            };
            if let Some(metadata) = row.try_get::<Option<String>, _>("metadata")? {
                records.push(Witnessed {
                    chain: row.try_get("aggregate_id")?,
                    sequence: row.try_get("sequence")?,
                    position: through.position,
                    seal: crate::seal::claimed(&metadata).unwrap_or_default(),
                });
            }
        }
        if n < BATCH {
            return Ok((records, through));
        }
    }
}

/// The store's newest record of each of `chains`.
async fn current_heads(
    db: &Db,
    chains: impl Iterator<Item = String>,
) -> Result<BTreeMap<String, Witnessed>, ApiError> {
    let metadata = db.backend.json_text("metadata");
    let sql = format!(
        "SELECT sequence, position, {metadata} AS metadata FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence DESC LIMIT 1"
    );
    let mut heads = BTreeMap::new();
    for chain in chains {
        let row = sqlx::query(&sql)
            .bind(domain::trail::AGGREGATE_TYPE)
            .bind(&chain)
            .fetch_optional(&db.pool)
            .await?;
        if let Some(row) = row {
            let metadata: String = row.try_get("metadata")?;
            heads.insert(
                chain.clone(),
                Witnessed {
                    chain,
                    sequence: row.try_get("sequence")?,
                    position: row.try_get("position")?,
                    seal: crate::seal::claimed(&metadata).unwrap_or_default(),
                },
            );
        }
    }
    Ok(heads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(chain: &str, sequence: i64) -> Witnessed {
        Witnessed {
            chain: chain.into(),
            sequence,
            position: sequence * 10,
            seal: format!("{sequence:064}"),
        }
    }

    #[test]
    fn the_root_covers_every_head() {
        let mut heads = BTreeMap::new();
        assert_eq!(root(&heads), hex::encode(Sha256::digest([])));
        for (i, c) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            heads.insert(c.to_string(), head(c, i as i64 + 1));
        }
        let r = root(&heads);
        let mut changed = heads.clone();
        changed.insert("c".into(), head("c", 9));
        assert_ne!(r, root(&changed));
        let mut fewer = heads.clone();
        fewer.remove("e");
        assert_ne!(r, root(&fewer));
        assert_eq!(r, root(&heads.clone()));
    }

    #[test]
    fn a_history_holds_together_only_as_signed() {
        let key = signing_key(&"w".repeat(32));
        let other = signing_key(&"v".repeat(32));
        let mut heads = BTreeMap::new();
        let mut previous = NONE.to_string();
        let mut lines = Vec::new();
        for n in 1..=3u64 {
            let records = vec![head("a", n as i64)];
            heads.insert("a".to_string(), records[0].clone());
            let checkpoint = Checkpoint {
                number: n,
                at: "2026-11-29T03:00:00.000Z".into(),
                previous: previous.clone(),
                through: Through::default(),
                chains: 1,
                records: n,
                root: root(&heads),
                changes: changes_digest(&records, &[]),
                lost: 0,
            };
            previous = checkpoint.digest();
            lines.push(Line {
                signature: hex::encode(key.sign(checkpoint.text().as_bytes()).to_bytes()),
                checkpoint,
                records,
                accepted: vec![],
            });
        }
        let replay = |lines: &[Line], key: &VerifyingKey| {
            let mut h = History::default();
            for l in lines {
                h.replay(l.clone(), key, true);
            }
            h
        };
        let good = replay(&lines, &key.verifying_key());
        assert!(good.problems.is_empty(), "{:?}", good.problems);
        assert_eq!(good.heads["a"].sequence, 3);
        assert_eq!(good.records["a"].len(), 3);

        let wrong_key = replay(&lines, &other.verifying_key());
        assert_eq!(wrong_key.problems.len(), 3);

        let gap = replay(&[lines[0].clone(), lines[2].clone()], &key.verifying_key());
        assert!(
            gap.problems[0].contains("does not follow"),
            "{:?}",
            gap.problems
        );

        let mut forged = lines.clone();
        forged[1].records[0].seal = "f".repeat(64);
        let forged = replay(&forged, &key.verifying_key());
        assert!(forged
            .problems
            .iter()
            .any(|p| p.contains("not the ones it signed")));
    }
}
