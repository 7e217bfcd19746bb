//! A request as stored: the plain, persisted record of every state, and what
//! may happen to it once it is no longer collecting (fetch, revoke) or when
//! its live state was lost (a restart abandons it).
//!
//! The live, secret-holding states (`Collecting`, `QuorumReached`) are in
//! [`super::collecting`]; they carry one of these records and hand back a
//! plain record when they end. States: `Collecting → Unlocked` (access) or
//! `Collecting → DrillPassed` (drill), or `Collecting → Expired | Cancelled`;
//! terminal states are final.

use serde::{Deserialize, Serialize};

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
    /// A drill whose quorum was reached: the key was rebuilt and a drill
    /// statement signed by A; nothing was minted.
    DrillPassed,
    /// A change whose quorum was reached, with the same custodians and
    /// threshold: the new policy applies now, with the same shares.
    ChangeApplied,
    /// A change whose quorum was reached that changes the custodians or the
    /// threshold: the next epoch was dealt and waits for confirmations.
    ChangeDealt,
}

/// What a request is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Emergency access: the quorum mints a credential.
    #[default]
    Access,
    /// A live drill: the quorum rebuilds the key, A signs a statement, nothing is minted.
    Drill,
    /// A policy change: the quorum approves a new policy; nothing is minted.
    Change,
}

impl Kind {
    /// The proto's `RequestKind` number.
    pub fn code(self) -> i32 {
        match self {
            Kind::Access => 0,
            Kind::Drill => 1,
            Kind::Change => 2,
        }
    }

    /// True for [`Kind::Access`] (not serialized, so stored access requests keep their bytes).
    pub fn is_access(&self) -> bool {
        *self == Kind::Access
    }
}

impl State {
    /// The proto's `RequestState` number (`breakglass.v1.RequestState`), as
    /// signed in request views.
    pub fn code(self) -> i32 {
        match self {
            State::Collecting => 1,
            State::Unlocked => 2,
            State::Expired => 3,
            State::Cancelled => 4,
            State::DrillPassed => 5,
            State::ChangeApplied => 6,
            State::ChangeDealt => 7,
        }
    }

    /// Lower-case name for messages.
    pub fn name(self) -> &'static str {
        match self {
            State::Collecting => "collecting",
            State::Unlocked => "unlocked",
            State::Expired => "expired",
            State::Cancelled => "cancelled",
            State::DrillPassed => "drill passed",
            State::ChangeApplied => "change applied",
            State::ChangeDealt => "new shares dealt",
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
    /// Start of validity (certificate `valid_after`, token `nbf`); absent in
    /// records stored before it was kept.
    #[serde(default)]
    pub valid_from: Option<u64>,
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
    /// What the request is for (absent: access).
    #[serde(default, skip_serializing_if = "Kind::is_access")]
    pub kind: Kind,
    /// A passed drill's statement (JSON, signed by A).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill_statement: Option<String>,
    /// What a change request changes (kind `change` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<ChangeRecord>,
}

/// What a change request proposes, as opened: the epoch it changes, both
/// policies' digests, the new policy and the summary custodians approve from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// The epoch it changes.
    pub epoch: u64,
    /// That epoch's policy digest.
    pub current_policy_digest: [u8; 32],
    /// The proposed policy's digest.
    pub new_policy_digest: [u8; 32],
    /// The policy it replaces (kept so the change can be shown and reviewed
    /// after that policy is gone).
    #[serde(with = "super::policy::validated_json")]
    pub current_policy: super::policy::Policy,
    /// The proposed policy, validated as `init` validates one.
    #[serde(with = "super::policy::validated_json")]
    pub new_policy: super::policy::Policy,
    /// What it changes.
    pub summary: breakglass_formats::change::Summary,
}

impl ChangeRecord {
    /// True when the change needs new shares (a new epoch) rather than a re-seal.
    pub fn rekey(&self) -> bool {
        self.summary.rekey
    }
}

pub(super) fn record(now: u64, actor: &str, id: &str, event: Event) -> Record {
    Record {
        time: now,
        actor: actor.to_string(),
        request_id: Some(id.to_string()),
        event,
        signed_with: None,
    }
}

impl Request {
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
        if self.kind == Kind::Drill {
            return Err(Error::DrillGrantsNothing {
                id: self.id.clone(),
            });
        }
        if let Some(r) = &self.revocation {
            return Err(Error::CredentialRevoked {
                id: self.id.clone(),
                by: r.by.clone(),
                at: breakglass_formats::time::rfc3339(r.at).unwrap_or_else(|| r.at.to_string()),
                reason: r.reason.clone(),
            });
        }
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

    /// Revokes the minted credential. `by` must be the requester or a custodian
    /// (checked by the caller); `reason` comes from [`super::policy::reason`].
    pub fn revoke(&self, by: &str, reason: &str, now: u64) -> Result<(Request, Vec<Record>)> {
        if self.kind == Kind::Drill {
            return Err(Error::DrillGrantsNothing {
                id: self.id.clone(),
            });
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::collecting::tests::{opened, T0};

    fn cred() -> StoredCredential {
        StoredCredential {
            expires_at: T0 + 600,
            sealed: vec![1],
            ssh_serial: Some(7),
            ssh_key_id: Some("k".into()),
            valid_from: None,
        }
    }

    fn unlocked() -> Request {
        let mut u = opened().request().clone();
        u.state = State::Unlocked;
        u.credential = Some(cred());
        u
    }

    #[test]
    fn state_codes_match_the_proto() {
        use breakglass_proto::pb::RequestState as P;
        for (s, p) in [
            (State::Collecting, P::Collecting),
            (State::Unlocked, P::Unlocked),
            (State::Expired, P::Expired),
            (State::Cancelled, P::Cancelled),
            (State::DrillPassed, P::DrillPassed),
            (State::ChangeApplied, P::ChangeApplied),
            (State::ChangeDealt, P::ChangeDealt),
        ] {
            assert_eq!(s.code(), p as i32, "{}", s.name());
        }
    }

    #[test]
    fn abandon_only_while_collecting() {
        let r = opened().request().clone();
        let (a, recs) = r.abandon(T0 + 1, "daemon restarted").unwrap();
        assert_eq!(a.state, State::Cancelled);
        assert_eq!(a.close_reason, "daemon restarted");
        assert!(matches!(recs[0].event, Event::RequestCancelled { .. }));
        assert!(
            a.abandon(T0 + 2, "again").is_none(),
            "terminal stays terminal"
        );
        assert!(unlocked().abandon(T0, "restart").is_none());
    }

    #[test]
    fn fetch_only_by_requester_and_only_when_unlocked() {
        let r = opened().request().clone();
        assert!(matches!(
            r.fetch("ic", T0),
            Err(Error::NoCredential {
                state: "collecting",
                ..
            })
        ));
        assert!(matches!(r.fetch("c1", T0), Err(Error::NotRequester { .. })));
        let u = unlocked();
        let (c, recs) = u.fetch("ic", T0).unwrap();
        assert_eq!(c.expires_at, T0 + 600);
        assert!(matches!(recs[0].event, Event::CredentialFetched { .. }));
    }

    #[test]
    fn revoke_only_unlocked_and_once() {
        let r = opened().request().clone();
        assert!(matches!(
            r.revoke("ic", "x", T0),
            Err(Error::NoCredential { .. })
        ));
        let (v, recs) = unlocked().revoke("c1", "leaked", T0 + 9).unwrap();
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
}
