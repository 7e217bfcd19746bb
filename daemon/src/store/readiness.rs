//! Per-custodian readiness, kept beside the audit log: when each custodian
//! last proved her share (attestation), last approved a request, in which
//! epoch, and the last due date she was notified about. Derived from the entries as they are appended, in the same
//! transaction, so the readiness report reads one small table whatever the
//! history, and never disagrees with the log.

use std::collections::BTreeMap;

use redb::{ReadableTable, TableDefinition, TableError, WriteTransaction};

use super::{storage, Store};
use crate::engine::event::Event;
pub use crate::engine::readiness::Proofs;
use crate::error::{Error, Result};
use breakglass_formats::audit::AuditEntry;

/// custodian id → [`Proofs`] as JSON.
const READINESS: TableDefinition<&str, &[u8]> = TableDefinition::new("readiness");

/// Folds the entries just appended into the readiness table.
pub(super) fn note(tx: &WriteTransaction, entries: &[AuditEntry]) -> Result<()> {
    let relevant = entries.iter().any(|e| {
        matches!(
            e.event,
            Event::ShareAttested { .. }
                | Event::ShareAccepted { .. }
                | Event::AttestationDue { .. }
        )
    });
    if !relevant {
        return Ok(());
    }
    let mut t = tx.open_table(READINESS).map_err(storage)?;
    for e in entries {
        let custodian = match &e.event {
            Event::ShareAttested { custodian, .. }
            | Event::ShareAccepted { custodian, .. }
            | Event::AttestationDue { custodian, .. } => custodian,
            _ => continue,
        };
        let mut p: Proofs = match t.get(custodian.as_str()).map_err(storage)? {
            Some(v) => serde_json::from_slice(v.value()).map_err(storage)?,
            None => Proofs::default(),
        };
        match &e.event {
            Event::ShareAttested { epoch, .. } => {
                p.attested_at = Some(e.time);
                p.attested_epoch = Some(*epoch);
            }
            Event::AttestationDue { due_at, .. } => p.due_notified = Some(*due_at),
            _ => p.approved_at = Some(e.time),
        }
        let bytes = serde_json::to_vec(&p).map_err(storage)?;
        t.insert(custodian.as_str(), bytes.as_slice())
            .map_err(storage)?;
    }
    Ok(())
}

impl Store {
    /// Every custodian's last proofs, by custodian id (none yet: empty).
    pub fn readiness(&self) -> Result<BTreeMap<String, Proofs>> {
        let tx = self.db()?.begin_read().map_err(storage)?;
        let t = match tx.open_table(READINESS) {
            Ok(t) => t,
            // A store where nobody has attested or approved yet has no table.
            Err(TableError::TableDoesNotExist(_)) => return Ok(BTreeMap::new()),
            Err(e) => return Err(storage(e)),
        };
        let mut out = BTreeMap::new();
        for row in t.iter().map_err(storage)? {
            let (k, v) = row.map_err(storage)?;
            let p: Proofs = serde_json::from_slice(v.value()).map_err(|e| Error::StateCorrupt {
                path: self.path.clone(),
                why: format!("readiness of `{}`: {e}", k.value()),
            })?;
            out.insert(k.value().to_string(), p);
        }
        Ok(out)
    }
}
