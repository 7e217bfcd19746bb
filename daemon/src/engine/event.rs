//! Audit events produced by the engine. They never carry secret material:
//! ids, times, digests, reasons and counts only.

use serde::{Deserialize, Serialize};

/// One thing that happened, as recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The key ceremony ran.
    Ceremony {
        /// Ceremony id.
        ceremony_id: String,
        /// Hex policy digest.
        policy_digest: String,
        /// Custodian ids that received shares.
        custodians: Vec<String>,
        /// Shares needed.
        threshold: u8,
        /// Hex authority public key.
        authority: String,
    },
    /// The daemon started serving.
    DaemonStarted {
        /// Hex policy digest.
        policy_digest: String,
        /// Daemon version.
        version: String,
    },
    /// The daemon stopped.
    DaemonStopped,
    /// A commander opened a request.
    RequestOpened {
        /// Commander.
        requester: String,
        /// Scope.
        scope: String,
        /// Reason.
        reason: String,
        /// TTL asked for.
        ttl_seconds: u64,
        /// Collection deadline.
        deadline: u64,
        /// Hex request digest.
        digest: String,
    },
    /// A custodian's share was accepted.
    ShareAccepted {
        /// Custodian.
        custodian: String,
        /// Shares accepted so far.
        accepted: u32,
        /// Shares needed.
        threshold: u32,
    },
    /// A signed share from a known custodian was rejected.
    ShareRejected {
        /// Custodian.
        custodian: String,
        /// Why.
        reason: String,
    },
    /// The quorum was reached.
    QuorumReached {
        /// Custodians whose shares counted.
        approvers: Vec<String>,
    },
    /// A credential was minted.
    CredentialMinted {
        /// Expiry.
        expires_at: u64,
        /// Kinds minted (`paseto`).
        kinds: Vec<String>,
    },
    /// The requester fetched the credential.
    CredentialFetched {
        /// Who fetched.
        by: String,
    },
    /// A minted credential was revoked.
    CredentialRevoked {
        /// Who revoked.
        by: String,
        /// Why.
        reason: String,
    },
    /// The request was cancelled.
    RequestCancelled {
        /// Who cancelled (`daemon` for a restart).
        by: String,
        /// Why.
        reason: String,
    },
    /// The collection window ended without a quorum.
    RequestExpired {
        /// Shares accepted before the deadline.
        accepted: u32,
    },
}

/// An event with its actor, request and time, ready for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Seconds since the epoch.
    pub time: u64,
    /// Who caused it (id, or `daemon`).
    pub actor: String,
    /// Request id, if any.
    pub request_id: Option<String>,
    /// What happened.
    pub event: Event,
}
