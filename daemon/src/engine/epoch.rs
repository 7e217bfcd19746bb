//! Epochs (DESIGN.md "Epochs"): the shares of one split of R, the policy they
//! unlock under, and the seal they open. The ceremony makes epoch 1; a change
//! request committed by a quorum makes the next one. A, the daemon id and the
//! ceremony id never change across epochs.
//!
//! An [`Epoch`] holds no secret: the seal is ciphertext, the commitments are
//! hashes. Everything a share is checked against comes from one `Epoch`, so a
//! call sees one epoch from its first check to its commit.

use std::collections::BTreeMap;

use super::policy::Policy;
use super::share::Commitment;
use crate::error::Error;

/// One epoch as the daemon serves it.
#[derive(Debug, Clone)]
pub struct Epoch {
    /// The epoch number (1 after the ceremony).
    pub number: u64,
    /// The policy of this epoch.
    pub policy: Policy,
    /// Its digest (bound into the seal and every change approval).
    pub policy_digest: [u8; 32],
    /// S sealed under this epoch's R: `aad = ceremony id ‖ epoch ‖ policy digest`.
    pub seal: Vec<u8>,
    /// Each custodian's share commitment in this epoch.
    pub commitments: BTreeMap<String, Commitment>,
    /// D's signature over each custodian's share statement (published by
    /// `GetInfo`; the same bytes the share file carries).
    pub share_signatures: BTreeMap<String, [u8; 64]>,
    /// When this epoch began (the ceremony, or the commit of its change).
    pub since: u64,
}

impl Epoch {
    /// A custodian's commitment and D's signature over her share statement.
    pub fn published_share(&self, custodian: &str) -> Option<(&Commitment, &[u8; 64])> {
        Some((
            self.commitments.get(custodian)?,
            self.share_signatures.get(custodian)?,
        ))
    }

    /// Refuses a share (or a call about one) that names another epoch: the
    /// message says which epoch the caller's share is from and which one this
    /// daemon is at, so a custodian holding an old file knows to fetch her
    /// new one, and one holding a file of a pending epoch knows to wait.
    pub fn check_share_epoch(&self, custodian: &str, share_epoch: u64) -> Result<(), Error> {
        if share_epoch == self.number {
            return Ok(());
        }
        Err(Error::WrongEpoch {
            custodian: custodian.to_string(),
            share_epoch,
            epoch: self.number,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(n: u64) -> Epoch {
        Epoch {
            number: n,
            policy: Policy::from_toml(&super::super::policy::tests::sample_toml(3, 2))
                .unwrap_or_else(|e| panic!("{e}")),
            policy_digest: [0; 32],
            seal: Vec::new(),
            commitments: BTreeMap::new(),
            share_signatures: BTreeMap::new(),
            since: 0,
        }
    }

    #[test]
    fn a_share_of_another_epoch_is_refused_naming_both_epochs() {
        let e = epoch(2);
        assert!(e.check_share_epoch("c1", 2).is_ok());
        let old = e.check_share_epoch("c1", 1).err().map(|e| e.to_string());
        assert_eq!(
            old.as_deref(),
            Some("custodian `c1`: your share is from epoch 1; this daemon is at epoch 2: use the share file of epoch 2 (`breakglass share fetch` gives it while a rekey waits for confirmation)")
        );
        let ahead = e.check_share_epoch("c1", 3).err().map(|e| e.to_string());
        assert_eq!(
            ahead.as_deref(),
            Some("custodian `c1`: your share is from epoch 3; this daemon is at epoch 2: that epoch has not been committed yet; until it is, approve with your epoch 2 share")
        );
    }
}
