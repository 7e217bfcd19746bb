//! Pending epochs (DESIGN.md "Epochs"): what a rekey waits on between its
//! quorum and its commit.
//!
//! A change request whose quorum changes the custodians or the threshold
//! deals the next epoch (`crypto::deal`): S sealed under a new R, the new
//! commitments, and one share file per new custodian, age-encrypted to her.
//! None of it is secret, so all of it is stored: a restart between the
//! quorum and the last confirmation loses nothing. Each new custodian fetches
//! her file, checks it, and confirms by proving her new share against its new
//! commitment. When enough have ([`ConfirmRule`]), the pending epoch commits
//! and becomes the daemon's epoch; until then the current epoch stays the one
//! that unlocks.
//!
//! States: `Confirming → Committed | Cancelled | Expired`; the three are
//! final. A custodian's share file is deleted when she confirms (invariant
//! 1), and every file when the pending epoch is cancelled or expires. With
//! `rekey_confirm = "threshold"` the files of those who had not confirmed
//! yet stay fetchable until the pending deadline, then are deleted too.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::auth::AuthenticatedCustodian;
use super::epoch::Epoch;
use super::policy::Policy;
use super::share::{verify_share, Commitment, Lineage};
use crate::error::{Error, Result};

/// How many new custodians must confirm before the pending epoch commits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmRule {
    /// Every new custodian (the default: nobody is left holding nothing).
    #[default]
    All,
    /// The new threshold: enough to unlock; the others' files stay fetchable
    /// until the deadline and are used as they are.
    Threshold,
}

impl ConfirmRule {
    /// Confirmations needed for a policy with `custodians` and `threshold`.
    pub fn need(self, custodians: usize, threshold: u8) -> usize {
        match self {
            ConfirmRule::All => custodians,
            ConfirmRule::Threshold => usize::from(threshold).min(custodians),
        }
    }
}

/// Lifecycle of a pending epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingState {
    /// Waiting for the new custodians to fetch and confirm.
    Confirming,
    /// Became the daemon's epoch.
    Committed,
    /// Cancelled by the proposer or a custodian of the current epoch.
    Cancelled,
    /// Its deadline passed before enough confirmations.
    Expired,
}

impl PendingState {
    /// Lower-case name for messages.
    pub fn name(self) -> &'static str {
        match self {
            PendingState::Confirming => "waiting for confirmations",
            PendingState::Committed => "committed",
            PendingState::Cancelled => "cancelled",
            PendingState::Expired => "expired",
        }
    }

    /// True for every state but `Confirming`.
    pub fn is_terminal(self) -> bool {
        self != PendingState::Confirming
    }
}

/// One new custodian's share in a pending epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewShare {
    /// Her new share's commitment.
    pub commitment: Commitment,
    /// Her share file, age-encrypted to her key; `None` once deleted.
    pub file: Option<Vec<u8>>,
    /// First fetch.
    pub fetched_at: Option<u64>,
    /// Confirmation.
    pub confirmed_at: Option<u64>,
}

/// Where a pending epoch stands after a confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Confirmations so far.
    pub confirmed: usize,
    /// Confirmations needed to commit.
    pub need: usize,
}

impl Progress {
    /// Enough confirmations to commit.
    pub fn ready(&self) -> bool {
        self.confirmed >= self.need
    }
}

/// A pending epoch as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The change request whose quorum dealt it.
    pub change_id: String,
    /// Epoch number (the current one plus one).
    pub number: u64,
    /// The new policy (validated again when read back, which also rebuilds
    /// its parsed keys).
    #[serde(with = "super::policy::validated_json")]
    pub policy: Policy,
    /// Its digest (bound into the seal).
    pub policy_digest: [u8; 32],
    /// S sealed under the new R.
    pub seal: Vec<u8>,
    /// One entry per new custodian.
    pub shares: BTreeMap<String, NewShare>,
    /// Confirmations needed.
    pub need: usize,
    /// When dealt.
    pub dealt_at: u64,
    /// When it expires unless committed.
    pub deadline: u64,
    /// State.
    pub state: PendingState,
    /// When it left `Confirming`, or 0.
    pub closed_at: u64,
    /// Why it closed.
    pub close_reason: String,
}

/// What a new epoch is made of, as dealt.
pub struct Dealing {
    /// The change request.
    pub change_id: String,
    /// Epoch number.
    pub number: u64,
    /// New policy.
    pub policy: Policy,
    /// Its digest.
    pub policy_digest: [u8; 32],
    /// The seal.
    pub seal: Vec<u8>,
    /// `(custodian, commitment, encrypted share file)` per new custodian.
    pub shares: Vec<(String, Commitment, Vec<u8>)>,
}

impl Pending {
    /// A freshly dealt pending epoch, confirming until `now + window`.
    pub fn new(d: Dealing, rule: ConfirmRule, now: u64, window: u64) -> Pending {
        let need = rule.need(d.policy.custodians.len(), d.policy.threshold);
        Pending {
            change_id: d.change_id,
            number: d.number,
            policy: d.policy,
            policy_digest: d.policy_digest,
            seal: d.seal,
            shares: d
                .shares
                .into_iter()
                .map(|(id, commitment, file)| {
                    (
                        id,
                        NewShare {
                            commitment,
                            file: Some(file),
                            fetched_at: None,
                            confirmed_at: None,
                        },
                    )
                })
                .collect(),
            need,
            dealt_at: now,
            deadline: now.saturating_add(window),
            state: PendingState::Confirming,
            closed_at: 0,
            close_reason: String::new(),
        }
    }

    /// Confirmations so far and needed.
    pub fn progress(&self) -> Progress {
        Progress {
            confirmed: self
                .shares
                .values()
                .filter(|s| s.confirmed_at.is_some())
                .count(),
            need: self.need,
        }
    }

    fn closed(&self) -> Error {
        Error::PendingClosed {
            number: self.number,
            state: self.state.name(),
            why: if self.close_reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.close_reason)
            },
            advice: match self.state {
                PendingState::Committed => "it takes no more confirmations: a share file of it that was not confirmed works as it is (fetch it until the deadline; prove it with `breakglass share attest`)",
                _ => "it takes no more fetches or confirmations; the current epoch stays",
            },
        }
    }

    fn member(&self, custodian: &str) -> Result<&NewShare> {
        self.shares
            .get(custodian)
            .ok_or_else(|| Error::NotInPendingEpoch {
                custodian: custodian.to_string(),
                number: self.number,
            })
    }

    /// Refuses a fetch or a confirmation once the pending epoch is closed or
    /// past its deadline (an expiry the sweep has not recorded yet counts).
    pub fn check_open(&self, now: u64) -> Result<()> {
        if self.state.is_terminal() {
            return Err(self.closed());
        }
        if now >= self.deadline {
            return Err(Error::PendingExpired {
                number: self.number,
                deadline: self.deadline,
                now,
            });
        }
        Ok(())
    }

    /// A new custodian's encrypted share file. Allowed while confirming, and
    /// after a threshold commit for a custodian who had not confirmed (her file
    /// is kept until the deadline). Records the first fetch.
    pub fn fetch(&mut self, custodian: &str, now: u64) -> Result<Vec<u8>> {
        self.member(custodian)?;
        let after_commit = self.state == PendingState::Committed && now < self.deadline;
        if !after_commit {
            self.check_open(now)?;
        }
        let closed = self.closed();
        let share = self
            .shares
            .get_mut(custodian)
            .ok_or_else(|| Error::Internal("member vanished".into()))?;
        let Some(file) = share.file.clone() else {
            return Err(if share.confirmed_at.is_some() {
                Error::AlreadyConfirmed {
                    custodian: custodian.to_string(),
                    number: self.number,
                }
            } else {
                closed
            });
        };
        share.fetched_at.get_or_insert(now);
        Ok(file)
    }

    /// A new custodian proves her new share (decrypted from her confirmation)
    /// against its new commitment; the share is checked and wiped here, never
    /// kept. `who` was authenticated against the pending policy.
    pub fn confirm(
        &mut self,
        who: &AuthenticatedCustodian,
        ceremony_id: &str,
        plaintext: &[u8],
        now: u64,
    ) -> Result<Progress> {
        self.check_open(now)?;
        let share = self.member(who.id())?;
        if share.confirmed_at.is_some() {
            return Err(Error::AlreadyConfirmed {
                custodian: who.id().to_string(),
                number: self.number,
            });
        }
        let lineage = Lineage {
            ceremony_id,
            epoch: self.number,
        };
        drop(verify_share(who, &share.commitment, lineage, plaintext)?);
        // Invariant 1: her share file is kept only until she confirms it.
        if let Some(s) = self.shares.get_mut(who.id()) {
            s.confirmed_at = Some(now);
            s.file = None;
        }
        Ok(self.progress())
    }

    /// Makes the pending epoch the daemon's: refused unless confirming with
    /// enough confirmations. Deletes the files of those who confirmed.
    pub fn commit(&mut self, signatures: BTreeMap<String, [u8; 64]>, now: u64) -> Result<Epoch> {
        self.check_open(now)?;
        let p = self.progress();
        if !p.ready() {
            return Err(Error::PendingNotReady {
                number: self.number,
                confirmed: p.confirmed,
                need: p.need,
            });
        }
        self.state = PendingState::Committed;
        self.closed_at = now;
        self.close_reason = format!(
            "{} of {} new custodians confirmed",
            p.confirmed,
            self.shares.len()
        );
        for s in self.shares.values_mut() {
            if s.confirmed_at.is_some() {
                s.file = None;
            }
        }
        Ok(Epoch {
            number: self.number,
            policy: self.policy.clone(),
            policy_digest: self.policy_digest,
            seal: self.seal.clone(),
            commitments: self
                .shares
                .iter()
                .map(|(id, s)| (id.clone(), s.commitment.clone()))
                .collect(),
            share_signatures: signatures,
            since: now,
        })
    }

    /// Cancels a confirming pending epoch: every share file is deleted.
    pub fn cancel(&mut self, reason: &str, now: u64) -> Result<()> {
        // Past its deadline it expired, whether or not the sweep recorded it.
        self.check_open(now)?;
        self.close(PendingState::Cancelled, reason.to_string(), now);
        Ok(())
    }

    /// Expires a confirming pending epoch past its deadline, and deletes the
    /// files a threshold commit kept once the deadline passes. True when
    /// anything changed.
    pub fn sweep(&mut self, now: u64) -> bool {
        if now < self.deadline {
            return false;
        }
        match self.state {
            PendingState::Confirming => {
                let p = self.progress();
                self.close(
                    PendingState::Expired,
                    format!(
                        "{} of the {} confirmations it needed arrived before its deadline",
                        p.confirmed, p.need
                    ),
                    now,
                );
                true
            }
            PendingState::Committed => {
                let mut changed = false;
                for s in self.shares.values_mut() {
                    changed |= s.file.take().is_some();
                }
                changed
            }
            PendingState::Cancelled | PendingState::Expired => false,
        }
    }

    fn close(&mut self, state: PendingState, reason: String, now: u64) {
        self.state = state;
        self.closed_at = now;
        self.close_reason = reason;
        for s in self.shares.values_mut() {
            s.file = None;
        }
    }
}

/// The daemon's epochs: the committed one and at most one pending. The only
/// way the committed epoch changes is [`Chain::commit`] (a rekey's pending
/// epoch) or [`Chain::reseal`] (a policy-only change); both refuse while a
/// pending epoch is confirming, so there are never two epochs a quorum could
/// unlock at once.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The epoch that unlocks.
    pub current: Epoch,
    /// The last pending epoch, open or closed.
    pub pending: Option<Pending>,
}

impl Chain {
    /// The pending epoch if it is still confirming.
    pub fn open(&self) -> Option<&Pending> {
        self.pending
            .as_ref()
            .filter(|p| p.state == PendingState::Confirming)
    }

    /// Refuses a second change while a pending epoch is confirming, naming it.
    pub fn check_none_open(&self) -> Result<()> {
        match self.open() {
            Some(p) => Err(Error::RekeyOpen {
                change: p.change_id.clone(),
                number: p.number,
            }),
            None => Ok(()),
        }
    }

    /// Starts confirming a dealt epoch; it must be the next number.
    pub fn begin(&mut self, pending: Pending) -> Result<()> {
        self.check_none_open()?;
        if pending.number != self.current.number + 1 || pending.state.is_terminal() {
            return Err(Error::Internal(format!(
                "a pending epoch must be epoch {} and confirming; this one is epoch {} and {}",
                self.current.number + 1,
                pending.number,
                pending.state.name()
            )));
        }
        self.pending = Some(pending);
        Ok(())
    }

    /// Commits the pending epoch: it becomes the current one.
    pub fn commit(&mut self, signatures: BTreeMap<String, [u8; 64]>, now: u64) -> Result<&Epoch> {
        let p = self
            .pending
            .as_mut()
            .filter(|p| p.state == PendingState::Confirming)
            .ok_or_else(|| Error::Internal("no pending epoch is confirming".into()))?;
        self.current = p.commit(signatures, now)?;
        Ok(&self.current)
    }

    /// A policy-only change: same custodians, threshold and shares, so the
    /// epoch number stays (the commitments bind it); the policy, its digest
    /// and the seal (S re-sealed under the same R) change at once.
    pub fn reseal(&mut self, policy: Policy, policy_digest: [u8; 32], seal: Vec<u8>) -> Result<()> {
        self.check_none_open()?;
        if needs_rekey(&self.current.policy, &policy) {
            return Err(Error::Internal(
                "a change of custodians, their keys or the threshold needs new shares, not a re-seal"
                    .into(),
            ));
        }
        self.current.policy = policy;
        self.current.policy_digest = policy_digest;
        self.current.seal = seal;
        Ok(())
    }
}

/// True when a change from `old` to `new` needs new shares: a custodian
/// added, removed or moved (her x is her place), her `ssh_key` changed (her
/// share file is encrypted to it), or another threshold. Signing keys,
/// commanders, scopes and settings change without new shares.
pub fn needs_rekey(old: &Policy, new: &Policy) -> bool {
    old.threshold != new.threshold
        || old.custodians.len() != new.custodians.len()
        || old
            .custodians
            .iter()
            .zip(&new.custodians)
            .any(|(a, b)| a.id != b.id || a.ssh_key != b.ssh_key)
}

#[cfg(test)]
mod tests;
