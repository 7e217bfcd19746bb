//! `RevokeCredential` and `GetRevocations`.

use breakglass_formats::revocation::RevokedItem;
use breakglass_proto::signing;

use super::{Daemon, Sig};
use crate::engine::policy;
use crate::engine::request::Request;
use crate::error::{Error, Result};

/// The revocation list, signed by D.
#[derive(Debug, Clone)]
pub struct RevocationList {
    /// Entries, oldest revocation first.
    pub items: Vec<RevokedItem>,
    /// When made.
    pub generated_at: u64,
    /// D's signature over `signing::revocation_list`.
    pub signature: [u8; 64],
}

/// The call's name in `call_refused` records.
const CALL: &str = "revoke_credential";

impl Daemon {
    /// Revokes a minted credential (its requester or any custodian).
    pub fn revoke(&self, request_id: &str, reason: &str, sig: Sig) -> Result<Request> {
        let why = policy::reason(reason, false)?;
        let now = self.now();
        let _guard = self.lock()?;
        let r = self.load(request_id)?;
        let payload = signing::revoke_credential(
            &self.meta.daemon_id,
            &r.id,
            &r.digest,
            &sig.signer_id,
            reason,
            sig.signed_at,
        );
        let actor = self.requester_or_custodian(CALL, &r, &sig, &payload, now, |id, caller| {
            Error::NotAllowedToRevoke { id, caller }
        })?;
        let (revoked, recs) = r
            .revoke(actor.id(), why, now)
            .map_err(|e| self.refused_call(CALL, &actor, Some(&r.id), e, now))?;
        self.commit_one(&revoked, super::stamp(recs, &actor))?;
        Ok(revoked)
    }

    /// The revocation list, signed by D.
    pub fn revocations(&self, include_expired: bool) -> Result<RevocationList> {
        let now = self.now();
        let mut items: Vec<RevokedItem> = self
            .store
            .revoked_requests((!include_expired).then_some(now))?
            .into_iter()
            .filter_map(|r| {
                let rev = r.revocation?;
                let cred = r.credential?;
                Some(RevokedItem {
                    request_id: r.id,
                    ssh_key_id: cred.ssh_key_id.unwrap_or_default(),
                    ssh_serial: cred.ssh_serial.unwrap_or(0),
                    revoked_at: rev.at,
                    revoked_by: rev.by,
                    reason: rev.reason,
                    expires_at: cred.expires_at,
                })
            })
            .collect();
        items.sort_by(|a, b| {
            a.revoked_at
                .cmp(&b.revoked_at)
                .then_with(|| a.request_id.cmp(&b.request_id))
        });
        let generated_at = now;
        let signature = self.key.sign_revocations(
            &self.meta.daemon_id,
            generated_at,
            &self.meta.authority_public,
            &items,
        );
        Ok(RevocationList {
            items,
            generated_at,
            signature,
        })
    }
}
