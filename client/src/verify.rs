//! Offline verification of a credential against the authority public key A,
//! with no daemon involved: what a downstream system does.

use breakglass_daemon::crypto::authority::AuthorityPublic;
use breakglass_daemon::crypto::credential::{self, CredentialBundle, VerifiedToken};

use crate::error::{ClientError, Result};

/// Parses A from `k4.public.…` (PASERK), `ssh-ed25519 …`, or 64 hex digits.
pub fn parse_authority(s: &str) -> Result<AuthorityPublic> {
    let s = s.trim();
    let bad = |why: String| ClientError::Other(format!("authority key {s:?}: {why}"));
    if s.starts_with("k4.public.") {
        let k = pasetors::keys::AsymmetricPublicKey::<pasetors::version4::V4>::try_from(s)
            .map_err(|e| bad(format!("not a PASERK k4.public key: {e:?}")))?;
        return AuthorityPublic::from_bytes(k.as_bytes()).map_err(|e| bad(e.to_string()));
    }
    if s.starts_with("ssh-ed25519 ") {
        let (k, _) = breakglass_daemon::engine::policy::parse_ssh_ed25519("authority", s)
            .map_err(|e| bad(e.to_string()))?;
        return Ok(AuthorityPublic(k));
    }
    let mut b = [0u8; 32];
    hex::decode_to_slice(s, &mut b).map_err(|_| {
        bad(
            "expected k4.public.…, ssh-ed25519 … or 64 hex digits (`breakglass info` prints it)"
                .into(),
        )
    })?;
    AuthorityPublic::from_bytes(&b).map_err(|e| bad(e.to_string()))
}

/// Extracts the token from a bundle file's JSON or a bare token.
pub fn token_from(text: &str) -> Result<String> {
    let t = text.trim();
    if t.starts_with('{') {
        let b: CredentialBundle = serde_json::from_str(t)
            .map_err(|e| ClientError::Credential(format!("not a credential bundle: {e}")))?;
        Ok(b.paseto)
    } else {
        Ok(t.to_string())
    }
}

/// Verifies a token at `now`.
pub fn verify_token(authority: &AuthorityPublic, token: &str, now: u64) -> Result<VerifiedToken> {
    credential::verify(authority, token, now).map_err(|e| ClientError::Credential(e.to_string()))
}
