//! The webhook outbox: one item per (audit entry, webhook) that a route wants,
//! written in the same transaction as the entry, removed when delivered.

use redb::{ReadableTable, ReadableTableMetadata};

use super::{storage, Store, OUTBOX};
use crate::error::Result;

/// Delivery state of one outbox item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutboxState {
    /// Attempts so far.
    pub attempts: u32,
    /// Earliest time of the next attempt.
    pub next_at: u64,
    /// Last error, if any.
    pub last_error: String,
}

impl Store {
    /// Outbox items due at `now`, oldest first, at most `limit`.
    pub fn outbox_due(&self, now: u64, limit: usize) -> Result<Vec<(u64, String, OutboxState)>> {
        let tx = self.db()?.begin_read().map_err(storage)?;
        let t = tx.open_table(OUTBOX).map_err(storage)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(storage)? {
            let (k, v) = row.map_err(storage)?;
            let st: OutboxState = serde_json::from_slice(v.value()).map_err(storage)?;
            if st.next_at <= now {
                let (seq, name) = k.value();
                out.push((seq, name.to_string(), st));
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Number of pending outbox items.
    pub fn outbox_len(&self) -> Result<u64> {
        let tx = self.db()?.begin_read().map_err(storage)?;
        tx.open_table(OUTBOX)
            .map_err(storage)?
            .len()
            .map_err(storage)
    }

    /// Removes a delivered item.
    pub fn outbox_done(&self, seq: u64, name: &str) -> Result<()> {
        self.write(|tx| {
            let mut t = tx.open_table(OUTBOX).map_err(storage)?;
            t.remove((seq, name)).map_err(storage)?;
            Ok(())
        })
    }

    /// Records a failed attempt.
    pub fn outbox_retry(&self, seq: u64, name: &str, st: &OutboxState) -> Result<()> {
        self.write(|tx| {
            let mut t = tx.open_table(OUTBOX).map_err(storage)?;
            t.insert(
                (seq, name),
                serde_json::to_vec(st).map_err(storage)?.as_slice(),
            )
            .map_err(storage)?;
            Ok(())
        })
    }
}
