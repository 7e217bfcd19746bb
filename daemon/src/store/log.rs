//! The hash-chained audit log table: appends (with a checkpoint signed by D
//! after the events that want one) and reads.

use redb::ReadableTable;

use super::{audit, storage, Checkpointer, Store, AUDIT};
use crate::engine::event::Record;
use crate::error::{Error, Result};
use audit::AuditEntry;

impl Store {
    /// Appends audit records alone.
    pub fn append(&self, records: Vec<Record>) -> Result<Vec<AuditEntry>> {
        self.commit(&[], records)
    }

    /// One audit entry.
    pub fn audit_entry(&self, seq: u64) -> Result<Option<AuditEntry>> {
        let tx = self.db()?.begin_read().map_err(storage)?;
        let t = tx.open_table(AUDIT).map_err(storage)?;
        let v = t.get(seq).map_err(storage)?;
        v.map(|v| {
            serde_json::from_slice(v.value())
                .map_err(|e| super::corrupt_record(&self.path, "audit entry", e))
        })
        .transpose()
    }

    /// Sequence number of the newest entry (0 if none).
    pub fn audit_head(&self) -> Result<u64> {
        let tx = self.db()?.begin_read().map_err(storage)?;
        let t = tx.open_table(AUDIT).map_err(storage)?;
        let last = t
            .last()
            .map_err(storage)?
            .map(|(k, _)| k.value())
            .unwrap_or(0);
        Ok(last)
    }

    /// Audit entries with `seq >= since`, at most `limit`.
    pub fn audit(&self, since: u64, limit: usize) -> Result<Vec<AuditEntry>> {
        let tx = self.db()?.begin_read().map_err(storage)?;
        let t = tx.open_table(AUDIT).map_err(storage)?;
        let mut out = Vec::new();
        for row in t.range(since..).map_err(storage)?.take(limit) {
            let (_, v) = row.map_err(storage)?;
            out.push(
                serde_json::from_slice(v.value())
                    .map_err(|e| super::corrupt_record(&self.path, "audit entry", e))?,
            );
        }
        Ok(out)
    }
}

/// Appends `records` to the chain inside an open write transaction.
pub(super) fn append_in(
    audit: &mut redb::Table<'_, u64, &[u8]>,
    records: Vec<Record>,
    checkpointer: Option<&Checkpointer>,
) -> Result<Vec<AuditEntry>> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    // The head comes from the last entry: no scan, so start-up and appends stay
    // constant-time as the log grows.
    let (mut seq, mut prev, last_time) = match audit.last().map_err(storage)? {
        Some((k, v)) => {
            let e: AuditEntry = serde_json::from_slice(v.value()).map_err(|e| {
                super::corrupt_record(std::path::Path::new(super::DB_FILE), "audit entry", e)
            })?;
            let mut h = [0u8; 32];
            hex::decode_to_slice(&e.hash, &mut h).map_err(storage)?;
            (k.value(), h, e.time)
        }
        None => (0, [0u8; 32], 0),
    };
    let time = records.last().map(|r| r.time).unwrap_or(0);
    let checkpoint = checkpointer.is_some() && records.iter().any(|r| r.event.wants_checkpoint());
    let mut out = Vec::with_capacity(records.len() + 1);
    let mut push = |r: Record, seq: &mut u64, prev: &mut [u8; 32]| -> Result<()> {
        *seq += 1;
        let (entry, h) = audit::chain(*seq, prev, r).map_err(|e| Error::Internal(e.to_string()))?;
        audit
            .insert(
                *seq,
                serde_json::to_vec(&entry).map_err(storage)?.as_slice(),
            )
            .map_err(storage)?;
        *prev = h;
        out.push(entry);
        Ok(())
    };
    let mut last_time = last_time;
    for r in records {
        if r.time < last_time {
            tracing::warn!(
                previous = last_time,
                now = r.time,
                "the clock went back; the audit log records it"
            );
            let note = Record {
                time: r.time,
                actor: "daemon".into(),
                request_id: None,
                event: crate::engine::event::Event::ClockWentBack {
                    previous: last_time,
                    now: r.time,
                },
                signed_with: None,
            };
            push(note, &mut seq, &mut prev)?;
        }
        last_time = r.time;
        push(r, &mut seq, &mut prev)?;
    }
    if let (true, Some(c)) = (checkpoint, checkpointer) {
        use ed25519_dalek::Signer;
        let payload = breakglass_proto::signing::audit_checkpoint(&c.daemon_id, seq, &prev);
        let rec = Record {
            time,
            actor: "daemon".into(),
            request_id: None,
            event: crate::engine::event::Event::Checkpoint {
                daemon_id: c.daemon_id.clone(),
                seq,
                head: hex::encode(prev),
                signature: hex::encode(c.key.sign(&payload).to_bytes()),
            },
            signed_with: None,
        };
        push(rec, &mut seq, &mut prev)?;
    }
    Ok(out)
}
