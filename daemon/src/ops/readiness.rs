//! The readiness report, and the `attestation_due` and `drill_due` notices:
//! each due date is written to the audit log (and so to the webhooks) once,
//! when it passes, not on every start.

use std::sync::atomic::Ordering;

use super::Daemon;
use crate::engine::event::{Event, Record};
use crate::engine::readiness::{self, Report};
use crate::error::Result;

/// How often the sweep looks for due attestations, seconds.
const DUE_CHECK_EVERY: u64 = 60;

impl Daemon {
    /// The readiness report now.
    pub fn readiness(&self) -> Result<Report> {
        let proofs = self.store.readiness()?;
        let epoch = self.epoch();
        Ok(readiness::report(
            &epoch.policy,
            &proofs,
            epoch.number,
            epoch.since,
            self.now(),
        ))
    }

    /// Ids of the requests collecting shares now, sorted.
    pub fn collecting_ids(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> = self.lock()?.requests.keys().cloned().collect();
        ids.sort();
        Ok(ids)
    }

    /// Writes `attestation_due` for every custodian whose due date passed and
    /// `drill_due` if the next live drill's did, each not yet notified; at
    /// most once a minute. Returns how many entries were written.
    pub fn notify_due(&self) -> Result<usize> {
        let now = self.now();
        let last = self.due_checked_at.load(Ordering::Relaxed);
        if last != 0 && now >= last && now - last < DUE_CHECK_EVERY {
            return Ok(0);
        }
        self.due_checked_at.store(now, Ordering::Relaxed);
        let report = self.readiness()?;
        let due = report.newly_due();
        let drill_due = report.drill_newly_due();
        if due.is_empty() && drill_due.is_none() {
            return Ok(0);
        }
        let mut records: Vec<Record> = due
            .iter()
            .map(|(custodian, due_at, last_attested)| Record {
                time: now,
                actor: "daemon".into(),
                request_id: None,
                event: Event::AttestationDue {
                    custodian: custodian.clone(),
                    due_at: *due_at,
                    last_attested: *last_attested,
                },
                signed_with: None,
            })
            .collect();
        if let Some(due_at) = drill_due {
            records.push(Record {
                time: now,
                actor: "daemon".into(),
                request_id: None,
                event: Event::DrillDue {
                    due_at,
                    last_drill: report.last_drill.as_ref().and_then(|d| d.at),
                },
                signed_with: None,
            });
        }
        let n = records.len();
        self.commit(&[], records)?;
        Ok(n)
    }
}
