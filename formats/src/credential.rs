//! The credential bundle (what `breakglass credential fetch` writes: a PASETO
//! v4.public token and/or an OpenSSH user certificate, as the scope says) and
//! offline verification of the token against the authority key A.
//!
//! Claims: `iss` (`breakglass:<daemon id>`), `sub` (requester), `scope`,
//! `principals`, `jti` (request id), `iat`, `nbf`, `exp`, `approvers`,
//! `reason_sha256`. Minting lives in the daemon, the only holder of A's private half.

use pasetors::claims::Claims;
use pasetors::keys::AsymmetricPublicKey;
use pasetors::token::UntrustedToken;
use pasetors::version4::V4;
use pasetors::Public;
use serde::{Deserialize, Serialize};

use crate::keys::AuthorityPublic;

/// Format tag of the credential bundle.
pub const BUNDLE_FORMAT: &str = "breakglass-credential/v1";

/// The credential as delivered to the requester (inside age encryption).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialBundle {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    /// Request id.
    pub request_id: String,
    /// Daemon id.
    pub daemon_id: String,
    /// Requester.
    pub requester: String,
    /// Scope.
    pub scope: String,
    /// SSH principals.
    pub principals: Vec<String>,
    /// Issue time.
    pub issued_at: u64,
    /// Expiry.
    pub expires_at: u64,
    /// Approvers.
    pub approvers: Vec<String>,
    /// Hex authority public key.
    pub authority_public_key: String,
    /// The PASETO v4.public token, if the scope mints tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paseto: Option<String>,
    /// The OpenSSH user certificate (`…-cert.pub` line), if the scope mints SSH certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_certificate: Option<String>,
    /// The certificate's serial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_serial: Option<u64>,
    /// The certificate's key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key_id: Option<String>,
}

impl CredentialBundle {
    /// Kinds present, for the audit log.
    pub fn kinds(&self) -> Vec<String> {
        let mut k = Vec::new();
        if self.ssh_certificate.is_some() {
            k.push("ssh".to_string());
        }
        if self.paseto.is_some() {
            k.push("token".to_string());
        }
        k
    }
}

/// Claims of a token that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `jti`.
    pub request_id: String,
    /// `scope`.
    pub scope: String,
    /// `approvers`.
    pub approvers: Vec<String>,
    /// `principals`.
    pub principals: Vec<String>,
    /// `iat`.
    pub issued_at: u64,
    /// `nbf`.
    pub not_before: u64,
    /// `exp`.
    pub expires_at: u64,
    /// `reason_sha256`.
    pub reason_sha256: String,
}

/// Why a token did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a `v4.public.` token.
    #[error("not a PASETO v4.public token")]
    Format,
    /// The signature does not verify against the authority key.
    #[error("signature does not verify against the authority key: the token was altered or signed by another authority")]
    Signature,
    /// A required claim is missing or has the wrong type.
    #[error("claim `{0}` is missing or malformed")]
    Claim(&'static str),
    /// Used before `nbf`.
    #[error("not valid yet: valid from {} (nbf)", crate::time::when(*.nbf, *.now))]
    NotYetValid {
        /// nbf.
        nbf: u64,
        /// now.
        now: u64,
    },
    /// Used after `exp`.
    #[error("expired at {}", crate::time::when(*.exp, *.now))]
    Expired {
        /// exp.
        exp: u64,
        /// now.
        now: u64,
    },
}

/// Verifies a token offline against A at time `now`: signature, then `nbf` and `exp`.
pub fn verify(
    authority: &AuthorityPublic,
    token: &str,
    now: u64,
) -> Result<VerifiedToken, VerifyError> {
    let pk = AsymmetricPublicKey::<V4>::from(authority.0.as_bytes())
        .map_err(|_| VerifyError::Signature)?;
    let untrusted =
        UntrustedToken::<Public, V4>::try_from(token.trim()).map_err(|_| VerifyError::Format)?;
    // Signature only: pasetors' claim validation checks `exp` against the wall clock
    // even when told not to validate times, which would report an expired token as a
    // forged one and ignore `now`. Times are checked below, against `now`.
    let trusted = pasetors::version4::PublicToken::verify(&pk, &untrusted, None, None)
        .map_err(|_| VerifyError::Signature)?;
    let claims =
        Claims::from_string(trusted.payload()).map_err(|_| VerifyError::Claim("payload"))?;
    let s = |name: &'static str| -> Result<String, VerifyError> {
        claims
            .get_claim(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or(VerifyError::Claim(name))
    };
    let t = |name: &'static str| -> Result<u64, VerifyError> {
        crate::time::unix(&s(name)?).ok_or(VerifyError::Claim(name))
    };
    let list = |name: &'static str| -> Result<Vec<String>, VerifyError> {
        claims
            .get_claim(name)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .ok_or(VerifyError::Claim(name))
    };
    let v = VerifiedToken {
        issuer: s("iss")?,
        subject: s("sub")?,
        request_id: s("jti")?,
        scope: s("scope")?,
        approvers: list("approvers")?,
        principals: list("principals")?,
        issued_at: t("iat")?,
        not_before: t("nbf")?,
        expires_at: t("exp")?,
        reason_sha256: s("reason_sha256")?,
    };
    if now < v.not_before {
        return Err(VerifyError::NotYetValid {
            nbf: v.not_before,
            now,
        });
    }
    if now >= v.expires_at {
        return Err(VerifyError::Expired {
            exp: v.expires_at,
            now,
        });
    }
    Ok(v)
}
