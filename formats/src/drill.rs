//! The drill statement: what a passed live drill proves, signed by the
//! authority key A (the key only a real quorum can rebuild), written as JSON
//! so a team can keep it and anyone can check it offline against A.

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use breakglass_proto::signing;

/// Format tag of a drill statement file.
pub const DRILL_STATEMENT_FORMAT: &str = "breakglass-drill-statement/v1";

/// A passed drill, as the daemon hands it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillStatement {
    /// [`DRILL_STATEMENT_FORMAT`].
    pub format: String,
    /// Daemon id.
    pub daemon_id: String,
    /// Epoch of the shares combined.
    pub epoch: u64,
    /// The drill request.
    pub request_id: String,
    /// Hex request digest.
    pub digest: String,
    /// Custodians whose shares rebuilt the key, in arrival order.
    pub approvers: Vec<String>,
    /// When the drill was opened.
    pub opened_at: u64,
    /// When the quorum was reached.
    pub quorum_at: u64,
    /// `quorum_at - opened_at`.
    pub seconds_to_quorum: u64,
    /// Hex authority public key A that signed.
    pub authority_public_key: String,
    /// Hex ed25519 signature by A over `signing::drill_statement`.
    pub signature: String,
}

/// Why a drill statement does not prove a drill.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DrillError {
    /// Not JSON of this format.
    #[error("not a drill statement: {0}")]
    Malformed(String),
    /// Signed by another key than the authority given.
    #[error("the statement names authority {named}, not the authority {expected} you gave: it is from another daemon")]
    OtherAuthority {
        /// In the statement.
        named: String,
        /// Given.
        expected: String,
    },
    /// For another daemon than the one given.
    #[error("the statement is for daemon {named}, not {expected}: it is from another daemon")]
    OtherDaemon {
        /// In the statement.
        named: String,
        /// Given.
        expected: String,
    },
    /// The signature does not verify.
    #[error("the signature does not verify against the authority key: the statement was altered or not signed by A")]
    BadSignature,
}

impl DrillStatement {
    /// Parses a statement file.
    pub fn parse(text: &str) -> Result<DrillStatement, DrillError> {
        let s: DrillStatement =
            serde_json::from_str(text).map_err(|e| DrillError::Malformed(e.to_string()))?;
        if s.format != DRILL_STATEMENT_FORMAT {
            return Err(DrillError::Malformed(format!(
                "format is {:?}, expected {DRILL_STATEMENT_FORMAT:?}",
                s.format
            )));
        }
        Ok(s)
    }

    /// The signed bytes.
    pub fn payload(&self) -> Result<Vec<u8>, DrillError> {
        let digest: [u8; 32] = hex32(&self.digest, "digest")?;
        Ok(signing::drill_statement(&signing::DrillStatement {
            daemon_id: &self.daemon_id,
            epoch: self.epoch,
            request_id: &self.request_id,
            digest: &digest,
            approvers: &self.approvers,
            opened_at: self.opened_at,
            quorum_at: self.quorum_at,
        }))
    }

    /// Checks the statement against the authority key A (32 bytes) and, if
    /// given, the daemon id it must be for.
    pub fn verify(&self, authority: &[u8; 32], daemon_id: Option<&str>) -> Result<(), DrillError> {
        let named = hex32(&self.authority_public_key, "authority_public_key")?;
        if &named != authority {
            return Err(DrillError::OtherAuthority {
                named: self.authority_public_key.clone(),
                expected: hex::encode(authority),
            });
        }
        if let Some(want) = daemon_id {
            if want != self.daemon_id {
                return Err(DrillError::OtherDaemon {
                    named: self.daemon_id.clone(),
                    expected: want.to_string(),
                });
            }
        }
        if self.quorum_at.checked_sub(self.opened_at) != Some(self.seconds_to_quorum) {
            return Err(DrillError::Malformed(
                "seconds_to_quorum is not quorum_at - opened_at".into(),
            ));
        }
        let sig: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| DrillError::Malformed("signature is not 64 hex bytes".into()))?;
        let key = VerifyingKey::from_bytes(authority)
            .map_err(|e| DrillError::Malformed(format!("authority key: {e}")))?;
        key.verify_strict(&self.payload()?, &Signature::from_bytes(&sig))
            .map_err(|_| DrillError::BadSignature)
    }
}

fn hex32(s: &str, what: &str) -> Result<[u8; 32], DrillError> {
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| DrillError::Malformed(format!("{what} is not 32 hex bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn signed(a: &SigningKey) -> DrillStatement {
        let mut s = DrillStatement {
            format: DRILL_STATEMENT_FORMAT.into(),
            daemon_id: "d1".into(),
            epoch: 1,
            request_id: "req-1".into(),
            digest: hex::encode([3u8; 32]),
            approvers: vec!["alice".into(), "bob".into()],
            opened_at: 10,
            quorum_at: 70,
            seconds_to_quorum: 60,
            authority_public_key: hex::encode(a.verifying_key().to_bytes()),
            signature: String::new(),
        };
        s.signature = hex::encode(a.sign(&s.payload().unwrap()).to_bytes());
        s
    }

    /// A statement verifies against its A; another A, another daemon, or any
    /// edit is refused with its own error.
    #[test]
    fn verifies_and_refuses() {
        let a = SigningKey::from_bytes(&[1u8; 32]);
        let other = SigningKey::from_bytes(&[2u8; 32]);
        let a_pub = a.verifying_key().to_bytes();
        let s = signed(&a);
        let text = serde_json::to_string(&s).unwrap();
        let back = DrillStatement::parse(&text).unwrap();
        back.verify(&a_pub, Some("d1")).unwrap();
        assert!(matches!(
            back.verify(&other.verifying_key().to_bytes(), None),
            Err(DrillError::OtherAuthority { .. })
        ));
        assert!(matches!(
            back.verify(&a_pub, Some("d2")),
            Err(DrillError::OtherDaemon { .. })
        ));
        let mut edited = back.clone();
        edited.approvers.pop();
        assert_eq!(edited.verify(&a_pub, None), Err(DrillError::BadSignature));
        let forged = signed(&other);
        let mut forged = forged;
        forged.authority_public_key = hex::encode(a_pub);
        assert_eq!(forged.verify(&a_pub, None), Err(DrillError::BadSignature));
        assert!(DrillStatement::parse("{}").is_err());
    }
}
