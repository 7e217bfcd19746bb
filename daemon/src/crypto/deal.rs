//! Dealing an epoch (DESIGN.md "Key hierarchy", "Epochs"): a fresh R split
//! among a policy's custodians, S sealed under it, and one share file per
//! custodian. The ceremony deals epoch 1 with a new S; a rekey deals epoch
//! e+1 with the S it opened from epoch e, so A never changes.
//!
//! What comes out holds no secret: the seal is ciphertext, the commitments
//! are hashes, D's signatures are public and each share file is
//! age-encrypted to its custodian's `ssh_key`. R and the plaintext shares
//! live only inside [`deal`] and are wiped before it returns (they are
//! `Zeroizing` and never leave its frame by value).

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use subtle::ConstantTimeEq;

use super::authority::AuthorityKey;
use super::secret::{AuthoritySeed, RootKey};
use super::{seal, shamir};
use crate::engine::policy::Policy;
use crate::engine::share::{commitment_hash, Commitment, Lineage};
use crate::error::{Error, Result};
use breakglass_formats::envelope::encrypt_to_ssh;
use breakglass_formats::share_file::{Origin, ShareFile};

/// Who deals: the daemon (its id and D, which signs each share statement)
/// and the authority the seal must give back.
pub struct Dealer<'a> {
    /// Daemon id.
    pub daemon_id: &'a str,
    /// D.
    pub key: &'a SigningKey,
    /// A's public key; the dealt seal must open to an S that derives it.
    pub authority: &'a [u8; 32],
}

/// One custodian's part of a dealt epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealtShare {
    /// Custodian id.
    pub custodian: String,
    /// Her share's commitment.
    pub commitment: Commitment,
    /// D's signature over her share statement.
    pub signature: [u8; 64],
    /// Her share file, age-encrypted to her `ssh_key`.
    pub file: Vec<u8>,
}

/// A dealt epoch: everything the daemon keeps of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dealt {
    /// S sealed under the new R, bound to the lineage and the policy digest.
    pub seal: Vec<u8>,
    /// One entry per custodian, in policy order.
    pub shares: Vec<DealtShare>,
}

impl Dealt {
    /// The commitments by custodian id.
    pub fn commitments(&self) -> BTreeMap<String, Commitment> {
        self.shares
            .iter()
            .map(|s| (s.custodian.clone(), s.commitment.clone()))
            .collect()
    }
}

/// Deals one epoch of `seed` under `policy`: a new R, split `threshold` of
/// `custodians`; S sealed under it for `lineage` and `policy_digest`. Before
/// anything is returned the first `threshold` shares must rebuild R through
/// the combiner an unlock uses and open the seal to an S that derives
/// `dealer.authority`; otherwise nothing is returned.
pub fn deal(
    seed: &AuthoritySeed,
    policy: &Policy,
    policy_digest: &[u8; 32],
    lineage: Lineage<'_>,
    dealer: &Dealer<'_>,
) -> Result<Dealt> {
    let n = u8::try_from(policy.custodians.len())
        .map_err(|_| Error::Policy("more than 255 custodians".into()))?;
    let k = policy.threshold;
    if AuthorityKey::derive(seed).public().as_bytes() != dealer.authority {
        return Err(Error::Internal(
            "dealing: the authority seed does not derive this daemon's authority key".into(),
        ));
    }
    let binding = seal::Binding {
        ceremony_id: lineage.ceremony_id,
        epoch: lineage.epoch,
        policy_digest,
    };
    let root = RootKey::generate();
    let sealed = seal::seal(&root, seed, &binding)?;
    let split = shamir::split(&root, k, n)?;

    // Prove the split before anything leaves: k shares rebuild R and open the seal.
    {
        let back = shamir::combine_split(&split[..usize::from(k)])?;
        if !bool::from(back.expose().ct_eq(root.expose())) {
            return Err(Error::Internal(
                "dealing self-check: the shares do not rebuild the root key".into(),
            ));
        }
        let check = seal::unseal(&back, &sealed, &binding)?;
        if AuthorityKey::derive(&check).public().as_bytes() != dealer.authority {
            return Err(Error::Internal(
                "dealing self-check: the seal does not give the same authority".into(),
            ));
        }
    }
    drop(root);

    let authority_hex = hex::encode(dealer.authority);
    let mut shares = Vec::with_capacity(split.len());
    for (c, share) in policy.custodians.iter().zip(split.iter()) {
        let commitment = Commitment {
            x: share.x(),
            hash: commitment_hash(lineage.ceremony_id, lineage.epoch, &c.id, share.expose()),
        };
        let signature = super::daemon_key::sign_share_statement(
            dealer.key,
            dealer.daemon_id,
            lineage,
            &c.id,
            &commitment,
            k,
            n,
        );
        let origin = Origin {
            epoch: lineage.epoch,
            commitment: commitment.hash,
            daemon_public_key: dealer.key.verifying_key().to_bytes(),
            signature,
        };
        let plain = ShareFile::new(
            dealer.daemon_id.to_string(),
            lineage.ceremony_id.to_string(),
            c.id.clone(),
            k,
            n,
            authority_hex.clone(),
            &origin,
            share.expose(),
        );
        let file = encrypt_to_ssh(&c.ssh_key, &plain.to_bytes())
            .map_err(|e| Error::Internal(e.to_string()))?;
        shares.push(DealtShare {
            custodian: c.id.clone(),
            commitment,
            signature,
            file,
        });
    }
    drop(split);
    Ok(Dealt {
        seal: sealed,
        shares,
    })
}
