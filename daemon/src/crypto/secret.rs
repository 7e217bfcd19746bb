//! Secret types: no `Debug`, no `Clone`, wiped on drop.

use zeroize::Zeroizing;

/// The root emergency key R (32 bytes). Exists only during a ceremony or an unlock.
pub struct RootKey(pub(crate) Zeroizing<[u8; 32]>);

/// The authority seed S (32 bytes). On disk only inside the seal.
pub struct AuthoritySeed(pub(crate) Zeroizing<[u8; 32]>);

impl RootKey {
    /// A fresh random root key.
    pub fn generate() -> RootKey {
        let mut k = Zeroizing::new([0u8; 32]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, k.as_mut());
        RootKey(k)
    }

    /// The key bytes, for splitting and derivation inside this crate.
    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl AuthoritySeed {
    /// A fresh random seed.
    pub fn generate() -> AuthoritySeed {
        let mut k = Zeroizing::new([0u8; 32]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, k.as_mut());
        AuthoritySeed(k)
    }

    /// The seed bytes, for sealing and derivation inside this crate.
    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}
