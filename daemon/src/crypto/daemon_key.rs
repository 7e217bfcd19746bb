//! The daemon key D: signs request views, revocation lists and audit
//! checkpoints, so what the daemon says can be checked offline. D never signs
//! credentials (that is A).

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use breakglass_formats::revocation::RevokedItem;
use breakglass_proto::signing;

use crate::engine::request::Request;
use crate::engine::share::{Commitment, Lineage};

/// D's signature over a share statement (`signing::share_statement`) of a
/// share of `lineage` (ceremony and epoch): written into the share file by
/// the ceremony or a rekey, and published per custodian by `GetInfo`. Deterministic (ed25519), so the
/// daemon re-signs at start and publishes the same bytes the file carries.
pub fn sign_share_statement(
    d: &SigningKey,
    daemon_id: &str,
    lineage: Lineage<'_>,
    custodian_id: &str,
    commitment: &Commitment,
    threshold: u8,
    custodians: u8,
) -> [u8; 64] {
    let statement = signing::share_statement(&signing::ShareStatement {
        daemon_id,
        ceremony_id: lineage.ceremony_id,
        epoch: lineage.epoch,
        custodian_id,
        x: commitment.x,
        commitment: &commitment.hash,
        threshold,
        custodians,
    });
    d.sign(&statement).to_bytes()
}

/// D. `SigningKey` wipes itself on drop.
pub struct DaemonKey(SigningKey);

impl DaemonKey {
    /// Wraps a loaded key.
    pub fn new(key: SigningKey) -> DaemonKey {
        DaemonKey(key)
    }

    /// The public half.
    pub fn public(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    /// The key itself, for the audit checkpointer.
    pub(crate) fn signing(&self) -> &SigningKey {
        &self.0
    }

    /// D's signature over the request's current view (`signing::request_view`).
    pub fn sign_view(&self, r: &Request) -> [u8; 64] {
        let approvals: Vec<(String, u64)> = r
            .approvals
            .iter()
            .map(|a| (a.custodian.clone(), a.at))
            .collect();
        let payload = signing::request_view(
            &r.digest,
            &signing::RequestStatus {
                state: r.state.code(),
                approvals: &approvals,
                closed_at: r.closed_at,
                close_reason: &r.close_reason,
                credential_expires_at: r.credential.as_ref().map(|c| c.expires_at).unwrap_or(0),
                revoked_at: r.revocation.as_ref().map(|x| x.at).unwrap_or(0),
                revoked_by: r.revocation.as_ref().map(|x| x.by.as_str()).unwrap_or(""),
                revoke_reason: r
                    .revocation
                    .as_ref()
                    .map(|x| x.reason.as_str())
                    .unwrap_or(""),
            },
        );
        self.0.sign(&payload).to_bytes()
    }

    /// D's signature over an attestation challenge (`signing::attestation_challenge`).
    pub fn sign_challenge(&self, c: &signing::Challenge<'_>) -> [u8; 64] {
        self.0.sign(&signing::attestation_challenge(c)).to_bytes()
    }

    /// D's signature over the end of an audit export (`signing::audit_export_trailer`).
    pub fn sign_export_trailer(
        &self,
        daemon_id: &str,
        seq: u64,
        head: &[u8; 32],
        generated_at: u64,
    ) -> [u8; 64] {
        self.0
            .sign(&signing::audit_export_trailer(
                daemon_id,
                seq,
                head,
                generated_at,
            ))
            .to_bytes()
    }

    /// D's signature over a revocation list (`signing::revocation_list`) of
    /// certificates and tokens minted by the authority `authority_public`.
    pub fn sign_revocations(
        &self,
        daemon_id: &str,
        generated_at: u64,
        authority_public: &[u8; 32],
        items: &[RevokedItem],
    ) -> [u8; 64] {
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
        self.0
            .sign(&signing::revocation_list(
                daemon_id,
                generated_at,
                authority_public,
                &entries,
            ))
            .to_bytes()
    }
}
