//! Minting the credential bundle (PASETO v4.public token and/or OpenSSH user
//! certificate, as the scope says) with the authority key A. The bundle's
//! format and its offline verification live in `breakglass_formats::credential`.
//!
//! `exp` is `iat + ttl`, and the TTL was checked against the policy cap when
//! the request opened (invariant 7).

use pasetors::claims::Claims;
use pasetors::keys::AsymmetricSecretKey;
use pasetors::public;
use pasetors::version4::V4;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::authority::AuthorityKey;
use crate::error::{Error, Result};
use breakglass_formats::credential::{CredentialBundle, BUNDLE_FORMAT};
use breakglass_formats::sshcert::{key_id, serial_for};

fn rfc3339(t: u64) -> Result<String> {
    breakglass_formats::time::rfc3339(t)
        .ok_or_else(|| Error::Internal(format!("time {t} cannot be formatted")))
}

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
    /// How far the start of validity is backdated, for verifiers whose clock is
    /// behind the daemon's: the token's `iat`/`nbf` and the certificate's
    /// `valid_after` are `now - clock_skew`; the end stays `now + ttl`.
    pub clock_skew: u64,
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
}

/// Mints what the grant asks for with A and returns the bundle.
pub fn mint(
    a: &AuthorityKey,
    rng: &mut dyn rand_core::CryptoRngCore,
    g: &Grant<'_>,
) -> Result<CredentialBundle> {
    let expires_at = g.now.saturating_add(g.ttl_seconds);
    let paseto = if g.token {
        Some(mint_token(a, g, expires_at)?)
    } else {
        None
    };
    let (ssh_certificate, ssh_serial, ssh_key_id) = match &g.ssh {
        Some(s) => {
            let key_id = key_id(g.request_id, g.requester);
            let serial = serial_for(g.request_id);
            let cert = super::sshcert::mint(
                a,
                rng,
                &super::sshcert::SshGrant {
                    public_key: s.public_key,
                    principals: g.principals,
                    extensions: s.extensions,
                    key_id: key_id.clone(),
                    serial,
                    valid_after: g.now.saturating_sub(g.clock_skew),
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
    // Backdated like the certificate: a verifier whose clock is up to
    // `clock_skew` behind the daemon's accepts the token at once.
    let start = rfc3339(g.now.saturating_sub(g.clock_skew))?;
    claims.issued_at(&start).map_err(err)?;
    claims.not_before(&start).map_err(err)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::secret::AuthoritySeed;
    use breakglass_formats::credential::{verify, VerifyError};
    use breakglass_formats::keys::AuthorityPublic;

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
            clock_skew: 120,
            token: true,
            ssh: None,
        }
    }

    /// Invariant 7: the token carries exp = now + ttl and fails after it, starts clock_skew
    /// early like the certificate; tampering fails the signature.
    #[test]
    fn mint_and_verify() {
        let a = AuthorityKey::derive(&AuthoritySeed::generate());
        let pubkey = AuthorityPublic(a.public());
        let principals = vec!["root".to_string()];
        let approvers = vec!["c1".to_string(), "c2".to_string()];
        let b = mint(&a, &mut rand_core::OsRng, &grant(&principals, &approvers)).unwrap();
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
        // Backdated by clock_skew (120 s): a verifier 120 s behind the daemon accepts it.
        assert_eq!(v.not_before, 1_800_000_000 - 120);
        assert_eq!(v.issued_at, 1_800_000_000 - 120);
        assert!(verify(&pubkey, &token, 1_800_000_000 - 120).is_ok());
        assert!(matches!(
            verify(&pubkey, &token, 1_800_000_000 - 121),
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
        let token = mint(&a, &mut rand_core::OsRng, &g).unwrap().paseto.unwrap();
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
        };
        let g = Grant {
            token: false,
            ssh: Some(ssh.clone()),
            ..grant(&principals, &approvers)
        };
        let b = mint(&a, &mut rand_core::OsRng, &g).unwrap();
        assert!(b.paseto.is_none());
        assert_eq!(b.kinds(), vec!["ssh"]);
        let info = breakglass_formats::sshcert::verify(
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
            &mut rand_core::OsRng,
            &Grant {
                ssh: Some(ssh),
                ..grant(&principals, &approvers)
            },
        )
        .unwrap();
        assert_eq!(both.kinds(), vec!["ssh", "token"]);
        assert!(mint(
            &a,
            &mut rand_core::OsRng,
            &Grant {
                token: false,
                ..grant(&principals, &approvers)
            }
        )
        .is_err());
    }
}
