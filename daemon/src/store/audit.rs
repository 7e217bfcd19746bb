//! The hash-chained audit log. Each entry carries the hash of the previous
//! one: `hash = SHA-256("breakglass/v1/audit" ‖ prev hash ‖ canonical JSON of the entry without its hash)`.
//! Entries are written in the same redb transaction as the state change they
//! record, so an event is durable before the caller hears back (invariant 6).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::event::{Event, Record};

/// Domain of audit hashes.
pub const DOMAIN_AUDIT: &[u8] = b"breakglass/v1/audit";

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number, from 1.
    pub seq: u64,
    /// Seconds since the epoch.
    pub time: u64,
    /// Who caused it.
    pub actor: String,
    /// Request id, if any.
    pub request_id: Option<String>,
    /// What happened.
    pub event: Event,
    /// Hex hash of the previous entry (64 zeros for the first).
    pub prev_hash: String,
    /// Hex hash of this entry.
    pub hash: String,
}

#[derive(Serialize)]
struct Hashed<'a> {
    seq: u64,
    time: u64,
    actor: &'a str,
    request_id: &'a Option<String>,
    event: &'a Event,
}

/// Computes an entry's hash from its content and the previous hash.
pub fn entry_hash(seq: u64, record: &Record, prev: &[u8; 32]) -> [u8; 32] {
    let body = serde_json::to_vec(&Hashed {
        seq,
        time: record.time,
        actor: &record.actor,
        request_id: &record.request_id,
        event: &record.event,
    })
    .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(DOMAIN_AUDIT);
    h.update(prev);
    h.update(&body);
    h.finalize().into()
}

/// Builds the entry that follows `(seq, prev)`.
pub fn chain(seq: u64, prev: &[u8; 32], record: Record) -> (AuditEntry, [u8; 32]) {
    let hash = entry_hash(seq, &record, prev);
    (
        AuditEntry {
            seq,
            time: record.time,
            actor: record.actor,
            request_id: record.request_id,
            event: record.event,
            prev_hash: hex::encode(prev),
            hash: hex::encode(hash),
        },
        hash,
    )
}

/// Where a chain first goes wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The sequence skips or repeats (deleted or reordered entry).
    #[error(
        "entry {found} follows entry {after}: an entry was deleted, inserted or reordered there"
    )]
    Sequence {
        /// Previous seq.
        after: u64,
        /// This entry's seq.
        found: u64,
    },
    /// The entry's `prev_hash` does not name the previous entry.
    #[error("entry {seq} does not link to the entry before it: the log was cut or spliced there")]
    Link {
        /// Seq.
        seq: u64,
    },
    /// The entry's content does not match its hash.
    #[error("entry {seq} was altered: its content does not match its hash")]
    Altered {
        /// Seq.
        seq: u64,
    },
}

/// Recomputes the chain over consecutive entries; returns the head hash.
pub fn verify_chain<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
) -> Result<Option<[u8; 32]>, ChainError> {
    let mut prev: Option<(u64, [u8; 32])> = None;
    for e in entries {
        let prev_hash = match prev {
            Some((s, h)) => {
                if e.seq != s + 1 {
                    return Err(ChainError::Sequence {
                        after: s,
                        found: e.seq,
                    });
                }
                h
            }
            None => {
                let mut h = [0u8; 32];
                if hex::decode_to_slice(&e.prev_hash, &mut h).is_err() {
                    return Err(ChainError::Link { seq: e.seq });
                }
                h
            }
        };
        if e.prev_hash != hex::encode(prev_hash) {
            return Err(ChainError::Link { seq: e.seq });
        }
        let rec = Record {
            time: e.time,
            actor: e.actor.clone(),
            request_id: e.request_id.clone(),
            event: e.event.clone(),
        };
        let h = entry_hash(e.seq, &rec, &prev_hash);
        if hex::encode(h) != e.hash {
            return Err(ChainError::Altered { seq: e.seq });
        }
        prev = Some((e.seq, h));
    }
    Ok(prev.map(|(_, h)| h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: u64) -> Vec<AuditEntry> {
        let mut prev = [0u8; 32];
        (1..=n)
            .map(|seq| {
                let rec = Record {
                    time: seq,
                    actor: "a".into(),
                    request_id: None,
                    event: Event::DaemonStopped,
                };
                let (e, h) = chain(seq, &prev, rec);
                prev = h;
                e
            })
            .collect()
    }

    #[test]
    fn detects_edit_delete_reorder() {
        let good = entries(5);
        assert!(verify_chain(&good).unwrap().is_some());
        let mut edited = good.clone();
        edited[2].actor = "mallory".into();
        assert_eq!(verify_chain(&edited), Err(ChainError::Altered { seq: 3 }));
        let mut deleted = good.clone();
        deleted.remove(2);
        assert_eq!(
            verify_chain(&deleted),
            Err(ChainError::Sequence { after: 2, found: 4 })
        );
        let mut reordered = good.clone();
        reordered.swap(1, 2);
        assert_eq!(
            verify_chain(&reordered),
            Err(ChainError::Sequence { after: 1, found: 3 })
        );
    }
}
