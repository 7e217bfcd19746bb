//! Signature and freshness checks (invariant 4). The payload bytes come from
//! `breakglass_proto::signing`; this module only decides whether a signature
//! over them, by the named member, at the claimed time, is acceptable now.

use breakglass_formats::audit::SignedWith;
use breakglass_formats::sshsig::{self, KeyKind, SigError};
use ed25519_dalek::{Signature, VerifyingKey};
use ssh_key::public::{Ed25519PublicKey, KeyData};
use ssh_key::{HashAlg, PublicKey};

use super::policy::{Policy, Role};
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

/// The last signature counter seen per security key, kept durably by the
/// daemon: a counter that does not increase means a cloned key or a replay.
pub trait Counters {
    /// Records `counter` for the key with `fingerprint` if it is above the
    /// last one seen; otherwise returns `Ok(Err(last))` and records nothing.
    /// The outer error is the store's.
    fn advance(&self, fingerprint: &str, counter: u32) -> Result<std::result::Result<(), u32>>;
}

/// Counters in memory only, for the engine's unit tests and tools that
/// check one signature.
#[derive(Debug, Default)]
pub struct MemoryCounters(std::sync::Mutex<std::collections::BTreeMap<String, u32>>);

impl Counters for MemoryCounters {
    fn advance(&self, fingerprint: &str, counter: u32) -> Result<std::result::Result<(), u32>> {
        let mut m = self
            .0
            .lock()
            .map_err(|_| Error::Internal("counter lock poisoned".into()))?;
        match m.get(fingerprint) {
            Some(&last) if counter <= last => Ok(Err(last)),
            _ => {
                m.insert(fingerprint.to_string(), counter);
                Ok(Ok(()))
            }
        }
    }
}

/// Checks with in-memory counters, for unit tests.
#[cfg(test)]
pub(crate) fn test_checks(policy: &Policy, now: u64) -> Checks<'_> {
    static COUNTERS: std::sync::LazyLock<MemoryCounters> =
        std::sync::LazyLock::new(MemoryCounters::default);
    Checks {
        policy,
        counters: &*COUNTERS,
        now,
    }
}

/// What every signature check needs besides the signature: the policy, the
/// counters, and the daemon's clock.
#[derive(Clone, Copy)]
pub struct Checks<'a> {
    /// The policy in force.
    pub policy: &'a Policy,
    /// Security keys' counters.
    pub counters: &'a dyn Counters,
    /// The daemon's time.
    pub now: u64,
}

/// A custodian whose signature verified; only [`authenticate_custodian`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedCustodian {
    id: String,
    x: u8,
    signed: SignedWith,
}

impl AuthenticatedCustodian {
    /// A custodian as if authenticated, for unit tests of what comes after.
    #[cfg(test)]
    pub(crate) fn for_tests(id: &str, x: u8) -> AuthenticatedCustodian {
        AuthenticatedCustodian {
            id: id.to_string(),
            x,
            signed: SignedWith {
                key_type: "ssh-ed25519".into(),
                fingerprint: "SHA256:test".into(),
                format: "raw".into(),
                user_present: None,
                user_verified: None,
                counter: None,
            },
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

    /// How the signature was made.
    pub fn signed(&self) -> &SignedWith {
        &self.signed
    }
}

/// A commander whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedCommander {
    id: String,
    signed: SignedWith,
}

impl AuthenticatedCommander {
    /// Commander id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How the signature was made.
    pub fn signed(&self) -> &SignedWith {
        &self.signed
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
/// For a signature that may come from any of a member's keys, with the
/// policy's hardware rules, see [`verify_member`].
pub fn verify(signer: &str, key: &VerifyingKey, payload: &[u8], signature: &[u8]) -> Result<()> {
    let keys = [ed25519_public(key)];
    verify_with(signer, &keys, payload, signature).map(|_| ())
}

fn ed25519_public(key: &VerifyingKey) -> PublicKey {
    PublicKey::new(KeyData::Ed25519(Ed25519PublicKey(key.to_bytes())), "")
}

fn fingerprint(key: &KeyData) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The signature, checked against `keys` (the member's registered keys):
/// raw bytes against the ed25519 keys, an SSHSIG against the one key it
/// names. Returns how it was made. User presence is part of verification;
/// the policy's rules are [`verify_member`]'s.
fn verify_with(
    signer: &str,
    keys: &[PublicKey],
    payload: &[u8],
    signature: &[u8],
) -> Result<SignedWith> {
    let bad = || Error::BadSignature {
        signer: signer.to_string(),
    };
    if !sshsig::is_armored(signature) {
        let sig = Signature::from_slice(signature).map_err(|_| {
            Error::invalid(
                "signature.signature",
                format!(
                    "is {} bytes; a signature is 64 raw ed25519 bytes, or an OpenSSH signature (`-----BEGIN SSH SIGNATURE-----`, namespace breakglass)",
                    signature.len()
                ),
            )
        })?;
        for k in keys {
            if let KeyData::Ed25519(e) = k.key_data() {
                let Ok(vk) = VerifyingKey::from_bytes(&e.0) else {
                    continue;
                };
                if vk.verify_strict(payload, &sig).is_ok() {
                    return Ok(SignedWith {
                        key_type: KeyKind::Ed25519.name().into(),
                        fingerprint: fingerprint(k.key_data()),
                        format: "raw".into(),
                        user_present: None,
                        user_verified: None,
                        counter: None,
                    });
                }
            }
        }
        return Err(bad());
    }
    let sig = sshsig::parse(signature)
        .map_err(|e| Error::invalid("signature.signature", e.to_string()))?;
    let Some(registered) = keys.iter().find(|k| k.key_data() == sig.public_key()) else {
        return Err(other_key(signer, keys, payload, &sig));
    };
    match sshsig::verify(registered, payload, &sig) {
        Ok(v) => Ok(sshsig_signed(&v, registered.key_data())),
        Err(e @ (SigError::Namespace { .. } | SigError::Malformed(_))) => {
            Err(Error::invalid("signature.signature", e.to_string()))
        }
        Err(SigError::NoUserPresence) => Err(Error::SignatureRefused {
            signer: signer.to_string(),
            why: "the security key reported no user presence (nobody touched it): every security-key signature needs a touch".into(),
            signed: Box::new(SignedWith {
                key_type: registered.algorithm().as_str().into(),
                fingerprint: fingerprint(registered.key_data()),
                format: "sshsig".into(),
                user_present: Some(false),
                user_verified: None,
                counter: None,
            }),
        }),
        Err(_) => Err(bad()),
    }
}

/// How a verified SSHSIG by `key` was made.
fn sshsig_signed(v: &sshsig::Verified, key: &KeyData) -> SignedWith {
    SignedWith {
        key_type: v.kind.name().into(),
        fingerprint: fingerprint(key),
        format: "sshsig".into(),
        user_present: v.sk.as_ref().map(sshsig::SkReport::user_present),
        user_verified: v.sk.as_ref().map(sshsig::SkReport::user_verified),
        counter: v.sk.as_ref().map(|r| r.counter),
    }
}

/// The error for an SSHSIG made with a key not registered for `signer`:
/// when it is a registered security key's credential used for another
/// application, and the signature verifies as that, the signer is known
/// and the refusal says so; otherwise the signature is simply bad.
fn other_key(signer: &str, keys: &[PublicKey], payload: &[u8], sig: &ssh_key::SshSig) -> Error {
    let point = |k: &KeyData| match k {
        KeyData::SkEd25519(k) => Some((k.public_key().0.to_vec(), k.application().to_string())),
        KeyData::SkEcdsaSha2NistP256(k) => Some((
            k.ec_point().as_bytes().to_vec(),
            k.application().to_string(),
        )),
        _ => None,
    };
    let bad = Error::BadSignature {
        signer: signer.to_string(),
    };
    let Some((got_point, got_app)) = point(sig.public_key()) else {
        return bad;
    };
    let Some(registered) = keys.iter().find(|k| {
        point(k.key_data()).is_some_and(|(p, _)| p == got_point)
            && k.algorithm() == sig.public_key().algorithm()
    }) else {
        return bad;
    };
    let as_signed = PublicKey::new(sig.public_key().clone(), "");
    match sshsig::verify(&as_signed, payload, sig) {
        Ok(v) => Error::SignatureRefused {
            signer: signer.to_string(),
            why: format!(
                "the security key signed for application {got_app:?}, but its credential is registered for {:?}: use the key handle made for the registered application",
                point(registered.key_data()).map(|(_, a)| a).unwrap_or_default()
            ),
            signed: Box::new(sshsig_signed(&v, sig.public_key())),
        },
        Err(_) => bad,
    }
}

/// Checks a signature by member `id` (in `role`) over `payload`: freshness,
/// then the signature with any of the member's registered keys, then the
/// policy's rules for how it was made (invariant 4; issue 13):
/// - a security key must report user presence (checked in verification);
/// - where `require_hardware` names the role, only a security key may sign;
/// - where it sets `user_verification`, a security key must report it;
/// - a security key's counter must be above the last one seen for it (a
///   counter stuck at 0 only with `allow_zero_counter`).
///
/// What a security key proves: the authenticator holding the registered
/// credential signed this payload with a touch (and a PIN or biometrics if
/// its flag says so). It proves nothing about the share file, which stays
/// encrypted to the member's ssh_key: a custodian with both holds two factors.
pub fn verify_member(
    checks: Checks<'_>,
    role: Role,
    sig: &SignedBy<'_>,
    payload: &[u8],
) -> Result<SignedWith> {
    let policy = checks.policy;
    check_fresh(
        sig.signer_id,
        sig.signed_at,
        checks.now,
        policy.freshness_seconds,
    )?;
    let keys = policy.signing_keys(role, sig.signer_id);
    let signed = verify_with(sig.signer_id, keys, payload, sig.signature)?;
    let refuse = |why: String, signed: SignedWith| Error::SignatureRefused {
        signer: sig.signer_id.to_string(),
        why,
        signed: Box::new(signed),
    };
    if !signed.is_security_key() {
        if policy.hardware_required(role) {
            let registered: Vec<String> = keys
                .iter()
                .filter(|k| k.algorithm().as_str().starts_with("sk-"))
                .map(|k| fingerprint(k.key_data()))
                .collect();
            return Err(refuse(
                format!(
                    "the policy requires {}s to sign with a security key{} and this signature came from a {} key ({}); sign with your registered security key ({}) through `--sign-with security-key` or an agent holding it",
                    role.name(),
                    if policy.user_verification_required() { " with user verification (PIN or biometrics)" } else { "" },
                    signed.key_type,
                    signed.fingerprint,
                    registered.join(", ")
                ),
                signed,
            ));
        }
        return Ok(signed);
    }
    if policy.user_verification_required() && signed.user_verified != Some(true) {
        return Err(refuse(
            "the policy requires user verification (PIN or biometrics) on security-key signatures and this key did not report it: make the key with `ssh-keygen -t ed25519-sk -O verify-required` and enter its PIN when signing".into(),
            signed,
        ));
    }
    let counter = signed.counter.unwrap_or(0);
    if counter == 0 {
        if !policy.allow_zero_counter {
            return Err(refuse(
                "the security key reported signature counter 0, so a cloned key could not be told apart; use an authenticator that counts, or set allow_zero_counter = true in the policy".into(),
                signed,
            ));
        }
        return Ok(signed);
    }
    if let Err(last) = checks.counters.advance(&signed.fingerprint, counter)? {
        return Err(refuse(
            format!(
                "the security key's signature counter {counter} is not above {last}, the last one seen for it: the key may have been cloned, or this signature is a replay"
            ),
            signed,
        ));
    }
    Ok(signed)
}

/// A signer who claims to be a registered custodian: membership checked (cheap),
/// signature not yet. Lets a caller make other cheap checks before the signature.
#[derive(Debug, Clone)]
pub struct ClaimedCustodian<'p> {
    id: &'p str,
    x: u8,
}

/// Membership only: `signer_id` is a custodian of `policy`.
pub fn claim_custodian<'p>(policy: &'p Policy, signer_id: &str) -> Result<ClaimedCustodian<'p>> {
    let (x, member) = policy.custodian(signer_id)?;
    Ok(ClaimedCustodian {
        id: member.id.as_str(),
        x,
    })
}

impl ClaimedCustodian<'_> {
    /// The claimed id.
    pub fn id(&self) -> &str {
        self.id
    }

    /// Freshness, then the signature over `payload` with a registered key,
    /// then the policy's rules ([`verify_member`]).
    pub fn authenticate(
        self,
        checks: Checks<'_>,
        sig: &SignedBy<'_>,
        payload: &[u8],
    ) -> Result<AuthenticatedCustodian> {
        let signed = verify_member(checks, Role::Custodian, sig, payload)?;
        Ok(AuthenticatedCustodian {
            id: self.id.to_string(),
            x: self.x,
            signed,
        })
    }
}

/// Membership (cheap) first, then freshness, then the signature.
pub fn authenticate_custodian(
    checks: Checks<'_>,
    sig: &SignedBy<'_>,
    payload: &[u8],
) -> Result<AuthenticatedCustodian> {
    claim_custodian(checks.policy, sig.signer_id)?.authenticate(checks, sig, payload)
}

/// Membership, freshness, then the signature.
pub fn authenticate_commander(
    checks: Checks<'_>,
    sig: &SignedBy<'_>,
    payload: &[u8],
) -> Result<AuthenticatedCommander> {
    checks.policy.commander(sig.signer_id)?;
    let signed = verify_member(checks, Role::Commander, sig, payload)?;
    Ok(AuthenticatedCommander {
        id: sig.signer_id.to_string(),
        signed,
    })
}

/// A signer whose signature verified: who, and how the signature was made.
pub trait Verified {
    /// The signer's id.
    fn id(&self) -> &str;
    /// How the signature was made.
    fn signed(&self) -> &SignedWith;
}

impl Verified for AuthenticatedCustodian {
    fn id(&self) -> &str {
        &self.id
    }
    fn signed(&self) -> &SignedWith {
        &self.signed
    }
}

impl Verified for AuthenticatedCommander {
    fn id(&self) -> &str {
        &self.id
    }
    fn signed(&self) -> &SignedWith {
        &self.signed
    }
}

impl Verified for Actor {
    fn id(&self) -> &str {
        Actor::id(self)
    }
    fn signed(&self) -> &SignedWith {
        Actor::signed(self)
    }
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

    /// How the actor's signature was made.
    pub fn signed(&self) -> &SignedWith {
        match self {
            Actor::Commander(c) => c.signed(),
            Actor::Custodian(c) => c.signed(),
        }
    }
}

/// Authenticates a signer who may be a commander or a custodian (commanders first).
pub fn authenticate_any(checks: Checks<'_>, sig: &SignedBy<'_>, payload: &[u8]) -> Result<Actor> {
    let policy = checks.policy;
    if policy.commander_key(sig.signer_id).is_ok() {
        return authenticate_commander(checks, sig, payload).map(Actor::Commander);
    }
    if policy.custodian_key(sig.signer_id).is_ok() {
        return authenticate_custodian(checks, sig, payload).map(Actor::Custodian);
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

    fn at(p: &Policy, now: u64) -> Checks<'_> {
        test_checks(p, now)
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
            authenticate_custodian(at(&p, 1000), &ok, payload)
                .unwrap()
                .x(),
            1
        );
        assert!(matches!(
            authenticate_custodian(at(&p, 1000), &ok, b"other payload"),
            Err(Error::BadSignature { .. })
        ));
        let wrong_key = SignedBy {
            signer_id: "c2",
            ..ok.clone()
        };
        assert!(matches!(
            authenticate_custodian(at(&p, 1000), &wrong_key, payload),
            Err(Error::BadSignature { .. })
        ));
        assert!(matches!(
            authenticate_custodian(at(&p, 1000 + 121), &ok, payload),
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
            authenticate_custodian(at(&p, 1000), &unknown, payload),
            Err(Error::UnknownCustodian { .. })
        ));
        let short = SignedBy {
            signature: &sig[..10],
            ..ok
        };
        assert!(matches!(
            authenticate_custodian(at(&p, 1000), &short, payload),
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
        assert_eq!(
            authenticate_commander(at(&p, 5), &s, b"p").unwrap().id(),
            "ic"
        );
        assert!(matches!(
            authenticate_any(at(&p, 5), &s, b"p"),
            Ok(Actor::Commander(_))
        ));
        let csig = key(2).sign(b"p").to_bytes();
        let c = SignedBy {
            signer_id: "c2",
            signed_at: 5,
            signature: &csig,
        };
        assert!(matches!(
            authenticate_commander(at(&p, 5), &c, b"p"),
            Err(Error::NotACommander { .. })
        ));
        assert!(matches!(
            authenticate_any(at(&p, 5), &c, b"p"),
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
