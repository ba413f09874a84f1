//! The erasure ledger: one line per erasure, in a file outside the database
//! (beside the key files), replayed at every start (issue 18).
//!
//! A restored backup of the database holds the keys of people erased since
//! it was taken. The ledger is not in that backup: each start destroys the
//! key of everyone it names again and records their erasure again if the
//! store lacks it, so a restore never brings an erased person back.
//!
//! A line holds ids, the basis and the time, never personal data, and an
//! HMAC-SHA256 under a key derived from the master key: a line that does
//! not verify (written by someone without the master key, or altered) stops
//! the start, since acting on it would erase someone nobody asked to.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use domain::erasure::Basis;
use projections::vault::MasterKey;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The label the ledger's HMAC key is derived with.
const LABEL: &str = "portal erasure ledger v1";

/// One erasure, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub person: Uuid,
    pub organisation: String,
    pub basis: Basis,
    /// The admin who carried out an order.
    pub by: Option<Uuid>,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct Line {
    #[serde(flatten)]
    entry: Entry,
    mac: String,
}

fn mac(master: &MasterKey, entry: &Entry) -> Result<String, String> {
    let text = serde_json::to_string(entry).map_err(|e| e.to_string())?;
    Ok(hex::encode(master.mac(LABEL, text.as_bytes())))
}

/// The ledger at `path`.
#[derive(Debug, Clone)]
pub struct Ledger {
    path: PathBuf,
}

impl Ledger {
    pub fn new(path: &Path) -> Self {
        Ledger {
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entry` and waits until it is on disk (the file, and the
    /// folder when the file is new).
    pub fn append(&self, master: &MasterKey, entry: &Entry) -> Result<(), String> {
        let line = Line {
            entry: entry.clone(),
            mac: mac(master, entry)?,
        };
        let text = serde_json::to_string(&line).map_err(|e| e.to_string())?;
        let new = !self.path.exists();
        if let Some(folder) = self.path.parent() {
            std::fs::create_dir_all(folder).map_err(|e| e.to_string())?;
        }
        // After a line cut short by a crash, the new one starts on its own.
        let torn = std::fs::read(&self.path)
            .map(|b| !b.is_empty() && !b.ends_with(b"\n"))
            .unwrap_or(false);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        if torn {
            writeln!(file).map_err(|e| format!("{}: {e}", self.path.display()))?;
        }
        writeln!(file, "{text}").map_err(|e| format!("{}: {e}", self.path.display()))?;
        file.sync_all()
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        if new {
            if let Some(folder) = self.path.parent() {
                // The new file's name is durable once its folder is synced.
                if let Ok(dir) = std::fs::File::open(folder) {
                    let _ = dir.sync_all();
                }
            }
        }
        Ok(())
    }

    /// Every entry, each checked; an error names the first line that does
    /// not verify. No file: no entries.
    pub fn read(&self, master: &MasterKey) -> Result<Vec<Entry>, String> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(format!("{}: {e}", self.path.display())),
        };
        let mut entries = Vec::new();
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            // A line that is not a whole entry was cut short by a crash
            // while it was written: its erasure went no further (the key
            // goes only once the line is on disk), and it names no one to
            // erase. A whole entry must verify.
            let Ok(line) = serde_json::from_str::<Line>(line) else {
                tracing::warn!(
                    file = %self.path.display(),
                    line = number + 1,
                    "a line of the erasure ledger was cut short by a crash; it is ignored"
                );
                continue;
            };
            if mac(master, &line.entry)? != line.mac {
                return Err(format!(
                    "{} line {}: its signature does not match the master key; erasures are not \
                     replayed from a ledger that does not verify",
                    self.path.display(),
                    number + 1
                ));
            }
            entries.push(line.entry);
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            person: Uuid::from_u128(7),
            organisation: "clinic".into(),
            basis: Basis::PersonRequest,
            by: None,
            at: DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("a time"),
        }
    }

    #[test]
    fn entries_round_trip_and_a_changed_line_is_refused() {
        let dir = std::env::temp_dir().join(format!("ledger-{}", Uuid::new_v4().simple()));
        let ledger = Ledger::new(&dir.join("erasures.ledger"));
        let master = MasterKey::derive("a master key of at least thirty-two characters");
        assert_eq!(ledger.read(&master), Ok(vec![]));
        ledger.append(&master, &entry()).expect("appended");
        let mut other = entry();
        other.person = Uuid::from_u128(8);
        other.basis = Basis::OrganisationOrder;
        other.by = Some(Uuid::from_u128(9));
        ledger.append(&master, &other).expect("appended");
        assert_eq!(ledger.read(&master), Ok(vec![entry(), other]));
        // Another master key: nothing verifies.
        let stranger = MasterKey::derive("another master key of thirty-two characters");
        assert!(ledger.read(&stranger).is_err());
        // A person's id changed in the file: refused, naming the line.
        let text = std::fs::read_to_string(ledger.path()).expect("read");
        let forged = text.replace(
            &Uuid::from_u128(8).to_string(),
            &Uuid::from_u128(10).to_string(),
        );
        std::fs::write(ledger.path(), forged).expect("written");
        let error = ledger.read(&master).expect_err("refused");
        assert!(error.contains("line 2"), "{error}");
        // A last line cut short by a crash is left out, and the next
        // append starts a line of its own.
        std::fs::write(ledger.path(), &text).expect("written");
        let mut cut = text.clone();
        cut.push_str("{\"person\":\"00000000-0000");
        std::fs::write(ledger.path(), cut).expect("written");
        assert_eq!(ledger.read(&master).expect("read").len(), 2);
        ledger.append(&master, &entry()).expect("appended");
        assert_eq!(ledger.read(&master).expect("read").len(), 3);
        let _ = std::fs::remove_dir_all(dir);
    }
}
