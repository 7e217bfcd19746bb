//! `FetchCredential`: the requester collects the encrypted credential.

use breakglass_proto::signing;

use super::{Daemon, Sig};
use crate::engine::auth;
use crate::engine::request::{Request, StoredCredential};
use crate::error::Result;

impl Daemon {
    /// The requester's encrypted credential; the fetch is recorded.
    pub fn fetch(&self, request_id: &str, sig: Sig) -> Result<(Request, StoredCredential)> {
        let now = self.now();
        let r = self.load(request_id)?;
        let payload = signing::fetch_credential(
            &self.meta.daemon_id,
            &r.id,
            &r.digest,
            &sig.signer_id,
            sig.signed_at,
        );
        let policy = self.policy();
        let who = self.verified(
            "fetch_credential",
            Some(&r.id),
            auth::authenticate_commander(self.checks(&policy, now), &sig.by(), &payload),
            now,
        )?;
        let (cred, recs) = r
            .fetch(who.id(), now)
            .map_err(|e| self.refused_call("fetch_credential", &who, Some(&r.id), e, now))?;
        let cred = cred.clone();
        self.commit(&[], super::stamp(recs, &who))?;
        Ok((r, cred))
    }
}
