//! The request state machine: `Collecting → Unlocked`, or `Collecting →
//! Expired | Cancelled`. Terminal states are final.
//!
//! Every transition is a pure function of the current request, its input and
//! `now`; it returns the next request and the audit records to write with it.
//! The caller persists both atomically, so a failed write leaves the stored
//! request as it was. A [`Collecting`] can only be had from a request that is
//! in `Collecting` state and inside its window, so the share-accepting
//! transitions cannot run on a closed request.

use serde::{Deserialize, Serialize};

use breakglass_proto::signing::{self, RequestFields};

use super::event::{Event, Record};
use crate::error::{Error, Result};

/// Lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Collecting shares until the deadline.
    Collecting,
    /// Quorum reached, credential minted.
    Unlocked,
    /// Window ended without quorum.
    Expired,
    /// Cancelled.
    Cancelled,
}

impl State {
    /// Lower-case name for messages.
    pub fn name(self) -> &'static str {
        match self {
            State::Collecting => "collecting",
            State::Unlocked => "unlocked",
            State::Expired => "expired",
            State::Cancelled => "cancelled",
        }
    }

    /// True for `Unlocked`, `Expired` and `Cancelled`.
    pub fn is_terminal(self) -> bool {
        self != State::Collecting
    }
}

/// A custodian's accepted approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Custodian id.
    pub custodian: String,
    /// When accepted.
    pub at: u64,
}

/// The minted credential as stored: encrypted to the requester, never in clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCredential {
    /// Expiry, seconds since the epoch.
    pub expires_at: u64,
    /// age ciphertext to the requester's ssh-ed25519 key.
    pub sealed: Vec<u8>,
    /// Serial of the SSH certificate, if one was minted (public: it goes in the revocation list).
    #[serde(default)]
    pub ssh_serial: Option<u64>,
    /// Key id of the SSH certificate, if one was minted.
    #[serde(default)]
    pub ssh_key_id: Option<String>,
}

/// A revocation of a minted credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// When.
    pub at: u64,
    /// Who.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// A request as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Request id (derived from the signed open).
    pub id: String,
    /// Daemon id.
    pub daemon_id: String,
    /// Commander who asked.
    pub requester: String,
    /// Scope.
    pub scope: String,
    /// Reason.
    pub reason: String,
    /// TTL asked for.
    pub ttl_seconds: u64,
    /// When opened.
    pub opened_at: u64,
    /// End of the collection window.
    pub deadline: u64,
    /// Shares needed.
    pub threshold: u32,
    /// E_req public key.
    pub ephemeral_public: [u8; 32],
    /// OpenSSH public key to certify, or empty.
    #[serde(default)]
    pub ssh_public_key: String,
    /// Request digest.
    pub digest: [u8; 32],
    /// Approvals in arrival order.
    pub approvals: Vec<Approval>,
    /// State.
    pub state: State,
    /// When it left `Collecting`, or 0.
    pub closed_at: u64,
    /// Why it closed.
    pub close_reason: String,
    /// The credential once minted.
    pub credential: Option<StoredCredential>,
    /// Set when the minted credential was revoked.
    #[serde(default)]
    pub revocation: Option<Revocation>,
}

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
    /// Reason.
    pub reason: String,
    /// TTL.
    pub ttl_seconds: u64,
    /// Collection window length.
    pub window_seconds: u64,
    /// Shares needed.
    pub threshold: u32,
    /// E_req public key.
    pub ephemeral_public: [u8; 32],
    /// OpenSSH public key to certify, or empty.
    pub ssh_public_key: String,
}

fn record(now: u64, actor: &str, id: &str, event: Event) -> Record {
    Record {
        time: now,
        actor: actor.to_string(),
        request_id: Some(id.to_string()),
        event,
    }
}

/// Result of accepting one share.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The request after the share.
    pub request: Request,
    /// Audit records.
    pub records: Vec<Record>,
    /// True if this share completed the quorum; the caller must now mint and call [`Request::unlock`].
    pub quorum: bool,
}

impl Request {
    /// Opens a request at `now`.
    pub fn open(p: OpenParams, now: u64) -> Result<(Request, Vec<Record>)> {
        let reason = p.reason.trim();
        if reason.is_empty() {
            return Err(Error::invalid(
                "reason",
                "is empty: say why emergency access is needed",
            ));
        }
        if reason.len() > super::policy::MAX_REASON_LEN {
            return Err(Error::invalid(
                "reason",
                format!(
                    "is {} bytes; at most {} are kept",
                    reason.len(),
                    super::policy::MAX_REASON_LEN
                ),
            ));
        }
        let deadline = now.saturating_add(p.window_seconds);
        let digest = signing::request_digest(&RequestFields {
            daemon_id: &p.daemon_id,
            request_id: &p.id,
            requester: &p.requester,
            scope: &p.scope,
            reason,
            ttl_seconds: p.ttl_seconds,
            opened_at: now,
            deadline,
            threshold: p.threshold,
            ephemeral_public: &p.ephemeral_public,
            ssh_public_key: &p.ssh_public_key,
        });
        let r = Request {
            id: p.id,
            daemon_id: p.daemon_id,
            requester: p.requester,
            scope: p.scope,
            reason: reason.to_string(),
            ttl_seconds: p.ttl_seconds,
            opened_at: now,
            deadline,
            threshold: p.threshold,
            ephemeral_public: p.ephemeral_public,
            ssh_public_key: p.ssh_public_key,
            digest,
            approvals: Vec::new(),
            state: State::Collecting,
            closed_at: 0,
            close_reason: String::new(),
            credential: None,
            revocation: None,
        };
        let ev = Event::RequestOpened {
            requester: r.requester.clone(),
            scope: r.scope.clone(),
            reason: r.reason.clone(),
            ttl_seconds: r.ttl_seconds,
            deadline,
            digest: hex::encode(digest),
        };
        let recs = vec![record(now, &r.requester, &r.id, ev)];
        Ok((r, recs))
    }

    /// The error for a call on a closed request.
    pub fn closed_error(&self) -> Error {
        Error::RequestClosed {
            id: self.id.clone(),
            state: self.state.name(),
            why: if self.close_reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.close_reason)
            },
        }
    }

    /// Proof that the request is collecting at `now`.
    pub fn collecting(&self, now: u64) -> Result<Collecting<'_>> {
        if self.state.is_terminal() {
            return Err(self.closed_error());
        }
        if now >= self.deadline {
            return Err(Error::WindowClosed {
                id: self.id.clone(),
                deadline: self.deadline,
                now,
            });
        }
        Ok(Collecting(self))
    }

    /// Expires a collecting request whose deadline has passed; `None` if it is not due.
    pub fn expire(&self, now: u64) -> Option<(Request, Vec<Record>)> {
        if self.state.is_terminal() || now < self.deadline {
            return None;
        }
        let mut r = self.clone();
        r.state = State::Expired;
        r.closed_at = now;
        r.close_reason = "collection window ended without a quorum".into();
        let accepted = u32::try_from(r.approvals.len()).unwrap_or(u32::MAX);
        let rec = record(now, "daemon", &r.id, Event::RequestExpired { accepted });
        Some((r, vec![rec]))
    }

    /// Marks an interrupted collecting request cancelled (the daemon restarted and
    /// E_req is gone). `None` if it was not collecting.
    pub fn abandon(&self, now: u64, why: &str) -> Option<(Request, Vec<Record>)> {
        if self.state.is_terminal() {
            return None;
        }
        let mut r = self.clone();
        r.state = State::Cancelled;
        r.closed_at = now;
        r.close_reason = why.to_string();
        let rec = record(
            now,
            "daemon",
            &r.id,
            Event::RequestCancelled {
                by: "daemon".into(),
                reason: why.into(),
            },
        );
        Some((r, vec![rec]))
    }

    /// Checks that `caller` is the requester.
    pub fn check_requester(&self, caller: &str, action: &'static str) -> Result<()> {
        if caller == self.requester {
            Ok(())
        } else {
            Err(Error::NotRequester {
                id: self.id.clone(),
                requester: self.requester.clone(),
                caller: caller.to_string(),
                action,
            })
        }
    }

    /// The stored credential, if the request is unlocked; records the fetch.
    pub fn fetch(&self, caller: &str, now: u64) -> Result<(&StoredCredential, Vec<Record>)> {
        self.check_requester(caller, "fetch the credential of")?;
        match (&self.credential, self.state) {
            (Some(c), State::Unlocked) => {
                let rec = record(
                    now,
                    caller,
                    &self.id,
                    Event::CredentialFetched {
                        by: caller.to_string(),
                    },
                );
                Ok((c, vec![rec]))
            }
            _ => Err(Error::NoCredential {
                id: self.id.clone(),
                state: self.state.name(),
            }),
        }
    }

    /// Revokes the minted credential. `by` must be the requester or a custodian (checked by the caller).
    pub fn revoke(&self, by: &str, reason: &str, now: u64) -> Result<(Request, Vec<Record>)> {
        if self.state != State::Unlocked || self.credential.is_none() {
            return Err(Error::NoCredential {
                id: self.id.clone(),
                state: self.state.name(),
            });
        }
        if let Some(r) = &self.revocation {
            return Err(Error::AlreadyRevoked {
                id: self.id.clone(),
                by: r.by.clone(),
                at: r.at,
            });
        }
        let reason = if reason.trim().is_empty() {
            "no reason given"
        } else {
            reason.trim()
        };
        let mut r = self.clone();
        r.revocation = Some(Revocation {
            at: now,
            by: by.to_string(),
            reason: reason.to_string(),
        });
        let rec = record(
            now,
            by,
            &r.id,
            Event::CredentialRevoked {
                by: by.to_string(),
                reason: reason.to_string(),
            },
        );
        Ok((r, vec![rec]))
    }
}

/// A request proven to be collecting and inside its window.
#[derive(Debug, Clone, Copy)]
pub struct Collecting<'a>(&'a Request);

impl<'a> Collecting<'a> {
    /// The request.
    pub fn request(&self) -> &'a Request {
        self.0
    }

    /// Checks that `custodian` has not approved yet.
    pub fn check_not_approved(&self, custodian: &str) -> Result<()> {
        if self.0.approvals.iter().any(|a| a.custodian == custodian) {
            return Err(Error::DuplicateShare {
                custodian: custodian.to_string(),
                id: self.0.id.clone(),
            });
        }
        Ok(())
    }

    /// Records an accepted share from `custodian`.
    pub fn accept(self, custodian: &str, now: u64) -> Result<Accepted> {
        self.check_not_approved(custodian)?;
        let mut r = self.0.clone();
        r.approvals.push(Approval {
            custodian: custodian.to_string(),
            at: now,
        });
        let accepted = u32::try_from(r.approvals.len()).unwrap_or(u32::MAX);
        let mut records = vec![record(
            now,
            custodian,
            &r.id,
            Event::ShareAccepted {
                custodian: custodian.to_string(),
                accepted,
                threshold: r.threshold,
            },
        )];
        let quorum = accepted >= r.threshold;
        if quorum {
            let approvers = r.approvals.iter().map(|a| a.custodian.clone()).collect();
            records.push(record(
                now,
                "daemon",
                &r.id,
                Event::QuorumReached { approvers },
            ));
        }
        Ok(Accepted {
            request: r,
            records,
            quorum,
        })
    }

    /// Completes the unlock with the minted credential. Only valid once the quorum is reached.
    pub fn unlock(
        self,
        credential: StoredCredential,
        kinds: Vec<String>,
        now: u64,
    ) -> Result<(Request, Vec<Record>)> {
        let accepted = u32::try_from(self.0.approvals.len()).unwrap_or(u32::MAX);
        if accepted < self.0.threshold {
            return Err(Error::Internal(format!(
                "unlock asked with {accepted} of {} shares; refusing",
                self.0.threshold
            )));
        }
        let mut r = self.0.clone();
        let expires_at = credential.expires_at;
        r.state = State::Unlocked;
        r.closed_at = now;
        r.close_reason = "quorum reached; credential minted".into();
        r.credential = Some(credential);
        let rec = record(
            now,
            "daemon",
            &r.id,
            Event::CredentialMinted { expires_at, kinds },
        );
        Ok((r, vec![rec]))
    }

    /// Cancels the request. `by` must be the requester or a custodian (checked by the caller's policy).
    pub fn cancel(self, by: &str, reason: &str, now: u64) -> (Request, Vec<Record>) {
        let mut r = self.0.clone();
        let reason = if reason.trim().is_empty() {
            "no reason given"
        } else {
            reason.trim()
        };
        r.state = State::Cancelled;
        r.closed_at = now;
        r.close_reason = format!("cancelled by {by}: {reason}");
        let rec = record(
            now,
            by,
            &r.id,
            Event::RequestCancelled {
                by: by.to_string(),
                reason: reason.to_string(),
            },
        );
        (r, vec![rec])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: u64 = 1_000_000;

    fn params() -> OpenParams {
        OpenParams {
            id: "req-1".into(),
            daemon_id: "d".into(),
            requester: "ic".into(),
            scope: "prod-ssh".into(),
            reason: "db down".into(),
            ttl_seconds: 600,
            window_seconds: 900,
            threshold: 3,
            ephemeral_public: [9; 32],
            ssh_public_key: String::new(),
        }
    }

    fn opened() -> Request {
        let (r, recs) = Request::open(params(), T0).unwrap();
        assert_eq!(recs.len(), 1);
        assert!(matches!(recs[0].event, Event::RequestOpened { .. }));
        r
    }

    fn cred() -> StoredCredential {
        StoredCredential {
            expires_at: T0 + 600,
            sealed: vec![1],
            ssh_serial: Some(7),
            ssh_key_id: Some("k".into()),
        }
    }

    #[test]
    fn open_sets_deadline_and_digest() {
        let r = opened();
        assert_eq!(r.state, State::Collecting);
        assert_eq!(r.deadline, T0 + 900);
        assert_ne!(r.digest, [0; 32]);
    }

    #[test]
    fn open_rejects_empty_and_long_reason() {
        let mut p = params();
        p.reason = "  ".into();
        assert!(matches!(
            Request::open(p, T0),
            Err(Error::InvalidArgument {
                field: "reason",
                ..
            })
        ));
        let mut p = params();
        p.reason = "x".repeat(2000);
        assert!(matches!(
            Request::open(p, T0),
            Err(Error::InvalidArgument {
                field: "reason",
                ..
            })
        ));
    }

    /// Invariant 2: only the share that brings the count to `threshold` reports a quorum.
    #[test]
    fn collecting_to_unlocked() {
        let r = opened();
        let a = r.collecting(T0 + 1).unwrap().accept("c1", T0 + 1).unwrap();
        assert!(!a.quorum);
        let b = a
            .request
            .collecting(T0 + 2)
            .unwrap()
            .accept("c2", T0 + 2)
            .unwrap();
        assert!(!b.quorum);
        let c = b
            .request
            .collecting(T0 + 3)
            .unwrap()
            .accept("c3", T0 + 3)
            .unwrap();
        assert!(c.quorum);
        assert!(matches!(
            c.records.last().map(|r| &r.event),
            Some(Event::QuorumReached { .. })
        ));
        let (u, recs) = c
            .request
            .collecting(T0 + 3)
            .unwrap()
            .unlock(cred(), vec!["paseto".into()], T0 + 3)
            .unwrap();
        assert_eq!(u.state, State::Unlocked);
        assert!(matches!(recs[0].event, Event::CredentialMinted { .. }));
        assert!(matches!(
            u.collecting(T0 + 4),
            Err(Error::RequestClosed {
                state: "unlocked",
                ..
            })
        ));
    }

    /// Invariant 2: unlock below threshold is refused.
    #[test]
    fn unlock_below_threshold_refused() {
        let r = opened();
        let a = r.collecting(T0).unwrap().accept("c1", T0).unwrap();
        assert!(matches!(
            a.request.collecting(T0).unwrap().unlock(cred(), vec![], T0),
            Err(Error::Internal(_))
        ));
    }

    #[test]
    fn duplicate_custodian_refused() {
        let r = opened();
        let a = r.collecting(T0).unwrap().accept("c1", T0).unwrap();
        assert!(matches!(
            a.request.collecting(T0).unwrap().accept("c1", T0),
            Err(Error::DuplicateShare { .. })
        ));
    }

    /// Invariant 7 (time-boxed): no share is accepted at or after the deadline, and expiry happens only then.
    #[test]
    fn expiry_with_injected_clock() {
        let r = opened();
        assert!(r.expire(T0 + 899).is_none());
        assert!(r.collecting(T0 + 899).is_ok());
        assert!(matches!(
            r.collecting(T0 + 900),
            Err(Error::WindowClosed { .. })
        ));
        let (e, recs) = r.expire(T0 + 900).unwrap();
        assert_eq!(e.state, State::Expired);
        assert!(matches!(
            recs[0].event,
            Event::RequestExpired { accepted: 0 }
        ));
        assert!(e.expire(T0 + 2000).is_none(), "terminal stays terminal");
        assert!(matches!(
            e.collecting(T0),
            Err(Error::RequestClosed {
                state: "expired",
                ..
            })
        ));
    }

    #[test]
    fn cancel_and_abandon() {
        let r = opened();
        let (c, recs) = r.collecting(T0).unwrap().cancel("ic", "resolved", T0 + 5);
        assert_eq!(c.state, State::Cancelled);
        assert_eq!(c.close_reason, "cancelled by ic: resolved");
        assert!(matches!(recs[0].event, Event::RequestCancelled { .. }));
        assert!(c.abandon(T0, "restart").is_none());
        let (a, _) = r.abandon(T0 + 1, "daemon restarted").unwrap();
        assert_eq!(a.state, State::Cancelled);
    }

    #[test]
    fn fetch_only_by_requester_and_only_when_unlocked() {
        let r = opened();
        assert!(matches!(
            r.fetch("ic", T0),
            Err(Error::NoCredential {
                state: "collecting",
                ..
            })
        ));
        assert!(matches!(r.fetch("c1", T0), Err(Error::NotRequester { .. })));
        let mut u = r.clone();
        u.state = State::Unlocked;
        u.credential = Some(cred());
        let (c, recs) = u.fetch("ic", T0).unwrap();
        assert_eq!(c.expires_at, T0 + 600);
        assert!(matches!(recs[0].event, Event::CredentialFetched { .. }));
    }

    #[test]
    fn revoke_only_unlocked_and_once() {
        let r = opened();
        assert!(matches!(
            r.revoke("ic", "x", T0),
            Err(Error::NoCredential { .. })
        ));
        let mut u = r.clone();
        u.state = State::Unlocked;
        u.credential = Some(cred());
        let (v, recs) = u.revoke("c1", "leaked", T0 + 9).unwrap();
        assert_eq!(v.revocation.as_ref().map(|x| x.at), Some(T0 + 9));
        assert_eq!(
            v.state,
            State::Unlocked,
            "revocation is an attribute, the state stays terminal"
        );
        assert!(matches!(recs[0].event, Event::CredentialRevoked { .. }));
        assert!(matches!(
            v.revoke("ic", "again", T0 + 10),
            Err(Error::AlreadyRevoked { .. })
        ));
    }

    #[derive(Debug, Clone)]
    enum Step {
        Share(u8),
        Cancel,
        Tick(u64),
        Expire,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (1u8..=6).prop_map(Step::Share),
            Just(Step::Cancel),
            (0u64..400).prop_map(Step::Tick),
            Just(Step::Expire),
        ]
    }

    proptest! {
        /// Invariants 2 and 7 under random event sequences: never more than one
        /// credential, never an unlock below threshold, terminal states stay terminal,
        /// nothing accepted after the deadline.
        #[test]
        fn random_sequences_keep_invariants(steps in proptest::collection::vec(step(), 0..40)) {
            let mut r = opened();
            let mut now = T0;
            let mut minted = 0;
            for s in steps {
                let before = r.clone();
                match s {
                    Step::Tick(d) => now += d,
                    Step::Expire => if let Some((n, _)) = r.expire(now) { r = n },
                    Step::Cancel => if let Ok(c) = r.collecting(now) { r = c.cancel("ic", "x", now).0 },
                    Step::Share(i) => {
                        if let Ok(c) = r.collecting(now) {
                            if let Ok(a) = c.accept(&format!("c{i}"), now) {
                                r = a.request;
                                if a.quorum {
                                    let (u, _) = r.collecting(now).unwrap().unlock(cred(), vec![], now).unwrap();
                                    r = u;
                                    minted += 1;
                                }
                            }
                        }
                    }
                }
                if before.state.is_terminal() {
                    prop_assert_eq!(&before, &r, "terminal state changed");
                }
                if r.state == State::Unlocked {
                    prop_assert!(r.approvals.len() as u32 >= r.threshold);
                }
                for a in &r.approvals {
                    prop_assert!(a.at < r.deadline);
                }
                prop_assert!(minted <= 1);
            }
        }
    }
}
