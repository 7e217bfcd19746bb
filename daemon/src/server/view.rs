//! A stored request as the wire's `RequestView`, signed by D.

use breakglass_proto::pb;

use crate::engine::request::Request;
use crate::ops::Daemon;

/// Encodes a request with D's signature.
pub fn view(d: &Daemon, r: &Request) -> pb::RequestView {
    pb::RequestView {
        id: r.id.clone(),
        daemon_id: r.daemon_id.clone(),
        requester: r.requester.clone(),
        scope: r.scope.clone(),
        reason: r.reason.clone(),
        ttl_seconds: r.ttl_seconds,
        opened_at: r.opened_at,
        deadline: r.deadline,
        threshold: r.threshold,
        ephemeral_public_key: r.ephemeral_public.to_vec(),
        digest: r.digest.to_vec(),
        state: r.state.code(),
        approvals: r
            .approvals
            .iter()
            .map(|a| pb::Approval {
                custodian_id: a.custodian.clone(),
                accepted_at: a.at,
            })
            .collect(),
        closed_at: r.closed_at,
        close_reason: r.close_reason.clone(),
        credential_expires_at: r.credential.as_ref().map(|c| c.expires_at).unwrap_or(0),
        daemon_signature: d.sign_view(r).to_vec(),
        ssh_public_key: r.ssh_public_key.clone(),
        revoked_at: r.revocation.as_ref().map(|x| x.at).unwrap_or(0),
        revoked_by: r
            .revocation
            .as_ref()
            .map(|x| x.by.clone())
            .unwrap_or_default(),
        revoke_reason: r
            .revocation
            .as_ref()
            .map(|x| x.reason.clone())
            .unwrap_or_default(),
    }
}
