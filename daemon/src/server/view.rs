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
        kind: r.kind.code(),
        drill_statement: r.drill_statement.clone().unwrap_or_default(),
    }
}

/// The daemon's public description (`GetInfo`).
pub fn info(d: &Daemon, audit_head: u64) -> crate::error::Result<pb::GetInfoResponse> {
    let m = d.meta();
    let a = d.authority()?;
    // One epoch for the whole answer: its policy, commitments and number agree.
    let e = d.epoch();
    let p = &e.policy;
    Ok(pb::GetInfoResponse {
        daemon_id: m.daemon_id.clone(),
        ceremony_id: m.ceremony_id.clone(),
        daemon_public_key: d.daemon_public().to_bytes().to_vec(),
        authority_public_key: a.0.to_bytes().to_vec(),
        authority_paserk: a.paserk(),
        authority_ssh: a.ssh(),
        threshold: u32::from(p.threshold),
        custodians: p
            .custodians
            .iter()
            .map(|c| {
                let published = e.published_share(&c.id);
                pb::Custodian {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    ssh_public_key: c.ssh_key.clone(),
                    share_x: published.map(|(com, _)| u32::from(com.x)).unwrap_or(0),
                    share_commitment: published
                        .map(|(com, _)| com.hash.to_vec())
                        .unwrap_or_default(),
                    share_signature: published.map(|(_, sig)| sig.to_vec()).unwrap_or_default(),
                }
            })
            .collect(),
        commanders: p
            .commanders
            .iter()
            .map(|c| pb::Commander {
                id: c.member.id.clone(),
                name: c.member.name.clone(),
                scopes: c.scopes.clone(),
                ssh_public_key: c.member.ssh_key.clone(),
            })
            .collect(),
        scopes: p
            .scopes
            .iter()
            .map(|s| pb::Scope {
                name: s.name.clone(),
                principals: s.principals.clone(),
                max_ttl_seconds: p.ttl_cap(s),
                credentials: s.credentials.iter().map(|k| k.name().to_string()).collect(),
                ssh_extensions: s.ssh_extensions.clone(),
            })
            .collect(),
        collection_window_seconds: p.collection_window_seconds,
        max_ttl_seconds: p.max_ttl_seconds,
        policy_digest: hex::encode(e.policy_digest),
        version: env!("CARGO_PKG_VERSION").to_string(),
        freshness_seconds: p.freshness_seconds,
        audit_head,
        epoch: e.number,
    })
}
