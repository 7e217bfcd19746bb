//! Start, the expiry sweep, and stop.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, Notify};

use super::{system_rng, Clock, Daemon, Live, Rng};
use crate::crypto::daemon_key::DaemonKey;
use crate::crypto::integrity;
use crate::engine::epoch::Epoch;
use crate::engine::event::{Event, Record};
use crate::engine::share::{Commitment, Lineage};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::{keyfile, Checkpointer, Meta, Route, Store, StoredEpoch};

/// How many of the newest audit entries are verified at every start.
const AUDIT_TAIL_CHECKED: u64 = 64;

/// Why a request left collecting by a restart was cancelled.
const RESTARTED: &str = "the daemon restarted; its ephemeral key and the shares collected so far were wiped: open a new request";

/// Why a request collecting at shutdown was cancelled.
const STOPPED: &str =
    "the daemon shut down; shares collected so far were wiped: open a new request";

/// An epoch as the daemon serves it: with D's signature over each share
/// statement (deterministic, so the same bytes the share files carry).
pub(super) fn published(
    key: &DaemonKey,
    meta: &Meta,
    stored: StoredEpoch,
    commitments: BTreeMap<String, Commitment>,
    since: u64,
) -> Epoch {
    let custodians = u8::try_from(stored.policy.custodians.len()).unwrap_or(u8::MAX);
    let lineage = Lineage {
        ceremony_id: &meta.ceremony_id,
        epoch: stored.number,
    };
    let share_signatures = commitments
        .iter()
        .map(|(id, c)| {
            let sig = crate::crypto::daemon_key::sign_share_statement(
                key.signing(),
                &meta.daemon_id,
                lineage,
                id,
                c,
                stored.policy.threshold,
                custodians,
            );
            (id.clone(), sig)
        })
        .collect();
    Epoch {
        number: stored.number,
        policy: stored.policy,
        policy_digest: stored.policy_digest,
        seal: stored.seal,
        commitments,
        share_signatures,
        since,
    }
}

impl Daemon {
    /// Opens the state directory, cancels requests a previous run left collecting
    /// (their E_req died with it), and records the start.
    pub fn start(state_dir: &Path, clock: Clock) -> Result<Daemon> {
        Daemon::start_with(
            Store::open(state_dir)?,
            state_dir,
            clock,
            system_rng(),
            Vec::new(),
        )
    }

    /// As [`Daemon::start`], on an opened store and with webhook routes for the outbox.
    pub fn start_on(
        store: Store,
        state_dir: &Path,
        clock: Clock,
        routes: Vec<Route>,
    ) -> Result<Daemon> {
        Daemon::start_with(store, state_dir, clock, system_rng(), routes)
    }

    /// Has D sign the integrity statement of a state that has none (made before
    /// breakglass recorded one): the operator's explicit `--adopt-state-integrity`,
    /// never automatic, since deleting the statement must not downgrade the start
    /// check. Returns false (and changes nothing) if the state has one already.
    pub fn adopt_integrity(store: &Store, state_dir: &Path) -> Result<bool> {
        if store.integrity()?.is_some() {
            return Ok(false);
        }
        let key = DaemonKey::new(keyfile::read_daemon_key(state_dir)?);
        let meta = store.meta()?;
        let epoch = store.epoch()?;
        let statement = integrity::statement(
            &meta.daemon_id,
            &meta.ceremony_id,
            epoch.number,
            &epoch.policy_digest,
            &epoch.seal,
            &store.commitments()?,
            &meta.authority_public,
        );
        store.set_integrity(&integrity::sign(statement, key.signing())?)?;
        tracing::warn!(
            "recorded an integrity statement over the state as it is now (--adopt-state-integrity)"
        );
        Ok(true)
    }

    /// As [`Daemon::start_on`], with an injected RNG (tests seed it).
    pub fn start_with(
        mut store: Store,
        state_dir: &Path,
        clock: Clock,
        rng: Rng,
        routes: Vec<Route>,
    ) -> Result<Daemon> {
        let key = DaemonKey::new(keyfile::read_daemon_key(state_dir)?);
        let meta = store.meta()?;
        let stored = store.epoch()?;
        let commitments = store.commitments()?;
        for c in &stored.policy.custodians {
            if !commitments.contains_key(&c.id) {
                return Err(Error::StateCorrupt {
                    path: store.path().to_path_buf(),
                    why: format!("no share commitment for custodian `{}`", c.id),
                });
            }
        }
        // Everything an unlock depends on is what the ceremony signed with this D.
        let now_statement = integrity::statement(
            &meta.daemon_id,
            &meta.ceremony_id,
            stored.number,
            &stored.policy_digest,
            &stored.seal,
            &commitments,
            &meta.authority_public,
        );
        match store.integrity()? {
            Some(signed) => {
                integrity::check(&signed, &now_statement, &key.public()).map_err(|why| {
                    Error::StateCorrupt {
                        path: store.path().to_path_buf(),
                        why,
                    }
                })?
            }
            None => {
                return Err(Error::StateCorrupt {
                    path: store.path().to_path_buf(),
                    why: "it has no integrity statement signed by D (it was deleted, or the state predates breakglass recording one); if you know this state is genuine, run `breakglassd serve --adopt-state-integrity` once to have D sign what is there now".into(),
                })
            }
        }
        // The newest entries chain to the head, and their checkpoints are D's.
        let head = store.audit_head()?;
        let tail = store.audit(
            head.saturating_sub(AUDIT_TAIL_CHECKED - 1).max(1),
            AUDIT_TAIL_CHECKED as usize,
        )?;
        breakglass_formats::audit::verify_log(&tail, Some((&key.public(), &meta.daemon_id)))
            .map_err(|e| Error::StateCorrupt {
                path: store.path().to_path_buf(),
                why: format!("the newest audit entries do not verify ({e}); check the whole log with `breakglass audit verify`"),
            })?;
        let metrics = Arc::new(Metrics::default());
        metrics.seed(
            head,
            tail.iter()
                .rev()
                .find(|e| e.event.kind() == "checkpoint")
                .map_or(0, |e| e.time),
        );
        store.set_checkpointer(Checkpointer {
            daemon_id: meta.daemon_id.clone(),
            key: key.signing().clone(),
        });
        store.set_routes(routes);
        let now = clock();
        // The epoch began when it was committed; a state that did not keep
        // that time is at epoch 1, which began with the ceremony, the log's
        // first entry.
        let epoch_since = match (stored.since, store.audit_entry(1)?) {
            (Some(t), _) => t,
            (None, Some(e)) if matches!(e.event, Event::Ceremony { .. }) => e.time,
            (None, other) => {
                return Err(Error::StateCorrupt {
                    path: store.path().to_path_buf(),
                    why: format!(
                        "the audit log's first entry is {}, not the ceremony",
                        other.map_or("missing".to_string(), |e| format!("`{}`", e.event.kind()))
                    ),
                })
            }
        };
        let mut records = Vec::new();
        let mut abandoned = Vec::new();
        for r in store.collecting_requests()? {
            if let Some((r, recs)) = r.abandon(now, RESTARTED) {
                abandoned.push(r);
                records.extend(recs);
            }
        }
        records.push(Record {
            time: now,
            actor: "daemon".into(),
            request_id: None,
            event: Event::DaemonStarted {
                policy_digest: hex::encode(stored.policy_digest),
                version: env!("CARGO_PKG_VERSION").into(),
                zero_counter_allowed: stored.policy.allow_zero_counter,
            },
            signed_with: None,
        });
        let started = store.commit(&abandoned.iter().collect::<Vec<_>>(), records)?;
        metrics.committed(&started, |_| None, |_| false);
        let (events, _) = broadcast::channel(1024);
        let current = published(&key, &meta, stored, commitments, epoch_since);
        Ok(Daemon {
            meta,
            current: std::sync::RwLock::new(Arc::new(current)),
            due_checked_at: std::sync::atomic::AtomicU64::new(0),
            store,
            key,
            live: Mutex::new(Live {
                requests: HashMap::new(),
                attestations: Default::default(),
                pending_key: None,
                rng,
            }),
            clock,
            events,
            wake: Arc::new(Notify::new()),
            stopping: tokio::sync::watch::channel(false).0,
            writable: tokio::sync::watch::channel(true).0,
            metrics,
        })
    }

    /// Expires collecting requests whose window has passed (returns their ids)
    /// and a pending epoch whose deadline has.
    pub fn sweep(&self) -> Result<Vec<String>> {
        // After a failed write, probe with a real write so the store is
        // reopened and health returns to SERVING once the disk has room again,
        // without waiting for a caller.
        let now = self.now();
        if !*self.writable.borrow() {
            self.wrote(self.store.probe_write(now))?;
        }
        let mut live = self.lock()?;
        let due: Vec<String> = live
            .requests
            .iter()
            .filter(|(_, c)| c.is_due(now))
            .map(|(id, _)| id.clone())
            .collect();
        // Abandoned attestation keys go when their window ends.
        live.attestations.prune(now);
        let mut expired = Vec::new();
        for id in due {
            let Some(c) = live.requests.remove(&id) else {
                continue;
            };
            match c.expire(now, |r, recs| self.commit_one(r, recs)) {
                Ok(_) => expired.push(id),
                Err(refused) => {
                    // Kept for the next sweep; no share is admitted after the deadline meanwhile.
                    live.requests.insert(id, refused.state);
                    return Err(refused.error);
                }
            }
        }
        drop(live);
        super::scrub_stack();
        self.sweep_pending(now)?;
        self.notify_due()?;
        Ok(expired)
    }

    /// Wipes all memory-only secrets, cancels what was collecting, records the stop.
    pub fn shutdown(&self) -> Result<()> {
        let now = self.now();
        let mut live = self.lock()?;
        let mut closed = Vec::new();
        let mut records = Vec::new();
        for (_, c) in live.requests.drain() {
            // Each state drops (and wipes) here, whether or not the commit below succeeds.
            let (r, recs) = c.abandon(now, STOPPED);
            closed.push(r);
            records.extend(recs);
        }
        // Pending attestation keys are wiped as they drop, and so is the
        // pending epoch's confirmation key (a new one is made after the start).
        live.attestations = Default::default();
        live.pending_key = None;
        drop(live);
        records.push(Record {
            time: now,
            actor: "daemon".into(),
            request_id: None,
            event: Event::DaemonStopped,
            signed_with: None,
        });
        let done = self.commit(&closed.iter().collect::<Vec<_>>(), records);
        super::scrub_stack();
        done
    }
}
