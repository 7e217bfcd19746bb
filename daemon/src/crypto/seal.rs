//! The seal: S encrypted under K_R = HKDF-SHA256(R, "breakglass/v1/seal") with
//! XChaCha20-Poly1305, associated data `ceremony id ‖ policy digest`. The AEAD
//! tag proves a reconstruction is right (invariant 8: the disk alone cannot
//! mint, and neither can the shares without it).

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

fn aad(ceremony_id: &str, policy_digest: &[u8; 32]) -> Vec<u8> {
    let mut a = Vec::with_capacity(ceremony_id.len() + 36);
    a.extend_from_slice(
        &u32::try_from(ceremony_id.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    a.extend_from_slice(ceremony_id.as_bytes());
    a.extend_from_slice(policy_digest);
    a
}

/// Seals S under R: `nonce (24) ‖ ciphertext ‖ tag`.
pub fn seal(
    root: &RootKey,
    seed: &AuthoritySeed,
    ceremony_id: &str,
    policy_digest: &[u8; 32],
) -> Result<Vec<u8>> {
    let key = seal_key(root);
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let mut nonce = [0u8; NONCE_LEN];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: seed.expose(),
                aad: &aad(ceremony_id, policy_digest),
            },
        )
        .map_err(|_| Error::Internal("sealing the authority seed failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens the seal with a rebuilt R. Fails if R, the ceremony or the policy differ.
pub fn unseal(
    root: &RootKey,
    sealed: &[u8],
    ceremony_id: &str,
    policy_digest: &[u8; 32],
) -> Result<AuthoritySeed> {
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
                    aad: &aad(ceremony_id, policy_digest),
                },
            )
            .map_err(|_| {
                Error::Reconstruction(
                    "authentication failed: wrong root key, ceremony or policy".into(),
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

    /// Invariant 8: only the right R, ceremony and policy open the seal.
    #[test]
    fn seal_opens_only_with_same_root_ceremony_policy() {
        let r = RootKey::generate();
        let s = AuthoritySeed::generate();
        let sealed = seal(&r, &s, "cer", &[1; 32]).unwrap();
        assert_eq!(
            unseal(&r, &sealed, "cer", &[1; 32]).unwrap().expose(),
            s.expose()
        );
        assert!(unseal(&RootKey::generate(), &sealed, "cer", &[1; 32]).is_err());
        assert!(unseal(&r, &sealed, "cer2", &[1; 32]).is_err());
        assert!(unseal(&r, &sealed, "cer", &[2; 32]).is_err());
        assert!(unseal(&r, &sealed[1..], "cer", &[1; 32]).is_err());
    }
}
