//! Personal data sealed per person, at rest in the events table (issue 18).
//!
//! Each person has a key of their own: 32 random bytes, stored in
//! `person_keys` wrapped (XChaCha20-Poly1305) under the master key, which
//! lives outside the database. An event's personal fields, as
//! `domain::personal` declares them, are taken out of its payload and sealed
//! together under the key of the person they belong to, with the event's
//! identity (aggregate type and id, sequence, event type, key id) as
//! associated data: a sealed value cannot be moved to another event. The
//! payload keeps every clear field and gains one `"$sealed"` field:
//!
//! ```text
//! {"GoalSet": {"goal_id": "...", "domain": "work", "at": "...",
//!              "$sealed": "1.<person id>.<base64 of nonce and ciphertext>"}}
//! ```
//!
//! Opening puts the fields back. Erasure destroys the wrapped key; from then
//! on a sealed payload opens to its declared erased values (an empty text, an
//! empty list), so every fold still reads a well-formed event and no reader
//! ever sees an error or ciphertext.
//!
//! Keys are cached, unwrapped, in memory, at most `KEYS_MAX` of them (then the
//! cache starts over); an erasure seen in the stream (any instance's) drops
//! the person's entry ([`Vault::forget`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use domain::personal::{self, Owner};
use serde_json::Value;
use sqlx::{AnyPool, Row};
use uuid::Uuid;
use zeroize::Zeroizing;

/// The field a sealed payload carries its sealed fields in.
pub const SEALED: &str = "$sealed";
/// Version of the sealed form.
const FORM: &str = "1";
/// Keys kept unwrapped in memory; past this the cache starts over.
pub const KEYS_MAX: usize = 10_000;
const NONCE_LEN: usize = 24;

/// What an event is, bound to its sealed fields as associated data.
#[derive(Debug, Clone, Copy)]
pub struct Ident<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: i64,
    pub event_type: &'a str,
}

impl Ident<'_> {
    fn associated(&self, key: &str) -> Vec<u8> {
        let mut aad = b"portal personal data v1".to_vec();
        for part in [
            self.aggregate_type,
            self.aggregate_id,
            &self.sequence.to_string(),
            self.event_type,
            key,
        ] {
            aad.push(0);
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}

/// The master key: 32 bytes derived from the configured secret.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// Derives the key from a secret of at least 32 characters (HMAC-SHA256
    /// of a fixed label under the secret).
    pub fn derive(secret: &str) -> Self {
        use hmac::{Hmac, Mac};
        #[allow(clippy::expect_used)]
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(b"portal master key v1");
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&mac.finalize().into_bytes());
        MasterKey(key)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&*self.0).into())
    }

    /// An HMAC-SHA256 under a key derived from the master key for `label`
    /// (the erasure ledger's lines are signed with one): the master key
    /// itself only wraps keys.
    pub fn mac(&self, label: &str, data: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        #[allow(clippy::expect_used)]
        let mut derive = <Hmac<sha2::Sha256> as Mac>::new_from_slice(self.0.as_ref())
            .expect("HMAC accepts keys of any length");
        derive.update(b"portal derived key v1\0");
        derive.update(label.as_bytes());
        let sub: Zeroizing<[u8; 32]> = Zeroizing::new(derive.finalize().into_bytes().into());
        #[allow(clippy::expect_used)]
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(sub.as_slice())
            .expect("HMAC accepts keys of any length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is [`MasterKey::mac`] of `label` and `data`, compared in
    /// constant time.
    pub fn verify_mac(&self, label: &str, data: &[u8], tag: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.mac(label, data)[..].ct_eq(tag))
    }
}

fn wrap_associated(key: &str) -> Vec<u8> {
    format!("portal person key v1\0{key}").into_bytes()
}

/// The id of a person's key: their organisation and their id, as identity
/// is scoped to the organisation (`organisation/person`).
pub fn key_id(organisation: &str, person: Uuid) -> String {
    format!("{organisation}/{person}")
}

/// A person's key as the cache holds it.
#[derive(Clone)]
enum Slot {
    Key(Arc<Zeroizing<[u8; 32]>>),
    /// The key was destroyed: the person is erased.
    Erased,
    /// No key stored yet (the person has written nothing personal).
    Absent,
}

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("no master key: sealed personal data cannot be written or read")]
    Locked,
    #[error("{aggregate_type}/{event_type} is not declared in domain::personal")]
    Undeclared {
        aggregate_type: String,
        event_type: String,
    },
    #[error("field `{field}` of {event_type} names no person")]
    NoOwner { event_type: String, field: String },
    #[error("the person's personal data was erased; nothing more is written for them")]
    Erased,
    #[error("sealed data of {0} does not open: wrong master key, or the data was altered")]
    Tampered(String),
    #[error("malformed payload: {0}")]
    Malformed(String),
}

struct Inner {
    pool: AnyPool,
    master: OnceLock<MasterKey>,
    keys: Mutex<HashMap<String, Slot>>,
    /// Erasures this process has learnt of: caches of folded aggregates
    /// start over when it moves (they may hold an erased person's texts).
    erasures: AtomicU64,
}

/// Per-person keys and the sealing and opening of payloads. Cheap to clone.
#[derive(Clone)]
pub struct Vault(Arc<Inner>);

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("unlocked", &self.0.master.get().is_some())
            .finish()
    }
}

/// Whose key seals an event's personal fields: the declared owner; `None`
/// for a text the service wrote itself (`Owner::Writer` with no writer).
pub fn owner_of(
    declared: &personal::Declared,
    aggregate_id: &str,
    actor: &str,
    fields: &serde_json::Map<String, Value>,
) -> Result<Option<Uuid>, VaultError> {
    let parse = |text: &str, field: &str| {
        Uuid::parse_str(text).map_err(|_| VaultError::NoOwner {
            event_type: declared.event_type.to_string(),
            field: field.to_string(),
        })
    };
    match declared.owner {
        Owner::Aggregate => parse(aggregate_id, "(aggregate id)").map(Some),
        Owner::Actor => parse(actor, "(actor)").map(Some),
        Owner::Field(field) => match fields.get(field).and_then(Value::as_str) {
            Some(id) => parse(id, field).map(Some),
            None => parse(actor, "(actor)").map(Some),
        },
        Owner::Writer(field) => match fields.get(field).and_then(Value::as_str) {
            Some(id) => parse(id, field).map(Some),
            None => Ok(None),
        },
    }
}

/// True when a payload text may hold sealed fields (a fast check before
/// parsing; a text that only mentions the name parses and opens as is).
pub fn may_be_sealed(payload: &str) -> bool {
    payload.contains("\"$sealed\"")
}

impl Vault {
    /// A vault over the store's `person_keys`, locked until [`Vault::unlock`].
    pub fn new(pool: AnyPool) -> Self {
        Vault(Arc::new(Inner {
            pool,
            master: OnceLock::new(),
            keys: Mutex::new(HashMap::new()),
            erasures: AtomicU64::new(0),
        }))
    }

    /// Gives the vault its master key (once; later calls change nothing).
    pub fn unlock(&self, master: MasterKey) {
        let _ = self.0.master.set(master);
    }

    /// True once the master key is known.
    pub fn is_unlocked(&self) -> bool {
        self.0.master.get().is_some()
    }

    /// The master key, if unlocked.
    pub fn master(&self) -> Option<&MasterKey> {
        self.0.master.get()
    }

    fn master_or_locked(&self) -> Result<&MasterKey, VaultError> {
        self.0.master.get().ok_or(VaultError::Locked)
    }

    fn cached(&self, person: &str) -> Option<Slot> {
        self.0.keys.lock().ok()?.get(person).cloned()
    }

    fn keep(&self, person: &str, slot: Slot) {
        if let Ok(mut keys) = self.0.keys.lock() {
            if keys.len() >= KEYS_MAX {
                keys.clear();
            }
            keys.insert(person.to_string(), slot);
        }
    }

    /// Drops what the cache holds of `person` (after an erasure anywhere),
    /// and tells the caches of folded aggregates to start over.
    pub fn forget(&self, person: &str) {
        if let Ok(mut keys) = self.0.keys.lock() {
            if matches!(keys.get(person), Some(Slot::Erased)) {
                return;
            }
            keys.insert(person.to_string(), Slot::Erased);
        }
        self.0.erasures.fetch_add(1, Ordering::SeqCst);
    }

    /// How many erasures this process has learnt of (see [`Vault::forget`]).
    pub fn erasures_seen(&self) -> u64 {
        self.0.erasures.load(Ordering::SeqCst)
    }

    fn unwrap_key(&self, person: &str, wrapped: &str) -> Result<Slot, VaultError> {
        let master = self.master_or_locked()?;
        let bytes = BASE64
            .decode(wrapped)
            .map_err(|_| VaultError::Tampered(format!("the key of {person}")))?;
        if bytes.len() <= NONCE_LEN {
            return Err(VaultError::Tampered(format!("the key of {person}")));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = Zeroizing::new(
            master
                .cipher()
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: sealed,
                        aad: &wrap_associated(person),
                    },
                )
                .map_err(|_| VaultError::Tampered(format!("the key of {person}")))?,
        );
        if plain.len() != 32 {
            return Err(VaultError::Tampered(format!("the key of {person}")));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&plain);
        Ok(Slot::Key(Arc::new(key)))
    }

    /// The keys of `people`, from the cache or the store; people with no key
    /// row yet are absent from the answer.
    async fn load(&self, people: &[&str]) -> Result<HashMap<String, Slot>, VaultError> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for person in people {
            match self.cached(person) {
                Some(Slot::Absent) | None => missing.push(*person),
                Some(slot) => {
                    found.insert(person.to_string(), slot);
                }
            }
        }
        missing.sort();
        missing.dedup();
        for chunk in missing.chunks(500) {
            let list = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql =
                format!("SELECT person_id, wrapped FROM person_keys WHERE person_id IN ({list})");
            let mut query = sqlx::query(&sql);
            for person in chunk {
                query = query.bind(person.to_string());
            }
            for row in query.fetch_all(&self.0.pool).await? {
                let id: String = row.try_get("person_id")?;
                let wrapped: Option<String> = row.try_get("wrapped")?;
                let slot = match wrapped {
                    Some(wrapped) => self.unwrap_key(&id, &wrapped)?,
                    // Erased, maybe by another instance: forgetting also
                    // tells the caches of folded aggregates to start over.
                    None => {
                        self.forget(&id);
                        Slot::Erased
                    }
                };
                self.keep(&id, slot.clone());
                found.insert(id, slot);
            }
        }
        Ok(found)
    }

    /// The person's key, made and stored if they have none yet.
    ///
    /// The key row commits before the event that uses it is appended. The
    /// projections' pool commits without waiting for the disk, but both
    /// stores write their log in order and the append's durable commit
    /// flushes it up to and past the key, so an acknowledged event's key is
    /// on disk with it.
    async fn key_for_writing(&self, person: &str) -> Result<Arc<Zeroizing<[u8; 32]>>, VaultError> {
        if let Some(slot) = self.load(&[person]).await?.remove(person) {
            return match slot {
                Slot::Key(key) => Ok(key),
                Slot::Erased => Err(VaultError::Erased),
                Slot::Absent => Err(VaultError::Malformed("a key both absent and found".into())),
            };
        }
        let master = self.master_or_locked()?;
        let mut key = Zeroizing::new([0u8; 32]);
        {
            use chacha20poly1305::aead::rand_core::RngCore;
            OsRng.fill_bytes(key.as_mut_slice());
        }
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = master
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: key.as_slice(),
                    aad: &wrap_associated(person),
                },
            )
            .map_err(|_| VaultError::Malformed("key wrapping failed".into()))?;
        let mut wrapped = nonce.to_vec();
        wrapped.extend_from_slice(&sealed);
        sqlx::query(
            "INSERT INTO person_keys (person_id, wrapped, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (person_id) DO NOTHING",
        )
        .bind(person.to_string())
        .bind(BASE64.encode(&wrapped))
        .bind(now_text())
        .execute(&self.0.pool)
        .await?;
        // Another writer may have made theirs first: use the stored one.
        match self.load(&[person]).await?.remove(person) {
            Some(Slot::Key(key)) => Ok(key),
            Some(Slot::Erased) => Err(VaultError::Erased),
            Some(Slot::Absent) | None => Err(VaultError::Malformed(format!(
                "the key of {person} was not stored"
            ))),
        }
    }

    /// Seals the personal fields of one event's payload (in place), as its
    /// declaration says. An event type that is not declared is refused: no
    /// field is ever stored in clear by omission. Fields that are all empty
    /// (`null` or `""`) are left as they are: there is nothing to hide.
    pub async fn seal(
        &self,
        ident: Ident<'_>,
        actor: &str,
        organisation: &str,
        payload: &mut Value,
    ) -> Result<(), VaultError> {
        let undeclared = || VaultError::Undeclared {
            aggregate_type: ident.aggregate_type.to_string(),
            event_type: ident.event_type.to_string(),
        };
        let declared = domain::declarations::declared(ident.aggregate_type, ident.event_type)
            .ok_or_else(undeclared)?;
        if declared.personal.is_empty() {
            return Ok(());
        }
        let fields = personal::fields_of(payload, ident.event_type).ok_or_else(|| {
            VaultError::Malformed(format!("{} is not an object", ident.event_type))
        })?;
        let empty = declared
            .personal
            .iter()
            .all(|p| peek(fields, p.path).is_none_or(|v| v.is_null() || v.as_str() == Some("")));
        if empty {
            return Ok(());
        }
        let Some(owner) = owner_of(declared, ident.aggregate_id, actor, fields)? else {
            return Ok(());
        };
        let person = &key_id(organisation, owner);
        let mut taken = serde_json::Map::new();
        for p in declared.personal {
            if let Some(value) = personal::take(fields, p.path) {
                taken.insert(p.path.to_string(), value);
            }
        }
        let key = match self.key_for_writing(person).await {
            Ok(key) => key,
            // Nothing personal is written for an erased person: their
            // fields are stored as erased.
            Err(VaultError::Erased) => {
                for p in declared.personal {
                    if taken.contains_key(p.path) {
                        let erased: Value = serde_json::from_str(p.erased)
                            .map_err(|e| VaultError::Malformed(e.to_string()))?;
                        personal::put(fields, p.path, erased);
                    }
                }
                return Ok(());
            }
            Err(other) => return Err(other),
        };
        let plain = Zeroizing::new(
            serde_json::to_vec(&Value::Object(taken))
                .map_err(|e| VaultError::Malformed(e.to_string()))?,
        );
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = XChaCha20Poly1305::new((&**key).into())
            .encrypt(
                &nonce,
                Payload {
                    msg: &plain,
                    aad: &ident.associated(person),
                },
            )
            .map_err(|_| VaultError::Malformed("sealing failed".into()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        fields.insert(
            SEALED.to_string(),
            Value::String(format!("{FORM}.{person}.{}", BASE64.encode(&bytes))),
        );
        Ok(())
    }

    /// Opens sealed payloads (JSON texts) in place: each gets its personal
    /// fields back, or their erased values if the person was erased. Texts
    /// with nothing sealed are left untouched. One query fetches the keys
    /// the cache lacks.
    pub async fn open_all(&self, items: &mut [(Ident<'_>, &mut String)]) -> Result<(), VaultError> {
        let mut parsed: Vec<(usize, Value, String, Vec<u8>)> = Vec::new();
        for (i, (_, text)) in items.iter().enumerate() {
            if !may_be_sealed(text) {
                continue;
            }
            let mut value: Value =
                serde_json::from_str(text).map_err(|e| VaultError::Malformed(e.to_string()))?;
            let event_type = items[i].0.event_type;
            let Some(fields) = personal::fields_of(&mut value, event_type) else {
                continue;
            };
            let Some(Value::String(sealed)) = fields.remove(SEALED) else {
                continue;
            };
            let (person, bytes) = parse_sealed(&sealed)?;
            parsed.push((i, value, person, bytes));
        }
        if parsed.is_empty() {
            return Ok(());
        }
        let people: Vec<&str> = parsed.iter().map(|p| p.2.as_str()).collect();
        let keys = self.load(&people).await?;
        for (i, mut value, person, bytes) in parsed {
            let person = person.as_str();
            let ident = items[i].0;
            let declared = domain::declarations::declared(ident.aggregate_type, ident.event_type)
                .ok_or_else(|| VaultError::Undeclared {
                aggregate_type: ident.aggregate_type.to_string(),
                event_type: ident.event_type.to_string(),
            })?;
            let fields = personal::fields_of(&mut value, ident.event_type)
                .ok_or_else(|| VaultError::Malformed("not an object".into()))?;
            match keys.get(person) {
                Some(Slot::Key(key)) => {
                    let (nonce, sealed) = bytes.split_at(NONCE_LEN);
                    let plain = Zeroizing::new(
                        XChaCha20Poly1305::new((&***key).into())
                            .decrypt(
                                XNonce::from_slice(nonce),
                                Payload {
                                    msg: sealed,
                                    aad: &ident.associated(person),
                                },
                            )
                            .map_err(|_| {
                                VaultError::Tampered(format!(
                                    "{}/{} #{}",
                                    ident.aggregate_type, ident.aggregate_id, ident.sequence
                                ))
                            })?,
                    );
                    let opened: serde_json::Map<String, Value> = serde_json::from_slice(&plain)
                        .map_err(|e| VaultError::Malformed(e.to_string()))?;
                    for (path, v) in opened {
                        personal::put(fields, &path, v);
                    }
                }
                // Erased (or a key lost with nothing to unwrap it from):
                // the declared erased values.
                Some(Slot::Erased) | Some(Slot::Absent) | None => {
                    for p in declared.personal {
                        let erased: Value = serde_json::from_str(p.erased)
                            .map_err(|e| VaultError::Malformed(e.to_string()))?;
                        personal::put(fields, p.path, erased);
                    }
                }
            }
            *items[i].1 = value.to_string();
        }
        Ok(())
    }

    /// Makes sure the person has a key (or is erased), so that sealing for
    /// them later only reads: a writer holding SQLite's write lock must not
    /// wait for another connection's insert.
    pub async fn prepare(&self, person: &str) -> Result<(), VaultError> {
        match self.key_for_writing(person).await {
            Ok(_) | Err(VaultError::Erased) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Destroys a person's key: their sealed data never opens again. The
    /// row stays, keyless, so no new key is ever made for them.
    pub async fn destroy(&self, person: &str, at: &str) -> Result<(), VaultError> {
        sqlx::query(
            "INSERT INTO person_keys (person_id, wrapped, created_at, erased_at) \
             VALUES ($1, NULL, $2, $2) \
             ON CONFLICT (person_id) DO UPDATE SET wrapped = NULL, \
             erased_at = COALESCE(person_keys.erased_at, excluded.erased_at)",
        )
        .bind(person.to_string())
        .bind(at)
        .execute(&self.0.pool)
        .await?;
        self.forget(person);
        Ok(())
    }

    /// True when the person's key was destroyed. Asked before every command
    /// (nothing more is written for an erased person), so the answer is
    /// kept: "no key yet" too, until a key is made or the person erased.
    pub async fn is_erased(&self, person: &str) -> Result<bool, VaultError> {
        if let Some(slot) = self.cached(person) {
            return Ok(matches!(slot, Slot::Erased));
        }
        let row = sqlx::query("SELECT wrapped FROM person_keys WHERE person_id = $1")
            .bind(person.to_string())
            .fetch_optional(&self.0.pool)
            .await?;
        let erased = match row {
            Some(row) => row.try_get::<Option<String>, _>("wrapped")?.is_none(),
            None => {
                self.keep(person, Slot::Absent);
                false
            }
        };
        Ok(erased)
    }
}

fn peek<'a>(fields: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a Value> {
    match path.split_once('.') {
        None => fields.get(path),
        Some((head, rest)) => peek(fields.get(head)?.as_object()?, rest),
    }
}

fn parse_sealed(sealed: &str) -> Result<(String, Vec<u8>), VaultError> {
    let bad = || VaultError::Malformed("a sealed field that is not of form 1".into());
    // `1.<key id>.<base64>`: the key id may hold dots, base64 holds none.
    let rest = sealed.strip_prefix("1.").ok_or_else(bad)?;
    let (person, data) = rest.rsplit_once('.').ok_or_else(bad)?;
    let person = person.to_string();
    let bytes = BASE64.decode(data).map_err(|_| bad())?;
    if bytes.len() <= NONCE_LEN {
        return Err(bad());
    }
    Ok((person, bytes))
}

/// The event type a wrapped payload names (`{"GoalSet": {...}}`), if any.
fn root_event_type(payload: &str) -> Option<String> {
    let value: Value = serde_json::from_str(payload).ok()?;
    let object = value.as_object()?;
    if object.len() != 1 {
        return None;
    }
    object.keys().next().cloned()
}

impl Vault {
    /// Opens payloads of one aggregate given as (sequence, payload text),
    /// whose event type is the name their payload is wrapped in (an enum's
    /// events; the history index's reads).
    pub async fn open_of_aggregate(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        rows: &mut [(i64, &mut String)],
    ) -> Result<(), VaultError> {
        let types: Vec<Option<String>> = rows
            .iter()
            .map(|(_, text)| {
                if may_be_sealed(text) {
                    root_event_type(text)
                } else {
                    None
                }
            })
            .collect();
        let mut items: Vec<(Ident<'_>, &mut String)> = rows
            .iter_mut()
            .zip(&types)
            .filter_map(|((sequence, text), event_type)| {
                Some((
                    Ident {
                        aggregate_type,
                        aggregate_id,
                        sequence: *sequence,
                        event_type: event_type.as_deref()?,
                    },
                    &mut **text,
                ))
            })
            .collect();
        self.open_all(&mut items).await
    }
}

/// Now, as the stores' text timestamps are written (RFC 3339, microseconds, UTC).
fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}
