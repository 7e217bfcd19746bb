//! Share transport: how a custodian's share travels to the daemon.
//!
//! The custodian seals the share to the request's ephemeral X25519 key E_req:
//! a fresh sender key pair, X25519 agreement, HKDF-SHA256 bound to both public
//! keys, the request id and the custodian id, then XChaCha20-Poly1305 with the
//! request digest as associated data. Only the daemon holding E_req for that
//! request can open it, and only until the request closes and E_req is wiped
//! (forward secrecy).
//!
//! Wire layout: `version (1) ‖ sender public key (32) ‖ nonce (24) ‖ ciphertext ‖ tag (16)`.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// Wire format version.
pub const VERSION: u8 = 1;
/// Length of a plaintext share: `x (1) ‖ y (32)`.
pub const SHARE_LEN: usize = 33;
const HEADER_LEN: usize = 1 + 32 + 24;
const TAG_LEN: usize = 16;
/// Exact length of a sealed share on the wire.
pub const SEALED_LEN: usize = HEADER_LEN + SHARE_LEN + TAG_LEN;
const INFO: &str = "breakglass/v1/share-transport";

/// Why a sealed share could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The sealed share is not `SEALED_LEN` bytes or has an unknown version.
    #[error("sealed share is {got} bytes with version {version}; expected {SEALED_LEN} bytes with version {VERSION} (seal it with `breakglass share submit`)")]
    Malformed {
        /// Length received.
        got: usize,
        /// Version byte received (0 if empty).
        version: u8,
    },
    /// The sender key is a low-order point, so the agreement has no contribution from it.
    #[error("sealed share uses a degenerate sender key")]
    DegenerateKey,
    /// Authentication failed: sealed for another request, another custodian, or altered.
    #[error("sealed share does not open with this request's key: it was sealed for another request or custodian, or altered")]
    Decrypt,
}

fn derive_key(
    shared: &[u8; 32],
    sender: &[u8; 32],
    receiver: &[u8; 32],
    request_id: &str,
    custodian_id: &str,
) -> Zeroizing<[u8; 32]> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(sender);
    salt[32..].copy_from_slice(receiver);
    let hk = Hkdf::<Sha256>::new(Some(&salt), shared);
    let mut info = Vec::with_capacity(INFO.len() + request_id.len() + custodian_id.len() + 8);
    for part in [INFO, request_id, custodian_id] {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        info.extend_from_slice(&len.to_be_bytes());
        info.extend_from_slice(part.as_bytes());
    }
    let mut key = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 255 * 32 limit, so expand cannot fail.
    #[allow(clippy::expect_used)]
    hk.expand(&info, key.as_mut())
        .expect("32 bytes is a valid HKDF output length");
    key
}

/// Seals `share` (33 bytes) to the request's ephemeral public key.
pub fn seal_share(
    ephemeral_public: &[u8; 32],
    digest: &[u8; 32],
    request_id: &str,
    custodian_id: &str,
    share: &[u8],
    mut rng: impl RngCore + CryptoRng,
) -> Result<Vec<u8>, TransportError> {
    if share.len() != SHARE_LEN {
        return Err(TransportError::Malformed {
            got: share.len(),
            version: VERSION,
        });
    }
    let sender = StaticSecret::random_from_rng(&mut rng);
    let sender_pub = PublicKey::from(&sender);
    let shared = sender.diffie_hellman(&PublicKey::from(*ephemeral_public));
    if !shared.was_contributory() {
        return Err(TransportError::DegenerateKey);
    }
    let key = derive_key(
        shared.as_bytes(),
        sender_pub.as_bytes(),
        ephemeral_public,
        request_id,
        custodian_id,
    );
    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: share,
                aad: digest,
            },
        )
        .map_err(|_| TransportError::Decrypt)?;
    let mut out = Vec::with_capacity(SEALED_LEN);
    out.push(VERSION);
    out.extend_from_slice(sender_pub.as_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// The cheap shape check of a sealed share (length and version), made before
/// anything costlier; [`open_share`] makes it too, so no other check exists.
pub fn check_sealed(sealed: &[u8]) -> Result<(), TransportError> {
    let version = sealed.first().copied().unwrap_or(0);
    if sealed.len() != SEALED_LEN || version != VERSION {
        return Err(TransportError::Malformed {
            got: sealed.len(),
            version,
        });
    }
    Ok(())
}

/// Opens a sealed share with the request's ephemeral secret. The plaintext is
/// wiped when the returned buffer drops.
pub fn open_share(
    ephemeral_secret: &StaticSecret,
    digest: &[u8; 32],
    request_id: &str,
    custodian_id: &str,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, TransportError> {
    check_sealed(sealed)?;
    let mut sender = [0u8; 32];
    sender.copy_from_slice(&sealed[1..33]);
    let nonce = XNonce::from_slice(&sealed[33..HEADER_LEN]);
    let shared = ephemeral_secret.diffie_hellman(&PublicKey::from(sender));
    if !shared.was_contributory() {
        return Err(TransportError::DegenerateKey);
    }
    let receiver = PublicKey::from(ephemeral_secret);
    let key = derive_key(
        shared.as_bytes(),
        &sender,
        receiver.as_bytes(),
        request_id,
        custodian_id,
    );
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    cipher
        .decrypt(
            nonce,
            Payload {
                msg: &sealed[HEADER_LEN..],
                aad: digest,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| TransportError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn setup() -> (StaticSecret, [u8; 32]) {
        let s = StaticSecret::random_from_rng(OsRng);
        let p = PublicKey::from(&s).to_bytes();
        (s, p)
    }

    #[test]
    fn round_trip() {
        let (s, p) = setup();
        let share = [5u8; SHARE_LEN];
        let sealed = seal_share(&p, &[1; 32], "req-1", "alice", &share, OsRng).unwrap();
        assert_eq!(sealed.len(), SEALED_LEN);
        let opened = open_share(&s, &[1; 32], "req-1", "alice", &sealed).unwrap();
        assert_eq!(opened.as_slice(), &share);
    }

    /// Invariant 4: a sealed share opens only for the request, digest and custodian it was sealed for.
    #[test]
    fn bound_to_request_digest_and_custodian() {
        let (s, p) = setup();
        let share = [5u8; SHARE_LEN];
        let sealed = seal_share(&p, &[1; 32], "req-1", "alice", &share, OsRng).unwrap();
        assert_eq!(
            open_share(&s, &[2; 32], "req-1", "alice", &sealed),
            Err(TransportError::Decrypt)
        );
        assert_eq!(
            open_share(&s, &[1; 32], "req-2", "alice", &sealed),
            Err(TransportError::Decrypt)
        );
        assert_eq!(
            open_share(&s, &[1; 32], "req-1", "bob", &sealed),
            Err(TransportError::Decrypt)
        );
        let (other, _) = setup();
        assert_eq!(
            open_share(&other, &[1; 32], "req-1", "alice", &sealed),
            Err(TransportError::Decrypt)
        );
        let mut flipped = sealed.clone();
        flipped[60] ^= 1;
        assert_eq!(
            open_share(&s, &[1; 32], "req-1", "alice", &flipped),
            Err(TransportError::Decrypt)
        );
    }

    #[test]
    fn rejects_wrong_length_and_version() {
        let (s, p) = setup();
        let sealed = seal_share(&p, &[1; 32], "r", "a", &[5u8; SHARE_LEN], OsRng).unwrap();
        let short = &sealed[..sealed.len() - 1];
        assert!(matches!(
            open_share(&s, &[1; 32], "r", "a", short),
            Err(TransportError::Malformed { .. })
        ));
        let mut v2 = sealed.clone();
        v2[0] = 2;
        assert!(matches!(
            open_share(&s, &[1; 32], "r", "a", &v2),
            Err(TransportError::Malformed { version: 2, .. })
        ));
        assert!(matches!(
            open_share(&s, &[1; 32], "r", "a", &[]),
            Err(TransportError::Malformed { got: 0, .. })
        ));
        assert!(seal_share(&p, &[1; 32], "r", "a", &[5u8; 32], OsRng).is_err());
    }

    #[test]
    fn rejects_low_order_sender() {
        let (s, _) = setup();
        let mut sealed = vec![VERSION];
        sealed.extend_from_slice(&[0u8; 32]);
        sealed.resize(SEALED_LEN, 0);
        assert_eq!(
            open_share(&s, &[1; 32], "r", "a", &sealed),
            Err(TransportError::DegenerateKey)
        );
    }
}
