//! The seal of an access-trail record: an HMAC-SHA256, under the trail key, of
//! every field the store keeps for it.
//!
//! A record written since seals were introduced (event version `2`) is sealed
//! over its chain and sequence number (its place in its person's chain), its
//! global position, event type and version, the time the store recorded it,
//! its payload text (which holds the previous record's seal) and its metadata
//! text. The seal itself opens the metadata, `{"hash":"<seal>",...}`, and
//! covers the rest of that text byte for byte, so no stored byte of a record
//! can change without the seal failing. Records of version `1` (written before)
//! were sealed over chain, sequence and payload only; they still verify as
//! such, and the witness covers them from its first checkpoint on.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Event version of records sealed over every stored field.
pub const VERSION: &str = "2";
/// Event version of records sealed over chain, sequence and payload only.
pub const LEGACY_VERSION: &str = "1";

/// How a sealed record's metadata text begins; the seal follows.
const PREFIX: &str = "{\"hash\":\"";
/// Length of a seal in hex.
const SEAL_LEN: usize = 64;

/// A record as stored: every column of its row, as text the way both stores
/// give it back (`recorded_at` in RFC 3339 with microseconds, UTC).
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    pub chain: &'a str,
    pub sequence: i64,
    pub position: i64,
    pub event_type: &'a str,
    pub event_version: &'a str,
    pub recorded_at: &'a str,
    pub payload: &'a str,
    pub metadata: &'a str,
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    #[allow(clippy::expect_used)]
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// The seal of a record of version 2 over its fields and `rest`, the
/// metadata text after the seal. Each field is length-prefixed, so no two
/// different records feed the same bytes.
fn seal_fields(key: &[u8], s: &Stored<'_>, rest: &str) -> String {
    let mut mac = mac(key);
    mac.update(b"portal access trail seal v2");
    let sequence = s.sequence.to_string();
    let position = s.position.to_string();
    for field in [
        s.chain,
        &sequence,
        &position,
        s.event_type,
        s.event_version,
        s.recorded_at,
        s.payload,
        rest,
    ] {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field.as_bytes());
    }
    hex::encode(mac.finalize().into_bytes())
}

/// The hash of a record of version 1: chain, sequence and payload.
pub fn legacy(key: &[u8], chain: &str, sequence: i64, payload: &str) -> String {
    let mut mac = mac(key);
    mac.update(chain.as_bytes());
    mac.update(&[0]);
    mac.update(sequence.to_string().as_bytes());
    mac.update(&[0]);
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The metadata text to store for a record of version 2 whose metadata
/// (without a seal) is the JSON object `metadata`, and the seal. `fields`
/// are the record's other stored fields (its `metadata` is ignored).
pub fn seal(key: &[u8], fields: &Stored<'_>, metadata: &serde_json::Value) -> (String, String) {
    let text = metadata.to_string();
    let rest = match text.strip_prefix('{') {
        Some("}") | None => "}".to_string(),
        Some(inner) => format!(",{inner}"),
    };
    let seal = seal_fields(key, fields, &rest);
    (format!("{PREFIX}{seal}\"{rest}"), seal)
}

/// The seal a stored record claims (its metadata's `hash`), whatever its version.
pub fn claimed(metadata: &str) -> Option<String> {
    if let Some((seal, _)) = split(metadata) {
        return Some(seal.to_string());
    }
    serde_json::from_str::<serde_json::Value>(metadata)
        .ok()?
        .get("hash")?
        .as_str()
        .map(str::to_string)
}

/// A sealed metadata text split into the seal and the text after it.
fn split(metadata: &str) -> Option<(&str, &str)> {
    let after = metadata.strip_prefix(PREFIX)?;
    let seal = after.get(..SEAL_LEN)?;
    let rest = after.get(SEAL_LEN..)?.strip_prefix('"')?;
    Some((seal, rest))
}

/// Checks a stored record against its seal: its seal (to which the next
/// record links) if every field is as sealed, or why not.
pub fn check(key: &[u8], s: &Stored<'_>) -> Result<String, &'static str> {
    match s.event_version {
        VERSION => {
            let (seal, rest) = split(s.metadata).ok_or("its metadata carries no seal")?;
            if seal_fields(key, s, rest) == seal {
                Ok(seal.to_string())
            } else {
                Err("the record was altered: its seal does not match its stored fields")
            }
        }
        LEGACY_VERSION => {
            let own = legacy(key, s.chain, s.sequence, s.payload);
            if claimed(s.metadata).as_deref() == Some(own.as_str()) {
                Ok(own)
            } else {
                Err("the record was altered: its hash does not match its content")
            }
        }
        _ => Err("the record was altered: unknown event version"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(metadata: &'a str) -> Stored<'a> {
        Stored {
            chain: "c",
            sequence: 1,
            position: 7,
            event_type: "AccessRecorded",
            event_version: VERSION,
            recorded_at: "2026-11-29T03:00:00.123456Z",
            payload: "{\"a\":1}",
            metadata,
        }
    }

    #[test]
    fn every_stored_field_is_under_the_seal() {
        let key = b"k".repeat(32);
        let meta = serde_json::json!({ "actor_id": "x", "request_id": "r" });
        let (text, seal) = seal(&key, &record(""), &meta);
        assert!(text.starts_with("{\"hash\":\""), "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(value["hash"], seal.as_str());
        assert_eq!(value["actor_id"], "x");
        assert_eq!(check(&key, &record(&text)), Ok(seal.clone()));
        assert_eq!(claimed(&text), Some(seal));

        let edits: [fn(&mut Stored<'static>); 7] = [
            |s| s.chain = "d",
            |s| s.sequence = 2,
            |s| s.position = 8,
            |s| s.event_type = "Other",
            |s| s.recorded_at = "2026-11-29T03:00:00.123457Z",
            |s| s.payload = "{\"a\":2}",
            |s| s.event_version = LEGACY_VERSION,
        ];
        let text: &'static str = Box::leak(text.into_boxed_str());
        for edit in edits {
            let mut s = record(text);
            edit(&mut s);
            assert!(check(&key, &s).is_err(), "{s:?}");
        }
        let edited = text.replace("\"x\"", "\"y\"");
        assert!(check(&key, &record(&edited)).is_err());
        let spaced = text.replace(",\"actor_id\"", ", \"actor_id\"");
        assert!(check(&key, &record(&spaced)).is_err());
        assert!(check(&b"j".repeat(32), &record(text)).is_err());
    }

    #[test]
    fn empty_metadata_and_legacy_records_verify() {
        let key = b"k".repeat(32);
        let (text, seal) = seal(&key, &record(""), &serde_json::json!({}));
        assert_eq!(text, format!("{{\"hash\":\"{seal}\"}}"));
        assert_eq!(check(&key, &record(&text)), Ok(seal));

        let old = legacy(&key, "c", 1, "{\"a\":1}");
        let meta = format!("{{\"actor_id\":\"x\",\"hash\":\"{old}\"}}");
        let mut s = record(&meta);
        s.event_version = LEGACY_VERSION;
        assert_eq!(check(&key, &s), Ok(old.clone()));
        s.payload = "{\"a\":2}";
        assert!(check(&key, &s).is_err());
        assert_ne!(old, legacy(&key, "c", 2, "{\"a\":1}"));
        assert_ne!(old, legacy(&key, "d", 1, "{\"a\":1}"));
    }
}
