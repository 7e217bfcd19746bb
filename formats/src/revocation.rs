//! Revocation lists: the entries the daemon signs with D (`GetRevocations`) and
//! the JSON list `breakglass revocations --json` writes for token verifiers.

use serde::{Deserialize, Serialize};

/// Format tag of the JSON revocation list.
pub const REVOCATIONS_FORMAT: &str = "breakglass-revocations/v1";

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

/// The JSON revocation list for services that accept tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationListJson {
    /// [`REVOCATIONS_FORMAT`].
    pub format: String,
    /// Daemon id.
    pub daemon_id: String,
    /// When the daemon made the list.
    pub generated_at: u64,
    /// The authority the list belongs to (`ssh-ed25519 …`).
    pub authority_ssh: String,
    /// Revoked token ids (`jti`), for a quick lookup.
    pub revoked_token_ids: Vec<String>,
    /// Details.
    pub revoked: Vec<RevokedItem>,
}

impl RevocationListJson {
    /// The entry revoking token `jti`, if any.
    pub fn find_token(&self, jti: &str) -> Option<&RevokedItem> {
        self.revoked.iter().find(|r| r.request_id == jti)
    }

    /// The entry revoking the certificate with this serial or key id, if any.
    pub fn find_cert(&self, serial: u64, key_id: &str) -> Option<&RevokedItem> {
        self.revoked.iter().find(|r| {
            (r.ssh_serial != 0 && r.ssh_serial == serial)
                || (!r.ssh_key_id.is_empty() && r.ssh_key_id == key_id)
        })
    }
}
