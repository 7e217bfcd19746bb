//! Epoch changes in the running daemon (DESIGN.md "Epochs"): committing a
//! pending epoch, and expiring one whose deadline passed.
//!
//! A commit happens under the `live` lock, so no call is between its checks
//! and its commit while the epoch changes (a call that read the old epoch
//! before the lock is refused with `EpochChanged` by `same_epoch`). The store
//! writes the new epoch, the closed pending record, the requests it cancels
//! and the audit records in one transaction; only when that succeeded does the
//! daemon drop the old epoch's live states (wiping their E_req and shares) and
//! serve the new epoch. If the write fails nothing changed, in the store or
//! in memory.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::lifecycle::published;
use super::{Daemon, Live};
use crate::crypto::integrity;
use crate::engine::epoch::Epoch;
use crate::engine::event::{Event, Record};
use crate::engine::rekey::{Pending, PendingState};
use crate::error::{Error, Result};
use crate::store::audit::AuditEntry;
use crate::store::{EpochStep, NewEpoch, StoredEpoch};

/// Why a request collecting under the old epoch is cancelled by a commit.
fn superseded(to: u64, change: &str) -> String {
    format!(
        "the daemon moved to epoch {to} (change {change}) while this request was collecting; \
         shares of the old epoch no longer count: open a new request and approve with the epoch {to} shares"
    )
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Daemon {
    /// Commits a pending epoch that has its confirmations: it becomes the
    /// epoch that unlocks, D signs the integrity statement of the new state,
    /// and requests collecting under the old epoch are cancelled with the
    /// reason. Returns the new epoch. Tests only: the daemon commits through
    /// the confirmation that completes the rule ([`Daemon::confirm_new_share`]),
    /// which reads the pending epoch under the lock.
    #[cfg(test)]
    pub(crate) fn commit_pending(&self, pending: Pending, actor: &str) -> Result<Arc<Epoch>> {
        let now = self.now();
        let mut live = self.lock()?;
        let (next, cancelled, entries) =
            self.commit_pending_in(&mut live, pending, actor, Vec::new(), now)?;
        drop(live);
        super::scrub_stack();
        self.announce(&cancelled.iter().collect::<Vec<_>>(), entries);
        Ok(next)
    }

    /// [`Daemon::commit_pending`] with the `live` lock held, writing `first`
    /// (the confirmation that completed it) in the same transaction. Returns
    /// the new epoch, the requests it cancelled and the entries written, for
    /// the caller to announce once it let the lock go.
    pub(super) fn commit_pending_in(
        &self,
        live: &mut Live,
        mut pending: Pending,
        actor: &str,
        first: Vec<Record>,
        now: u64,
    ) -> Result<(
        Arc<Epoch>,
        Vec<crate::engine::request::Request>,
        Vec<AuditEntry>,
    )> {
        let old = self.epoch();
        if pending.number != old.number + 1 {
            return Err(Error::Internal(format!(
                "the pending epoch {} does not follow the current epoch {}",
                pending.number, old.number
            )));
        }
        let committed = pending.commit(BTreeMap::new(), now)?;
        let next = published(
            &self.key,
            &self.meta,
            StoredEpoch {
                number: committed.number,
                policy: committed.policy,
                policy_digest: committed.policy_digest,
                seal: committed.seal,
                since: Some(now),
            },
            committed.commitments,
            now,
        );
        let signed = integrity::sign(
            integrity::statement(
                &self.meta.daemon_id,
                &self.meta.ceremony_id,
                next.number,
                &next.policy_digest,
                &next.seal,
                &next.commitments,
                &self.meta.authority_public,
            ),
            self.key.signing(),
        )?;
        let reason = superseded(next.number, &pending.change_id);
        let mut cancelled = Vec::new();
        let mut records = first;
        for c in live.requests.values() {
            if let Some((r, recs)) = c.request().abandon(now, &reason) {
                cancelled.push(r);
                records.extend(recs);
            }
        }
        cancelled.sort_by(|a, b| a.id.cmp(&b.id));
        records.push(Record {
            time: now,
            actor: actor.to_string(),
            request_id: Some(pending.change_id.clone()),
            event: Event::EpochCommitted {
                change_id: pending.change_id.clone(),
                from: old.number,
                to: next.number,
                old_policy_digest: hex::encode(old.policy_digest),
                new_policy_digest: hex::encode(next.policy_digest),
                custodians: next.policy.custodian_ids(),
                threshold: next.policy.threshold,
                cancelled: cancelled.iter().map(|r| r.id.clone()).collect(),
            },
            signed_with: None,
        });
        let entries = self.wrote(self.store.commit_epoch_step(EpochStep {
            requests: cancelled.iter().collect(),
            pending: Some(&pending),
            epoch: Some(NewEpoch {
                number: next.number,
                since: now,
                policy: &next.policy,
                policy_digest: &next.policy_digest,
                seal: &next.seal,
                commitments: &next.commitments,
                integrity: &signed,
            }),
            records,
        }))?;
        // Durable: the old epoch's live states drop here (their E_req and
        // shares are wiped), and so do its attestation challenges.
        live.requests.clear();
        live.attestations = Default::default();
        live.pending_key = None;
        let next = Arc::new(next);
        match self.current.write() {
            Ok(mut c) => *c = next.clone(),
            Err(poisoned) => *poisoned.into_inner() = next.clone(),
        }
        Ok((next, cancelled, entries))
    }

    /// Expires the confirming pending epoch once its deadline passed (its
    /// share files are deleted; the current epoch stays), and deletes the
    /// files a threshold commit kept once their deadline passed. Returns the
    /// change ids whose pending epoch expired.
    pub(crate) fn sweep_pending(&self, now: u64) -> Result<Vec<String>> {
        // Under the `live` lock, like every other write of a pending epoch
        // (fetch, confirm, cancel, commit), so no read-modify-write of the
        // record interleaves with another.
        let mut live = self.lock()?;
        let mut expired = Vec::new();
        for mut p in self.store.live_pending(now)? {
            let was = p.state;
            let kept: Vec<String> = p
                .shares
                .iter()
                .filter(|(_, s)| s.file.is_some())
                .map(|(id, _)| id.clone())
                .collect();
            if !p.sweep(now) {
                continue;
            }
            let mut records = Vec::new();
            if was == PendingState::Committed {
                records.push(Record {
                    time: now,
                    actor: "daemon".into(),
                    request_id: Some(p.change_id.clone()),
                    event: Event::EpochFilesDeleted {
                        change_id: p.change_id.clone(),
                        epoch: p.number,
                        custodians: kept,
                    },
                    signed_with: None,
                });
            }
            if was == PendingState::Confirming {
                let progress = p.progress();
                records.push(Record {
                    time: now,
                    actor: "daemon".into(),
                    request_id: Some(p.change_id.clone()),
                    event: Event::EpochExpired {
                        change_id: p.change_id.clone(),
                        epoch: p.number,
                        confirmed: count(progress.confirmed),
                        need: count(progress.need),
                    },
                    signed_with: None,
                });
                expired.push(p.change_id.clone());
                // Its confirmation key is of no more use: wiped now.
                if live
                    .pending_key
                    .as_ref()
                    .is_some_and(|k| k.is_for(&p.change_id))
                {
                    live.pending_key = None;
                }
            }
            let entries = self.wrote(self.store.commit_epoch_step(EpochStep {
                pending: Some(&p),
                records,
                ..EpochStep::default()
            }))?;
            self.announce(&[], entries);
        }
        Ok(expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::policy::tests::sample_toml;
    use crate::engine::policy::Policy;
    use crate::store::epochs::tests::{ceremony, deal_next, T0, WINDOW};
    use crate::store::Store;

    fn clock(t: &Arc<std::sync::atomic::AtomicU64>) -> super::super::Clock {
        let t = t.clone();
        Arc::new(move || t.load(std::sync::atomic::Ordering::SeqCst))
    }

    fn start(state: &std::path::Path, now: &Arc<std::sync::atomic::AtomicU64>) -> Daemon {
        Daemon::start_on(
            Store::open(state).unwrap_or_else(|e| panic!("{e}")),
            state,
            clock(now),
            Vec::new(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The whole audit log.
    fn log(d: &Daemon) -> Vec<AuditEntry> {
        let head = d.store().audit_head().unwrap_or_else(|e| panic!("{e}"));
        d.store()
            .audit(1, usize::try_from(head).unwrap_or(0))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn kinds(d: &Daemon) -> Vec<String> {
        log(d).iter().map(|e| e.event.kind().to_string()).collect()
    }

    /// DESIGN.md "Epochs": the commit switches the running daemon to the new
    /// epoch (policy, commitments, D's share signatures) with the same A, is
    /// on the record, and a restart comes back at the new epoch.
    #[test]
    fn a_commit_switches_the_running_daemon_and_survives_a_restart() {
        let (_dir, state, out) = ceremony();
        let now = Arc::new(std::sync::atomic::AtomicU64::new(T0 + 10));
        let policy = Policy::from_toml(&sample_toml(4, 3)).unwrap_or_else(|e| panic!("{e}"));
        let mut pending = deal_next(&state, &out, &policy, "chg-1", T0 + 10);
        let daemon = start(&state, &now);
        let authority = daemon.authority().map(|a| a.0).ok();
        let not_ready = daemon.commit_pending(pending.clone(), "c1").err();
        assert!(
            matches!(
                not_ready,
                Some(Error::PendingNotReady {
                    confirmed: 0,
                    need: 4,
                    ..
                })
            ),
            "{not_ready:?}"
        );
        assert_eq!(daemon.epoch().number, 1, "nothing changed");
        for s in pending.shares.values_mut() {
            s.confirmed_at = Some(T0 + 20);
        }
        now.store(T0 + 30, std::sync::atomic::Ordering::SeqCst);
        let e = daemon
            .commit_pending(pending.clone(), "c4")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((e.number, e.since), (2, T0 + 30));
        assert_eq!(daemon.epoch().number, 2);
        assert_eq!(daemon.policy().threshold, 3);
        assert_eq!(daemon.epoch().share_signatures.len(), 4);
        assert_eq!(
            daemon.authority().map(|a| a.0).ok(),
            authority,
            "A never changes"
        );
        assert_eq!(
            kinds(&daemon).iter().rev().take(2).collect::<Vec<_>>(),
            vec!["checkpoint", "epoch_committed"]
        );
        // A second commit of the same pending epoch is refused (terminal stays terminal).
        let again = daemon.commit_pending(pending, "c4").err();
        assert!(matches!(again, Some(Error::Internal(_))), "{again:?}");
        daemon.shutdown().unwrap_or_else(|e| panic!("{e}"));
        drop(daemon);

        let daemon = start(&state, &now);
        assert_eq!((daemon.epoch().number, daemon.epoch().since), (2, T0 + 30));
    }

    /// A request collecting under the old epoch is cancelled by the commit, with
    /// a reason that says what to do, on the record; its E_req and shares are
    /// gone from memory (invariant 3: no state of the old epoch stays live).
    #[test]
    fn a_commit_cancels_the_requests_collecting_under_the_old_epoch() {
        use crate::engine::policy::tests::{key, ssh_line};
        use breakglass_proto::signing::{self, NONCE_LEN};
        use ed25519_dalek::Signer;

        let (_dir, state, out) = ceremony();
        let now = Arc::new(std::sync::atomic::AtomicU64::new(T0 + 10));
        let policy = Policy::from_toml(&sample_toml(4, 3)).unwrap_or_else(|e| panic!("{e}"));
        let mut pending = deal_next(&state, &out, &policy, "chg-1", T0 + 10);
        let daemon = start(&state, &now);
        let ssh = ssh_line(&key(100));
        let nonce = [7u8; NONCE_LEN];
        let payload = signing::open_request(
            &daemon.meta().daemon_id,
            "ic",
            "prod-ssh",
            "db down",
            600,
            &ssh,
            &nonce,
            T0 + 10,
        );
        let opened = daemon
            .open(super::super::OpenCall {
                scope: "prod-ssh".into(),
                reason: "db down".into(),
                ttl_seconds: 600,
                ssh_public_key: ssh,
                nonce: nonce.to_vec(),
                kind: crate::engine::request::Kind::Access,
                sig: super::super::Sig {
                    signer_id: "ic".into(),
                    signed_at: T0 + 10,
                    signature: key(100).sign(&payload).to_bytes().to_vec(),
                },
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(daemon.gauges().collecting, 1);
        for s in pending.shares.values_mut() {
            s.confirmed_at = Some(T0 + 20);
        }
        daemon
            .commit_pending(pending, "c4")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            daemon.gauges().collecting,
            0,
            "the old epoch's live state is gone"
        );
        let r = daemon
            .store()
            .request(&opened.id)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("stored"));
        assert_eq!(r.state, crate::engine::request::State::Cancelled);
        assert!(
            r.close_reason
                .starts_with("the daemon moved to epoch 2 (change chg-1)"),
            "{}",
            r.close_reason
        );
        let log = log(&daemon);
        let committed = log
            .iter()
            .find_map(|e| match &e.event {
                Event::EpochCommitted { cancelled, .. } => Some(cancelled.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("epoch_committed"));
        assert_eq!(committed, vec![opened.id.clone()]);
        assert!(log.iter().any(|e| e.event.kind() == "request_cancelled"
            && e.request_id.as_deref() == Some(opened.id.as_str())));
    }

    /// An unconfirmed pending epoch expires at its deadline: on the record,
    /// its share files deleted, the current epoch untouched.
    #[test]
    fn an_unconfirmed_pending_epoch_expires_and_the_epoch_stays() {
        let (_dir, state, out) = ceremony();
        let now = Arc::new(std::sync::atomic::AtomicU64::new(T0 + 10));
        let policy = Policy::from_toml(&sample_toml(4, 3)).unwrap_or_else(|e| panic!("{e}"));
        let pending = deal_next(&state, &out, &policy, "chg-1", T0 + 10);
        let store = Store::open(&state).unwrap_or_else(|e| panic!("{e}"));
        store
            .commit_epoch_step(EpochStep {
                pending: Some(&pending),
                ..EpochStep::default()
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let daemon = Daemon::start_on(store, &state, clock(&now), Vec::new())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(daemon.sweep_pending(T0 + 11).ok(), Some(Vec::new()));
        let due = T0 + 10 + WINDOW;
        assert_eq!(
            daemon.sweep_pending(due).ok(),
            Some(vec!["chg-1".to_string()])
        );
        let kept = daemon
            .store()
            .pending_epochs()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kept[0].state, PendingState::Expired);
        assert!(kept[0].shares.values().all(|s| s.file.is_none()));
        assert_eq!(
            kinds(&daemon).last().map(String::as_str),
            Some("epoch_expired")
        );
        assert_eq!(daemon.sweep_pending(due + 1).ok(), Some(Vec::new()), "once");
        assert_eq!(daemon.epoch().number, 1);
    }

    /// With the threshold rule the files of those who had not confirmed stay
    /// after the commit; at the deadline they are deleted, on the record.
    #[test]
    fn kept_files_are_deleted_at_the_deadline_on_the_record() {
        let (_dir, state, out) = ceremony();
        let now = Arc::new(std::sync::atomic::AtomicU64::new(T0 + 10));
        let policy = Policy::from_toml(&sample_toml(4, 3)).unwrap_or_else(|e| panic!("{e}"));
        let mut pending = deal_next(&state, &out, &policy, "chg-1", T0 + 10);
        pending.need = 3;
        for id in ["c1", "c2", "c3"] {
            if let Some(s) = pending.shares.get_mut(id) {
                s.confirmed_at = Some(T0 + 20);
                s.file = None;
            }
        }
        let daemon = start(&state, &now);
        daemon
            .commit_pending(pending, "c3")
            .unwrap_or_else(|e| panic!("{e}"));
        let kept = daemon
            .store()
            .pending("chg-1")
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("stored"));
        assert!(kept.shares["c4"].file.is_some(), "c4 may still fetch hers");
        assert_eq!(daemon.sweep_pending(T0 + 11).ok(), Some(Vec::new()));
        assert_eq!(
            daemon.sweep_pending(T0 + 10 + WINDOW).ok(),
            Some(Vec::new())
        );
        let log = log(&daemon);
        let deleted = log
            .iter()
            .find_map(|e| match &e.event {
                Event::EpochFilesDeleted { custodians, .. } => Some(custodians.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("epoch_files_deleted"));
        assert_eq!(deleted, vec!["c4".to_string()]);
        let after = daemon
            .store()
            .pending("chg-1")
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("stored"));
        assert!(after.shares.values().all(|s| s.file.is_none()));
    }
}
