//! `OpenRequest`: a commander asks for emergency access, or opens a live
//! drill (a request that grants nothing: no scope, TTL or key, its own
//! signed payload and digest, one at a time, outside the open bound).

use breakglass_proto::signing::{self, NONCE_LEN};

use super::{Daemon, Sig};
use crate::engine::auth::{self, Actor};
use crate::engine::collecting::{Collecting, OpenParams};
use crate::engine::policy;
use crate::engine::request::{Kind, Request};
use crate::error::{Error, Result};

/// A commander's open call.
#[derive(Debug, Clone)]
pub struct OpenCall {
    /// Scope.
    pub scope: String,
    /// Reason.
    pub reason: String,
    /// TTL.
    pub ttl_seconds: u64,
    /// OpenSSH public key to certify (required when the scope mints SSH certificates).
    pub ssh_public_key: String,
    /// Client nonce.
    pub nonce: Vec<u8>,
    /// Access or drill.
    pub kind: Kind,
    /// Signature.
    pub sig: Sig,
}

/// The call's name in `call_refused` records.
const CALL: &str = "open_request";

impl Daemon {
    /// Opens a request.
    pub fn open(&self, call: OpenCall) -> Result<Request> {
        if call.nonce.len() != NONCE_LEN {
            return Err(Error::invalid(
                "nonce",
                format!(
                    "is {} bytes; must be {NONCE_LEN} random bytes",
                    call.nonce.len()
                ),
            ));
        }
        policy::plain_text("scope", &call.scope)?;
        policy::plain_text("ssh_public_key", &call.ssh_public_key)?;
        let drill = call.kind == Kind::Drill;
        if drill
            && (!call.scope.is_empty() || call.ttl_seconds != 0 || !call.ssh_public_key.is_empty())
        {
            return Err(Error::invalid(
                "kind",
                "a drill grants nothing: its scope, ttl_seconds and ssh_public_key must be empty",
            ));
        }
        let now = self.now();
        let epoch = self.epoch();
        let policy = &epoch.policy;
        let payload = if drill {
            signing::open_drill(
                &self.meta.daemon_id,
                &call.sig.signer_id,
                &call.reason,
                &call.nonce,
                call.sig.signed_at,
            )
        } else {
            signing::open_request(
                &self.meta.daemon_id,
                &call.sig.signer_id,
                &call.scope,
                &call.reason,
                call.ttl_seconds,
                &call.ssh_public_key,
                &call.nonce,
                call.sig.signed_at,
            )
        };
        // A drill may be opened by a custodian too, if the policy says so.
        let checks = self.checks(policy, now);
        let actor = if drill {
            match self.verified(
                CALL,
                None,
                auth::authenticate_any(checks, &call.sig.by(), &payload),
                now,
            )? {
                Actor::Commander(c) => Actor::Commander(c),
                Actor::Custodian(c) if policy.custodians_may_drill => {
                    let others = policy.custodians.len().saturating_sub(1);
                    if policy.separation_of_duties && others < usize::from(policy.threshold) {
                        let e = Error::DrillCannotReachQuorum {
                            custodian: c.id().to_string(),
                            others,
                            threshold: policy.threshold,
                        };
                        return Err(self.refused_call(CALL, &c, None, e, now));
                    }
                    Actor::Custodian(c)
                }
                Actor::Custodian(c) => {
                    let e = Error::DrillNotAllowed {
                        custodian: c.id().to_string(),
                    };
                    return Err(self.refused_call(CALL, &c, None, e, now));
                }
            }
        } else {
            Actor::Commander(self.verified(
                CALL,
                None,
                auth::authenticate_commander(checks, &call.sig.by(), &payload),
                now,
            )?)
        };
        let who = actor.id();
        // The signature verified: from here every refusal is on the record.
        let refuse = |id: Option<&str>, e: Error| self.refused_call(CALL, &actor, id, e, now);
        let (ssh_public_key, kinds, principals, ssh_extensions) = if drill {
            (String::new(), Vec::new(), Vec::new(), Vec::new())
        } else {
            let (key, scope) = policy
                .authorize_open(who, &call.scope, call.ttl_seconds)
                .and_then(|()| {
                    let scope = policy.scope(&call.scope)?;
                    Ok((policy.subject_key(scope, &call.ssh_public_key)?, scope))
                })
                .map_err(|e| refuse(None, e))?;
            // What the scope grants, for the `request_opened` record.
            let kinds = scope
                .credentials
                .iter()
                .map(|k| k.name().to_string())
                .collect();
            (
                key,
                kinds,
                scope.principals.clone(),
                scope.ssh_extensions.clone(),
            )
        };
        let id = signing::request_id(&payload);
        let mut live = self.lock()?;
        self.same_epoch(&epoch)?;
        if self.store.request(&id)?.is_some() {
            // A replay of a signed open (or the same open sent twice).
            return Err(refuse(Some(&id), Error::RequestExists { id: id.clone() }));
        }
        if drill {
            if let Some(c) = live
                .requests
                .values()
                .find(|c| c.request().kind == Kind::Drill)
            {
                let e = Error::DrillInProgress {
                    id: c.request().id.clone(),
                };
                return Err(refuse(None, e));
            }
        } else {
            policy
                .check_open_bound(
                    who,
                    live.requests
                        .values()
                        .filter(|c| {
                            c.request().requester == who && c.request().kind == Kind::Access
                        })
                        .map(|c| c.request().id.clone())
                        .collect(),
                )
                .map_err(|e| refuse(None, e))?;
        }
        let (collecting, records) = Collecting::open(
            OpenParams {
                id: id.clone(),
                daemon_id: self.meta.daemon_id.clone(),
                requester: who.to_string(),
                scope: call.scope,
                reason: call.reason,
                ttl_seconds: call.ttl_seconds,
                window_seconds: policy.collection_window_seconds,
                threshold: u32::from(policy.threshold),
                ssh_public_key,
                kinds,
                principals,
                ssh_extensions,
                kind: call.kind,
                change: None,
            },
            live.rng.as_mut(),
            now,
        )?;
        // Persisted first: if the commit fails, the new E_req drops (wiped) here.
        self.commit_one(collecting.request(), super::stamp(records, &actor))?;
        let r = collecting.request().clone();
        live.requests.insert(id, collecting);
        drop(live);
        super::scrub_stack();
        Ok(r)
    }
}
