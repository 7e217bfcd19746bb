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
    /// A call whose signature verified was refused (any call but a share
    /// submission, which has `share_rejected`): repeated refusals of the same
    /// signed caller are what reviewers look for.
    CallRefused {
        /// The call (`open_request`, `cancel_request`, `revoke_credential`, `fetch_credential`).
        call: String,
        /// The authenticated caller.
        caller: String,
        /// Why, as the caller was told.
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
    /// A drill ran against this daemon.
    Drill {
        /// What the drill did.
        note: String,
    },
    /// The daemon's clock went back: the next entry's time is earlier than the
    /// previous entry's. Written before that entry, so the log says so.
    ClockWentBack {
        /// Time of the previous entry.
        previous: u64,
        /// The earlier time now.
        now: u64,
    },
    /// The daemon key D signed the log up to `seq` (its head hash `head`).
    Checkpoint {
        /// Daemon id (bound into the signature).
        daemon_id: String,
        /// Last entry covered.
        seq: u64,
        /// Hex hash of entry `seq`.
        head: String,
        /// Hex ed25519 signature by D over `signing::audit_checkpoint`.
        signature: String,
    },
}

/// Every event kind, as it appears in the `kind` field of the JSON.
pub const EVENT_KINDS: [&str; 17] = [
    "ceremony",
    "daemon_started",
    "daemon_stopped",
    "request_opened",
    "share_accepted",
    "share_rejected",
    "call_refused",
    "quorum_reached",
    "credential_minted",
    "credential_fetched",
    "credential_revoked",
    "request_cancelled",
    "request_expired",
    "drill",
    "clock_went_back",
    "checkpoint",
    "*",
];

impl Event {
    /// The `kind` tag of this event.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Ceremony { .. } => "ceremony",
            Event::DaemonStarted { .. } => "daemon_started",
            Event::DaemonStopped => "daemon_stopped",
            Event::RequestOpened { .. } => "request_opened",
            Event::ShareAccepted { .. } => "share_accepted",
            Event::ShareRejected { .. } => "share_rejected",
            Event::CallRefused { .. } => "call_refused",
            Event::QuorumReached { .. } => "quorum_reached",
            Event::CredentialMinted { .. } => "credential_minted",
            Event::CredentialFetched { .. } => "credential_fetched",
            Event::CredentialRevoked { .. } => "credential_revoked",
            Event::RequestCancelled { .. } => "request_cancelled",
            Event::RequestExpired { .. } => "request_expired",
            Event::Drill { .. } => "drill",
            Event::ClockWentBack { .. } => "clock_went_back",
            Event::Checkpoint { .. } => "checkpoint",
        }
    }

    /// Whether the daemon key signs a checkpoint right after this event.
    pub fn wants_checkpoint(&self) -> bool {
        matches!(
            self,
            Event::QuorumReached { .. }
                | Event::CredentialRevoked { .. }
                | Event::DaemonStarted { .. }
                | Event::DaemonStopped
        )
    }
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
