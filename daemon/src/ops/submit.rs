//! `SubmitShare`: a custodian's sealed share; the share that completes the
//! quorum also unlocks and mints.
//!
//! Each check made once: membership (engine auth, cheap, before the lock),
//! the signature over the request's digest, then, for an authenticated
//! custodian, the sealed share's shape (proto), the request's window, one
//! share per custodian and separation of duties (engine `Collecting::admit`),
//! decryption with E_req and the commitment (engine share). Every refusal
//! after the signature verified is audited (`share_rejected`).

use breakglass_proto::signing;

use super::{Daemon, Live};
use crate::engine::auth::{self, AuthenticatedCustodian, SignedBy};
use crate::engine::collecting::{Accepted, Admitted, Collecting};
use crate::engine::epoch::Epoch;
use crate::engine::event::Event;
use crate::engine::request::{Kind, Request};
use crate::engine::share::{Lineage, VerifiedShare};
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
    /// The epoch the custodian says her share is of (0 reads as 1).
    pub share_epoch: u64,
    /// For `ApproveChange`: the proposed policy she approves; `None` for `SubmitShare`.
    pub approve: Option<[u8; 32]>,
}

impl SubmitCall {
    fn share_epoch(&self) -> u64 {
        self.share_epoch.max(signing::FIRST_EPOCH)
    }
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
        if let Err(e) = &out {
            self.metrics.share_refused(e.kind());
        }
        out
    }

    fn submit_inner(&self, call: &SubmitCall) -> Result<Progress> {
        // Unauthenticated refusals (not a custodian, no such request, a bad
        // signature) go to the operational log only; once the signature
        // verifies, every refusal is on the record. Membership is checked
        // once before the lock (cheap, for floods) and again under it, with
        // the epoch the whole call then uses: the epoch changes only under
        // this lock.
        auth::claim_custodian(&self.policy(), &call.sig.signer_id)?;
        let now = self.now();
        let mut live = self.lock()?;
        let epoch = self.epoch();
        let claimed = auth::claim_custodian(&epoch.policy, &call.sig.signer_id)?;
        let Some(c) = live.requests.remove(&call.request_id) else {
            let r = self.load(&call.request_id)?;
            let who = self.authenticate(&epoch, &r, claimed, call, now)?;
            let e = if r.state.is_terminal() {
                r.closed_error()
            } else {
                Error::Internal(format!(
                    "request `{}` is stored as collecting but its ephemeral key is gone",
                    r.id
                ))
            };
            return Err(self.refused(&r.id, &who, e, now));
        };
        // From here on every path puts the state back into the map or closes it.
        let who = match self.authenticate(&epoch, c.request(), claimed, call, now) {
            Ok(w) => w,
            Err(e) => {
                live.requests.insert(c.request().id.clone(), c);
                return Err(e);
            }
        };
        match self.check_share(&epoch, &c, &who, call, now) {
            Ok((admitted, share)) => self.accept(&mut live, c, &who, admitted, share, now),
            Err(e) => {
                let id = c.request().id.clone();
                live.requests.insert(id.clone(), c);
                Err(self.refused(&id, &who, e, now))
            }
        }
    }

    /// Freshness and signature of a submission for `r`.
    fn authenticate(
        &self,
        epoch: &Epoch,
        r: &Request,
        claimed: auth::ClaimedCustodian<'_>,
        call: &SubmitCall,
        now: u64,
    ) -> Result<AuthenticatedCustodian> {
        // The payload binds what the custodian says she signed (her share's
        // epoch, the policy she approves); it is compared with the request
        // once she is authenticated, so a mismatch is refused on the record
        // with a message that says which.
        let payload = match &call.approve {
            Some(new_policy_digest) => signing::approve_change(
                &self.meta.daemon_id,
                &r.id,
                &r.digest,
                call.share_epoch(),
                new_policy_digest,
                &call.sig.signer_id,
                &call.sealed_share,
                call.sig.signed_at,
            ),
            None => signing::submit_share_of_epoch(
                &self.meta.daemon_id,
                &r.id,
                &r.digest,
                &call.sig.signer_id,
                &call.sealed_share,
                call.share_epoch(),
                call.sig.signed_at,
            ),
        };
        let sig = SignedBy {
            signer_id: &call.sig.signer_id,
            signed_at: call.sig.signed_at,
            signature: &call.sig.signature,
        };
        self.verified(
            "submit_share",
            Some(&r.id),
            claimed.authenticate(self.checks(&epoch.policy, now), &sig, &payload),
            now,
        )
    }

    /// An authenticated custodian's share, checked by the engine against her
    /// commitment.
    fn check_share(
        &self,
        epoch: &Epoch,
        c: &Collecting,
        who: &AuthenticatedCustodian,
        call: &SubmitCall,
        now: u64,
    ) -> Result<(Admitted, VerifiedShare)> {
        let r = c.request();
        match (&call.approve, &r.change) {
            (None, Some(_)) => {
                return Err(Error::WrongKind {
                    id: r.id.clone(),
                    what: "is a policy change: approve it with `breakglass policy approve`, which shows what it changes",
                })
            }
            (Some(_), None) => {
                return Err(Error::WrongKind {
                    id: r.id.clone(),
                    what: "is not a policy change: approve it with `breakglass approve`",
                })
            }
            (Some(signed), Some(change)) if *signed != change.new_policy_digest => {
                return Err(Error::ApprovedOtherPolicy {
                    id: r.id.clone(),
                    custodian: who.id().to_string(),
                    signed: hex::encode(&signed[..8]),
                    proposed: hex::encode(&change.new_policy_digest[..8]),
                })
            }
            _ => {}
        }
        epoch.check_share_epoch(who.id(), call.share_epoch())?;
        let com = epoch.commitments.get(who.id()).ok_or_else(|| {
            Error::Internal(format!("no commitment for custodian `{}`", who.id()))
        })?;
        let lineage = Lineage {
            ceremony_id: &self.meta.ceremony_id,
            epoch: epoch.number,
        };
        c.check_share(&epoch.policy, who, com, lineage, &call.sealed_share, now)
    }

    /// Records the refusal of an authenticated custodian's share
    /// (`share_rejected`) and returns the error to answer with.
    fn refused(&self, id: &str, who: &AuthenticatedCustodian, e: Error, now: u64) -> Error {
        let event = Event::ShareRejected {
            custodian: who.id().to_string(),
            reason: e.to_string(),
        };
        self.audit_refusal(who.id(), Some(who.signed()), Some(id), event, e, now)
    }

    fn accept(
        &self,
        live: &mut Live,
        c: Collecting,
        who: &AuthenticatedCustodian,
        admitted: Admitted,
        share: VerifiedShare,
        now: u64,
    ) -> Result<Progress> {
        let id = c.request().id.clone();
        let quorum = match c.accept(admitted, share, |r, recs| {
            self.commit_one(r, super::stamp(recs, who))
        }) {
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
        if quorum.request().kind == Kind::Change {
            return self.apply_change(live, quorum, who, now);
        }
        let unlocked = if quorum.request().kind == Kind::Drill {
            quorum.rehearse(
                now,
                |r, shares| self.sign_drill(r, shares, now),
                |r, recs| self.commit_one(r, super::stamp(recs, who)),
            )
        } else {
            quorum.unlock(
                now,
                |r, shares| self.mint(live.rng.as_mut(), r, shares, now),
                |r, recs| self.commit_one(r, super::stamp(recs, who)),
            )
        };
        match unlocked {
            Ok(request) => Ok(Progress {
                accepted: count(&request),
                // A passed drill minted nothing.
                unlocked: request.kind == Kind::Access,
                request,
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
