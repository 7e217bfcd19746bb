//! Share checks (invariant 5): a share is checked against its commitment the
//! moment it arrives, so a wrong, corrupted or forged share is refused on
//! submission and attributed to its custodian.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::auth::AuthenticatedCustodian;
use crate::error::{Error, Result};
use breakglass_proto::transport::SHARE_LEN;

/// The commitment is defined with the share file, so a custodian's CLI
/// recomputes exactly what the daemon checks.
pub use breakglass_formats::share_file::{commitment_hash, DOMAIN_SHARE_COMMITMENT};

/// Which split a share belongs to: the ceremony that made S and the epoch
/// (which split of R). Both are bound into the commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lineage<'a> {
    /// Ceremony id.
    pub ceremony_id: &'a str,
    /// Epoch.
    pub epoch: u64,
}

/// What the daemon keeps about a custodian's share: its x and a hash commitment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitment {
    /// The share's x coordinate.
    pub x: u8,
    /// `H(domain ‖ ceremony id ‖ epoch ‖ custodian id ‖ share)`.
    pub hash: [u8; 32],
}

/// A share that passed every check; only [`verify_share`] makes one, and the
/// combiner accepts nothing else. No `Debug`, no `Clone`; wiped on drop.
///
/// The bytes live in their own heap allocation, so moving a `VerifiedShare`
/// (returning it, pushing it, a `Vec<VerifiedShare>` growing) moves only a
/// pointer. Held inline, a move is a bitwise copy whose source is never
/// dropped: a reallocating `Vec` left every earlier share in freed heap memory
/// (found by tests/tests/memory.rs with a threshold of 5).
pub struct VerifiedShare {
    custodian: String,
    bytes: Box<Zeroizing<[u8; SHARE_LEN]>>,
}

impl VerifiedShare {
    /// The custodian it came from.
    pub fn custodian(&self) -> &str {
        &self.custodian
    }

    /// The x coordinate.
    pub fn x(&self) -> u8 {
        self.bytes[0]
    }

    /// The share bytes `x ‖ y`, for the combiner only.
    pub(crate) fn bytes(&self) -> &[u8; SHARE_LEN] {
        &self.bytes
    }
}

/// Checks a decrypted share from an authenticated custodian: length, x ≠ 0,
/// x equal to the custodian's own slot (so no duplicate x), and the commitment
/// in constant time.
pub fn verify_share(
    who: &AuthenticatedCustodian,
    commitment: &Commitment,
    lineage: Lineage<'_>,
    plaintext: &[u8],
) -> Result<VerifiedShare> {
    let malformed = |why: String| Error::ShareMalformed {
        custodian: who.id().to_string(),
        why,
    };
    if plaintext.len() != SHARE_LEN {
        return Err(malformed(format!(
            "{} bytes; a share is {SHARE_LEN} bytes (x and 32 bytes of y)",
            plaintext.len()
        )));
    }
    let x = plaintext[0];
    if x == 0 {
        return Err(malformed(
            "x = 0 is not a share (it would be the secret itself)".into(),
        ));
    }
    if x != who.x() || x != commitment.x {
        return Err(malformed(format!(
            "x = {x} but this custodian's share has x = {}; it is another custodian's share",
            commitment.x
        )));
    }
    let h = commitment_hash(lineage.ceremony_id, lineage.epoch, who.id(), plaintext);
    if !bool::from(h.ct_eq(&commitment.hash)) {
        return Err(Error::ShareCommitmentMismatch {
            custodian: who.id().to_string(),
        });
    }
    // Zeros are built in place and the share is copied straight into the heap.
    let mut bytes = Box::new(Zeroizing::new([0u8; SHARE_LEN]));
    bytes.copy_from_slice(plaintext);
    Ok(VerifiedShare {
        custodian: who.id().to_string(),
        bytes,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The lineage the tests' shares belong to.
    pub const CER: Lineage<'static> = Lineage {
        ceremony_id: "cer",
        epoch: 1,
    };

    fn lineage(ceremony_id: &'static str, epoch: u64) -> Lineage<'static> {
        Lineage { ceremony_id, epoch }
    }

    /// A share that passed [`verify_share`] for `who` (bytes `x ‖ [x; 32]`).
    pub fn verified(who: &AuthenticatedCustodian) -> VerifiedShare {
        let mut s = [who.x(); SHARE_LEN];
        s[0] = who.x();
        let com = Commitment {
            x: who.x(),
            hash: commitment_hash("cer", 1, who.id(), &s),
        };
        match verify_share(who, &com, CER, &s) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }
    use crate::engine::auth::{authenticate_custodian, SignedBy};
    use crate::engine::policy::tests::{key, sample_toml};
    use crate::engine::policy::Policy;
    use ed25519_dalek::Signer;

    fn who(id: &str, k: u8) -> AuthenticatedCustodian {
        let p = Policy::from_toml(&sample_toml(3, 2)).unwrap();
        let sig = key(k).sign(b"x").to_bytes();
        authenticate_custodian(
            crate::engine::auth::test_checks(&p, 1),
            &SignedBy {
                signer_id: id,
                signed_at: 1,
                signature: &sig,
            },
            b"x",
        )
        .unwrap()
    }

    fn share(x: u8) -> [u8; SHARE_LEN] {
        let mut s = [7u8; SHARE_LEN];
        s[0] = x;
        s
    }

    /// Invariant 5: a good share passes; every kind of bad share is refused and names the custodian.
    #[test]
    fn checks_each_way_a_share_can_be_wrong() {
        let c2 = who("c2", 2);
        let good = share(2);
        let com = Commitment {
            x: 2,
            hash: commitment_hash("cer", 1, "c2", &good),
        };
        let v = verify_share(&c2, &com, CER, &good).unwrap();
        assert_eq!((v.x(), v.custodian()), (2, "c2"));

        let err = |e: Error| e.to_string();
        let short = verify_share(&c2, &com, CER, &good[..32])
            .err()
            .map(err)
            .unwrap_or_default();
        assert!(
            short.contains("custodian `c2`") && short.contains("32 bytes"),
            "{short}"
        );
        let zero = verify_share(&c2, &com, CER, &share(0))
            .err()
            .map(err)
            .unwrap_or_default();
        assert!(zero.contains("x = 0"), "{zero}");
        let dup = verify_share(&c2, &com, CER, &share(1))
            .err()
            .map(err)
            .unwrap_or_default();
        assert!(dup.contains("another custodian's share"), "{dup}");
        let mut flipped = good;
        flipped[10] ^= 1;
        assert!(matches!(
            verify_share(&c2, &com, CER, &flipped),
            Err(Error::ShareCommitmentMismatch { ref custodian }) if custodian == "c2"
        ));
        assert!(matches!(
            verify_share(&c2, &com, lineage("older-ceremony", 1), &good),
            Err(Error::ShareCommitmentMismatch { .. })
        ));
        // Epochs: the same share bytes at the same x are another share in
        // another epoch, so an old share never passes a new commitment.
        assert!(matches!(
            verify_share(&c2, &com, lineage("cer", 2), &good),
            Err(Error::ShareCommitmentMismatch { .. })
        ));
    }
}
