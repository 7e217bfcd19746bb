//! `CancelRequest`: the requester or any custodian stops a collecting request.

use breakglass_proto::signing;

use super::{Daemon, Sig};
use crate::engine::policy;
use crate::engine::request::Request;
use crate::error::{Error, Result};

/// The call's name in `call_refused` records.
const CALL: &str = "cancel_request";

impl Daemon {
    /// Cancels a collecting request (its requester or any custodian).
    pub fn cancel(&self, request_id: &str, reason: &str, sig: Sig) -> Result<Request> {
        let why = policy::reason(reason, false)?;
        let now = self.now();
        let mut live = self.lock()?;
        let payload = |r: &Request| {
            signing::cancel_request(
                &self.meta.daemon_id,
                &r.id,
                &r.digest,
                &sig.signer_id,
                reason,
                sig.signed_at,
            )
        };
        let deny = |id, caller| Error::NotAllowedToCancel { id, caller };
        if live
            .requests
            .get(request_id)
            .map(|c| c.request().kind)
            .or_else(|| {
                self.store
                    .request(request_id)
                    .ok()
                    .flatten()
                    .map(|r| r.kind)
            })
            == Some(crate::engine::request::Kind::Change)
        {
            return Err(Error::WrongKind {
                id: request_id.to_string(),
                what: "is a policy change: cancel it with `breakglass policy cancel`",
            });
        }
        let Some(c) = live.requests.remove(request_id) else {
            // Not collecting: closed (or unknown). A verified caller's attempt
            // is refused on the record.
            let r = self.load(request_id)?;
            let actor = self.requester_or_custodian(CALL, &r, &sig, &payload(&r), now, deny)?;
            let e = if r.state.is_terminal() {
                r.closed_error()
            } else {
                Error::Internal(format!(
                    "request `{}` is stored as collecting but its ephemeral key is gone",
                    r.id
                ))
            };
            return Err(self.refused_call(CALL, &actor, Some(&r.id), e, now));
        };
        let r = c.request();
        let actor = match self.requester_or_custodian(CALL, r, &sig, &payload(r), now, deny) {
            Ok(a) => a,
            Err(e) => {
                live.requests.insert(r.id.clone(), c);
                return Err(e);
            }
        };
        let id = r.id.clone();
        // The state (E_req, shares) drops once the cancellation is committed.
        let out = match c.cancel(actor.id(), why, now, |r, recs| {
            self.commit_one(r, super::stamp(recs, &actor))
        }) {
            Ok(closed) => Ok(closed),
            Err(refused) => {
                live.requests.insert(id, refused.state);
                Err(refused.error)
            }
        };
        drop(live);
        super::scrub_stack();
        out
    }
}
