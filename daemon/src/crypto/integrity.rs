//! The integrity statement: what an unlock depends on (daemon and ceremony
//! ids, the epoch, the policy digest, the seal, every share commitment, A's
//! public key), digested part by part and signed by D at the ceremony and
//! again when a change commits a new epoch or policy. `serve` recomputes
//! it from the state and refuses to start on any difference, naming the part,
//! so damage to the seal or a commitment is found at start, not at quorum
//! (where it would look like a custodian's fault).

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::share::Commitment;
use crate::error::{Error, Result};

/// Domain of the signature.
const DOMAIN: &[u8] = b"breakglass/v1/integrity\n";

/// Digests of everything an unlock depends on, hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// Daemon id.
    pub daemon_id: String,
    /// Ceremony id.
    pub ceremony_id: String,
    /// Epoch (left out of the JSON for epoch 1, so statements D signed before
    /// epochs existed verify unchanged).
    #[serde(default = "first_epoch", skip_serializing_if = "is_first_epoch")]
    pub epoch: u64,
    /// Policy digest.
    pub policy: String,
    /// SHA-256 of the seal.
    pub seal: String,
    /// SHA-256 of each custodian's commitment (x and hash), by custodian id.
    pub commitments: BTreeMap<String, String>,
    /// A's public key.
    pub authority: String,
}

fn first_epoch() -> u64 {
    breakglass_proto::signing::FIRST_EPOCH
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_first_epoch(e: &u64) -> bool {
    *e == breakglass_proto::signing::FIRST_EPOCH
}

/// A statement and D's signature over it, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signed {
    /// The statement.
    pub statement: Statement,
    /// Hex ed25519 signature by D over `DOMAIN ‖ JSON(statement)`.
    pub signature: String,
}

fn hex_sha(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// The statement of a state.
pub fn statement(
    daemon_id: &str,
    ceremony_id: &str,
    epoch: u64,
    policy_digest: &[u8; 32],
    seal: &[u8],
    commitments: &BTreeMap<String, Commitment>,
    authority: &[u8; 32],
) -> Statement {
    Statement {
        daemon_id: daemon_id.to_string(),
        ceremony_id: ceremony_id.to_string(),
        epoch,
        policy: hex::encode(policy_digest),
        seal: hex_sha(&[seal]),
        commitments: commitments
            .iter()
            .map(|(id, c)| (id.clone(), hex_sha(&[&[c.x], &c.hash])))
            .collect(),
        authority: hex::encode(authority),
    }
}

fn payload(s: &Statement) -> Result<Vec<u8>> {
    let mut out = DOMAIN.to_vec();
    out.extend(
        serde_json::to_vec(s).map_err(|e| Error::Internal(format!("integrity statement: {e}")))?,
    );
    Ok(out)
}

/// Signs a statement with D.
pub fn sign(s: Statement, d: &SigningKey) -> Result<Signed> {
    let signature = hex::encode(d.sign(&payload(&s)?).to_bytes());
    Ok(Signed {
        statement: s,
        signature,
    })
}

/// Checks the stored statement against D and against the state as it is now;
/// the error names every part that differs.
pub fn check(
    stored: &Signed,
    now: &Statement,
    d: &VerifyingKey,
) -> std::result::Result<(), String> {
    let sig = hex::decode(&stored.signature)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or("its integrity record is not signed")?;
    if d.verify_strict(
        &payload(&stored.statement).map_err(|e| e.to_string())?,
        &sig,
    )
    .is_err()
    {
        return Err("daemon.key is not the key the ceremony made (or the integrity record was altered): the daemon would sign with a key nobody trusts".into());
    }
    let s = &stored.statement;
    let mut differ = Vec::new();
    for (what, a, b) in [
        ("the daemon id", &s.daemon_id, &now.daemon_id),
        ("the ceremony id", &s.ceremony_id, &now.ceremony_id),
        ("the epoch", &s.epoch.to_string(), &now.epoch.to_string()),
        ("the policy", &s.policy, &now.policy),
        ("the seal of the authority seed", &s.seal, &now.seal),
        ("A's public key", &s.authority, &now.authority),
    ] {
        if a != b {
            differ.push(what.to_string());
        }
    }
    let ids: std::collections::BTreeSet<&String> =
        s.commitments.keys().chain(now.commitments.keys()).collect();
    for id in ids {
        if s.commitments.get(id) != now.commitments.get(id) {
            differ.push(format!("the share commitment of custodian `{id}`"));
        }
    }
    if differ.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} differ{} from what D signed at the ceremony or the last committed change",
            differ.join(", "),
            if differ.len() == 1 { "s" } else { "" }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st() -> Statement {
        let mut c = BTreeMap::new();
        c.insert(
            "c1".to_string(),
            Commitment {
                x: 1,
                hash: [7; 32],
            },
        );
        c.insert(
            "c2".to_string(),
            Commitment {
                x: 2,
                hash: [8; 32],
            },
        );
        statement("d", "cer", 1, &[1; 32], b"seal", &c, &[2; 32])
    }

    /// Invariant 8: any change to what an unlock depends on, or another D, is found and named.
    #[test]
    fn finds_and_names_each_difference() {
        let d = SigningKey::from_bytes(&[3; 32]);
        let signed = sign(st(), &d).unwrap();
        assert_eq!(check(&signed, &st(), &d.verifying_key()), Ok(()));
        let mut seal = st();
        seal.seal = hex_sha(&[b"seaL"]);
        let e = check(&signed, &seal, &d.verifying_key()).unwrap_err();
        assert!(
            e.starts_with("the seal of the authority seed differs"),
            "{e}"
        );
        let mut epoch = st();
        epoch.epoch = 2;
        let e = check(&signed, &epoch, &d.verifying_key()).unwrap_err();
        assert!(e.starts_with("the epoch differs"), "{e}");
        let mut com = st();
        com.commitments.insert("c2".into(), "00".into());
        let e = check(&signed, &com, &d.verifying_key()).unwrap_err();
        assert!(e.contains("the share commitment of custodian `c2`"), "{e}");
        let other = SigningKey::from_bytes(&[4; 32]).verifying_key();
        let e = check(&signed, &st(), &other).unwrap_err();
        assert!(
            e.starts_with("daemon.key is not the key the ceremony made"),
            "{e}"
        );
    }

    /// Epoch 1's statement is the JSON D signed before epochs existed (no
    /// `epoch` field), so a state made by an earlier version still starts; a
    /// later epoch's statement names its number, and the number is signed.
    #[test]
    fn the_first_epoch_signs_as_before_epochs() {
        let d = SigningKey::from_bytes(&[3; 32]);
        let json = String::from_utf8(payload(&st()).unwrap()).unwrap();
        assert!(!json.contains("epoch"), "{json}");
        let legacy: Statement = serde_json::from_str(&json[DOMAIN.len()..]).unwrap();
        assert_eq!(legacy.epoch, 1);
        let signed = sign(legacy, &d).unwrap();
        assert_eq!(check(&signed, &st(), &d.verifying_key()), Ok(()));
        let mut second = st();
        second.epoch = 2;
        let json = String::from_utf8(payload(&second).unwrap()).unwrap();
        assert!(json.contains("\"epoch\":2"), "{json}");
        let signed = sign(second.clone(), &d).unwrap();
        assert_eq!(check(&signed, &second, &d.verifying_key()), Ok(()));
        let mut moved = signed.clone();
        moved.statement.epoch = 3;
        assert!(check(&moved, &second, &d.verifying_key()).is_err());
    }
}
