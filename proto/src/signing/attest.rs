//! Attestation payloads: a custodian proves she holds her share without
//! unlocking anything. She signs a start, the daemon answers with a one-shot
//! X25519 key signed by D, she seals her share to that key (bound to the
//! challenge's digest) and signs the sealed bytes. Each payload has its own
//! domain, so no attestation signature can stand for a share submission.

use sha2::{Digest, Sha256};

use super::Payload;

/// Domain of [`start_attestation`].
pub const DOMAIN_START_ATTESTATION: &str = "breakglass/v1/start-attestation";
/// Domain of [`attestation_challenge`] (signed by D; hashed into the digest the seal binds).
pub const DOMAIN_ATTESTATION_CHALLENGE: &str = "breakglass/v1/attestation-challenge";
/// Domain of [`attest_share`].
pub const DOMAIN_ATTEST_SHARE: &str = "breakglass/v1/attest-share";

/// What a custodian signs to ask for an attestation key.
pub fn start_attestation(daemon_id: &str, custodian_id: &str, signed_at: u64) -> Vec<u8> {
    Payload::new(DOMAIN_START_ATTESTATION)
        .str(daemon_id)
        .str(custodian_id)
        .u64(signed_at)
        .finish()
}

/// A one-shot attestation key as the daemon issues it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge<'a> {
    /// Daemon id.
    pub daemon_id: &'a str,
    /// Ceremony id.
    pub ceremony_id: &'a str,
    /// Epoch of the shares it checks.
    pub epoch: u64,
    /// Attestation id.
    pub attestation_id: &'a str,
    /// The custodian it is for.
    pub custodian_id: &'a str,
    /// The one-shot X25519 public key.
    pub public_key: &'a [u8; 32],
    /// Last second it is accepted.
    pub expires_at: u64,
}

/// The bytes D signs for a challenge.
pub fn attestation_challenge(c: &Challenge<'_>) -> Vec<u8> {
    Payload::new(DOMAIN_ATTESTATION_CHALLENGE)
        .str(c.daemon_id)
        .str(c.ceremony_id)
        .u64(c.epoch)
        .str(c.attestation_id)
        .str(c.custodian_id)
        .field(c.public_key)
        .u64(c.expires_at)
        .finish()
}

/// The challenge's digest: the associated data the sealed share is bound to,
/// and what the custodian's attestation signature names.
pub fn attestation_digest(c: &Challenge<'_>) -> [u8; 32] {
    Sha256::digest(attestation_challenge(c)).into()
}

/// What a custodian signs to attest: the challenge (by id and digest) and the
/// sealed share itself (by its SHA-256).
pub fn attest_share(
    daemon_id: &str,
    attestation_id: &str,
    digest: &[u8; 32],
    custodian_id: &str,
    sealed_share: &[u8],
    signed_at: u64,
) -> Vec<u8> {
    let sealed_hash: [u8; 32] = Sha256::digest(sealed_share).into();
    Payload::new(DOMAIN_ATTEST_SHARE)
        .str(daemon_id)
        .str(attestation_id)
        .field(digest)
        .str(custodian_id)
        .field(&sealed_hash)
        .u64(signed_at)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge() -> Challenge<'static> {
        Challenge {
            daemon_id: "d1",
            ceremony_id: "cer",
            epoch: 1,
            attestation_id: "att-1",
            custodian_id: "alice",
            public_key: &[5u8; 32],
            expires_at: 9,
        }
    }

    /// Invariant 4: the attestation payloads are pinned, and every field of a
    /// challenge changes its digest.
    #[test]
    fn pinned_bytes_and_binding() {
        let d = attestation_digest(&challenge());
        let pinned: Vec<String> = [
            start_attestation("d1", "alice", 5),
            attestation_challenge(&challenge()),
            attest_share("d1", "att-1", &d, "alice", b"sealed", 5),
        ]
        .iter()
        .map(|b| hex::encode(Sha256::digest(b)))
        .collect();
        assert_eq!(
            pinned,
            vec![
                "62d1893743796cdc6877ca84d145b826fa3d80c0b50642a145ca47ae28f180fd",
                "e3369027a237c5456a3bec3bf319cb5be2ceb1139855a7cca723f0e7c5da95aa",
                "5b2b00340b2b7ab7f3350fed8455a6c3ffb1c469ecebb66ea06b9458153b5cd0",
            ]
        );
        let k = [6u8; 32];
        let variants = [
            Challenge {
                daemon_id: "d2",
                ..challenge()
            },
            Challenge {
                ceremony_id: "c2",
                ..challenge()
            },
            Challenge {
                epoch: 2,
                ..challenge()
            },
            Challenge {
                attestation_id: "att-2",
                ..challenge()
            },
            Challenge {
                custodian_id: "bob",
                ..challenge()
            },
            Challenge {
                public_key: &k,
                ..challenge()
            },
            Challenge {
                expires_at: 10,
                ..challenge()
            },
        ];
        for v in variants {
            assert_ne!(attestation_digest(&v), d, "{v:?}");
        }
    }
}
