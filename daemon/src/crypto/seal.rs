//! The seal: S encrypted under K_R = HKDF-SHA256(R, "breakglass/v1/seal") with
//! XChaCha20-Poly1305, associated data `ceremony id ‖ epoch ‖ policy digest`.
//! The AEAD tag proves a reconstruction is right (invariant 8: the disk alone
//! cannot mint, and neither can the shares without it), and that the seal is
//! this epoch's under this policy: a seal moved to another epoch or policy
//! does not open. Epoch 1 leaves its number out (`ceremony id ‖ policy
//! digest`, the layout of every seal made before epochs), so a state made by
//! an earlier version opens unchanged.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::secret::{AuthoritySeed, RootKey};
use crate::error::{Error, Result};

/// HKDF info for K_R.
pub const SEAL_INFO: &[u8] = b"breakglass/v1/seal";
const NONCE_LEN: usize = 24;

fn seal_key(root: &RootKey) -> Zeroizing<[u8; 32]> {
    let hk = Hkdf::<Sha256>::new(None, root.expose());
    let mut k = Zeroizing::new([0u8; 32]);
    // 32 bytes is within HKDF-SHA256's output limit, so expand cannot fail.
    #[allow(clippy::expect_used)]
    hk.expand(SEAL_INFO, k.as_mut())
        .expect("32-byte HKDF output");
    k
}

/// What a seal is bound to (its associated data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    /// The ceremony that made S.
    pub ceremony_id: &'a str,
    /// The epoch whose R seals it.
    pub epoch: u64,
    /// The epoch's policy digest.
    pub policy_digest: &'a [u8; 32],
}

/// `len(ceremony id) (4, BE) ‖ ceremony id ‖ epoch (8, BE) ‖ policy digest (32)`,
/// without the epoch for epoch 1. The lengths differ (44 and 36 bytes after the
/// id), so no binding of one layout is a binding of the other.
fn aad(b: &Binding<'_>) -> Vec<u8> {
    let mut a = Vec::with_capacity(b.ceremony_id.len() + 44);
    a.extend_from_slice(
        &u32::try_from(b.ceremony_id.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    a.extend_from_slice(b.ceremony_id.as_bytes());
    if b.epoch != breakglass_proto::signing::FIRST_EPOCH {
        a.extend_from_slice(&b.epoch.to_be_bytes());
    }
    a.extend_from_slice(b.policy_digest);
    a
}

/// Seals S under R: `nonce (24) ‖ ciphertext ‖ tag`.
pub fn seal(root: &RootKey, seed: &AuthoritySeed, binding: &Binding<'_>) -> Result<Vec<u8>> {
    let key = seal_key(root);
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let mut nonce = [0u8; NONCE_LEN];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: seed.expose(),
                aad: &aad(binding),
            },
        )
        .map_err(|_| Error::Internal("sealing the authority seed failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens the seal with a rebuilt R. Fails if R, the ceremony, the epoch or the policy differ.
pub fn unseal(root: &RootKey, sealed: &[u8], binding: &Binding<'_>) -> Result<AuthoritySeed> {
    if sealed.len() != NONCE_LEN + 32 + 16 {
        return Err(Error::Reconstruction(format!(
            "the stored seal is {} bytes, expected 72",
            sealed.len()
        )));
    }
    let key = seal_key(root);
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let pt = Zeroizing::new(
        cipher
            .decrypt(
                XNonce::from_slice(&sealed[..NONCE_LEN]),
                Payload {
                    msg: &sealed[NONCE_LEN..],
                    aad: &aad(binding),
                },
            )
            .map_err(|_| {
                Error::Reconstruction(
                    "authentication failed: wrong root key, ceremony, epoch or policy".into(),
                )
            })?,
    );
    let mut s = Zeroizing::new([0u8; 32]);
    s.copy_from_slice(&pt);
    Ok(AuthoritySeed(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b<'a>(ceremony_id: &'a str, epoch: u64, policy_digest: &'a [u8; 32]) -> Binding<'a> {
        Binding {
            ceremony_id,
            epoch,
            policy_digest,
        }
    }

    /// Invariant 8: only the right R, ceremony, epoch and policy open the seal.
    #[test]
    fn seal_opens_only_with_same_root_ceremony_epoch_policy() {
        let r = RootKey::generate();
        let s = AuthoritySeed::generate();
        let sealed = seal(&r, &s, &b("cer", 1, &[1; 32])).unwrap();
        assert_eq!(
            unseal(&r, &sealed, &b("cer", 1, &[1; 32]))
                .unwrap()
                .expose(),
            s.expose()
        );
        assert!(unseal(&RootKey::generate(), &sealed, &b("cer", 1, &[1; 32])).is_err());
        assert!(unseal(&r, &sealed, &b("cer2", 1, &[1; 32])).is_err());
        assert!(unseal(&r, &sealed, &b("cer", 2, &[1; 32])).is_err());
        assert!(unseal(&r, &sealed, &b("cer", 1, &[2; 32])).is_err());
        assert!(unseal(&r, &sealed[1..], &b("cer", 1, &[1; 32])).is_err());
    }

    /// The associated data's bytes, pinned: a seal written by one version
    /// must open in the next.
    #[test]
    fn associated_data_is_pinned() {
        let a = aad(&b("cer", 2, &[0xab; 32]));
        let mut want = vec![0, 0, 0, 3];
        want.extend_from_slice(b"cer");
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2]);
        want.extend_from_slice(&[0xab; 32]);
        assert_eq!(a, want);
        // Epoch 1: the layout of seals made before epochs.
        let first = aad(&b("cer", 1, &[0xab; 32]));
        let mut legacy = vec![0, 0, 0, 3];
        legacy.extend_from_slice(b"cer");
        legacy.extend_from_slice(&[0xab; 32]);
        assert_eq!(first, legacy);
    }
}
