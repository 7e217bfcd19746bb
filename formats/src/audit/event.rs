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
        /// The policy accepts security keys whose signature counter is
        /// always 0 (`allow_zero_counter`): a cloned key of that kind cannot
        /// be told apart by its counter. False is not serialized.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        zero_counter_allowed: bool,
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
        /// Credential kinds the scope mints (`ssh`, `token`). This and the
        /// fields below are absent from entries written before they existed:
        /// an empty or absent value is not serialized, so those entries hash
        /// as they did.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        kinds: Vec<String>,
        /// Principals the credential is for (the scope's).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        principals: Vec<String>,
        /// SSH certificate extensions the scope grants.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ssh_extensions: Vec<String>,
        /// Type of the SSH public key to certify (`ssh-ed25519`), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ssh_key_type: Option<String>,
        /// Its `SHA256:…` fingerprint (public).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ssh_key_fingerprint: Option<String>,
    },
    /// A commander opened a live drill: the real quorum is asked to approve
    /// a request that grants nothing.
    DrillOpened {
        /// Commander.
        requester: String,
        /// Reason.
        reason: String,
        /// Collection deadline.
        deadline: u64,
        /// Hex request digest.
        digest: String,
    },
    /// A live drill reached its quorum: the key was rebuilt, A signed the
    /// drill statement, nothing was minted.
    DrillPassed {
        /// Custodians whose shares counted.
        approvers: Vec<String>,
        /// Seconds from opening to quorum.
        seconds_to_quorum: u64,
        /// Epoch of the shares.
        epoch: u64,
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
    /// A custodian proved her share against her commitment without unlocking
    /// anything (readiness); the share was checked and wiped.
    ShareAttested {
        /// Custodian.
        custodian: String,
        /// Epoch of her share.
        epoch: u64,
        /// Attestation id.
        attestation_id: String,
    },
    /// A custodian's attestation fell due (`attest_every` after her last one,
    /// or after the ceremony): written once per due date.
    AttestationDue {
        /// Custodian.
        custodian: String,
        /// When it fell due.
        due_at: u64,
        /// Her last attestation in this epoch, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_attested: Option<u64>,
    },
    /// The next live drill fell due (`drill_every` after the last passed
    /// drill, or after the ceremony): written once per due date.
    DrillDue {
        /// When it fell due.
        due_at: u64,
        /// The last passed drill in this epoch, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_drill: Option<u64>,
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
        /// Kinds minted (`ssh`, `token`).
        kinds: Vec<String>,
        /// Start of validity (the certificate's `valid_after`, the token's
        /// `nbf`). This and the fields below are absent from entries written
        /// before they existed, and are not serialized when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        valid_from: Option<u64>,
        /// Serial of the SSH certificate, if one was minted (public: it goes
        /// in the revocation list).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ssh_serial: Option<u64>,
        /// Key id of the SSH certificate, if one was minted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ssh_key_id: Option<String>,
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
    /// A custodian or commander proposed a new policy (DESIGN.md "Epochs");
    /// custodians of the current epoch approve it with their current shares.
    ChangeProposed {
        /// Who proposed it.
        proposer: String,
        /// Reason.
        reason: String,
        /// End of the approval window.
        deadline: u64,
        /// Hex change digest.
        digest: String,
        /// The epoch it changes.
        epoch: u64,
        /// Hex digest of the proposed policy.
        new_policy_digest: String,
        /// The change summary, one line per change.
        summary: Vec<String>,
        /// True when it needs new shares (custodians, their keys or the threshold change).
        rekey: bool,
    },
    /// A change's quorum applied a policy-only change: the same shares, the
    /// same epoch number, the new policy from now on.
    ChangeApplied {
        /// The epoch (unchanged).
        epoch: u64,
        /// Hex digest of the policy before.
        old_policy_digest: String,
        /// Hex digest of the policy now.
        new_policy_digest: String,
        /// Requests collecting under the old policy, now cancelled.
        cancelled: Vec<String>,
    },
    /// A change's quorum dealt the next epoch: one new share file per new
    /// custodian, kept by the daemon until she fetches and confirms it.
    EpochDealt {
        /// The pending epoch.
        epoch: u64,
        /// Hex digest of its policy.
        policy_digest: String,
        /// Its custodians.
        custodians: Vec<String>,
        /// Its threshold.
        threshold: u8,
        /// Confirmations needed before it commits.
        need: u32,
        /// When it expires unless committed.
        deadline: u64,
    },
    /// A change committed a new epoch (DESIGN.md "Epochs"): the new
    /// custodians' shares, threshold and policy unlock from now on; A is the same.
    EpochCommitted {
        /// The change request that made it.
        change_id: String,
        /// The epoch before.
        from: u64,
        /// The epoch now.
        to: u64,
        /// Hex digest of the policy before.
        old_policy_digest: String,
        /// Hex digest of the policy now.
        new_policy_digest: String,
        /// Custodians of the new epoch.
        custodians: Vec<String>,
        /// Shares the new epoch needs.
        threshold: u8,
        /// Requests that were collecting under the old epoch, now cancelled.
        cancelled: Vec<String>,
    },
    /// A pending epoch's deadline passed before enough new custodians
    /// confirmed; the current epoch stays and the pending share files are deleted.
    EpochExpired {
        /// The change request that dealt it.
        change_id: String,
        /// The pending epoch.
        epoch: u64,
        /// Confirmations that arrived.
        confirmed: u32,
        /// Confirmations it needed.
        need: u32,
    },
    /// A new custodian fetched her share file of a pending epoch.
    EpochShareFetched {
        /// The change request that dealt it.
        change_id: String,
        /// The pending epoch.
        epoch: u64,
        /// Who fetched.
        custodian: String,
    },
    /// A new custodian proved her share of a pending epoch against its commitment.
    EpochShareConfirmed {
        /// The change request that dealt it.
        change_id: String,
        /// The pending epoch.
        epoch: u64,
        /// Who confirmed.
        custodian: String,
        /// Confirmations so far.
        confirmed: u32,
        /// Confirmations it needs.
        need: u32,
    },
    /// A pending epoch was cancelled before it committed; the current epoch
    /// stays and the pending share files are deleted.
    EpochCancelled {
        /// The change request that dealt it.
        change_id: String,
        /// The pending epoch.
        epoch: u64,
        /// Who cancelled.
        by: String,
        /// Why.
        reason: String,
    },
    /// A committed epoch's deadline passed: the share files of custodians who
    /// had not confirmed (kept for them under `rekey_confirm = "threshold"`)
    /// were deleted.
    EpochFilesDeleted {
        /// The change request that dealt it.
        change_id: String,
        /// The epoch.
        epoch: u64,
        /// Whose files.
        custodians: Vec<String>,
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
pub const EVENT_KINDS: [&str; 31] = [
    "ceremony",
    "daemon_started",
    "daemon_stopped",
    "request_opened",
    "drill_opened",
    "drill_passed",
    "share_accepted",
    "share_rejected",
    "share_attested",
    "attestation_due",
    "drill_due",
    "call_refused",
    "quorum_reached",
    "credential_minted",
    "credential_fetched",
    "credential_revoked",
    "request_cancelled",
    "request_expired",
    "change_proposed",
    "change_applied",
    "epoch_dealt",
    "epoch_committed",
    "epoch_expired",
    "epoch_share_fetched",
    "epoch_share_confirmed",
    "epoch_cancelled",
    "epoch_files_deleted",
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
            Event::DrillOpened { .. } => "drill_opened",
            Event::DrillPassed { .. } => "drill_passed",
            Event::ShareAccepted { .. } => "share_accepted",
            Event::ShareRejected { .. } => "share_rejected",
            Event::ShareAttested { .. } => "share_attested",
            Event::AttestationDue { .. } => "attestation_due",
            Event::DrillDue { .. } => "drill_due",
            Event::CallRefused { .. } => "call_refused",
            Event::QuorumReached { .. } => "quorum_reached",
            Event::CredentialMinted { .. } => "credential_minted",
            Event::CredentialFetched { .. } => "credential_fetched",
            Event::CredentialRevoked { .. } => "credential_revoked",
            Event::RequestCancelled { .. } => "request_cancelled",
            Event::RequestExpired { .. } => "request_expired",
            Event::ChangeProposed { .. } => "change_proposed",
            Event::ChangeApplied { .. } => "change_applied",
            Event::EpochDealt { .. } => "epoch_dealt",
            Event::EpochCommitted { .. } => "epoch_committed",
            Event::EpochExpired { .. } => "epoch_expired",
            Event::EpochShareFetched { .. } => "epoch_share_fetched",
            Event::EpochShareConfirmed { .. } => "epoch_share_confirmed",
            Event::EpochCancelled { .. } => "epoch_cancelled",
            Event::EpochFilesDeleted { .. } => "epoch_files_deleted",
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
                | Event::DrillPassed { .. }
                | Event::CredentialRevoked { .. }
                | Event::EpochCommitted { .. }
                | Event::ChangeApplied { .. }
                | Event::EpochDealt { .. }
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
    /// How the actor's signature was made, when a signed call caused this.
    pub signed_with: Option<SignedWith>,
}

/// How a signer's signature on a call was made, as the daemon verified it:
/// what a reviewer needs to see how each approval was authenticated (issue
/// 13). Public facts only: the key's type and fingerprint, the signature
/// format, and for a security key the flags and counter it reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedWith {
    /// The OpenSSH key type: `ssh-ed25519`, `sk-ssh-ed25519@openssh.com`
    /// or `sk-ecdsa-sha2-nistp256@openssh.com`.
    pub key_type: String,
    /// The key's `SHA256:…` fingerprint.
    pub fingerprint: String,
    /// `sshsig` (OpenSSH signature, namespace breakglass) or `raw`
    /// (64 ed25519 bytes).
    pub format: String,
    /// Security keys: the user touched the key (always true when accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_present: Option<bool>,
    /// Security keys: the user was verified (PIN or biometrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_verified: Option<bool>,
    /// Security keys: the signature counter the key reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<u32>,
}

impl SignedWith {
    /// True for a FIDO2 security key.
    pub fn is_security_key(&self) -> bool {
        self.key_type.starts_with("sk-")
    }

    /// One line for people: `security key sk-ssh-ed25519@openssh.com
    /// SHA256:… (touch, PIN/biometrics, counter 7)` or `ssh-ed25519 key
    /// SHA256:… (no hardware)`.
    pub fn describe(&self) -> String {
        if self.is_security_key() {
            let mut flags = Vec::new();
            if self.user_present == Some(true) {
                flags.push("touch".to_string());
            }
            flags.push(if self.user_verified == Some(true) {
                "PIN/biometrics verified".to_string()
            } else {
                "no PIN/biometrics".to_string()
            });
            if let Some(c) = self.counter {
                flags.push(format!("counter {c}"));
            }
            format!(
                "security key {} {} ({})",
                self.key_type,
                self.fingerprint,
                flags.join(", ")
            )
        } else {
            format!(
                "{} key {} ({}, no hardware)",
                self.key_type,
                self.fingerprint,
                if self.format == "raw" {
                    "raw signature"
                } else {
                    "OpenSSH signature"
                }
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries written before the grant fields existed parse and serialize to
    /// the same bytes, so their hashes (over the serialized entry) still verify.
    #[test]
    fn old_entries_serialize_as_they_were_written() {
        for old in [
            r#"{"kind":"request_opened","requester":"ic","scope":"prod-ssh","reason":"r","ttl_seconds":60,"deadline":9,"digest":"00"}"#,
            r#"{"kind":"credential_minted","expires_at":9,"kinds":["token"]}"#,
        ] {
            let e: Event = serde_json::from_str(old).unwrap();
            assert_eq!(serde_json::to_string(&e).unwrap(), old);
        }
        let new = Event::CredentialMinted {
            expires_at: 9,
            kinds: vec!["ssh".into()],
            valid_from: Some(1),
            ssh_serial: Some(42),
            ssh_key_id: Some("k".into()),
        };
        let text = serde_json::to_string(&new).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), new);
    }
}
