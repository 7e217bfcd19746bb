//! The live request states, which own the request's memory-only secrets
//! (invariants 1 and 3).
//!
//! [`Collecting`] owns E_req and the [`VerifiedShare`]s accepted so far.
//! [`Collecting::accept`] consumes it and gives back either the next
//! `Collecting` or a [`QuorumReached`], whose only use is
//! [`QuorumReached::unlock`]. Unlocking, cancelling, expiring and abandoning
//! consume the state and return the plain stored [`Request`] record, which
//! holds no secret. Dropping a state wipes what it owns: E_req and every share
//! sit in their own heap allocations (a map bucket holds only pointers), and
//! both zeroize on drop.
//!
//! Transitions that must be persisted take a `commit` closure and call it
//! before the state changes: if the commit fails, the caller gets the
//! unchanged state back in a [`Refused`] and nothing is lost.

// `Refused` hands the unchanged state back by value so nothing is lost; it is a
// few pointers and an error (128 bytes), moved, never a copy of a secret.
#![allow(clippy::result_large_err)]

use rand_core::CryptoRngCore;
use x25519_dalek::{PublicKey, StaticSecret};

use breakglass_proto::signing::{self, RequestFields};

use super::event::{Event, Record};
use super::policy;
use super::request::{record, Approval, ChangeRecord, Kind, Request, State, StoredCredential};
use super::share::VerifiedShare;
use crate::error::{Error, Result};

/// What a commander asked for, after policy checks.
#[derive(Debug, Clone)]
pub struct OpenParams {
    /// Request id from the signed payload.
    pub id: String,
    /// Daemon id.
    pub daemon_id: String,
    /// Commander.
    pub requester: String,
    /// Scope.
    pub scope: String,
    /// Reason as given (trimmed and bounded by [`policy::reason`]).
    pub reason: String,
    /// TTL.
    pub ttl_seconds: u64,
    /// Collection window length.
    pub window_seconds: u64,
    /// Shares needed.
    pub threshold: u32,
    /// OpenSSH public key to certify, or empty.
    pub ssh_public_key: String,
    /// What the scope grants, recorded in `request_opened` for reviewers
    /// (`ssh`, `token`).
    pub kinds: Vec<String>,
    /// The scope's principals.
    pub principals: Vec<String>,
    /// The scope's SSH certificate extensions.
    pub ssh_extensions: Vec<String>,
    /// Access, drill (no scope, TTL or key) or change (no scope, TTL or key either).
    pub kind: Kind,
    /// What a change request proposes (kind `Change` only).
    pub change: Option<ChangeRecord>,
}

/// A transition that did not happen: the state as it was, and why.
pub struct Refused<S> {
    /// The unchanged state, to be kept.
    pub state: S,
    /// Why the transition was refused or could not be persisted.
    pub error: Error,
}

/// A request collecting shares; owns E_req and the accepted shares.
/// No `Clone`, no `Debug`: the secrets exist once.
pub struct Collecting {
    request: Box<Request>,
    ephemeral: Box<StaticSecret>,
    shares: Vec<VerifiedShare>,
}

/// The outcome of an accepted share.
pub enum Accepted {
    /// Below the threshold: the next state (its record already committed).
    Collecting(Collecting),
    /// The share completed the quorum; nothing committed yet.
    Quorum(QuorumReached),
}

/// A quorum of verified shares; the only thing to do with it is [`QuorumReached::unlock`].
pub struct QuorumReached {
    before: Box<Request>,
    request: Box<Request>,
    records: Vec<Record>,
    ephemeral: Box<StaticSecret>,
    shares: Vec<VerifiedShare>,
}

/// Proof that [`Collecting::admit`] passed for one custodian's share on this
/// request at `now` (window open, first share of this custodian, separation
/// of duties): the only way into [`Collecting::accept`], so those checks are
/// made once, and never skipped.
#[derive(Debug)]
pub struct Admitted {
    request_id: String,
    custodian: String,
    now: u64,
}

/// The shares of a reached quorum: `threshold` verified shares from distinct
/// custodians (one share per custodian, each custodian's x fixed by her
/// commitment). Only [`QuorumReached::unlock`] makes one, so the combiner that
/// takes it checks neither the count nor the x values again.
pub struct Quorum<'a> {
    shares: &'a [VerifiedShare],
}

impl<'a> Quorum<'a> {
    /// The shares.
    pub fn shares(&self) -> &'a [VerifiedShare] {
        self.shares
    }

    /// For the combiner's own tests, which prove what a quorum recovers.
    #[cfg(test)]
    pub(crate) fn for_tests(shares: &'a [VerifiedShare]) -> Quorum<'a> {
        Quorum { shares }
    }
}

/// A quorum that did not unlock or pass: the state before the completing
/// share, with that share dropped (wiped), so its custodian can submit again.
fn back(
    before: Box<Request>,
    ephemeral: Box<StaticSecret>,
    mut shares: Vec<VerifiedShare>,
    error: Error,
) -> Refused<Collecting> {
    shares.pop();
    Refused {
        state: Collecting {
            request: before,
            ephemeral,
            shares,
        },
        error,
    }
}

fn accepted_count(r: &Request) -> u32 {
    u32::try_from(r.approvals.len()).unwrap_or(u32::MAX)
}

impl Collecting {
    /// Opens a request at `now` with a fresh E_req from `rng`; returns the state
    /// and the audit record to persist with its stored form.
    pub fn open(
        p: OpenParams,
        rng: &mut dyn CryptoRngCore,
        now: u64,
    ) -> Result<(Collecting, Vec<Record>)> {
        let reason = policy::reason(&p.reason, true)?.to_string();
        let ephemeral = Box::new(StaticSecret::random_from_rng(&mut *rng));
        let ephemeral_public = PublicKey::from(ephemeral.as_ref()).to_bytes();
        let deadline = now.saturating_add(p.window_seconds);
        let fields = RequestFields {
            daemon_id: &p.daemon_id,
            request_id: &p.id,
            requester: &p.requester,
            scope: &p.scope,
            reason: &reason,
            ttl_seconds: p.ttl_seconds,
            opened_at: now,
            deadline,
            threshold: p.threshold,
            ephemeral_public: &ephemeral_public,
            ssh_public_key: &p.ssh_public_key,
        };
        let digest = match (p.kind, &p.change) {
            (Kind::Access, None) => signing::request_digest(&fields),
            (Kind::Drill, None) => signing::drill_digest(&fields),
            (Kind::Change, Some(c)) => signing::change_digest(&signing::ChangeFields {
                daemon_id: &p.daemon_id,
                change_id: &p.id,
                proposer: &p.requester,
                reason: &reason,
                epoch: c.epoch,
                current_policy_digest: &c.current_policy_digest,
                new_policy_digest: &c.new_policy_digest,
                opened_at: now,
                deadline,
                threshold: p.threshold,
                ephemeral_public: &ephemeral_public,
            }),
            (kind, _) => {
                return Err(Error::Internal(format!(
                    "a {kind:?} request {} a change record",
                    if p.change.is_some() {
                        "cannot carry"
                    } else {
                        "needs"
                    }
                )))
            }
        };
        let request = Request {
            id: p.id,
            daemon_id: p.daemon_id,
            requester: p.requester,
            scope: p.scope,
            reason,
            ttl_seconds: p.ttl_seconds,
            opened_at: now,
            deadline,
            threshold: p.threshold,
            ephemeral_public,
            ssh_public_key: p.ssh_public_key,
            digest,
            approvals: Vec::new(),
            state: State::Collecting,
            closed_at: 0,
            close_reason: String::new(),
            credential: None,
            revocation: None,
            kind: p.kind,
            drill_statement: None,
            change: p.change,
        };
        // The key to certify, as reviewers compare it: type and SHA256
        // fingerprint (public). It was normalised by the policy check.
        let ssh_key = (!request.ssh_public_key.is_empty())
            .then(|| breakglass_formats::sshcert::parse_subject_key(&request.ssh_public_key))
            .transpose()
            .map_err(|e| Error::SshKey(e.to_string()))?;
        let ev = if let Some(c) = &request.change {
            Event::ChangeProposed {
                proposer: request.requester.clone(),
                reason: request.reason.clone(),
                deadline,
                digest: hex::encode(digest),
                epoch: c.epoch,
                new_policy_digest: hex::encode(c.new_policy_digest),
                summary: c.summary.lines(),
                rekey: c.rekey(),
            }
        } else if p.kind == Kind::Drill {
            Event::DrillOpened {
                requester: request.requester.clone(),
                reason: request.reason.clone(),
                deadline,
                digest: hex::encode(digest),
            }
        } else {
            Event::RequestOpened {
                requester: request.requester.clone(),
                scope: request.scope.clone(),
                reason: request.reason.clone(),
                ttl_seconds: request.ttl_seconds,
                deadline,
                digest: hex::encode(digest),
                kinds: p.kinds,
                principals: p.principals,
                ssh_extensions: p.ssh_extensions,
                ssh_key_type: ssh_key.as_ref().map(|k| k.algorithm().to_string()),
                ssh_key_fingerprint: ssh_key
                    .as_ref()
                    .map(|k| k.fingerprint(ssh_key::HashAlg::Sha256).to_string()),
            }
        };
        let recs = vec![record(now, &request.requester, &request.id, ev)];
        Ok((
            Collecting {
                request: Box::new(request),
                ephemeral,
                shares: Vec::new(),
            },
            recs,
        ))
    }

    /// The stored form.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// True once the window has ended (`now` at or past the deadline).
    pub fn is_due(&self, now: u64) -> bool {
        now >= self.request.deadline
    }

    /// Takes a verified share that [`Collecting::admit`] let in. Below the
    /// threshold, `commit` persists the new record first; at the threshold,
    /// nothing is persisted until [`QuorumReached::unlock`].
    pub fn accept(
        self,
        admitted: Admitted,
        share: VerifiedShare,
        commit: impl FnOnce(&Request, Vec<Record>) -> Result<()>,
    ) -> std::result::Result<Accepted, Refused<Collecting>> {
        let custodian = share.custodian().to_string();
        if admitted.request_id != self.request.id || admitted.custodian != custodian {
            let error = Error::Internal(format!(
                "the share of `{custodian}` was admitted for `{}` on request `{}`",
                admitted.custodian, admitted.request_id
            ));
            return Err(Refused { state: self, error });
        }
        let now = admitted.now;
        let mut next = Box::new(self.request.as_ref().clone());
        next.approvals.push(Approval {
            custodian: custodian.clone(),
            at: now,
        });
        let accepted = accepted_count(&next);
        let mut records = vec![record(
            now,
            &custodian,
            &next.id,
            Event::ShareAccepted {
                custodian: custodian.clone(),
                accepted,
                threshold: next.threshold,
            },
        )];
        if accepted < next.threshold {
            if let Err(error) = commit(&next, records) {
                return Err(Refused { state: self, error });
            }
            let mut shares = self.shares;
            shares.push(share);
            return Ok(Accepted::Collecting(Collecting {
                request: next,
                ephemeral: self.ephemeral,
                shares,
            }));
        }
        let approvers = next.approvals.iter().map(|a| a.custodian.clone()).collect();
        records.push(record(
            now,
            "daemon",
            &next.id,
            Event::QuorumReached { approvers },
        ));
        let mut shares = self.shares;
        shares.push(share);
        Ok(Accepted::Quorum(QuorumReached {
            before: self.request,
            request: next,
            records,
            ephemeral: self.ephemeral,
            shares,
        }))
    }
}

impl QuorumReached {
    /// The request with the completing approval.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Mints with the quorum's shares and persists the unlocked request in one
    /// commit with the share and quorum records. On any failure the last share
    /// is dropped (wiped) and the request goes back to collecting as it was
    /// before it, so a custodian can submit again.
    pub fn unlock(
        self,
        now: u64,
        mint: impl FnOnce(&Request, Quorum<'_>) -> Result<(StoredCredential, Vec<String>)>,
        commit: impl FnOnce(&Request, Vec<Record>) -> Result<()>,
    ) -> std::result::Result<Request, Refused<Collecting>> {
        let QuorumReached {
            before,
            request,
            mut records,
            ephemeral,
            shares,
        } = self;
        let outcome = match request.kind {
            Kind::Access => Ok(()),
            Kind::Drill | Kind::Change => Err(Error::Internal(format!(
                "request `{}` is a {}: it mints nothing",
                request.id,
                if request.kind == Kind::Drill {
                    "drill"
                } else {
                    "policy change"
                }
            ))),
        };
        let outcome = outcome
            .and_then(|()| mint(&request, Quorum { shares: &shares }))
            .and_then(|(credential, kinds)| {
                let mut r = *request;
                let minted = Event::CredentialMinted {
                    expires_at: credential.expires_at,
                    kinds,
                    valid_from: credential.valid_from,
                    ssh_serial: credential.ssh_serial,
                    ssh_key_id: credential.ssh_key_id.clone(),
                };
                r.state = State::Unlocked;
                r.closed_at = now;
                r.close_reason = "quorum reached; credential minted".into();
                r.credential = Some(credential);
                records.push(record(now, "daemon", &r.id, minted));
                commit(&r, records)?;
                Ok(r)
            });
        // The shares and E_req drop on success: invariant 3.
        outcome.map_err(|error| back(before, ephemeral, shares, error))
    }
}

mod change;
mod check;
pub use change::Applied;
mod close;
mod drill;
#[cfg(test)]
pub(crate) mod tests;
