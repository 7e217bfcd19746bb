//! `CancelRequest`: the requester or any custodian stops a collecting request.

use breakglass_proto::signing;

use super::{Daemon, Sig};
use crate::engine::policy;
use crate::engine::request::Request;
use crate::error::{Error, Result};

impl Daemon {
    /// Cancels a collecting request (its requester or any custodian).
    pub fn cancel(&self, request_id: &str, reason: &str, sig: Sig) -> Result<Request> {
        let why = policy::reason(reason, false)?;
        let now = self.now();
        let mut live = self.lock()?;
        let c = self.take_live(&mut live, request_id)?;
        let r = c.request();
        let payload = signing::cancel_request(
            &self.meta.daemon_id,
            &r.id,
            &r.digest,
            &sig.signer_id,
            reason,
            sig.signed_at,
        );
        let actor = match self.requester_or_custodian(r, &sig, &payload, now, |id, caller| {
            Error::NotAllowedToCancel { id, caller }
        }) {
            Ok(a) => a,
            Err(e) => {
                live.requests.insert(r.id.clone(), c);
                return Err(e);
            }
        };
        let id = r.id.clone();
        // The state (E_req, shares) drops once the cancellation is committed.
        let out = match c.cancel(actor.id(), why, now, |r, recs| self.commit_one(r, recs)) {
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
