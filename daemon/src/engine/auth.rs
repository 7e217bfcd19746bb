//! Signature and freshness checks (invariant 4). The payload bytes come from
//! `breakglass_proto::signing`; this module only decides whether a signature
//! over them, by the named member, at the claimed time, is acceptable now.

use breakglass_formats::sshsig;
use ed25519_dalek::{Signature, VerifyingKey};

use super::policy::Policy;
use crate::error::{Error, Result};

/// A signature as received.
#[derive(Debug, Clone)]
pub struct SignedBy<'a> {
    /// Claimed signer id.
    pub signer_id: &'a str,
    /// Claimed signing time.
    pub signed_at: u64,
    /// Raw signature bytes.
    pub signature: &'a [u8],
}

/// A custodian whose signature verified; only [`authenticate_custodian`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedCustodian {
    id: String,
    x: u8,
}

impl AuthenticatedCustodian {
    /// A custodian as if authenticated, for unit tests of what comes after.
    #[cfg(test)]
    pub(crate) fn for_tests(id: &str, x: u8) -> AuthenticatedCustodian {
        AuthenticatedCustodian {
            id: id.to_string(),
            x,
        }
    }

    /// Custodian id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The x coordinate of this custodian's share.
    pub fn x(&self) -> u8 {
        self.x
    }
}

/// A commander whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedCommander {
    id: String,
}

impl AuthenticatedCommander {
    /// Commander id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Checks that `signed_at` is within `allowed` seconds of `now`.
pub fn check_fresh(signer: &str, signed_at: u64, now: u64, allowed: u64) -> Result<()> {
    let skew = now.abs_diff(signed_at);
    if skew > allowed {
        return Err(Error::StaleSignature {
            signer: signer.to_string(),
            signed_at,
            now,
            skew,
            allowed,
        });
    }
    Ok(())
}

/// Verifies a signature by the registered ed25519 key over `payload`: either
/// the 64 raw bytes of an ed25519 signature, or an OpenSSH signature (SSHSIG,
/// armored as `ssh-keygen -Y sign` and ssh-agent signers write it, namespace
/// `breakglass`) by the same key. Both are checked strictly (no malleable or
/// small-order encodings); the shape picks the format, nothing falls back.
pub fn verify(signer: &str, key: &VerifyingKey, payload: &[u8], signature: &[u8]) -> Result<()> {
    if sshsig::is_armored(signature) {
        return verify_sshsig(signer, key, payload, signature);
    }
    let sig = Signature::from_slice(signature).map_err(|_| {
        Error::invalid(
            "signature.signature",
            format!(
                "is {} bytes; a signature is 64 raw ed25519 bytes, or an OpenSSH signature (`-----BEGIN SSH SIGNATURE-----`, namespace breakglass)",
                signature.len()
            ),
        )
    })?;
    key.verify_strict(payload, &sig)
        .map_err(|_| Error::BadSignature {
            signer: signer.to_string(),
        })
}

fn verify_sshsig(signer: &str, key: &VerifyingKey, payload: &[u8], armored: &[u8]) -> Result<()> {
    let sig =
        sshsig::parse(armored).map_err(|e| Error::invalid("signature.signature", e.to_string()))?;
    let registered = ssh_key::PublicKey::new(
        ssh_key::public::KeyData::Ed25519(ssh_key::public::Ed25519PublicKey(key.to_bytes())),
        "",
    );
    match sshsig::verify(&registered, payload, &sig) {
        Ok(_) => Ok(()),
        Err(e @ (sshsig::SigError::Namespace { .. } | sshsig::SigError::Malformed(_))) => {
            Err(Error::invalid("signature.signature", e.to_string()))
        }
        Err(_) => Err(Error::BadSignature {
            signer: signer.to_string(),
        }),
    }
}

/// A signer who claims to be a registered custodian: membership checked (cheap),
/// signature not yet. Lets a caller make other cheap checks before the signature.
#[derive(Debug, Clone)]
pub struct ClaimedCustodian<'p> {
    id: &'p str,
    x: u8,
    key: &'p VerifyingKey,
    freshness: u64,
}

/// Membership only: `signer_id` is a custodian of `policy`.
pub fn claim_custodian<'p>(policy: &'p Policy, signer_id: &str) -> Result<ClaimedCustodian<'p>> {
    let (x, member) = policy.custodian(signer_id)?;
    Ok(ClaimedCustodian {
        id: member.id.as_str(),
        x,
        key: policy.custodian_key(signer_id)?,
        freshness: policy.freshness_seconds,
    })
}

impl ClaimedCustodian<'_> {
    /// The claimed id.
    pub fn id(&self) -> &str {
        self.id
    }

    /// Freshness, then the signature over `payload` with the registered key.
    pub fn authenticate(
        self,
        sig: &SignedBy<'_>,
        payload: &[u8],
        now: u64,
    ) -> Result<AuthenticatedCustodian> {
        check_fresh(self.id, sig.signed_at, now, self.freshness)?;
        verify(self.id, self.key, payload, sig.signature)?;
        Ok(AuthenticatedCustodian {
            id: self.id.to_string(),
            x: self.x,
        })
    }
}

/// Membership (cheap) first, then freshness, then the signature.
pub fn authenticate_custodian(
    policy: &Policy,
    sig: &SignedBy<'_>,
    payload: &[u8],
    now: u64,
) -> Result<AuthenticatedCustodian> {
    claim_custodian(policy, sig.signer_id)?.authenticate(sig, payload, now)
}

/// Membership, freshness, then the signature.
pub fn authenticate_commander(
    policy: &Policy,
    sig: &SignedBy<'_>,
    payload: &[u8],
    now: u64,
) -> Result<AuthenticatedCommander> {
    let key = policy.commander_key(sig.signer_id)?;
    check_fresh(sig.signer_id, sig.signed_at, now, policy.freshness_seconds)?;
    verify(sig.signer_id, key, payload, sig.signature)?;
    Ok(AuthenticatedCommander {
        id: sig.signer_id.to_string(),
    })
}

/// Who may act on a request besides its requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A commander (possibly the requester).
    Commander(AuthenticatedCommander),
    /// A custodian.
    Custodian(AuthenticatedCustodian),
}

impl Actor {
    /// The actor's id.
    pub fn id(&self) -> &str {
        match self {
            Actor::Commander(c) => c.id(),
            Actor::Custodian(c) => c.id(),
        }
    }
}

/// Authenticates a signer who may be a commander or a custodian (commanders first).
pub fn authenticate_any(
    policy: &Policy,
    sig: &SignedBy<'_>,
    payload: &[u8],
    now: u64,
) -> Result<Actor> {
    if policy.commander_key(sig.signer_id).is_ok() {
        return authenticate_commander(policy, sig, payload, now).map(Actor::Commander);
    }
    if policy.custodian_key(sig.signer_id).is_ok() {
        return authenticate_custodian(policy, sig, payload, now).map(Actor::Custodian);
    }
    Err(Error::UnknownCustodian {
        id: sig.signer_id.to_string(),
        known: policy
            .commanders
            .iter()
            .map(|c| c.member.id.clone())
            .chain(policy.custodian_ids())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::policy::tests::{key, sample_toml};
    use ed25519_dalek::Signer;

    fn policy() -> Policy {
        Policy::from_toml(&sample_toml(3, 2)).unwrap()
    }

    /// Invariant 4: a signature is accepted only from the registered key, fresh, over the same bytes.
    #[test]
    fn custodian_signature_checks() {
        let p = policy();
        let payload = b"payload";
        let sig = key(1).sign(payload).to_bytes();
        let ok = SignedBy {
            signer_id: "c1",
            signed_at: 1000,
            signature: &sig,
        };
        assert_eq!(
            authenticate_custodian(&p, &ok, payload, 1000).unwrap().x(),
            1
        );
        assert!(matches!(
            authenticate_custodian(&p, &ok, b"other payload", 1000),
            Err(Error::BadSignature { .. })
        ));
        let wrong_key = SignedBy {
            signer_id: "c2",
            ..ok.clone()
        };
        assert!(matches!(
            authenticate_custodian(&p, &wrong_key, payload, 1000),
            Err(Error::BadSignature { .. })
        ));
        assert!(matches!(
            authenticate_custodian(&p, &ok, payload, 1000 + 121),
            Err(Error::StaleSignature {
                skew: 121,
                allowed: 120,
                ..
            })
        ));
        let unknown = SignedBy {
            signer_id: "mallory",
            ..ok.clone()
        };
        assert!(matches!(
            authenticate_custodian(&p, &unknown, payload, 1000),
            Err(Error::UnknownCustodian { .. })
        ));
        let short = SignedBy {
            signature: &sig[..10],
            ..ok
        };
        assert!(matches!(
            authenticate_custodian(&p, &short, payload, 1000),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn commander_and_any() {
        let p = policy();
        let sig = key(100).sign(b"p").to_bytes();
        let s = SignedBy {
            signer_id: "ic",
            signed_at: 5,
            signature: &sig,
        };
        assert_eq!(authenticate_commander(&p, &s, b"p", 5).unwrap().id(), "ic");
        assert!(matches!(
            authenticate_any(&p, &s, b"p", 5),
            Ok(Actor::Commander(_))
        ));
        let csig = key(2).sign(b"p").to_bytes();
        let c = SignedBy {
            signer_id: "c2",
            signed_at: 5,
            signature: &csig,
        };
        assert!(matches!(
            authenticate_commander(&p, &c, b"p", 5),
            Err(Error::NotACommander { .. })
        ));
        assert!(matches!(
            authenticate_any(&p, &c, b"p", 5),
            Ok(Actor::Custodian(_))
        ));
    }

    /// Invariant 4: an OpenSSH signature (SSHSIG) by the registered key over
    /// the payload verifies; another namespace, another key, other bytes or
    /// a damaged armor are refused, each as itself.
    #[test]
    fn sshsig_signatures() {
        use ssh_key::{HashAlg, LineEnding, PrivateKey, SshSig};
        let seed = [5u8; 32];
        let registered = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        let file =
            |seed: [u8; 32]| PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&seed));
        let armored = |k: &PrivateKey, ns: &str, msg: &[u8]| {
            SshSig::sign(k, ns, HashAlg::Sha512, msg)
                .unwrap()
                .to_pem(LineEnding::LF)
                .unwrap()
                .into_bytes()
        };
        let good = armored(&file(seed), "breakglass", b"payload");
        verify("c1", &registered, b"payload", &good).unwrap();
        assert!(matches!(
            verify("c1", &registered, b"other", &good),
            Err(Error::BadSignature { .. })
        ));
        let other = armored(&file([6u8; 32]), "breakglass", b"payload");
        assert!(matches!(
            verify("c1", &registered, b"payload", &other),
            Err(Error::BadSignature { .. })
        ));
        let git = armored(&file(seed), "git", b"payload");
        let e = verify("c1", &registered, b"payload", &git).unwrap_err();
        assert!(e.to_string().contains("namespace is \"git\""), "{e}");
        let e = verify(
            "c1",
            &registered,
            b"payload",
            b"-----BEGIN SSH SIGNATURE-----\nAAAA\n",
        )
        .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
        let e = verify("c1", &registered, b"payload", &[1u8; 10]).unwrap_err();
        assert!(
            e.to_string()
                .contains("64 raw ed25519 bytes, or an OpenSSH signature"),
            "{e}"
        );
    }
}
