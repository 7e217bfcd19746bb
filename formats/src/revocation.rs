//! Revocation lists: the entries the daemon signs with D (`GetRevocations`) and
//! the JSON list `breakglass revocations --json` writes for token verifiers.
//!
//! The JSON list carries D's public key and D's signature over
//! `breakglass_proto::signing::revocation_list`, which covers every field the
//! file holds (daemon id, time, authority, and each entry whole, including who
//! revoked and why); `revoked_token_ids` is derived from the entries and must
//! match them. A verifier gets a [`VerifiedRevocations`] only from
//! [`RevocationListJson::verify`], and only that type answers "is this
//! revoked?".

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use breakglass_proto::signing;

use crate::keys::AuthorityPublic;

/// Format tag of the JSON revocation list (v1 lists were unsigned and are refused).
pub const REVOCATIONS_FORMAT: &str = "breakglass-revocations/v2";

/// One revoked credential in the published list (also the entry of the JSON list
/// `breakglass revocations --json` writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedItem {
    /// Request id (token `jti`).
    pub request_id: String,
    /// SSH certificate key id, or empty.
    pub ssh_key_id: String,
    /// SSH certificate serial, or 0.
    pub ssh_serial: u64,
    /// When revoked.
    pub revoked_at: u64,
    /// Who revoked.
    pub revoked_by: String,
    /// Why.
    pub reason: String,
    /// When it expires anyway.
    pub expires_at: u64,
}

/// The JSON revocation list for services that accept tokens, as written: not
/// yet checked. [`RevocationListJson::verify`] turns it into [`VerifiedRevocations`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationListJson {
    /// [`REVOCATIONS_FORMAT`].
    pub format: String,
    /// Daemon id.
    pub daemon_id: String,
    /// When the daemon made the list.
    pub generated_at: u64,
    /// The daemon key D that signed the list (64 hex digits, as `breakglass info` prints it).
    /// Absent in the unsigned v1 lists, which are refused by name.
    #[serde(default)]
    pub daemon_public_key: String,
    /// The authority the list belongs to (`ssh-ed25519 …`).
    pub authority_ssh: String,
    /// Revoked token ids (`jti`), for a quick lookup: exactly the entries' request ids.
    pub revoked_token_ids: Vec<String>,
    /// Details.
    pub revoked: Vec<RevokedItem>,
    /// D's ed25519 signature over `signing::revocation_list` (128 hex digits).
    #[serde(default)]
    pub signature: String,
}

/// Why a JSON revocation list is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// The format tag is not [`REVOCATIONS_FORMAT`] (v1 lists carried no signature).
    #[error("revocation list format `{found}` is not `{REVOCATIONS_FORMAT}` (v1 lists were unsigned): write a new one with `breakglass revocations --json FILE`")]
    Format {
        /// The tag found.
        found: String,
    },
    /// No signature or no daemon key in the file.
    #[error("the revocation list carries no daemon signature or daemon key, so nobody can tell who wrote it: write a new one with `breakglass revocations --json FILE`")]
    Unsigned,
    /// `daemon_public_key` is not an ed25519 key in hex.
    #[error("the revocation list's daemon_public_key is not an ed25519 key as 64 hex digits")]
    DaemonKey,
    /// `signature` is not 64 bytes in hex.
    #[error("the revocation list's signature is not 128 hex digits")]
    SignatureMalformed,
    /// `authority_ssh` is not an authority key.
    #[error("the revocation list's authority_ssh: {0}")]
    Authority(String),
    /// Signed by a daemon key other than the one the verifier expects.
    #[error("the revocation list is signed by daemon key {found}, not the expected {expected}: it comes from another daemon")]
    OtherDaemon {
        /// The key in the file (hex).
        found: String,
        /// The key expected (hex).
        expected: String,
    },
    /// The signature does not cover what the file says.
    #[error("the revocation list's signature does not verify under daemon key {key}: the file was changed after the daemon signed it (an entry removed, added or edited)")]
    BadSignature {
        /// The key in the file (hex).
        key: String,
    },
    /// `revoked_token_ids` differs from the signed entries.
    #[error("the revocation list's revoked_token_ids do not match its signed entries: the file was edited")]
    TokenIds,
}

impl RevocationListJson {
    /// The list as D signs it, from the entries the daemon returned: fills in the
    /// token ids, the daemon key and the signature.
    pub fn new(
        daemon_id: &str,
        generated_at: u64,
        daemon_key: &VerifyingKey,
        authority: &AuthorityPublic,
        revoked: Vec<RevokedItem>,
        signature: &[u8; 64],
    ) -> RevocationListJson {
        RevocationListJson {
            format: REVOCATIONS_FORMAT.to_string(),
            daemon_id: daemon_id.to_string(),
            generated_at,
            daemon_public_key: hex::encode(daemon_key.as_bytes()),
            authority_ssh: authority.ssh(),
            revoked_token_ids: revoked.iter().map(|r| r.request_id.clone()).collect(),
            revoked,
            signature: hex::encode(signature),
        }
    }

    /// Checks the format, D's signature over every field, and that the token ids
    /// are the entries'. With `expected`, the list must also be signed by that key.
    pub fn verify(
        self,
        expected: Option<&VerifyingKey>,
    ) -> Result<VerifiedRevocations, RevocationError> {
        if self.format != REVOCATIONS_FORMAT {
            return Err(RevocationError::Format { found: self.format });
        }
        if self.signature.is_empty() || self.daemon_public_key.is_empty() {
            return Err(RevocationError::Unsigned);
        }
        let mut kb = [0u8; 32];
        hex::decode_to_slice(&self.daemon_public_key, &mut kb)
            .map_err(|_| RevocationError::DaemonKey)?;
        let key = VerifyingKey::from_bytes(&kb).map_err(|_| RevocationError::DaemonKey)?;
        if let Some(e) = expected {
            if e != &key {
                return Err(RevocationError::OtherDaemon {
                    found: self.daemon_public_key,
                    expected: hex::encode(e.as_bytes()),
                });
            }
        }
        let mut sb = [0u8; 64];
        hex::decode_to_slice(&self.signature, &mut sb)
            .map_err(|_| RevocationError::SignatureMalformed)?;
        let sig = Signature::from_bytes(&sb);
        let authority = AuthorityPublic::parse(&self.authority_ssh)
            .map_err(|e| RevocationError::Authority(e.to_string()))?;
        let payload = signed_payload(
            &self.daemon_id,
            self.generated_at,
            &authority,
            &self.revoked,
        );
        key.verify_strict(&payload, &sig)
            .map_err(|_| RevocationError::BadSignature {
                key: self.daemon_public_key.clone(),
            })?;
        if !self
            .revoked_token_ids
            .iter()
            .eq(self.revoked.iter().map(|r| &r.request_id))
        {
            return Err(RevocationError::TokenIds);
        }
        Ok(VerifiedRevocations {
            list: self,
            daemon_key: key,
            authority,
        })
    }
}

/// The bytes D signs for these entries (`signing::revocation_list`).
pub fn signed_payload(
    daemon_id: &str,
    generated_at: u64,
    authority: &AuthorityPublic,
    items: &[RevokedItem],
) -> Vec<u8> {
    let entries: Vec<signing::RevokedEntry<'_>> = items
        .iter()
        .map(|i| signing::RevokedEntry {
            request_id: &i.request_id,
            ssh_key_id: &i.ssh_key_id,
            ssh_serial: i.ssh_serial,
            revoked_at: i.revoked_at,
            revoked_by: &i.revoked_by,
            reason: &i.reason,
            expires_at: i.expires_at,
        })
        .collect();
    signing::revocation_list(daemon_id, generated_at, authority.0.as_bytes(), &entries)
}

/// A JSON revocation list whose signature by D was checked: the only kind a
/// credential is checked against.
#[derive(Debug, Clone)]
pub struct VerifiedRevocations {
    list: RevocationListJson,
    daemon_key: VerifyingKey,
    authority: AuthorityPublic,
}

impl VerifiedRevocations {
    /// The list as signed.
    pub fn list(&self) -> &RevocationListJson {
        &self.list
    }

    /// The daemon key D that signed it.
    pub fn daemon_key(&self) -> &VerifyingKey {
        &self.daemon_key
    }

    /// The authority the entries belong to.
    pub fn authority(&self) -> &AuthorityPublic {
        &self.authority
    }

    /// The entry revoking token `jti`, if any.
    pub fn find_token(&self, jti: &str) -> Option<&RevokedItem> {
        self.list.revoked.iter().find(|r| r.request_id == jti)
    }

    /// The entry revoking the certificate with this serial or key id, if any.
    pub fn find_cert(&self, serial: u64, key_id: &str) -> Option<&RevokedItem> {
        self.list.revoked.iter().find(|r| {
            (r.ssh_serial != 0 && r.ssh_serial == serial)
                || (!r.ssh_key_id.is_empty() && r.ssh_key_id == key_id)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn item(id: &str, serial: u64) -> RevokedItem {
        RevokedItem {
            request_id: id.into(),
            ssh_key_id: format!("breakglass:{id}:ic"),
            ssh_serial: serial,
            revoked_at: 100,
            revoked_by: "c1".into(),
            reason: "laptop stolen".into(),
            expires_at: 2000,
        }
    }

    fn signed(d: &SigningKey) -> RevocationListJson {
        let a = AuthorityPublic(SigningKey::from_bytes(&[200; 32]).verifying_key());
        let items = vec![item("req-1", 1), item("req-2", 2)];
        let sig = d.sign(&signed_payload("d1", 150, &a, &items)).to_bytes();
        RevocationListJson::new("d1", 150, &d.verifying_key(), &a, items, &sig)
    }

    /// A list written from what D signed verifies, by its own key and by the expected one.
    #[test]
    fn a_signed_list_verifies() {
        let d = SigningKey::from_bytes(&[150; 32]);
        let v = signed(&d).verify(Some(&d.verifying_key())).unwrap();
        assert!(v.find_token("req-2").is_some());
        assert!(v.find_cert(1, "").is_some());
        // Round trip through the file.
        let text = serde_json::to_string_pretty(v.list()).unwrap();
        let back: RevocationListJson = serde_json::from_str(&text).unwrap();
        assert!(back.verify(None).is_ok());
    }

    /// Every edit a downstream verifier could be fooled by is refused, naming why.
    #[test]
    fn edited_lists_are_refused() {
        let d = SigningKey::from_bytes(&[150; 32]);
        let bad = |f: &dyn Fn(&mut RevocationListJson)| {
            let mut l = signed(&d);
            f(&mut l);
            l.verify(None).unwrap_err()
        };
        let sig_fails = |e: RevocationError| matches!(e, RevocationError::BadSignature { .. });
        assert!(sig_fails(bad(&|l| {
            l.revoked.remove(0);
        })));
        assert!(sig_fails(bad(&|l| l.revoked[0].expires_at += 1)));
        assert!(sig_fails(bad(&|l| l.revoked[1].reason = "routine".into())));
        assert!(sig_fails(bad(&|l| l.revoked[1].revoked_by = "c2".into())));
        assert!(sig_fails(bad(&|l| l.generated_at += 1)));
        assert!(sig_fails(bad(&|l| {
            l.authority_ssh =
                AuthorityPublic(SigningKey::from_bytes(&[201; 32]).verifying_key()).ssh()
        })));
        assert_eq!(
            bad(&|l| {
                l.revoked_token_ids.pop();
            }),
            RevocationError::TokenIds
        );
        assert_eq!(bad(&|l| l.signature.clear()), RevocationError::Unsigned);
        assert!(matches!(
            bad(&|l| l.format = "breakglass-revocations/v1".into()),
            RevocationError::Format { .. }
        ));
    }

    /// A list signed by another daemon is refused when D is given.
    #[test]
    fn another_daemons_list_is_refused_with_the_expected_key() {
        let other = SigningKey::from_bytes(&[151; 32]);
        let d = SigningKey::from_bytes(&[150; 32]);
        let l = signed(&other);
        assert!(l.clone().verify(None).is_ok());
        assert!(matches!(
            l.verify(Some(&d.verifying_key())),
            Err(RevocationError::OtherDaemon { .. })
        ));
    }
}
