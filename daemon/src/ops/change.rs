//! Policy changes and rekeys (DESIGN.md "Epochs"): `CheckPolicy`,
//! `ProposeChange`, `GetChange`, `CancelChange`, `FetchNewShare`,
//! `ConfirmNewShare`, and what a change's quorum does (`ApproveChange` is
//! `SubmitShare`'s path with its own payload, see `submit`).
//!
//! At quorum the shares rebuild R of the current epoch and open the seal to
//! S, exactly as for an unlock. A change that keeps the custodians, their
//! keys and the threshold re-seals S under the same R with the new policy
//! digest and applies at once; any other deals the next epoch (a new R split
//! among the new custodians, S sealed under it) as a pending epoch, stored
//! with one share file per new custodian. R, the new R and S are wiped
//! before the quorum's call returns (invariant 3). Each new custodian then
//! fetches her file and confirms her share against its commitment, sealed to
//! the pending epoch's X25519 key (memory only); the confirmation that
//! completes the policy's `rekey_confirm` rule commits the epoch in the same
//! transaction.

use std::cell::RefCell;
use std::sync::Arc;

use breakglass_proto::signing::{self, NONCE_LEN};
use breakglass_proto::transport;
use x25519_dalek::{PublicKey, StaticSecret};

use super::{Daemon, Live, Progress, Sig};
use crate::crypto::authority::AuthorityKey;
use crate::crypto::deal::{deal, Dealer};
use crate::crypto::{integrity, seal, shamir};
use crate::engine::auth::{self, Actor, AuthenticatedCustodian, SignedBy};
use crate::engine::collecting::{Applied, Collecting, OpenParams, Quorum, QuorumReached};
use crate::engine::epoch::Epoch;
use crate::engine::event::{Event, Record};
use crate::engine::policy::{self, Policy};
use crate::engine::rekey::{needs_rekey, Chain, Dealing, Pending, PendingState};
use crate::engine::request::{ChangeRecord, Kind, Request};
use crate::engine::share::Lineage;
use crate::error::{Error, Result};
use crate::store::audit::AuditEntry;
use crate::store::{EpochStep, NewEpoch};
use breakglass_formats::change::Summary;

/// The largest policy document a proposal may carry (a gRPC message is at
/// most `server::MAX_MESSAGE_BYTES`, 64 KiB, with its signature and reason).
pub const MAX_POLICY_LEN: usize = 60 * 1024;

/// A proposed policy, validated as `init` validates one.
pub struct CheckedPolicy {
    /// The policy.
    pub policy: Policy,
    /// Its canonical JSON.
    pub json: Vec<u8>,
    /// Its digest.
    pub digest: [u8; 32],
    /// The epoch it would change.
    pub epoch: Arc<Epoch>,
    /// That epoch's policy, canonical JSON.
    pub current_json: Vec<u8>,
    /// What it changes.
    pub summary: Summary,
}

/// A proposal.
#[derive(Debug, Clone)]
pub struct ProposeCall {
    /// The policy file (TOML).
    pub policy: String,
    /// Reason.
    pub reason: String,
    /// Client nonce.
    pub nonce: Vec<u8>,
    /// Signature.
    pub sig: Sig,
}

/// A new custodian's confirmation.
#[derive(Debug, Clone)]
pub struct ConfirmCall {
    /// Change id.
    pub change_id: String,
    /// The pending epoch she names.
    pub epoch: u64,
    /// The commitment she checked her share against.
    pub commitment: Vec<u8>,
    /// Her share, sealed to the pending epoch's key.
    pub sealed_share: Vec<u8>,
    /// The key she sealed to, if she says (empty: not said).
    pub ephemeral_public: Vec<u8>,
    /// Signature.
    pub sig: Sig,
}

/// A change as the daemon shows it.
#[derive(Debug, Clone)]
pub struct ChangeState {
    /// The change request.
    pub request: Request,
    /// Its pending epoch, once dealt.
    pub pending: Option<Pending>,
    /// The key confirmations are sealed to, while the pending epoch confirms.
    pub ephemeral_public: Option<[u8; 32]>,
}

/// After a confirmation.
#[derive(Debug, Clone)]
pub struct Confirmed {
    /// Confirmations so far.
    pub confirmed: usize,
    /// Needed.
    pub need: usize,
    /// True if it committed the epoch.
    pub committed: bool,
    /// The daemon's epoch now.
    pub epoch: u64,
    /// The change now.
    pub change: ChangeState,
}

/// The confirming pending epoch's X25519 key; wiped on drop. The public
/// half is computed once, when the key is made, so reading it (GetChange)
/// never touches the secret.
pub(super) struct PendingKey {
    change_id: String,
    secret: Box<StaticSecret>,
    public: [u8; 32],
}

impl PendingKey {
    /// True when it is the key of `change_id`'s pending epoch.
    pub(super) fn is_for(&self, change_id: &str) -> bool {
        self.change_id == change_id
    }

    fn public(&self) -> [u8; 32] {
        self.public
    }

    /// A new key for `change_id`'s pending epoch.
    fn new(change_id: &str, rng: &mut dyn rand_core::CryptoRngCore) -> PendingKey {
        let secret = Box::new(StaticSecret::random_from_rng(rng));
        let public = PublicKey::from(secret.as_ref()).to_bytes();
        PendingKey {
            change_id: change_id.to_string(),
            secret,
            public,
        }
    }
}

/// What the quorum's key work left for the commit to write.
enum Work {
    Resealed {
        epoch: Epoch,
        signed: integrity::Signed,
        cancelled: Vec<Request>,
        records: Vec<Record>,
    },
    Dealt {
        pending: Pending,
        key: PendingKey,
    },
}

const PROPOSE: &str = "propose_change";
const CANCEL: &str = "cancel_change";
const FETCH: &str = "fetch_new_share";
const CONFIRM: &str = "confirm_new_share";

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Daemon {
    /// Validates a proposed policy file exactly as `init` does, and compares
    /// it with the current epoch's policy.
    pub fn check_policy(&self, text: &str) -> Result<CheckedPolicy> {
        if text.len() > MAX_POLICY_LEN {
            return Err(Error::invalid(
                "policy",
                format!(
                    "is {} bytes; a policy file is at most {MAX_POLICY_LEN} bytes",
                    text.len()
                ),
            ));
        }
        let policy = Policy::from_toml(text).map_err(|e| match e {
            Error::Policy(m) => Error::InvalidPolicy(m),
            e => e,
        })?;
        let json = policy.canonical_json()?;
        let digest = policy.digest()?;
        let epoch = self.epoch();
        let current_json = epoch.policy.canonical_json()?;
        let summary = breakglass_formats::change::summarize(&current_json, &json)
            .map_err(|e| Error::Internal(e.to_string()))?;
        if summary.rekey != needs_rekey(&epoch.policy, &policy) {
            return Err(Error::Internal(
                "the change summary and the rekey rule disagree on whether new shares are needed"
                    .into(),
            ));
        }
        Ok(CheckedPolicy {
            policy,
            json,
            digest,
            epoch,
            current_json,
            summary,
        })
    }

    /// Opens a change request: a custodian or commander of the current epoch
    /// proposes a policy; custodians of that epoch approve it with their shares.
    pub fn propose(&self, call: ProposeCall) -> Result<ChangeState> {
        if call.nonce.len() != NONCE_LEN {
            return Err(Error::invalid(
                "nonce",
                format!(
                    "is {} bytes; must be {NONCE_LEN} random bytes",
                    call.nonce.len()
                ),
            ));
        }
        let checked = self.check_policy(&call.policy)?;
        let now = self.now();
        let epoch = checked.epoch.clone();
        let payload = signing::propose_change(
            &self.meta.daemon_id,
            &call.sig.signer_id,
            epoch.number,
            &epoch.policy_digest,
            &checked.digest,
            &call.reason,
            &call.nonce,
            call.sig.signed_at,
        );
        let actor = self.verified(
            PROPOSE,
            None,
            auth::authenticate_any(self.checks(&epoch.policy, now), &call.sig.by(), &payload),
            now,
        )?;
        let refuse = |id: Option<&str>, e: Error| self.refused_call(PROPOSE, &actor, id, e, now);
        policy::reason(&call.reason, true).map_err(|e| refuse(None, e))?;
        let p = &epoch.policy;
        let others = p.custodians.len().saturating_sub(1);
        if matches!(actor, Actor::Custodian(_))
            && p.separation_of_duties
            && others < usize::from(p.threshold)
        {
            return Err(refuse(
                None,
                Error::ChangeCannotReachQuorum {
                    custodian: actor.id().to_string(),
                    others,
                    threshold: p.threshold,
                },
            ));
        }
        if checked.digest == epoch.policy_digest {
            return Err(refuse(
                None,
                Error::NoChange {
                    digest: hex::encode(&checked.digest[..8]),
                },
            ));
        }
        let id = signing::change_id(&payload);
        let mut live = self.lock()?;
        self.same_epoch(&epoch)?;
        if self.store.request(&id)?.is_some() {
            return Err(refuse(Some(&id), Error::RequestExists { id: id.clone() }));
        }
        if let Some(c) = live
            .requests
            .values()
            .find(|c| c.request().kind == Kind::Change)
        {
            let e = Error::ChangeOpen {
                id: c.request().id.clone(),
                deadline: c.request().deadline,
            };
            return Err(refuse(None, e));
        }
        // The engine's rule (the property-tested `Chain`): no change while a
        // dealt epoch waits for confirmations.
        Chain {
            current: (*epoch).clone(),
            pending: self.store.open_pending()?,
        }
        .check_none_open()
        .map_err(|e| refuse(None, e))?;
        let (collecting, records) = Collecting::open(
            OpenParams {
                id: id.clone(),
                daemon_id: self.meta.daemon_id.clone(),
                requester: actor.id().to_string(),
                scope: String::new(),
                reason: call.reason,
                ttl_seconds: 0,
                window_seconds: epoch.policy.change_window(),
                threshold: u32::from(epoch.policy.threshold),
                ssh_public_key: String::new(),
                kinds: Vec::new(),
                principals: Vec::new(),
                ssh_extensions: Vec::new(),
                kind: Kind::Change,
                change: Some(ChangeRecord {
                    epoch: epoch.number,
                    current_policy_digest: epoch.policy_digest,
                    new_policy_digest: checked.digest,
                    current_policy: epoch.policy.clone(),
                    new_policy: checked.policy,
                    summary: checked.summary,
                }),
            },
            live.rng.as_mut(),
            now,
        )
        .map_err(|e| refuse(None, e))?;
        self.commit_one(collecting.request(), super::stamp(records, &actor))?;
        let r = collecting.request().clone();
        live.requests.insert(id, collecting);
        drop(live);
        super::scrub_stack();
        Ok(ChangeState {
            request: r,
            pending: None,
            ephemeral_public: None,
        })
    }

    /// A stored change request by id.
    fn load_change(&self, id: &str) -> Result<Request> {
        if id.is_empty() || id.len() > 64 || policy::plain_text("change_id", id).is_err() {
            return Err(Error::invalid(
                "change_id",
                "must be a change id like `chg-0123456789abcdef`",
            ));
        }
        let r = self.load(id)?;
        if r.kind != Kind::Change || r.change.is_none() {
            return Err(Error::WrongKind {
                id: r.id,
                what: "is not a policy change (see `breakglass request show`)",
            });
        }
        Ok(r)
    }

    /// The pending epoch's confirmation key, made when first needed (after
    /// the deal, or after a restart: it is never stored).
    fn pending_key<'l>(&self, live: &'l mut Live, change_id: &str) -> &'l PendingKey {
        if live
            .pending_key
            .as_ref()
            .is_some_and(|k| k.change_id != change_id)
        {
            live.pending_key = None;
        }
        let rng = &mut live.rng;
        live.pending_key
            .get_or_insert_with(|| PendingKey::new(change_id, rng.as_mut()))
    }

    fn state_of(&self, live: &mut Live, request: Request) -> Result<ChangeState> {
        let pending = self.store.pending(&request.id)?;
        let ephemeral_public = match &pending {
            Some(p) if p.state == PendingState::Confirming => {
                Some(self.pending_key(live, &request.id).public())
            }
            _ => None,
        };
        Ok(ChangeState {
            request,
            pending,
            ephemeral_public,
        })
    }

    /// One change request and its pending epoch.
    pub fn change(&self, id: &str) -> Result<ChangeState> {
        let r = self.load_change(id)?;
        let mut live = self.lock()?;
        let out = self.state_of(&mut live, r);
        drop(live);
        // Making the pending key (after a restart) ran X25519 on this stack.
        super::scrub_stack();
        out
    }

    /// Cancels a change: its proposer or any custodian of the current epoch,
    /// while it collects approvals or while its pending epoch confirms.
    pub fn cancel_change(&self, id: &str, reason: &str, sig: Sig) -> Result<ChangeState> {
        let why = policy::reason(reason, false)?;
        let now = self.now();
        let mut live = self.lock()?;
        let r = match live.requests.get(id) {
            Some(c) => c.request().clone(),
            None => self.load_change(id)?,
        };
        if r.kind != Kind::Change {
            return Err(Error::WrongKind {
                id: r.id,
                what: "is not a policy change: cancel it with `breakglass cancel`",
            });
        }
        let epoch = self.epoch();
        let payload = signing::cancel_change(
            &self.meta.daemon_id,
            &r.id,
            &r.digest,
            &sig.signer_id,
            reason,
            sig.signed_at,
        );
        let actor = self.verified(
            CANCEL,
            Some(&r.id),
            auth::authenticate_any(self.checks(&epoch.policy, now), &sig.by(), &payload),
            now,
        )?;
        let refuse = |e: Error| self.refused_call(CANCEL, &actor, Some(&r.id), e, now);
        if matches!(actor, Actor::Commander(_)) && actor.id() != r.requester {
            return Err(refuse(Error::NotAllowedToCancel {
                id: r.id.clone(),
                caller: actor.id().to_string(),
            }));
        }
        // A custodian the change removes (or whose key it changes) may not
        // cancel it: a leaver, or whoever holds her key, must not be able to
        // keep her share alive by vetoing every change that revokes it.
        if let (Actor::Custodian(_), Some(c)) = (&actor, &r.change) {
            let me = actor.id().to_string();
            let what = if c.summary.custodians_removed.contains(&me) {
                Some("removes")
            } else if c.summary.custodian_keys_changed.contains(&me) {
                Some("changes the key of")
            } else {
                None
            };
            if let Some(what) = what {
                return Err(refuse(Error::CancelOwnRemoval {
                    id: r.id.clone(),
                    custodian: me,
                    what,
                }));
            }
        }
        if let Some(c) = live.requests.remove(id) {
            let out = match c.cancel(actor.id(), why, now, |r, recs| {
                self.commit_one(r, super::stamp(recs, &actor))
            }) {
                Ok(closed) => Ok(closed),
                Err(refused) => {
                    live.requests.insert(id.to_string(), refused.state);
                    Err(refused.error)
                }
            };
            drop(live);
            super::scrub_stack();
            return Ok(ChangeState {
                request: out?,
                pending: None,
                ephemeral_public: None,
            });
        }
        let mut p = match self.store.pending(id)? {
            Some(p) => p,
            None => return Err(refuse(r.closed_error())),
        };
        p.cancel(&format!("cancelled by {}: {why}", actor.id()), now)
            .map_err(refuse)?;
        let rec = Record {
            time: now,
            actor: actor.id().to_string(),
            request_id: Some(r.id.clone()),
            event: Event::EpochCancelled {
                change_id: r.id.clone(),
                epoch: p.number,
                by: actor.id().to_string(),
                reason: why.to_string(),
            },
            signed_with: None,
        };
        let entries = self.wrote(self.store.commit_epoch_step(EpochStep {
            pending: Some(&p),
            records: super::stamp(vec![rec], &actor),
            ..EpochStep::default()
        }))?;
        live.pending_key = None;
        drop(live);
        self.announce(&[], entries);
        Ok(ChangeState {
            request: r,
            pending: Some(p),
            ephemeral_public: None,
        })
    }

    /// The pending epoch `id` dealt, for a call naming `epoch` by `signer`
    /// (who must be one of its custodians).
    fn pending_for(&self, r: &Request, epoch: u64, signer: &str) -> Result<Pending> {
        let p = self
            .store
            .pending(&r.id)?
            .ok_or_else(|| Error::NoPendingEpoch {
                id: r.id.clone(),
                state: r.state.name(),
            })?;
        if epoch != p.number {
            return Err(Error::NotThePendingEpoch {
                id: r.id.clone(),
                dealt: p.number,
                asked: epoch,
            });
        }
        if !p.shares.contains_key(signer) {
            return Err(Error::NotInPendingEpoch {
                custodian: signer.to_string(),
                number: p.number,
            });
        }
        Ok(p)
    }

    fn authenticate_new(
        &self,
        call: &'static str,
        p: &Pending,
        sig: &Sig,
        payload: &[u8],
        now: u64,
    ) -> Result<AuthenticatedCustodian> {
        let claimed = auth::claim_custodian(&p.policy, &sig.signer_id)?;
        let by = SignedBy {
            signer_id: &sig.signer_id,
            signed_at: sig.signed_at,
            signature: &sig.signature,
        };
        self.verified(
            call,
            Some(&p.change_id),
            claimed.authenticate(self.checks(&p.policy, now), &by, payload),
            now,
        )
    }

    /// A new custodian's share file of a pending epoch (age-encrypted to her).
    pub fn fetch_new_share(
        &self,
        id: &str,
        epoch: u64,
        sig: Sig,
    ) -> Result<(Vec<u8>, ChangeState)> {
        let r = self.load_change(id)?;
        let now = self.now();
        let mut live = self.lock()?;
        let mut p = self.pending_for(&r, epoch, &sig.signer_id)?;
        let payload = signing::fetch_new_share(
            &self.meta.daemon_id,
            &r.id,
            p.number,
            &sig.signer_id,
            sig.signed_at,
        );
        let who = self.authenticate_new(FETCH, &p, &sig, &payload, now)?;
        let file = p
            .fetch(who.id(), now)
            .map_err(|e| self.refused_call(FETCH, &who, Some(&r.id), e, now))?;
        let rec = Record {
            time: now,
            actor: who.id().to_string(),
            request_id: Some(r.id.clone()),
            event: Event::EpochShareFetched {
                change_id: r.id.clone(),
                epoch: p.number,
                custodian: who.id().to_string(),
            },
            signed_with: None,
        };
        let entries = self.wrote(self.store.commit_epoch_step(EpochStep {
            pending: Some(&p),
            records: super::stamp(vec![rec], &who),
            ..EpochStep::default()
        }))?;
        let state = self.state_of(&mut live, r)?;
        drop(live);
        super::scrub_stack();
        self.announce(&[], entries);
        Ok((file, state))
    }

    /// A new custodian proves her share of a pending epoch; the confirmation
    /// that completes the rule commits the epoch in the same transaction.
    pub fn confirm_new_share(&self, call: ConfirmCall) -> Result<Confirmed> {
        let out = self.confirm_inner(call);
        super::scrub_stack();
        out
    }

    fn confirm_inner(&self, call: ConfirmCall) -> Result<Confirmed> {
        let r = self.load_change(&call.change_id)?;
        let commitment: [u8; 32] = call.commitment.as_slice().try_into().map_err(|_| {
            Error::invalid(
                "commitment",
                format!(
                    "is {} bytes; it is the 32-byte commitment your share file carries",
                    call.commitment.len()
                ),
            )
        })?;
        let now = self.now();
        let mut live = self.lock()?;
        let mut p = self.pending_for(&r, call.epoch, &call.sig.signer_id)?;
        // A closed or expired pending epoch holds no key to seal to: refused
        // with its state before anything else (GetChange shows the same).
        p.check_open(now)?;
        let public = self.pending_key(&mut live, &r.id).public();
        if !call.ephemeral_public.is_empty() && call.ephemeral_public != public {
            return Err(Error::PendingKeyChanged { id: r.id.clone() });
        }
        let payload = signing::confirm_new_share(
            &self.meta.daemon_id,
            &r.id,
            p.number,
            &public,
            &call.sig.signer_id,
            &commitment,
            &call.sealed_share,
            call.sig.signed_at,
        );
        let who = self.authenticate_new(CONFIRM, &p, &call.sig, &payload, now)?;
        let refuse = |e: Error| self.refused_call(CONFIRM, &who, Some(&r.id), e, now);
        let dealt = p
            .shares
            .get(who.id())
            .map(|s| s.commitment.hash)
            .ok_or_else(|| Error::Internal("member vanished".into()))?;
        if dealt != commitment {
            return Err(refuse(Error::CommitmentDiffers {
                custodian: who.id().to_string(),
                number: p.number,
            }));
        }
        let progress = {
            let key = self.pending_key(&mut live, &r.id);
            let malformed = |why: String| Error::ShareMalformed {
                custodian: who.id().to_string(),
                why,
            };
            let plain =
                transport::open_share(&key.secret, &r.digest, &r.id, who.id(), &call.sealed_share)
                    .map_err(|e| refuse(malformed(e.to_string())))?;
            p.confirm(&who, &self.meta.ceremony_id, &plain, now)
                .map_err(refuse)?
        };
        let rec = super::stamp(
            vec![Record {
                time: now,
                actor: who.id().to_string(),
                request_id: Some(r.id.clone()),
                event: Event::EpochShareConfirmed {
                    change_id: r.id.clone(),
                    epoch: p.number,
                    custodian: who.id().to_string(),
                    confirmed: count(progress.confirmed),
                    need: count(progress.need),
                },
                signed_with: None,
            }],
            &who,
        );
        let (committed, cancelled, entries) = if progress.ready() {
            let (next, cancelled, entries) =
                self.commit_pending_in(&mut live, p, who.id(), rec, now)?;
            (Some(next), cancelled, entries)
        } else {
            let entries = self.wrote(self.store.commit_epoch_step(EpochStep {
                pending: Some(&p),
                records: rec,
                ..EpochStep::default()
            }))?;
            (None, Vec::new(), entries)
        };
        let state = self.state_of(&mut live, r)?;
        drop(live);
        self.announce(&cancelled.iter().collect::<Vec<_>>(), entries);
        Ok(Confirmed {
            confirmed: progress.confirmed,
            need: progress.need,
            committed: committed.is_some(),
            epoch: self.epoch().number,
            change: state,
        })
    }

    /// What a change's quorum does: rebuild R and S, then re-seal (same
    /// custodians and threshold) or deal the next epoch; one commit.
    pub(super) fn apply_change(
        &self,
        live: &mut Live,
        quorum: QuorumReached,
        who: &AuthenticatedCustodian,
        now: u64,
    ) -> Result<Progress> {
        let id = quorum.request().id.clone();
        let epoch = self.epoch();
        let work: RefCell<Option<Work>> = RefCell::new(None);
        let written: RefCell<Vec<AuditEntry>> = RefCell::new(Vec::new());
        let others = &live.requests;
        let rng = &mut live.rng;
        let out = quorum.change(
            now,
            |r, q| {
                let w = self.change_work(&epoch, others, rng.as_mut(), r, q, now)?;
                let applied = match &w {
                    Work::Resealed { cancelled, .. } => Applied::Resealed {
                        cancelled: cancelled.iter().map(|c| c.id.clone()).collect(),
                    },
                    Work::Dealt { pending, .. } => Applied::Dealt {
                        epoch: pending.number,
                        need: count(pending.need),
                        deadline: pending.deadline,
                    },
                };
                *work.borrow_mut() = Some(w);
                Ok(applied)
            },
            |r, recs| {
                let w = work.borrow();
                let entries = match w.as_ref() {
                    Some(Work::Resealed {
                        epoch: next,
                        signed,
                        cancelled,
                        records,
                    }) => {
                        let mut all = super::stamp(recs, who);
                        all.extend(records.iter().cloned());
                        let mut requests = vec![r];
                        requests.extend(cancelled.iter());
                        self.store.commit_epoch_step(EpochStep {
                            requests,
                            pending: None,
                            epoch: Some(NewEpoch {
                                number: next.number,
                                since: next.since,
                                policy: &next.policy,
                                policy_digest: &next.policy_digest,
                                seal: &next.seal,
                                commitments: &next.commitments,
                                integrity: signed,
                            }),
                            records: all,
                        })
                    }
                    Some(Work::Dealt { pending, .. }) => self.store.commit_epoch_step(EpochStep {
                        requests: vec![r],
                        pending: Some(pending),
                        epoch: None,
                        records: super::stamp(recs, who),
                    }),
                    None => Err(Error::Internal("the change's key work left nothing".into())),
                };
                *written.borrow_mut() = self.wrote(entries)?;
                Ok(())
            },
        );
        let request = match out {
            Ok(r) => r,
            Err(refused) => {
                live.requests.insert(id, refused.state);
                return Err(refused.error);
            }
        };
        let mut announced = vec![request.clone()];
        match work.into_inner() {
            Some(Work::Resealed {
                epoch: next,
                cancelled,
                ..
            }) => {
                // Durable: the requests collecting under the old policy drop
                // (their E_req and shares are wiped) and the new policy serves.
                live.requests.clear();
                let next = Arc::new(next);
                match self.current.write() {
                    Ok(mut c) => *c = next,
                    Err(poisoned) => *poisoned.into_inner() = next,
                }
                announced.extend(cancelled);
            }
            Some(Work::Dealt { key, .. }) => live.pending_key = Some(key),
            None => {}
        }
        self.announce(&announced.iter().collect::<Vec<_>>(), written.into_inner());
        Ok(Progress {
            accepted: count(request.approvals.len()),
            request,
            unlocked: false,
        })
    }

    /// The key work of a change's quorum. R of the current epoch, the new R
    /// (inside `deal`) and S are wiped before this returns.
    fn change_work(
        &self,
        epoch: &Epoch,
        others: &std::collections::HashMap<String, Collecting>,
        rng: &mut dyn rand_core::CryptoRngCore,
        r: &Request,
        quorum: Quorum<'_>,
        now: u64,
    ) -> Result<Work> {
        let c = r
            .change
            .as_ref()
            .ok_or_else(|| Error::Internal("change record vanished".into()))?;
        if c.epoch != epoch.number || c.current_policy_digest != epoch.policy_digest {
            return Err(Error::EpochChanged {
                from: c.epoch,
                to: epoch.number,
            });
        }
        let root = shamir::combine(quorum)?;
        let seed = seal::unseal(
            &root,
            &epoch.seal,
            &seal::Binding {
                ceremony_id: &self.meta.ceremony_id,
                epoch: epoch.number,
                policy_digest: &epoch.policy_digest,
            },
        )?;
        if AuthorityKey::derive(&seed).public().to_bytes() != self.meta.authority_public {
            return Err(Error::Reconstruction(
                "the rebuilt authority key is not the published one".into(),
            ));
        }
        if !c.rekey() {
            let sealed = seal::seal(
                &root,
                &seed,
                &seal::Binding {
                    ceremony_id: &self.meta.ceremony_id,
                    epoch: epoch.number,
                    policy_digest: &c.new_policy_digest,
                },
            )?;
            drop(root);
            drop(seed);
            let reason = format!(
                "the policy changed (change {}) while this request was collecting; open it again under the new policy",
                r.id
            );
            let mut cancelled = Vec::new();
            let mut records = Vec::new();
            for o in others.values() {
                if let Some((x, recs)) = o.request().abandon(now, &reason) {
                    cancelled.push(x);
                    records.extend(recs);
                }
            }
            cancelled.sort_by(|a, b| a.id.cmp(&b.id));
            // Same number, commitments and D's share signatures; the engine
            // refuses a re-seal of a change that needs new shares.
            let mut chain = Chain {
                current: epoch.clone(),
                pending: None,
            };
            chain.reseal(c.new_policy.clone(), c.new_policy_digest, sealed)?;
            let next = chain.current;
            let signed = integrity::sign(
                integrity::statement(
                    &self.meta.daemon_id,
                    &self.meta.ceremony_id,
                    next.number,
                    &next.policy_digest,
                    &next.seal,
                    &next.commitments,
                    &self.meta.authority_public,
                ),
                self.key.signing(),
            )?;
            return Ok(Work::Resealed {
                epoch: next,
                signed,
                cancelled,
                records,
            });
        }
        drop(root);
        let number = epoch.number + 1;
        let dealt = deal(
            &seed,
            &c.new_policy,
            &c.new_policy_digest,
            Lineage {
                ceremony_id: &self.meta.ceremony_id,
                epoch: number,
            },
            &Dealer {
                daemon_id: &self.meta.daemon_id,
                key: self.key.signing(),
                authority: &self.meta.authority_public,
            },
        )?;
        drop(seed);
        // The current epoch's rules govern the rekey it approved.
        let pending = Pending::new(
            Dealing {
                change_id: r.id.clone(),
                number,
                policy: c.new_policy.clone(),
                policy_digest: c.new_policy_digest,
                seal: dealt.seal,
                shares: dealt
                    .shares
                    .into_iter()
                    .map(|s| (s.custodian, s.commitment, s.file))
                    .collect(),
            },
            epoch.policy.confirm_rule(),
            now,
            epoch.policy.rekey_window(),
        );
        // The engine checks it is the next epoch and confirming.
        let mut chain = Chain {
            current: epoch.clone(),
            pending: None,
        };
        chain.begin(pending)?;
        let pending = chain
            .pending
            .ok_or_else(|| Error::Internal("the dealt epoch vanished".into()))?;
        Ok(Work::Dealt {
            pending,
            key: PendingKey::new(&r.id, rng),
        })
    }
}

impl Daemon {
    /// D's signature over a change view (`signing::change_view`: the domain
    /// is fixed here, so this signs nothing else).
    pub fn sign_change_view(
        &self,
        digest: &[u8; 32],
        current_policy_json: &[u8],
        new_policy_json: &[u8],
        pending: Option<&signing::PendingStatus<'_>>,
    ) -> [u8; 64] {
        let payload = signing::change_view(digest, current_policy_json, new_policy_json, pending);
        ed25519_dalek::Signer::sign(self.key.signing(), &payload).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use ed25519_dalek::Signer;

    use super::*;
    use crate::engine::policy::tests::{identity, key, sample_toml};
    use crate::ops::SubmitCall;
    use crate::store::epochs::tests::{ceremony, T0};
    use crate::store::Store;
    use breakglass_formats::share_file::ShareFile;

    struct Run {
        _dir: tempfile::TempDir,
        out: std::path::PathBuf,
        now: Arc<AtomicU64>,
        daemon: Daemon,
    }

    fn start() -> Run {
        let (dir, state, out) = ceremony();
        let now = Arc::new(AtomicU64::new(T0 + 10));
        let t = now.clone();
        let daemon = Daemon::start_on(
            Store::open(&state).unwrap_or_else(|e| panic!("{e}")),
            &state,
            Arc::new(move || t.load(Ordering::SeqCst)),
            Vec::new(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Run {
            _dir: dir,
            out,
            now,
            daemon,
        }
    }

    impl Run {
        fn at(&self) -> u64 {
            self.now.load(Ordering::SeqCst)
        }

        fn sig(&self, who: &str, seed: u8, payload: &[u8]) -> Sig {
            Sig {
                signer_id: who.into(),
                signed_at: self.at(),
                signature: key(seed).sign(payload).to_bytes().to_vec(),
            }
        }

        /// `ic` proposes `toml`.
        fn propose(&self, toml: &str) -> Request {
            let d = &self.daemon;
            let e = d.epoch();
            let new = Policy::from_toml(toml)
                .and_then(|p| p.digest())
                .unwrap_or_else(|e| panic!("{e}"));
            let nonce = [5u8; NONCE_LEN];
            let payload = signing::propose_change(
                &d.meta().daemon_id,
                "ic",
                e.number,
                &e.policy_digest,
                &new,
                "test",
                &nonce,
                self.at(),
            );
            d.propose(ProposeCall {
                policy: toml.into(),
                reason: "test".into(),
                nonce: nonce.to_vec(),
                sig: self.sig("ic", 100, &payload),
            })
            .unwrap_or_else(|e| panic!("{e}"))
            .request
        }

        /// Custodian `c{i}`'s epoch 1 share, from the ceremony's file.
        fn share(&self, i: u8) -> Vec<u8> {
            let ct = std::fs::read(self.out.join(format!("c{i}.share")))
                .unwrap_or_else(|e| panic!("{e}"));
            let plain = breakglass_formats::envelope::decrypt(&identity(i), &ct)
                .unwrap_or_else(|e| panic!("{e}"));
            let f = ShareFile::parse(&plain).unwrap_or_else(|e| panic!("{e}"));
            f.share_bytes().unwrap_or_else(|e| panic!("{e}")).to_vec()
        }

        fn approve(&self, r: &Request, i: u8) -> Result<Progress> {
            let id = format!("c{i}");
            let c = r.change.as_ref().unwrap_or_else(|| panic!("a change"));
            let sealed = transport::seal_share(
                &r.ephemeral_public,
                &r.digest,
                &r.id,
                &id,
                &self.share(i),
                rand_core::OsRng,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let payload = signing::approve_change(
                &self.daemon.meta().daemon_id,
                &r.id,
                &r.digest,
                c.epoch,
                &c.new_policy_digest,
                &id,
                &sealed,
                self.at(),
            );
            self.daemon.submit(SubmitCall {
                request_id: r.id.clone(),
                sealed_share: sealed,
                sig: self.sig(&id, i, &payload),
                share_epoch: c.epoch,
                approve: Some(c.new_policy_digest),
            })
        }
    }

    /// An approval after the change's window closed is refused and counts for
    /// nothing; the sweep then records the change as expired.
    #[test]
    fn an_approval_after_the_change_window_is_refused() {
        let run = start();
        let r = run.propose(&sample_toml(4, 2));
        assert_eq!(
            r.deadline,
            T0 + 10 + crate::engine::policy::DEFAULT_CHANGE_WINDOW
        );
        run.now.store(r.deadline, Ordering::SeqCst);
        let e = run.approve(&r, 1).err();
        assert!(matches!(e, Some(Error::WindowClosed { .. })), "{e:?}");
        let stored = run
            .daemon
            .store()
            .request(&r.id)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("stored"));
        assert!(stored.approvals.is_empty());
        assert_eq!(run.daemon.epoch().number, 1);
    }

    /// DESIGN.md "Epochs": a pending epoch past its deadline takes no fetch and
    /// no confirmation (the message says it expired), and the current epoch stays.
    #[test]
    fn a_fetch_or_confirmation_after_the_pending_deadline_is_refused() {
        let run = start();
        let r = run.propose(&sample_toml(4, 3));
        run.approve(&r, 1).unwrap_or_else(|e| panic!("{e}"));
        let p = run.approve(&r, 2).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.request.state, crate::engine::request::State::ChangeDealt);
        let pending = run
            .daemon
            .store()
            .pending(&r.id)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("dealt"));
        assert_eq!(
            pending.deadline,
            T0 + 10 + crate::engine::policy::DEFAULT_REKEY_WINDOW
        );
        run.now.store(pending.deadline, Ordering::SeqCst);
        let payload =
            signing::fetch_new_share(&run.daemon.meta().daemon_id, &r.id, 2, "c4", run.at());
        let e = run
            .daemon
            .fetch_new_share(&r.id, 2, run.sig("c4", 4, &payload))
            .err();
        assert!(matches!(e, Some(Error::PendingExpired { .. })), "{e:?}");
        let e = run
            .daemon
            .confirm_new_share(ConfirmCall {
                change_id: r.id.clone(),
                epoch: 2,
                commitment: pending.shares["c4"].commitment.hash.to_vec(),
                sealed_share: vec![0u8; transport::SEALED_LEN],
                ephemeral_public: Vec::new(),
                sig: run.sig("c4", 4, b"anything"),
            })
            .err();
        assert!(matches!(e, Some(Error::PendingExpired { .. })), "{e:?}");
        assert_eq!(run.daemon.epoch().number, 1);
        assert_eq!(
            run.daemon.sweep_pending(run.at()).ok(),
            Some(vec![r.id.clone()])
        );
    }
}
