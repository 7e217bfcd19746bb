//! The authority key A: an ed25519 key derived from the seed S. Its public half
//! is what downstream systems trust; its private half exists only while minting.

use ed25519_dalek::{SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::secret::AuthoritySeed;
use crate::error::{Error, Result};

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

/// A's public key in the forms downstream systems use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorityPublic(pub VerifyingKey);

impl AuthorityPublic {
    /// From 32 raw bytes.
    pub fn from_bytes(b: &[u8]) -> Result<AuthorityPublic> {
        let arr: [u8; 32] = b.try_into().map_err(|_| {
            Error::invalid(
                "authority_public_key",
                format!("is {} bytes, expected 32", b.len()),
            )
        })?;
        VerifyingKey::from_bytes(&arr)
            .map(AuthorityPublic)
            .map_err(|e| Error::invalid("authority_public_key", format!("not an ed25519 key: {e}")))
    }

    /// `k4.public.…` (PASERK).
    pub fn paserk(&self) -> String {
        use pasetors::paserk::FormatAsPaserk;
        let mut s = String::new();
        match pasetors::keys::AsymmetricPublicKey::<pasetors::version4::V4>::from(self.0.as_bytes())
        {
            Ok(k) => {
                let _ = k.fmt(&mut s);
            }
            Err(_) => s.push_str("invalid"),
        }
        s
    }

    /// `ssh-ed25519 AAAA… breakglass-authority`, for `TrustedUserCAKeys`.
    pub fn ssh(&self) -> String {
        let kd =
            ssh_key::public::KeyData::Ed25519(ssh_key::public::Ed25519PublicKey(self.0.to_bytes()));
        let pk = ssh_key::PublicKey::new(kd, "breakglass-authority");
        pk.to_openssh().unwrap_or_default()
    }
}
