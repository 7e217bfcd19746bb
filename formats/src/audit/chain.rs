//! The hash-chained audit log. Each entry carries the hash of the previous
//! one: `hash = SHA-256("breakglass/v1/audit" ‖ prev hash ‖ canonical JSON of the entry without its hash)`.
//! The daemon writes entries in the same transaction as the state change they
//! record, so an event is durable before the caller hears back (invariant 6);
//! anyone holding an export re-checks the chain and the daemon's checkpoints here.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::event::{Event, Record, SignedWith};

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
    /// How the actor's signature was made, when a signed call caused this
    /// entry. Absent from entries written before it existed and from
    /// entries no signature caused; absent is not hashed, so those entries
    /// hash as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_with: Option<SignedWith>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    signed_with: &'a Option<SignedWith>,
}

/// Computes an entry's hash from its content and the previous hash. Fails
/// rather than hash anything but the entry's own encoding.
pub fn entry_hash(seq: u64, record: &Record, prev: &[u8; 32]) -> Result<[u8; 32], ChainError> {
    let body = serde_json::to_vec(&Hashed {
        seq,
        time: record.time,
        actor: &record.actor,
        request_id: &record.request_id,
        event: &record.event,
        signed_with: &record.signed_with,
    })
    .map_err(|e| ChainError::Encode {
        seq,
        why: e.to_string(),
    })?;
    let mut h = Sha256::new();
    h.update(DOMAIN_AUDIT);
    h.update(prev);
    h.update(&body);
    Ok(h.finalize().into())
}

/// Builds the entry that follows `(seq, prev)`.
pub fn chain(
    seq: u64,
    prev: &[u8; 32],
    record: Record,
) -> Result<(AuditEntry, [u8; 32]), ChainError> {
    let hash = entry_hash(seq, &record, prev)?;
    Ok((
        AuditEntry {
            seq,
            time: record.time,
            actor: record.actor,
            request_id: record.request_id,
            event: record.event,
            signed_with: record.signed_with,
            prev_hash: hex::encode(prev),
            hash: hex::encode(hash),
        },
        hash,
    ))
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
    /// The first entry of a full log does not start the chain.
    #[error("entry {seq} should start the log with a zero previous hash: entries before it were removed")]
    Start {
        /// Seq.
        seq: u64,
    },
    /// A checkpoint does not verify.
    #[error("checkpoint at entry {seq} does not verify: {why}")]
    Checkpoint {
        /// Seq of the checkpoint entry.
        seq: u64,
        /// Why.
        why: String,
    },
    /// The entry could not be encoded for hashing.
    #[error("entry {seq} cannot be encoded for hashing: {why}")]
    Encode {
        /// Seq.
        seq: u64,
        /// The encoder's words.
        why: String,
    },
    /// A line of an export is not an audit entry.
    #[error("line {line} is not an audit entry: {why}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// Why.
        why: String,
    },
}

/// What a verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked.
    pub entries: u64,
    /// First and last seq.
    pub range: Option<(u64, u64)>,
    /// Checkpoint signatures checked.
    pub checkpoints: u64,
    /// Hex head hash.
    pub head: Option<String>,
}

/// Recomputes the chain and checks every checkpoint's signature with the daemon key
/// (if given) and that it names the right head. A log that starts at entry 1 must
/// start with a zero previous hash.
pub fn verify_log(
    entries: &[AuditEntry],
    daemon: Option<(&ed25519_dalek::VerifyingKey, &str)>,
) -> Result<VerifyReport, ChainError> {
    if let Some(first) = entries.first() {
        if first.seq == 1 && first.prev_hash != hex::encode([0u8; 32]) {
            return Err(ChainError::Start { seq: 1 });
        }
    }
    verify_chain(entries)?;
    let mut checkpoints = 0;
    for (i, e) in entries.iter().enumerate() {
        if let Event::Checkpoint {
            daemon_id,
            seq,
            head,
            signature,
        } = &e.event
        {
            let bad = |why: String| ChainError::Checkpoint { seq: e.seq, why };
            let covered = entries[..i].iter().rev().find(|x| x.seq == *seq);
            match covered {
                Some(c) if &c.hash == head => {}
                Some(_) => {
                    return Err(bad(format!(
                        "it names a head for entry {seq} that is not that entry's hash"
                    )))
                }
                None if seq.checked_add(1) != Some(e.seq) => {
                    return Err(bad(format!(
                        "it covers entry {seq}, which is not just before it"
                    )))
                }
                None => {}
            }
            if let Some((key, id)) = daemon {
                if daemon_id != id {
                    return Err(bad(format!("it is for daemon {daemon_id}, not {id}")));
                }
                let mut h = [0u8; 32];
                hex::decode_to_slice(head, &mut h).map_err(|_| bad("head is not hex".into()))?;
                let sig = hex::decode(signature)
                    .ok()
                    .and_then(|b| ed25519_dalek::Signature::from_slice(&b).ok())
                    .ok_or_else(|| bad("signature is malformed".into()))?;
                key.verify_strict(
                    &breakglass_proto::signing::audit_checkpoint(daemon_id, *seq, &h),
                    &sig,
                )
                .map_err(|_| bad("not signed by the daemon key".into()))?;
                checkpoints += 1;
            }
        }
    }
    Ok(VerifyReport {
        entries: entries.len() as u64,
        range: entries
            .first()
            .zip(entries.last())
            .map(|(a, b)| (a.seq, b.seq)),
        checkpoints,
        head: entries.last().map(|e| e.hash.clone()),
    })
}

/// Parses JSON Lines (one entry per line; blank lines ignored).
pub fn parse_jsonl(text: &str) -> Result<Vec<AuditEntry>, ChainError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| ChainError::Parse {
                line: i + 1,
                why: e.to_string(),
            })
        })
        .collect()
}

/// Recomputes the chain over consecutive entries; returns the head hash.
pub fn verify_chain<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
) -> Result<Option<[u8; 32]>, ChainError> {
    let mut prev: Option<(u64, [u8; 32])> = None;
    for e in entries {
        let prev_hash = match prev {
            Some((s, h)) => {
                if s.checked_add(1) != Some(e.seq) {
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
            signed_with: e.signed_with.clone(),
        };
        let h = entry_hash(e.seq, &rec, &prev_hash)?;
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
                    signed_with: None,
                };
                let (e, h) = chain(seq, &prev, rec).unwrap();
                prev = h;
                e
            })
            .collect()
    }

    #[test]
    fn checkpoints_are_checked() {
        use ed25519_dalek::Signer;
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let mut log = entries(3);
        let prev: [u8; 32] = hex::decode(&log[2].hash).unwrap().try_into().unwrap();
        let sig = key.sign(&breakglass_proto::signing::audit_checkpoint("d", 3, &prev));
        let rec = Record {
            time: 4,
            actor: "daemon".into(),
            request_id: None,
            event: Event::Checkpoint {
                daemon_id: "d".into(),
                seq: 3,
                head: log[2].hash.clone(),
                signature: hex::encode(sig.to_bytes()),
            },
            signed_with: None,
        };
        log.push(chain(4, &prev, rec).unwrap().0);
        let vk = key.verifying_key();
        let r = verify_log(&log, Some((&vk, "d"))).unwrap();
        assert_eq!((r.entries, r.checkpoints), (4, 1));
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(matches!(
            verify_log(&log, Some((&other, "d"))),
            Err(ChainError::Checkpoint { seq: 4, .. })
        ));
        assert!(matches!(
            verify_log(&log, Some((&vk, "e"))),
            Err(ChainError::Checkpoint { seq: 4, .. })
        ));
        // Cutting the first entry of a full log is caught.
        let mut cut = log.clone();
        cut.remove(0);
        assert!(
            verify_log(&cut, None).is_ok(),
            "a partial export starting at 2 is fine"
        );
        let text: String = log
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        assert_eq!(parse_jsonl(&text).unwrap(), log);
        assert!(matches!(
            parse_jsonl("{}\n"),
            Err(ChainError::Parse { line: 1, .. })
        ));
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
