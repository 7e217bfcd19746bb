//! Attestations (readiness): a custodian proves she holds her share without
//! unlocking anything. The daemon issues a one-shot X25519 key per custodian;
//! her share arrives sealed to it, is opened, checked against her commitment
//! (invariant 5), never combined with anything, and wiped with the key at
//! once. A challenge is consumed by the first attestation that names it, so
//! the same signed bytes sent again are a replay and are refused.
//!
//! Memory is bounded: one pending challenge per custodian (a new start
//! replaces the old, which is wiped) and the ids of the last [`USED_KEPT`]
//! consumed challenges until they expire. An abandoned challenge's key is
//! wiped by the sweep once its window ends, and every key at shutdown.

use std::collections::{HashMap, VecDeque};

use x25519_dalek::{PublicKey, StaticSecret};

use breakglass_proto::{signing, transport};

use super::auth::AuthenticatedCustodian;
use super::share::{verify_share, Commitment, Lineage};
use crate::error::{Error, Result};

/// How long an attestation key is accepted, in seconds: long enough to unlock
/// a key and seal, short enough that a captured call is soon worthless.
pub const CHALLENGE_TTL: u64 = 300;

/// How many consumed challenge ids are remembered (to name a replay as one).
pub const USED_KEPT: usize = 1024;

/// A challenge as issued: everything public about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// Attestation id.
    pub id: String,
    /// The custodian it is for.
    pub custodian: String,
    /// Epoch of the shares it checks.
    pub epoch: u64,
    /// One-shot X25519 public key.
    pub public_key: [u8; 32],
    /// Last second it is accepted.
    pub expires_at: u64,
    /// `signing::attestation_digest` of it.
    pub digest: [u8; 32],
}

/// A pending challenge: the issued part and its secret key (wiped on drop).
struct Pending {
    issued: Issued,
    secret: Box<StaticSecret>,
}

/// A challenge that was consumed, kept to recognise a replay.
struct Used {
    id: String,
    custodian: String,
    digest: [u8; 32],
    expires_at: u64,
}

/// What the daemon knows of an attestation id, for authenticating the call
/// that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// The custodian it was issued to.
    pub custodian: String,
    /// Its digest (the attestation signature names it).
    pub digest: [u8; 32],
}

/// The outcome of a successful attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attested {
    /// The custodian.
    pub custodian: String,
    /// The epoch of her share.
    pub epoch: u64,
    /// The attestation id.
    pub id: String,
}

/// The pending and recently consumed challenges.
#[derive(Default)]
pub struct Attestations {
    pending: HashMap<String, Pending>,
    used: VecDeque<Used>,
}

/// The fields of a challenge that do not come from the RNG.
pub struct Issue<'a> {
    /// Daemon id.
    pub daemon_id: &'a str,
    /// Ceremony id.
    pub ceremony_id: &'a str,
    /// Epoch.
    pub epoch: u64,
    /// The custodian, authenticated.
    pub custodian: &'a AuthenticatedCustodian,
    /// Now.
    pub now: u64,
}

impl Attestations {
    /// Issues a fresh challenge for an authenticated custodian, replacing (and
    /// wiping) any she had pending.
    pub fn start(&mut self, rng: &mut dyn rand_core::CryptoRngCore, issue: &Issue<'_>) -> Issued {
        self.prune(issue.now);
        let mut raw = [0u8; 8];
        rng.fill_bytes(&mut raw);
        let id = format!("att-{}", hex::encode(raw));
        let secret = Box::new(StaticSecret::random_from_rng(&mut *rng));
        let public_key = PublicKey::from(secret.as_ref()).to_bytes();
        let expires_at = issue.now.saturating_add(CHALLENGE_TTL);
        let digest = signing::attestation_digest(&signing::Challenge {
            daemon_id: issue.daemon_id,
            ceremony_id: issue.ceremony_id,
            epoch: issue.epoch,
            attestation_id: &id,
            custodian_id: issue.custodian.id(),
            public_key: &public_key,
            expires_at,
        });
        let issued = Issued {
            id,
            custodian: issue.custodian.id().to_string(),
            epoch: issue.epoch,
            public_key,
            expires_at,
            digest,
        };
        self.pending.insert(
            issued.custodian.clone(),
            Pending {
                issued: issued.clone(),
                secret,
            },
        );
        issued
    }

    /// The custodian and digest of a pending or recently consumed challenge,
    /// so the call naming it can be authenticated before anything else.
    pub fn known(&self, id: &str) -> Result<Known> {
        if let Some(p) = self.pending.values().find(|p| p.issued.id == id) {
            return Ok(Known {
                custodian: p.issued.custodian.clone(),
                digest: p.issued.digest,
            });
        }
        if let Some(u) = self.used.iter().find(|u| u.id == id) {
            return Ok(Known {
                custodian: u.custodian.clone(),
                digest: u.digest,
            });
        }
        Err(Error::AttestationNotFound { id: id.to_string() })
    }

    /// Consumes the challenge `id` for an authenticated custodian and checks
    /// her sealed share against her commitment. Whatever the outcome, the
    /// challenge is used up and its key wiped; the opened share is wiped
    /// before this returns.
    pub fn attest(
        &mut self,
        id: &str,
        who: &AuthenticatedCustodian,
        commitment: &Commitment,
        ceremony_id: &str,
        sealed: &[u8],
        now: u64,
    ) -> Result<Attested> {
        if let Some(u) = self.used.iter().find(|u| u.id == id) {
            return Err(Error::AttestationUsed {
                id: id.to_string(),
                custodian: u.custodian.clone(),
            });
        }
        let issued_to = self.known(id)?.custodian;
        if issued_to != who.id() {
            return Err(Error::AttestationNotYours {
                id: id.to_string(),
                issued_to,
                caller: who.id().to_string(),
            });
        }
        let Some(p) = self.pending.remove(who.id()) else {
            return Err(Error::AttestationNotFound { id: id.to_string() });
        };
        self.used.push_back(Used {
            id: p.issued.id.clone(),
            custodian: p.issued.custodian.clone(),
            digest: p.issued.digest,
            expires_at: p.issued.expires_at,
        });
        if self.used.len() > USED_KEPT {
            self.used.pop_front();
        }
        if now > p.issued.expires_at {
            return Err(Error::AttestationExpired {
                id: id.to_string(),
                expires_at: p.issued.expires_at,
                now,
            });
        }
        let malformed = |why: String| Error::ShareMalformed {
            custodian: who.id().to_string(),
            why,
        };
        transport::check_sealed(sealed).map_err(|e| malformed(e.to_string()))?;
        let plain = transport::open_share(&p.secret, &p.issued.digest, id, who.id(), sealed)
            .map_err(|e| malformed(e.to_string()))?;
        let epoch = p.issued.epoch;
        drop(p);
        // Checked and dropped at once: an attestation's share is never combined.
        let lineage = Lineage { ceremony_id, epoch };
        drop(verify_share(who, commitment, lineage, &plain)?);
        Ok(Attested {
            custodian: who.id().to_string(),
            epoch,
            id: id.to_string(),
        })
    }

    /// How many challenges are pending (each holds a key).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Drops expired challenges (wiping their keys) and expired used ids.
    /// The sweep calls it, so an abandoned challenge's key lives no longer
    /// than its window.
    pub fn prune(&mut self, now: u64) {
        self.pending.retain(|_, p| p.issued.expires_at >= now);
        self.used.retain(|u| u.expires_at >= now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::share::commitment_hash;
    use rand::SeedableRng;

    const T0: u64 = 1_000_000;

    fn custodian(id: &str, x: u8) -> AuthenticatedCustodian {
        AuthenticatedCustodian::for_tests(id, x)
    }

    fn share(x: u8) -> [u8; transport::SHARE_LEN] {
        let mut s = [x.wrapping_mul(31); transport::SHARE_LEN];
        s[0] = x;
        s
    }

    fn commitment(id: &str, x: u8) -> Commitment {
        Commitment {
            x,
            hash: commitment_hash("cer", 1, id, &share(x)),
        }
    }

    struct Fix {
        a: Attestations,
        rng: rand::rngs::StdRng,
    }

    impl Fix {
        fn new() -> Fix {
            Fix {
                a: Attestations::default(),
                rng: rand::rngs::StdRng::seed_from_u64(3),
            }
        }

        fn start(&mut self, who: &AuthenticatedCustodian, now: u64) -> Issued {
            self.a.start(
                &mut self.rng,
                &Issue {
                    daemon_id: "d",
                    ceremony_id: "cer",
                    epoch: 1,
                    custodian: who,
                    now,
                },
            )
        }

        fn seal(&mut self, c: &Issued, custodian: &str, plain: &[u8]) -> Vec<u8> {
            transport::seal_share(
                &c.public_key,
                &c.digest,
                &c.id,
                custodian,
                plain,
                &mut self.rng,
            )
            .unwrap()
        }
    }

    /// Invariant 5 (and readiness): the right share attests once; the same
    /// call again is a replay; the challenge cannot be used by another
    /// custodian, after its window, or after a newer one replaced it.
    #[test]
    fn one_shot_and_bound_to_its_custodian() {
        let mut f = Fix::new();
        let alice = custodian("alice", 1);
        let bob = custodian("bob", 2);
        let com = commitment("alice", 1);
        let c = f.start(&alice, T0);
        assert_eq!(c.expires_at, T0 + CHALLENGE_TTL);
        assert!(c.id.starts_with("att-"));
        let sealed = f.seal(&c, "alice", &share(1));
        // Bob cannot use Alice's challenge, and trying does not consume it.
        let e =
            f.a.attest(&c.id, &bob, &commitment("bob", 2), "cer", &sealed, T0)
                .unwrap_err();
        assert!(matches!(e, Error::AttestationNotYours { .. }), "{e}");
        let ok =
            f.a.attest(&c.id, &alice, &com, "cer", &sealed, T0 + 1)
                .unwrap();
        assert_eq!(
            ok,
            Attested {
                custodian: "alice".into(),
                epoch: 1,
                id: c.id.clone()
            }
        );
        let e =
            f.a.attest(&c.id, &alice, &com, "cer", &sealed, T0 + 2)
                .unwrap_err();
        assert!(matches!(e, Error::AttestationUsed { .. }), "{e}");
        assert!(e.to_string().contains("replay"), "{e}");
        // The used id is still known (so the replay's signature is checked first).
        assert_eq!(f.a.known(&c.id).unwrap().custodian, "alice");

        // A newer challenge replaces the older one.
        let old = f.start(&alice, T0);
        let new = f.start(&alice, T0);
        let sealed_old = f.seal(&old, "alice", &share(1));
        let e =
            f.a.attest(&old.id, &alice, &com, "cer", &sealed_old, T0)
                .unwrap_err();
        assert!(matches!(e, Error::AttestationNotFound { .. }), "{e}");
        // After its window, and the expired one is used up.
        let sealed_new = f.seal(&new, "alice", &share(1));
        let late = T0 + CHALLENGE_TTL + 1;
        let e =
            f.a.attest(&new.id, &alice, &com, "cer", &sealed_new, late)
                .unwrap_err();
        assert!(matches!(e, Error::AttestationExpired { .. }), "{e}");
        let e =
            f.a.attest(&new.id, &alice, &com, "cer", &sealed_new, T0)
                .unwrap_err();
        assert!(matches!(e, Error::AttestationUsed { .. }), "{e}");
        assert!(matches!(
            f.a.known("att-0000000000000000"),
            Err(Error::AttestationNotFound { .. })
        ));
    }

    /// Invariant 5: a wrong share (another ceremony's, another custodian's,
    /// altered, or sealed for another challenge) is refused and names the
    /// custodian; the challenge is used up either way.
    #[test]
    fn wrong_shares_are_refused() {
        let mut f = Fix::new();
        let alice = custodian("alice", 1);
        let com = commitment("alice", 1);
        let mut other_ceremony = share(1);
        other_ceremony[5] ^= 1;
        let cases: [(&str, Vec<u8>, &str); 4] = [
            (
                "another ceremony",
                other_ceremony.to_vec(),
                "does not match their commitment",
            ),
            (
                "another custodian",
                share(2).to_vec(),
                "another custodian's share",
            ),
            ("x = 0", share(0).to_vec(), "x = 0"),
            ("short", share(1)[..20].to_vec(), "malformed"),
        ];
        for (what, plain, says) in cases {
            let c = f.start(&alice, T0);
            let sealed = if plain.len() == transport::SHARE_LEN {
                f.seal(&c, "alice", &plain)
            } else {
                plain
            };
            let e =
                f.a.attest(&c.id, &alice, &com, "cer", &sealed, T0)
                    .unwrap_err();
            assert!(e.to_string().contains(says), "{what}: {e}");
            assert!(e.to_string().contains("alice"), "{what}: {e}");
            assert!(matches!(
                f.a.attest(&c.id, &alice, &com, "cer", &sealed, T0),
                Err(Error::AttestationUsed { .. })
            ));
        }
        // Sealed to another challenge's key.
        let first = f.start(&custodian("bob", 2), T0);
        let c = f.start(&alice, T0);
        let sealed = f.seal(&first, "alice", &share(1));
        let e =
            f.a.attest(&c.id, &alice, &com, "cer", &sealed, T0)
                .unwrap_err();
        assert!(e.to_string().contains("does not open"), "{e}");
    }

    /// Memory stays bounded: one pending challenge per custodian, and a
    /// bounded list of used ids.
    #[test]
    fn bounded() {
        let mut f = Fix::new();
        let alice = custodian("alice", 1);
        let com = commitment("alice", 1);
        for i in 0..(USED_KEPT as u64 + 10) {
            let c = f.start(&alice, T0 + i / 100);
            let sealed = f.seal(&c, "alice", &share(1));
            f.a.attest(&c.id, &alice, &com, "cer", &sealed, T0 + i / 100)
                .unwrap();
        }
        assert_eq!(f.a.pending.len(), 0);
        assert!(f.a.used.len() <= USED_KEPT);
        f.start(&alice, T0 + CHALLENGE_TTL * 10);
        assert_eq!(f.a.used.len(), 0, "expired used ids are dropped");
        assert_eq!(f.a.pending.len(), 1);
    }
}
