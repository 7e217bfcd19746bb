//! The authority key A: an ed25519 key derived from the seed S. Its public half
//! is what downstream systems trust; its private half exists only while minting.

use ed25519_dalek::{SigningKey, VerifyingKey};

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::secret::AuthoritySeed;

/// HKDF info for A's ed25519 seed.
pub const AUTHORITY_INFO: &[u8] = b"breakglass/v1/authority/ed25519";

/// A's signing key. `SigningKey` wipes itself on drop.
pub struct AuthorityKey(SigningKey);

impl AuthorityKey {
    /// Derives A from S.
    pub fn derive(seed: &AuthoritySeed) -> AuthorityKey {
        let hk = Hkdf::<Sha256>::new(None, seed.expose());
        let mut a = Zeroizing::new([0u8; 32]);
        // 32 bytes is within HKDF-SHA256's output limit, so expand cannot fail.
        #[allow(clippy::expect_used)]
        hk.expand(AUTHORITY_INFO, a.as_mut())
            .expect("32-byte HKDF output");
        AuthorityKey(SigningKey::from_bytes(&a))
    }

    /// The public half.
    pub fn public(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    /// The signing key, for minting inside this crate.
    pub(crate) fn signing(&self) -> &SigningKey {
        &self.0
    }
}
