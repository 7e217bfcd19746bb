//! Minting the credential bundle (PASETO v4.public token and/or OpenSSH user
//! certificate, as the scope says) and offline verification of the token.
//!
//! Claims: `iss` (`breakglass:<daemon id>`), `sub` (requester), `scope`,
//! `principals`, `jti` (request id), `iat`, `nbf`, `exp`, `approvers`,
//! `reason_sha256`. `exp` is `iat + ttl`, and the TTL was checked against the
//! policy cap when the request opened (invariant 7).

use pasetors::claims::Claims;
use pasetors::keys::{AsymmetricPublicKey, AsymmetricSecretKey};
use pasetors::token::UntrustedToken;
use pasetors::version4::V4;
use pasetors::{public, Public};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::authority::{AuthorityKey, AuthorityPublic};
use crate::error::{Error, Result};

/// Format tag of the credential bundle.
pub const BUNDLE_FORMAT: &str = "breakglass-credential/v1";

/// What gets minted for one request.
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    /// Daemon id (issuer).
    pub daemon_id: &'a str,
    /// Request id (`jti`).
    pub request_id: &'a str,
    /// Requester (`sub`).
    pub requester: &'a str,
    /// Scope.
    pub scope: &'a str,
    /// SSH principals of the scope.
    pub principals: &'a [String],
    /// Reason (only its SHA-256 goes in the token).
    pub reason: &'a str,
    /// Approving custodians.
    pub approvers: &'a [String],
    /// Issue time.
    pub now: u64,
    /// Lifetime.
    pub ttl_seconds: u64,
    /// Mint a PASETO token.
    pub token: bool,
    /// Mint an OpenSSH certificate for this key.
    pub ssh: Option<SshParams<'a>>,
}

/// SSH certificate parameters of a grant.
#[derive(Debug, Clone)]
pub struct SshParams<'a> {
    /// The requester's OpenSSH public key.
    pub public_key: &'a str,
    /// Extensions from the scope.
    pub extensions: &'a [String],
    /// How far `valid_after` is backdated.
    pub clock_skew: u64,
}

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

fn rfc3339(t: u64) -> Result<String> {
    let secs = i64::try_from(t).map_err(|_| Error::Internal(format!("time {t} out of range")))?;
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .ok_or_else(|| Error::Internal(format!("time {t} cannot be formatted")))
}

fn unix(s: &str) -> Option<u64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .and_then(|d| u64::try_from(d.unix_timestamp()).ok())
}

/// Mints what the grant asks for with A and returns the bundle.
pub fn mint(a: &AuthorityKey, g: &Grant<'_>) -> Result<CredentialBundle> {
    let expires_at = g.now.saturating_add(g.ttl_seconds);
    let paseto = if g.token {
        Some(mint_token(a, g, expires_at)?)
    } else {
        None
    };
    let (ssh_certificate, ssh_serial, ssh_key_id) = match &g.ssh {
        Some(s) => {
            let key_id = super::sshcert::key_id(g.request_id, g.requester);
            let serial = super::sshcert::serial_for(g.request_id);
            let cert = super::sshcert::mint(
                a,
                &super::sshcert::SshGrant {
                    public_key: s.public_key,
                    principals: g.principals,
                    extensions: s.extensions,
                    key_id: key_id.clone(),
                    serial,
                    valid_after: g.now.saturating_sub(s.clock_skew),
                    valid_before: expires_at,
                },
            )?;
            (Some(cert), Some(serial), Some(key_id))
        }
        None => (None, None, None),
    };
    if paseto.is_none() && ssh_certificate.is_none() {
        return Err(Error::Internal("the grant asks for no credential".into()));
    }
    Ok(CredentialBundle {
        format: BUNDLE_FORMAT.to_string(),
        request_id: g.request_id.to_string(),
        daemon_id: g.daemon_id.to_string(),
        requester: g.requester.to_string(),
        scope: g.scope.to_string(),
        principals: g.principals.to_vec(),
        issued_at: g.now,
        expires_at,
        approvers: g.approvers.to_vec(),
        authority_public_key: hex::encode(a.public().as_bytes()),
        paseto,
        ssh_certificate,
        ssh_serial,
        ssh_key_id,
    })
}

fn mint_token(a: &AuthorityKey, g: &Grant<'_>, expires_at: u64) -> Result<String> {
    let err =
        |e: pasetors::errors::Error| Error::Internal(format!("building the token failed: {e:?}"));
    let mut claims = Claims::new().map_err(err)?;
    claims
        .issuer(&format!("breakglass:{}", g.daemon_id))
        .map_err(err)?;
    claims.subject(g.requester).map_err(err)?;
    claims.token_identifier(g.request_id).map_err(err)?;
    claims.issued_at(&rfc3339(g.now)?).map_err(err)?;
    claims.not_before(&rfc3339(g.now)?).map_err(err)?;
    claims.expiration(&rfc3339(expires_at)?).map_err(err)?;
    claims.add_additional("scope", g.scope).map_err(err)?;
    claims
        .add_additional("principals", g.principals.to_vec())
        .map_err(err)?;
    claims
        .add_additional("approvers", g.approvers.to_vec())
        .map_err(err)?;
    claims
        .add_additional(
            "reason_sha256",
            hex::encode(Sha256::digest(g.reason.as_bytes())),
        )
        .map_err(err)?;

    // seed ‖ public, as pasetors wants it; wiped here and inside the key on drop.
    let mut sk_bytes = Zeroizing::new([0u8; 64]);
    // Borrowed, not `to_bytes()`: that would leave an unwiped copy of the seed on the stack.
    sk_bytes[..32].copy_from_slice(a.signing().as_bytes());
    sk_bytes[32..].copy_from_slice(a.public().as_bytes());
    let sk = AsymmetricSecretKey::<V4>::from(sk_bytes.as_slice()).map_err(err)?;
    let token = public::sign(&sk, &claims, None, None).map_err(err)?;
    drop(sk);
    Ok(token)
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
    #[error("not valid yet: nbf is {nbf}, now is {now}")]
    NotYetValid {
        /// nbf.
        nbf: u64,
        /// now.
        now: u64,
    },
    /// Used after `exp`.
    #[error("expired at {exp} (now {now})")]
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
        unix(&s(name)?).ok_or(VerifyError::Claim(name))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::secret::AuthoritySeed;

    fn grant<'a>(principals: &'a [String], approvers: &'a [String]) -> Grant<'a> {
        Grant {
            daemon_id: "d1",
            request_id: "req-1",
            requester: "ic",
            scope: "prod-ssh",
            principals,
            reason: "db down",
            approvers,
            now: 1_800_000_000,
            ttl_seconds: 600,
            token: true,
            ssh: None,
        }
    }

    /// Invariant 7: the token carries exp = iat + ttl and fails after it; tampering fails the signature.
    #[test]
    fn mint_and_verify() {
        let a = AuthorityKey::derive(&AuthoritySeed::generate());
        let pubkey = AuthorityPublic(a.public());
        let principals = vec!["root".to_string()];
        let approvers = vec!["c1".to_string(), "c2".to_string()];
        let b = mint(&a, &grant(&principals, &approvers)).unwrap();
        assert!(b.ssh_certificate.is_none());
        let token = b.paseto.clone().unwrap();
        let v = verify(&pubkey, &token, 1_800_000_001).unwrap();
        assert_eq!(v.subject, "ic");
        assert_eq!(v.request_id, "req-1");
        assert_eq!(v.expires_at, 1_800_000_600);
        assert_eq!(v.approvers, approvers);
        assert_eq!(v.issuer, "breakglass:d1");
        assert!(matches!(
            verify(&pubkey, &token, 1_800_000_600),
            Err(VerifyError::Expired { .. })
        ));
        assert!(matches!(
            verify(&pubkey, &token, 1_799_999_999),
            Err(VerifyError::NotYetValid { .. })
        ));
        let other = AuthorityPublic(AuthorityKey::derive(&AuthoritySeed::generate()).public());
        assert_eq!(
            verify(&other, &token, 1_800_000_001),
            Err(VerifyError::Signature)
        );
        let mut tampered = token.clone().into_bytes();
        let i = tampered.len() - 20;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            verify(&pubkey, &tampered, 1_800_000_001),
            Err(VerifyError::Signature)
        );
        assert_eq!(verify(&pubkey, "v2.local.xyz", 1), Err(VerifyError::Format));
    }

    /// Invariant 7: expiry is judged against the `now` given, and an expired token is
    /// reported as expired, not as forged (pasetors' own check uses the wall clock).
    #[test]
    fn expiry_uses_the_given_time() {
        let a = AuthorityKey::derive(&AuthoritySeed::generate());
        let pubkey = AuthorityPublic(a.public());
        let principals = vec![];
        let approvers = vec!["c1".to_string()];
        let g = Grant {
            now: 1_000_000,
            ttl_seconds: 10,
            ..grant(&principals, &approvers)
        };
        let token = mint(&a, &g).unwrap().paseto.unwrap();
        assert_eq!(
            verify(&pubkey, &token, 1_000_005).unwrap().expires_at,
            1_000_010
        );
        let real_now = 1_900_000_000;
        assert_eq!(
            verify(&pubkey, &token, real_now),
            Err(VerifyError::Expired {
                exp: 1_000_010,
                now: real_now
            })
        );
    }

    /// Invariant 7: the SSH certificate expires with the token and starts `clock_skew` early.
    #[test]
    fn mint_ssh_only_and_both() {
        let a = AuthorityKey::derive(&AuthoritySeed::generate());
        let principals = vec!["root".to_string()];
        let approvers = vec!["c1".to_string()];
        let kp = ssh_key::private::Ed25519Keypair::from_seed(&[5u8; 32]);
        let key = ssh_key::PublicKey::from(kp.public).to_openssh().unwrap();
        let ext = vec!["permit-pty".to_string()];
        let ssh = SshParams {
            public_key: &key,
            extensions: &ext,
            clock_skew: 120,
        };
        let g = Grant {
            token: false,
            ssh: Some(ssh.clone()),
            ..grant(&principals, &approvers)
        };
        let b = mint(&a, &g).unwrap();
        assert!(b.paseto.is_none());
        assert_eq!(b.kinds(), vec!["ssh"]);
        let info = crate::crypto::sshcert::verify(
            &AuthorityPublic(a.public()),
            b.ssh_certificate.as_deref().unwrap(),
            g.now,
        )
        .unwrap();
        assert_eq!(info.valid_after, g.now - 120);
        assert_eq!(info.valid_before, b.expires_at);
        assert_eq!(Some(info.serial), b.ssh_serial);
        let both = mint(
            &a,
            &Grant {
                ssh: Some(ssh),
                ..grant(&principals, &approvers)
            },
        )
        .unwrap();
        assert_eq!(both.kinds(), vec!["ssh", "token"]);
        assert!(mint(
            &a,
            &Grant {
                token: false,
                ..grant(&principals, &approvers)
            }
        )
        .is_err());
    }
}
