//! Per-custodian readiness, kept beside the audit log: when each custodian
//! last proved her share (attestation), last approved a request, last passed
//! a live drill, in which epoch, and the last due date she was notified about;
//! and the last passed drill. Derived from the entries as they are appended, in the same
//! transaction, so the readiness report reads one small table whatever the
//! history, and never disagrees with the log.

use redb::{ReadableTable, TableDefinition, TableError, WriteTransaction};

use super::{storage, Store};
use crate::engine::event::Event;
use crate::engine::readiness::{History, LastDrill, Proofs};
use crate::engine::request::{Kind, Request};
use crate::error::{Error, Result};
use breakglass_formats::audit::AuditEntry;

/// custodian id → [`Proofs`] as JSON, and [`DRILL_KEY`] → [`LastDrill`].
const READINESS: TableDefinition<&str, &[u8]> = TableDefinition::new("readiness");

/// The row of the last passed drill: not a custodian id (those start with a
/// letter or digit).
const DRILL_KEY: &str = "#drill";

/// Folds the entries just appended into the readiness table. `requests` are
/// the requests committed with them: a share accepted on a drill counts as
/// drill participation, not as an approval.
pub(super) fn note(
    tx: &WriteTransaction,
    requests: &[&Request],
    entries: &[AuditEntry],
) -> Result<()> {
    let relevant = entries.iter().any(|e| {
        matches!(
            e.event,
            Event::ShareAttested { .. }
                | Event::EpochShareConfirmed { .. }
                | Event::EpochCancelled { .. }
                | Event::EpochExpired { .. }
                | Event::ShareAccepted { .. }
                | Event::AttestationDue { .. }
                | Event::DrillPassed { .. }
                | Event::DrillDue { .. }
        )
    });
    if !relevant {
        return Ok(());
    }
    let is_drill = |id: Option<&str>| {
        requests
            .iter()
            .any(|r| Some(r.id.as_str()) == id && r.kind == Kind::Drill)
    };
    let mut t = tx.open_table(READINESS).map_err(storage)?;
    let update =
        |t: &mut redb::Table<&str, &[u8]>, id: &str, f: &dyn Fn(&mut Proofs)| -> Result<()> {
            let mut p: Proofs = match t.get(id).map_err(storage)? {
                Some(v) => serde_json::from_slice(v.value()).map_err(storage)?,
                None => Proofs::default(),
            };
            f(&mut p);
            let bytes = serde_json::to_vec(&p).map_err(storage)?;
            t.insert(id, bytes.as_slice()).map_err(storage)?;
            Ok(())
        };
    for e in entries {
        let at = e.time;
        match &e.event {
            Event::ShareAttested {
                custodian, epoch, ..
            } => update(&mut t, custodian, &|p| {
                p.attested_at = Some(at);
                p.attested_epoch = Some(*epoch);
            })?,
            Event::EpochShareConfirmed {
                custodian, epoch, ..
            } => update(&mut t, custodian, &|p| {
                p.confirmed_at = Some(at);
                p.confirmed_epoch = Some(*epoch);
            })?,
            // A pending epoch that never committed proves nothing: a later
            // rekey deals another epoch of the same number.
            Event::EpochCancelled { epoch, .. } | Event::EpochExpired { epoch, .. } => {
                let ids: Vec<String> = t
                    .iter()
                    .map_err(storage)?
                    .map(|row| row.map(|(k, _)| k.value().to_string()))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(storage)?;
                for id in ids.iter().filter(|k| k.as_str() != DRILL_KEY) {
                    update(&mut t, id, &|p| {
                        if p.confirmed_epoch == Some(*epoch) {
                            p.confirmed_at = None;
                            p.confirmed_epoch = None;
                        }
                    })?;
                }
            }
            Event::AttestationDue {
                custodian, due_at, ..
            } => update(&mut t, custodian, &|p| p.due_notified = Some(*due_at))?,
            Event::ShareAccepted { custodian, .. } if !is_drill(e.request_id.as_deref()) => {
                update(&mut t, custodian, &|p| p.approved_at = Some(at))?
            }
            Event::DrillPassed {
                approvers,
                seconds_to_quorum,
                epoch,
            } => {
                for a in approvers {
                    update(&mut t, a, &|p| p.drilled_at = Some(at))?;
                }
                let mut d = last_drill(&t)?;
                d.at = Some(at);
                d.request_id = e.request_id.clone();
                d.seconds_to_quorum = Some(*seconds_to_quorum);
                d.epoch = Some(*epoch);
                put_drill(&mut t, &d)?;
            }
            Event::DrillDue { due_at, .. } => {
                let mut d = last_drill(&t)?;
                d.due_notified = Some(*due_at);
                put_drill(&mut t, &d)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn last_drill(t: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<LastDrill> {
    match t.get(DRILL_KEY).map_err(storage)? {
        Some(v) => serde_json::from_slice(v.value()).map_err(storage),
        None => Ok(LastDrill::default()),
    }
}

fn put_drill(t: &mut redb::Table<&str, &[u8]>, d: &LastDrill) -> Result<()> {
    let bytes = serde_json::to_vec(d).map_err(storage)?;
    t.insert(DRILL_KEY, bytes.as_slice()).map_err(storage)?;
    Ok(())
}

impl Store {
    /// Every custodian's last proofs and the last passed drill (none yet: empty).
    pub fn readiness(&self) -> Result<History> {
        let tx = self.db()?.begin_read().map_err(storage)?;
        let t = match tx.open_table(READINESS) {
            Ok(t) => t,
            // A store where nobody has attested or approved yet has no table.
            Err(TableError::TableDoesNotExist(_)) => return Ok(History::default()),
            Err(e) => return Err(storage(e)),
        };
        let corrupt = |k: &str, e: serde_json::Error| Error::StateCorrupt {
            path: self.path.clone(),
            why: format!("readiness of `{k}`: {e}"),
        };
        let mut out = History::default();
        for row in t.iter().map_err(storage)? {
            let (k, v) = row.map_err(storage)?;
            if k.value() == DRILL_KEY {
                out.drill = serde_json::from_slice(v.value()).map_err(|e| corrupt(DRILL_KEY, e))?;
            } else {
                let p: Proofs =
                    serde_json::from_slice(v.value()).map_err(|e| corrupt(k.value(), e))?;
                out.custodians.insert(k.value().to_string(), p);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::event::Record;
    use crate::store::epochs::tests::{ceremony, T0};

    fn rec(time: u64, event: Event) -> Record {
        Record {
            time,
            actor: "daemon".into(),
            request_id: Some("chg-1".into()),
            event,
            signed_with: None,
        }
    }

    /// A confirmation counts for its epoch only while that epoch can still
    /// commit: when it is cancelled (or expires) the proof is dropped, so a
    /// later rekey's epoch of the same number is not shown as proven by
    /// shares of the dead one.
    #[test]
    fn a_dead_pending_epoch_leaves_no_proof() {
        let (_dir, state, _out) = ceremony();
        let store = Store::open(&state).unwrap_or_else(|e| panic!("{e}"));
        let confirmed = |c: &str| {
            rec(
                T0 + 5,
                Event::EpochShareConfirmed {
                    change_id: "chg-1".into(),
                    epoch: 2,
                    custodian: c.into(),
                    confirmed: 1,
                    need: 3,
                },
            )
        };
        store
            .commit(&[], vec![confirmed("c1"), confirmed("c2")])
            .unwrap_or_else(|e| panic!("{e}"));
        let h = store.readiness().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.custodians["c1"].last_proof(2), Some(T0 + 5));
        store
            .commit(
                &[],
                vec![rec(
                    T0 + 6,
                    Event::EpochCancelled {
                        change_id: "chg-1".into(),
                        epoch: 2,
                        by: "c3".into(),
                        reason: "no".into(),
                    },
                )],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let h = store.readiness().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.custodians["c1"].last_proof(2), None);
        assert_eq!(h.custodians["c2"].confirmed_epoch, None);
    }
}
