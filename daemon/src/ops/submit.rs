//! `SubmitShare`: a custodian's sealed share; the share that completes the
//! quorum also unlocks and mints.
//!
//! Cheapest check first, each made once: the sealed share's shape (proto),
//! membership (engine auth), the request's window, one share per custodian and
//! separation of duties (engine `Collecting::admit`), then the signature, then
//! decryption with E_req and the commitment (engine share).

use breakglass_proto::{signing, transport};

use super::{Daemon, Live};
use crate::engine::auth::{self, SignedBy};
use crate::engine::collecting::{Accepted, Collecting};
use crate::engine::event::{Event, Record};
use crate::engine::request::Request;
use crate::engine::share::{verify_share, VerifiedShare};
use crate::error::{Error, Result};

/// A custodian's submission.
#[derive(Debug, Clone)]
pub struct SubmitCall {
    /// Request id.
    pub request_id: String,
    /// Sealed share.
    pub sealed_share: Vec<u8>,
    /// Signature.
    pub sig: super::Sig,
}

/// Progress after an accepted share.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The request now.
    pub request: Request,
    /// Accepted so far.
    pub accepted: u32,
    /// True if this share unlocked.
    pub unlocked: bool,
}

impl Daemon {
    /// Accepts one share; the share that completes the quorum also unlocks and mints.
    pub fn submit(&self, call: SubmitCall) -> Result<Progress> {
        let out = self.submit_inner(&call);
        super::scrub_stack();
        out
    }

    fn submit_inner(&self, call: &SubmitCall) -> Result<Progress> {
        let signer = &call.sig.signer_id;
        transport::check_sealed(&call.sealed_share).map_err(|e| Error::ShareMalformed {
            custodian: signer.clone(),
            why: e.to_string(),
        })?;
        let policy = self.policy();
        let claimed = auth::claim_custodian(policy, signer)?;
        let now = self.now();
        let mut live = self.lock()?;
        let c = self.take_live(&mut live, &call.request_id)?;
        // From here on every path puts a state back into the map or closes it.
        let share = match self.check_share(&c, claimed, call, now) {
            Ok(s) => s,
            Err(e) => {
                live.requests.insert(c.request().id.clone(), c);
                return Err(e);
            }
        };
        self.accept(&mut live, c, share, now)
    }

    /// Admission, signature, decryption and commitment of one share against a live request.
    fn check_share(
        &self,
        c: &Collecting,
        claimed: auth::ClaimedCustodian<'_>,
        call: &SubmitCall,
        now: u64,
    ) -> Result<VerifiedShare> {
        let r = c.request();
        c.admit(self.policy(), claimed.id(), now)?;
        let payload = signing::submit_share(
            &self.meta.daemon_id,
            &r.id,
            &r.digest,
            &call.sig.signer_id,
            &call.sealed_share,
            call.sig.signed_at,
        );
        let sig = SignedBy {
            signer_id: &call.sig.signer_id,
            signed_at: call.sig.signed_at,
            signature: &call.sig.signature,
        };
        let who = claimed.authenticate(&sig, &payload, now)?;
        let checked = c
            .open_share(who.id(), &call.sealed_share)
            .and_then(|plain| {
                let com = self.commitments.get(who.id()).ok_or_else(|| {
                    Error::Internal(format!("no commitment for custodian `{}`", who.id()))
                })?;
                verify_share(&who, com, &self.meta.ceremony_id, &plain)
            });
        if let Err(e) = &checked {
            // Attributed (the signature verified), so it goes in the record; the request is unchanged.
            self.commit(
                &[],
                vec![Record {
                    time: now,
                    actor: who.id().to_string(),
                    request_id: Some(r.id.clone()),
                    event: Event::ShareRejected {
                        custodian: who.id().to_string(),
                        reason: e.to_string(),
                    },
                }],
            )?;
        }
        checked
    }

    fn accept(
        &self,
        live: &mut Live,
        c: Collecting,
        share: VerifiedShare,
        now: u64,
    ) -> Result<Progress> {
        let id = c.request().id.clone();
        let quorum = match c.accept(share, now, |r, recs| self.commit_one(r, recs)) {
            Err(refused) => {
                live.requests.insert(id, refused.state);
                return Err(refused.error);
            }
            Ok(Accepted::Collecting(next)) => {
                let request = next.request().clone();
                live.requests.insert(id, next);
                return Ok(Progress {
                    accepted: count(&request),
                    request,
                    unlocked: false,
                });
            }
            Ok(Accepted::Quorum(q)) => q,
        };
        // Quorum: rebuild R, open the seal, derive A, mint, encrypt to the requester,
        // and commit the unlock; on any failure the request keeps collecting without
        // the last share. The shares and E_req are wiped as the state drops.
        let unlocked = quorum.unlock(
            now,
            |r, shares| self.mint(live.rng.as_mut(), r, shares, now),
            |r, recs| self.commit_one(r, recs),
        );
        match unlocked {
            Ok(request) => Ok(Progress {
                accepted: count(&request),
                request,
                unlocked: true,
            }),
            Err(refused) => {
                live.requests.insert(id, refused.state);
                Err(refused.error)
            }
        }
    }
}

fn count(r: &Request) -> u32 {
    u32::try_from(r.approvals.len()).unwrap_or(u32::MAX)
}
