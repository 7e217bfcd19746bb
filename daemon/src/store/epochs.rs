//! Epochs in the store (DESIGN.md "Epochs"): the pending epochs a rekey waits
//! on, and the switch to a new epoch.
//!
//! Each step of a change is one durable transaction with its audit records:
//! dealing a pending epoch, each fetch and confirmation, the commit, a cancel
//! or an expiry. The commit rewrites the current epoch's meta keys (number,
//! start, policy, digest, seal, D's integrity statement) and the commitments
//! table in the same transaction as the pending record it closes and the
//! requests it cancels, so a crash leaves either the old epoch whole or the
//! new one whole, never a mix.

use std::collections::BTreeMap;

use redb::{ReadableTable, TableDefinition};

use super::{corrupt_record, storage, Store, COMMITMENTS, EPOCH, EPOCH_SINCE, INTEGRITY, META};
use crate::crypto::integrity::Signed;
use crate::engine::event::Record;
use crate::engine::policy::Policy;
use crate::engine::rekey::{Pending, PendingState};
use crate::engine::request::Request;
use crate::engine::share::Commitment;
use crate::error::Result;
use breakglass_formats::audit::AuditEntry;

/// Pending epochs by change id → [`Pending`] JSON (share files included until deleted).
const PENDING: TableDefinition<&str, &[u8]> = TableDefinition::new("pending_epochs");
/// The pending epochs that still hold share files (confirming, or committed
/// with files kept for late confirmers): change id → deadline. The sweep reads
/// only this, so its work does not grow with the history of changes.
const PENDING_LIVE: TableDefinition<&str, u64> = TableDefinition::new("pending_epochs_live");

/// A new current epoch, as its commit writes it.
pub struct NewEpoch<'a> {
    /// Epoch number.
    pub number: u64,
    /// When it began.
    pub since: u64,
    /// Its policy.
    pub policy: &'a Policy,
    /// The policy's digest.
    pub policy_digest: &'a [u8; 32],
    /// S sealed under its R.
    pub seal: &'a [u8],
    /// Its share commitments.
    pub commitments: &'a BTreeMap<String, Commitment>,
    /// D's integrity statement over all of the above.
    pub integrity: &'a Signed,
}

/// What one step of a change writes, in one transaction.
#[derive(Default)]
pub struct EpochStep<'a> {
    /// Requests written (the change request itself, requests a commit cancels).
    pub requests: Vec<&'a Request>,
    /// The pending epoch as it now is.
    pub pending: Option<&'a Pending>,
    /// The new current epoch, on a commit or a policy-only change.
    pub epoch: Option<NewEpoch<'a>>,
    /// Audit records.
    pub records: Vec<Record>,
}

impl Store {
    /// Every pending epoch kept, oldest first (history: for review, not for the sweep).
    pub fn pending_epochs(&self) -> Result<Vec<Pending>> {
        let tx = self.db()?.begin_read().map_err(storage)?;
        let t = match tx.open_table(PENDING) {
            Ok(t) => t,
            // A state that never dealt a pending epoch has no table yet.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(storage(e)),
        };
        let mut out: Vec<Pending> = Vec::new();
        for row in t.iter().map_err(storage)? {
            let (_, v) = row.map_err(storage)?;
            out.push(self.decode_pending(v.value())?);
        }
        out.sort_by(|a, b| {
            a.dealt_at
                .cmp(&b.dealt_at)
                .then_with(|| a.change_id.cmp(&b.change_id))
        });
        Ok(out)
    }

    /// The pending epochs that still hold share files whose deadline is at or
    /// before `by` (`u64::MAX`: all of them), oldest deadline first.
    pub fn live_pending(&self, by: u64) -> Result<Vec<Pending>> {
        let tx = self.db()?.begin_read().map_err(storage)?;
        let live = match tx.open_table(PENDING_LIVE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(storage(e)),
        };
        let mut due = Vec::new();
        for row in live.iter().map_err(storage)? {
            let (id, deadline) = row.map_err(storage)?;
            if deadline.value() <= by {
                due.push((deadline.value(), id.value().to_string()));
            }
        }
        if due.is_empty() {
            return Ok(Vec::new());
        }
        due.sort();
        let t = tx.open_table(PENDING).map_err(storage)?;
        let mut out = Vec::with_capacity(due.len());
        for (_, id) in due {
            let v = t.get(id.as_str()).map_err(storage)?.ok_or_else(|| {
                corrupt_record(
                    &self.path,
                    "pending epoch",
                    format!("`{id}` is listed but missing"),
                )
            })?;
            out.push(self.decode_pending(v.value())?);
        }
        Ok(out)
    }

    /// The pending epoch a change dealt, if it dealt one.
    pub fn pending(&self, change_id: &str) -> Result<Option<Pending>> {
        let tx = self.db()?.begin_read().map_err(storage)?;
        let t = match tx.open_table(PENDING) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(storage(e)),
        };
        let v = t.get(change_id).map_err(storage)?;
        v.map(|v| self.decode_pending(v.value())).transpose()
    }

    fn decode_pending(&self, bytes: &[u8]) -> Result<Pending> {
        let p: Pending = serde_json::from_slice(bytes)
            .map_err(|e| corrupt_record(&self.path, "pending epoch", e))?;
        if p.policy.digest()? != p.policy_digest {
            return Err(corrupt_record(
                &self.path,
                "pending epoch",
                format!("epoch {}'s policy does not match its digest", p.number),
            ));
        }
        Ok(p)
    }

    /// The pending epoch still confirming, if any (at most one: a change is
    /// refused while one is).
    pub fn open_pending(&self) -> Result<Option<Pending>> {
        Ok(self
            .live_pending(u64::MAX)?
            .into_iter()
            .find(|p| p.state == PendingState::Confirming))
    }

    /// Writes one step of a change durably; returns the audit entries appended.
    pub fn commit_epoch_step(&self, step: EpochStep<'_>) -> Result<Vec<AuditEntry>> {
        self.write(|tx| {
            if let Some(p) = step.pending {
                let mut t = tx.open_table(PENDING).map_err(storage)?;
                t.insert(
                    p.change_id.as_str(),
                    serde_json::to_vec(p).map_err(storage)?.as_slice(),
                )
                .map_err(storage)?;
                let mut live = tx.open_table(PENDING_LIVE).map_err(storage)?;
                if p.shares.values().any(|s| s.file.is_some()) {
                    live.insert(p.change_id.as_str(), p.deadline)
                        .map_err(storage)?;
                } else {
                    live.remove(p.change_id.as_str()).map_err(storage)?;
                }
            }
            if let Some(e) = &step.epoch {
                let mut meta = tx.open_table(META).map_err(storage)?;
                meta.insert(EPOCH, e.number.to_be_bytes().as_slice())
                    .map_err(storage)?;
                meta.insert(EPOCH_SINCE, e.since.to_be_bytes().as_slice())
                    .map_err(storage)?;
                meta.insert("policy", e.policy.canonical_json()?.as_slice())
                    .map_err(storage)?;
                meta.insert("policy_digest", e.policy_digest.as_slice())
                    .map_err(storage)?;
                meta.insert("seal", e.seal).map_err(storage)?;
                meta.insert(
                    INTEGRITY,
                    serde_json::to_vec(e.integrity).map_err(storage)?.as_slice(),
                )
                .map_err(storage)?;
                let mut com = tx.open_table(COMMITMENTS).map_err(storage)?;
                let old: Vec<String> = com
                    .iter()
                    .map_err(storage)?
                    .map(|row| row.map(|(k, _)| k.value().to_string()))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(storage)?;
                for id in old {
                    com.remove(id.as_str()).map_err(storage)?;
                }
                for (id, c) in e.commitments {
                    com.insert(
                        id.as_str(),
                        serde_json::to_vec(c).map_err(storage)?.as_slice(),
                    )
                    .map_err(storage)?;
                }
            }
            self.commit_in(tx, &step.requests, step.records)
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::authority::AuthorityKey;
    use crate::crypto::deal::{deal, Dealer};
    use crate::crypto::{integrity, seal, shamir};
    use crate::engine::policy::tests::{identity, sample_toml};
    use crate::engine::rekey::{ConfirmRule, Dealing};
    use crate::engine::share::Lineage;
    use crate::ops::Daemon;
    use breakglass_formats::share_file::ShareFile;
    use zeroize::Zeroizing;

    pub(crate) const T0: u64 = 1_700_000_000;

    /// Reads the first `k` custodians' share files from `dir` (custodian `c{i}` holds key seed i).
    fn shares(dir: &std::path::Path, k: u8) -> Vec<shamir::ShareBytes> {
        (1..=k)
            .map(|i| {
                let ct = std::fs::read(dir.join(format!("c{i}.share")))
                    .unwrap_or_else(|e| panic!("{e}"));
                let plain = breakglass_formats::envelope::decrypt(&identity(i), &ct)
                    .unwrap_or_else(|e| panic!("{e}"));
                let f = ShareFile::parse(&plain).unwrap_or_else(|e| panic!("{e}"));
                let b = f.share_bytes().unwrap_or_else(|e| panic!("{e}"));
                let mut s = Zeroizing::new([0u8; breakglass_proto::transport::SHARE_LEN]);
                s.copy_from_slice(&b);
                shamir::ShareBytes(s)
            })
            .collect()
    }

    /// A state made by the ceremony (custodians c1..c3, threshold 2) at `T0`:
    /// `(tempdir, state dir, share files dir)`.
    pub(crate) fn ceremony() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (state, out) = (dir.path().join("state"), dir.path().join("shares"));
        crate::ceremony::init(&sample_toml(3, 2), &state, &out, T0)
            .unwrap_or_else(|e| panic!("{e}"));
        (dir, state, out)
    }

    /// Epoch 2 dealt from the state's epoch 1 as a quorum would (R₁ from two of
    /// the share files in `out`, S from the seal) under `policy`, confirming from `now`.
    pub(crate) fn deal_next(
        state: &std::path::Path,
        out: &std::path::Path,
        policy: &Policy,
        change: &str,
        now: u64,
    ) -> Pending {
        let store = Store::open(state).unwrap_or_else(|e| panic!("{e}"));
        let meta = store.meta().unwrap_or_else(|e| panic!("{e}"));
        let first = store.epoch().unwrap_or_else(|e| panic!("{e}"));
        let root = shamir::combine_split(&shares(out, 2)).unwrap_or_else(|e| panic!("{e}"));
        let s = seal::unseal(
            &root,
            &first.seal,
            &seal::Binding {
                ceremony_id: &meta.ceremony_id,
                epoch: first.number,
                policy_digest: &first.policy_digest,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        drop(root);
        let d = super::super::keyfile::read_daemon_key(state).unwrap_or_else(|e| panic!("{e}"));
        let digest = policy.digest().unwrap_or_else(|e| panic!("{e}"));
        let number = first.number + 1;
        let dealt = deal(
            &s,
            policy,
            &digest,
            Lineage {
                ceremony_id: &meta.ceremony_id,
                epoch: number,
            },
            &Dealer {
                daemon_id: &meta.daemon_id,
                key: &d,
                authority: &meta.authority_public,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            AuthorityKey::derive(&s).public().to_bytes(),
            meta.authority_public
        );
        Pending::new(
            dealing(dealt, change, number, policy.clone(), digest),
            ConfirmRule::All,
            now,
            WINDOW,
        )
    }

    /// What a pending epoch is made of: `dealt` as epoch `number` of `change`.
    pub(crate) fn dealing(
        dealt: crate::crypto::deal::Dealt,
        change: &str,
        number: u64,
        policy: Policy,
        policy_digest: [u8; 32],
    ) -> Dealing {
        Dealing {
            change_id: change.to_string(),
            number,
            policy,
            policy_digest,
            seal: dealt.seal,
            shares: dealt
                .shares
                .into_iter()
                .map(|s| (s.custodian, s.commitment, s.file))
                .collect(),
        }
    }

    /// The pending epochs' window in these tests.
    pub(crate) const WINDOW: u64 = 7 * 86_400;

    /// A rekey's pending epoch survives a reopen unchanged (share files
    /// included); its commit switches every part of the current epoch at once,
    /// and the daemon then starts at epoch 2: D's new integrity statement
    /// covers the new seal and commitments (invariant 8), A is the same.
    #[test]
    fn a_pending_epoch_survives_a_reopen_and_its_commit_switches_the_epoch_whole() {
        let (_dir, state, out) = ceremony();
        let policy = Policy::from_toml(&sample_toml(4, 3)).unwrap_or_else(|e| panic!("{e}"));
        let digest = policy.digest().unwrap_or_else(|e| panic!("{e}"));
        let mut pending = deal_next(&state, &out, &policy, "chg-1", T0 + 10);
        let store = Store::open(&state).unwrap_or_else(|e| panic!("{e}"));
        let meta = store.meta().unwrap_or_else(|e| panic!("{e}"));
        let first = store.epoch().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((first.number, first.since), (1, Some(T0)));
        assert_eq!(store.pending_epochs().ok(), Some(Vec::new()));
        let d = super::super::keyfile::read_daemon_key(&state).unwrap_or_else(|e| panic!("{e}"));
        store
            .commit_epoch_step(EpochStep {
                pending: Some(&pending),
                ..EpochStep::default()
            })
            .unwrap_or_else(|e| panic!("{e}"));
        drop(store);

        // A restart between quorum and confirmation loses nothing, and epoch 1 stays.
        let store = Store::open(&state).unwrap_or_else(|e| panic!("{e}"));
        let back = store.open_pending().ok().flatten();
        assert!(
            back.as_ref() == Some(&pending),
            "the pending epoch reads back as written"
        );
        // The sweep's index: listed while it holds files, due only at its deadline.
        assert_eq!(
            store
                .live_pending(pending.deadline - 1)
                .map(|v| v.len())
                .ok(),
            Some(0)
        );
        assert_eq!(
            store.live_pending(pending.deadline).map(|v| v.len()).ok(),
            Some(1)
        );
        assert!(
            back.is_some_and(|p| p.policy.custodian_key("c4").is_ok()),
            "its keys are parsed again"
        );
        assert_eq!(store.epoch().map(|e| e.number).ok(), Some(1));

        // The commit: every new custodian confirmed (checked in engine::rekey's tests).
        for s in pending.shares.values_mut() {
            s.confirmed_at = Some(T0 + 20);
        }
        let epoch2 = pending
            .commit(std::collections::BTreeMap::new(), T0 + 30)
            .unwrap_or_else(|e| panic!("{e}"));
        let signed = integrity::sign(
            integrity::statement(
                &meta.daemon_id,
                &meta.ceremony_id,
                2,
                &digest,
                &epoch2.seal,
                &epoch2.commitments,
                &meta.authority_public,
            ),
            &d,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        store
            .commit_epoch_step(EpochStep {
                pending: Some(&pending),
                epoch: Some(NewEpoch {
                    number: 2,
                    since: T0 + 30,
                    policy: &policy,
                    policy_digest: &digest,
                    seal: &epoch2.seal,
                    commitments: &epoch2.commitments,
                    integrity: &signed,
                }),
                ..EpochStep::default()
            })
            .unwrap_or_else(|e| panic!("{e}"));
        drop(store);

        let store = Store::open(&state).unwrap_or_else(|e| panic!("{e}"));
        let now = store.epoch().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((now.number, now.since), (2, Some(T0 + 30)));
        assert_eq!((now.policy_digest, &now.seal), (digest, &epoch2.seal));
        assert_eq!(store.commitments().ok(), Some(epoch2.commitments.clone()));
        assert_eq!(store.open_pending().ok(), Some(None));
        assert_eq!(
            store.live_pending(u64::MAX).map(|v| v.len()).ok(),
            Some(0),
            "no files, not listed"
        );
        let kept = store.pending_epochs().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kept.len(), 1);
        assert!(kept[0].shares.values().all(|s| s.file.is_none()));
        assert_eq!(
            store.meta().ok().map(|m| m.authority_public),
            Some(meta.authority_public)
        );

        let daemon = Daemon::start_on(
            store,
            &state,
            std::sync::Arc::new(move || T0 + 40),
            Vec::new(),
        )
        .unwrap_or_else(|e| panic!("epoch 2 starts: {e}"));
        assert_eq!(daemon.epoch().number, 2);
        assert_eq!(daemon.epoch().commitments, epoch2.commitments);
    }
}
