//! The daemon's one error enum. Every variant's message names what was wrong
//! and what to do; `server::status::to_status` maps each to one gRPC status.

use std::path::PathBuf;

/// Everything that can go wrong in the daemon.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field of a call is missing or malformed.
    #[error("{field}: {why}")]
    InvalidArgument {
        /// Field name as in the proto.
        field: &'static str,
        /// What is wrong and what is expected.
        why: String,
    },
    /// The signer is not a custodian in the policy.
    #[error("`{id}` is not a custodian of this daemon (custodians: {known}); check --as and the daemon address")]
    UnknownCustodian {
        /// Claimed id.
        id: String,
        /// Registered ids.
        known: String,
    },
    /// The signer is not a commander in the policy.
    #[error(
        "`{id}` is not a commander of this daemon, so cannot open requests (commanders: {known})"
    )]
    NotACommander {
        /// Claimed id.
        id: String,
        /// Registered ids.
        known: String,
    },
    /// The scope does not exist in the policy.
    #[error("scope `{scope}` is not in the policy (scopes: {known})")]
    UnknownScope {
        /// Scope asked for.
        scope: String,
        /// Known scopes.
        known: String,
    },
    /// The commander may not use this scope.
    #[error(
        "commander `{commander}` may not open requests for scope `{scope}` (allowed: {allowed})"
    )]
    ScopeNotAllowed {
        /// Commander id.
        commander: String,
        /// Scope asked for.
        scope: String,
        /// Scopes this commander may use.
        allowed: String,
    },
    /// The TTL asked for is over the policy's cap.
    #[error(
        "ttl {requested}s is over the maximum {max}s for scope `{scope}`; ask for {max}s or less"
    )]
    TtlTooLong {
        /// Scope.
        scope: String,
        /// Seconds asked for.
        requested: u64,
        /// Cap in seconds.
        max: u64,
    },
    /// The signature does not verify with the signer's registered key.
    #[error("signature by `{signer}` does not verify with the key registered for them: it was made with another key, for another request or daemon, or the call was altered")]
    BadSignature {
        /// Signer id.
        signer: String,
    },
    /// The signature verified, but how it was made is not acceptable: no
    /// touch, no PIN where the policy needs one, a counter that did not
    /// increase, another application, or a file key where the policy needs
    /// a security key. Audited as a refusal of a verified signer.
    #[error("`{signer}`'s signature verified but is refused: {why}")]
    SignatureRefused {
        /// Signer id.
        signer: String,
        /// What was required and what the signature showed.
        why: String,
        /// How the signature was made.
        signed: Box<breakglass_formats::audit::SignedWith>,
    },
    /// The signature's timestamp is outside the freshness window.
    #[error("signature by `{signer}` was made at {signed_at}, {skew}s away from the daemon's clock ({now}); at most {allowed}s is accepted: check the signing machine's clock and sign again")]
    StaleSignature {
        /// Signer id.
        signer: String,
        /// Claimed signing time.
        signed_at: u64,
        /// Daemon time.
        now: u64,
        /// |now - signed_at|.
        skew: u64,
        /// Freshness window.
        allowed: u64,
    },
    /// No request with this id.
    #[error("no request `{id}` on this daemon; `breakglass request list` shows the open ones")]
    RequestNotFound {
        /// Request id.
        id: String,
    },
    /// A request with this id exists already (a replayed open).
    #[error(
        "request `{id}` exists already: this signed open was already used; open a new request"
    )]
    RequestExists {
        /// Request id.
        id: String,
    },
    /// The request is no longer collecting shares.
    #[error("request `{id}` is {state}{why}; it accepts no more shares or changes")]
    RequestClosed {
        /// Request id.
        id: String,
        /// Terminal state name.
        state: &'static str,
        /// Close reason, prefixed with ": " when known.
        why: String,
    },
    /// The collection window has passed.
    #[error("request `{id}` stopped collecting shares at {} ({} ago); the commander must open a new request", utc(deadline), span(now.saturating_sub(*deadline)))]
    WindowClosed {
        /// Request id.
        id: String,
        /// Deadline.
        deadline: u64,
        /// Now.
        now: u64,
    },
    /// This custodian already approved this request.
    #[error("custodian `{custodian}` already submitted a share for request `{id}`; each custodian counts once")]
    DuplicateShare {
        /// Custodian id.
        custodian: String,
        /// Request id.
        id: String,
    },
    /// The share could not be decrypted or has the wrong shape.
    #[error("share from custodian `{custodian}` is malformed: {why}")]
    ShareMalformed {
        /// Custodian id.
        custodian: String,
        /// What is wrong.
        why: String,
    },
    /// The share does not match its commitment from the ceremony.
    #[error("share from custodian `{custodian}` does not match their commitment: they may hold a share from an older ceremony or another daemon; the share was not counted")]
    ShareCommitmentMismatch {
        /// Custodian id.
        custodian: String,
    },
    /// A share (or a call about one) of an epoch other than the daemon's.
    #[error("custodian `{custodian}`: your share is from epoch {share_epoch}; this daemon is at epoch {epoch}: {}", epoch_advice(*share_epoch, *epoch))]
    WrongEpoch {
        /// Custodian id.
        custodian: String,
        /// The epoch the caller's share is from.
        share_epoch: u64,
        /// The daemon's current epoch.
        epoch: u64,
    },
    /// A change committed while the call was being checked.
    #[error("the daemon's policy changed (epoch {from} to {to}) while this call was being checked; nothing was done: sign and send it again")]
    EpochChanged {
        /// The epoch the call was checked against.
        from: u64,
        /// The epoch now.
        to: u64,
    },
    /// A pending epoch that is no longer confirming.
    #[error("the pending epoch {number} is {state}{why}; {advice}")]
    PendingClosed {
        /// Epoch number.
        number: u64,
        /// State name.
        state: &'static str,
        /// Close reason, in parentheses when known.
        why: String,
        /// What to do now.
        advice: &'static str,
    },
    /// A pending epoch past its deadline.
    #[error("the pending epoch {number} stopped waiting for confirmations at {} ({} ago); the current epoch stays: propose the change again", utc(deadline), span(now.saturating_sub(*deadline)))]
    PendingExpired {
        /// Epoch number.
        number: u64,
        /// Deadline.
        deadline: u64,
        /// Now.
        now: u64,
    },
    /// A fetch or confirmation by someone who is not a custodian of the pending epoch.
    #[error("`{custodian}` is not a custodian of the pending epoch {number}; only its custodians fetch and confirm its new shares")]
    NotInPendingEpoch {
        /// Caller.
        custodian: String,
        /// Epoch number.
        number: u64,
    },
    /// A second confirmation by the same new custodian.
    #[error("custodian `{custodian}` already confirmed her share of epoch {number}; each custodian confirms once")]
    AlreadyConfirmed {
        /// Custodian id.
        custodian: String,
        /// Epoch number.
        number: u64,
    },
    /// A commit before enough confirmations.
    #[error("the pending epoch {number} has {confirmed} of the {need} confirmations it needs; nothing was committed")]
    PendingNotReady {
        /// Epoch number.
        number: u64,
        /// Confirmations so far.
        confirmed: usize,
        /// Needed.
        need: usize,
    },
    /// A change while a rekey waits for confirmations.
    #[error("change `{change}` is waiting for its new custodians to confirm epoch {number}; cancel it (`breakglass policy cancel {change}`) or let it commit before proposing another")]
    RekeyOpen {
        /// The open change.
        change: String,
        /// Its pending epoch.
        number: u64,
    },
    /// A proposed policy that fails the rules `init` applies.
    #[error("the proposed policy is not valid: {0}; nothing was proposed")]
    InvalidPolicy(String),
    /// A proposal that changes nothing.
    #[error("the proposed policy is the current policy (digest {digest}); nothing to change")]
    NoChange {
        /// Hex digest prefix.
        digest: String,
    },
    /// A second change while one collects approvals.
    #[error("change `{id}` is already open (collecting approvals until {deadline}); approve or cancel it (`breakglass policy cancel {id}`) before proposing another")]
    ChangeOpen {
        /// The open change.
        id: String,
        /// Its deadline, seconds since the epoch.
        deadline: u64,
    },
    /// A call made for one kind of request on another.
    #[error("request `{id}` {what}")]
    WrongKind {
        /// Request id.
        id: String,
        /// What it is and which command to use.
        what: &'static str,
    },
    /// An approval signed over another policy than the one the change proposes.
    #[error("custodian `{custodian}` signed an approval of policy {signed}, but change `{id}` proposes policy {proposed}; nothing was counted: run `breakglass policy show {id}` and approve what it shows")]
    ApprovedOtherPolicy {
        /// Change id.
        id: String,
        /// Custodian id.
        custodian: String,
        /// Hex digest (prefix) she signed.
        signed: String,
        /// Hex digest (prefix) the change proposes.
        proposed: String,
    },
    /// A confirmation naming another commitment than the one dealt to her.
    #[error("custodian `{custodian}`: the commitment you checked your share against is not the one epoch {number} dealt to you; fetch your share file again (`breakglass share fetch`) and confirm with it")]
    CommitmentDiffers {
        /// Custodian id.
        custodian: String,
        /// Pending epoch.
        number: u64,
    },
    /// A call about the pending epoch naming another epoch.
    #[error("change `{id}` dealt epoch {dealt}, not epoch {asked}; nothing was done")]
    NotThePendingEpoch {
        /// Change id.
        id: String,
        /// Epoch dealt.
        dealt: u64,
        /// Epoch the call named.
        asked: u64,
    },
    /// A confirmation sealed to a key the daemon no longer holds.
    #[error("the daemon restarted since you read the key of change `{id}`'s pending epoch, so it holds another one now; nothing was counted: run `breakglass share confirm` again")]
    PendingKeyChanged {
        /// Change id.
        id: String,
    },
    /// A change that dealt no pending epoch (yet, or ever).
    #[error("change `{id}` has no pending epoch: it is {state}")]
    NoPendingEpoch {
        /// Change id.
        id: String,
        /// Its state.
        state: &'static str,
    },
    /// An attestation id the daemon does not hold.
    #[error("no attestation `{id}` is pending on this daemon: it expired, a newer one replaced it, or the daemon restarted; run `breakglass share attest` again")]
    AttestationNotFound {
        /// Attestation id.
        id: String,
    },
    /// An attestation key used a second time (a replay).
    #[error("attestation `{id}` was already used (by `{custodian}`): each attestation key is one-shot, so this call is a replay and proves nothing; run `breakglass share attest` again")]
    AttestationUsed {
        /// Attestation id.
        id: String,
        /// The custodian it was issued to.
        custodian: String,
    },
    /// An attestation key used after its window.
    #[error("attestation `{id}` expired at {} ({} ago); run `breakglass share attest` again and answer within its window", utc(expires_at), span(now.saturating_sub(*expires_at)))]
    AttestationExpired {
        /// Attestation id.
        id: String,
        /// When it expired.
        expires_at: u64,
        /// Now.
        now: u64,
    },
    /// An attestation key used by another custodian than its own.
    #[error("attestation `{id}` was issued to `{issued_to}`, not to `{caller}`: each custodian attests with her own key")]
    AttestationNotYours {
        /// Attestation id.
        id: String,
        /// The custodian it was issued to.
        issued_to: String,
        /// Who used it.
        caller: String,
    },
    /// A credential call on a drill request.
    #[error("request `{id}` is a drill: it grants nothing and has no credential to fetch or revoke; open an access request (`breakglass request open`) for emergency access")]
    DrillGrantsNothing {
        /// Request id.
        id: String,
    },
    /// A custodian opening a live drill when the policy does not allow it.
    #[error("custodian `{custodian}` may not open a live drill: the policy does not set `custodians_may_drill = true`; ask a commander to open it")]
    DrillNotAllowed {
        /// The custodian.
        custodian: String,
    },
    /// A custodian-opened drill that the other custodians cannot complete.
    #[error("custodian `{custodian}` may not open this drill: with separation_of_duties their own share does not count, and the other {others} custodians are fewer than the threshold {threshold}; ask a commander to open it")]
    DrillCannotReachQuorum {
        /// The custodian.
        custodian: String,
        /// Custodians other than her.
        others: usize,
        /// Shares needed.
        threshold: u8,
    },
    /// A custodian's proposal that the other custodians cannot approve.
    #[error("custodian `{custodian}` may not propose this change: with separation_of_duties their own share does not count, and the other {others} custodians are fewer than the threshold {threshold}; ask a commander to propose it")]
    ChangeCannotReachQuorum {
        /// The custodian.
        custodian: String,
        /// Custodians other than her.
        others: usize,
        /// Shares needed.
        threshold: u8,
    },
    /// A custodian cancelling the change that removes her or changes her key.
    #[error("custodian `{custodian}` may not cancel change `{id}`: it {what} her, so her cancel would be a veto over her own removal; the proposer or another custodian may cancel it")]
    CancelOwnRemoval {
        /// Change id.
        id: String,
        /// The custodian.
        custodian: String,
        /// `removes` or `changes the key of`.
        what: &'static str,
    },
    /// A second live drill while one is collecting.
    #[error("drill `{id}` is still collecting shares; one live drill at a time: wait for it to close or cancel it")]
    DrillInProgress {
        /// The collecting drill.
        id: String,
    },
    /// The caller is not the requester.
    #[error("only the requester `{requester}` may {action} request `{id}`; `{caller}` may not")]
    NotRequester {
        /// Request id.
        id: String,
        /// The requester.
        requester: String,
        /// The caller.
        caller: String,
        /// What was attempted.
        action: &'static str,
    },
    /// The caller may not cancel this request.
    #[error("`{caller}` may not cancel request `{id}`: only its requester or a custodian may")]
    NotAllowedToCancel {
        /// Request id.
        id: String,
        /// The caller.
        caller: String,
    },
    /// The request has no credential (yet).
    #[error("request `{id}` has no credential: it is {state}")]
    NoCredential {
        /// Request id.
        id: String,
        /// State name.
        state: &'static str,
    },
    /// The credential was revoked already.
    #[error(
        "the credential of request `{id}` was already revoked by `{by}` at {}",
        utc(at)
    )]
    AlreadyRevoked {
        /// Request id.
        id: String,
        /// Who revoked it.
        by: String,
        /// When.
        at: u64,
    },
    /// The caller may not revoke this credential.
    #[error("`{caller}` may not revoke the credential of request `{id}`: only its requester or a custodian may")]
    NotAllowedToRevoke {
        /// Request id.
        id: String,
        /// The caller.
        caller: String,
    },
    /// Separation of duties: the requester's own share does not count.
    #[error("custodian `{custodian}` opened request `{id}` (as `{requester}`); with separation_of_duties their own share does not count: another custodian must approve")]
    OwnRequest {
        /// Request id.
        id: String,
        /// Custodian.
        custodian: String,
        /// Requester.
        requester: String,
    },
    /// Too many collecting requests for this commander.
    #[error("commander `{commander}` already has {open} requests collecting shares ({ids}); the limit is {limit}: cancel one or wait for it to close")]
    TooManyOpen {
        /// Commander.
        commander: String,
        /// How many are open.
        open: u32,
        /// Which.
        ids: String,
        /// Limit.
        limit: u32,
    },
    /// Rate limited.
    #[error("rate limit: {0}")]
    RateLimited(String),
    /// The client certificate does not belong to the signer.
    #[error("the client certificate is for `{cert}` but the call is signed by `{signer}`: use your own certificate and key")]
    CertMismatch {
        /// Identity in the certificate.
        cert: String,
        /// Signer id.
        signer: String,
    },
    /// The SSH public key to certify is missing, malformed, or not wanted.
    #[error("ssh_public_key: {0}")]
    SshKey(String),
    /// The policy file is invalid.
    #[error("policy: {0}")]
    Policy(String),
    /// The state directory holds no initialised daemon.
    #[error("{path}: no breakglass state here ({why}); run `breakglassd init --policy POLICY --state {path} --shares-out DIR` first")]
    StateMissing {
        /// State directory.
        path: PathBuf,
        /// What is missing.
        why: String,
    },
    /// The credential was revoked; it is not handed out again.
    #[error("the credential of request `{id}` was revoked by {by} at {at} ({reason}); it must not be used: open a new request")]
    CredentialRevoked {
        /// Request id.
        id: String,
        /// Who revoked it.
        by: String,
        /// When, RFC 3339 UTC.
        at: String,
        /// Why.
        reason: String,
    },
    /// Another process holds the state open (redb's lock).
    #[error("{path} is in use by another breakglassd (it holds the store's lock{holder}); stop that one first, or give this one another --state")]
    StateLocked {
        /// The store file.
        path: PathBuf,
        /// ", PID n" when it could be found, else empty.
        holder: String,
    },
    /// The state cannot be read by this user.
    #[error("{path}: permission denied for {user}; run breakglassd as the user that owns the state (or fix its ownership)")]
    StateUnreadable {
        /// The file or directory.
        path: PathBuf,
        /// Who we are (uid, and name when known).
        user: String,
    },
    /// A state file or directory others may write: refused, since anyone who can
    /// write it can replace the seal, the policy or the daemon key.
    #[error("{path} is mode {mode:o}, writable by {who}; run `chmod {fix} {path}` (and check who changed it) before serving")]
    UnsafePermissions {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// "group", "others" or "group and others".
        who: &'static str,
        /// The mode to set.
        fix: &'static str,
    },
    /// The state directory is damaged.
    #[error("{path}: breakglass state is damaged: {why}; restore it from backup (the shares alone cannot rebuild it)")]
    StateCorrupt {
        /// Where.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// init on a state directory that already holds a daemon.
    #[error("{path} already holds an initialised daemon; refusing to overwrite it (use a new --state directory)")]
    AlreadyInitialised {
        /// State directory.
        path: PathBuf,
    },
    /// The durable store or audit log could not be written; the operation was not done (fail closed).
    #[error("the audit log could not be written, so nothing was changed: {0}")]
    Storage(String),
    /// Reconstruction produced a key that does not open the seal.
    #[error("the quorum's shares did not rebuild the root key (the seal did not open); nothing was minted: {0}")]
    Reconstruction(String),
    /// Something that should not happen; the message says what.
    #[error("internal error: {0}")]
    Internal(String),
    /// A local file operation failed (ceremony, TLS material).
    #[error("{path}: {source}")]
    Io {
        /// Path involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(field: &'static str, why: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field,
            why: why.into(),
        }
    }

    /// A short, stable name of the variant, for metric labels (never the
    /// message, which carries caller text).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidArgument { .. } => "invalid_argument",
            Error::UnknownCustodian { .. } => "unknown_custodian",
            Error::NotACommander { .. } => "not_a_commander",
            Error::UnknownScope { .. } => "unknown_scope",
            Error::ScopeNotAllowed { .. } => "scope_not_allowed",
            Error::TtlTooLong { .. } => "ttl_too_long",
            Error::BadSignature { .. } => "bad_signature",
            Error::StaleSignature { .. } => "stale_signature",
            Error::SignatureRefused { .. } => "signature_refused",
            Error::RequestNotFound { .. } => "request_not_found",
            Error::RequestExists { .. } => "request_exists",
            Error::RequestClosed { .. } => "request_closed",
            Error::WindowClosed { .. } => "window_closed",
            Error::DuplicateShare { .. } => "duplicate_share",
            Error::ShareMalformed { .. } => "share_malformed",
            Error::ShareCommitmentMismatch { .. } => "commitment_mismatch",
            Error::WrongEpoch { .. } => "wrong_epoch",
            Error::EpochChanged { .. } => "epoch_changed",
            Error::PendingClosed { .. } => "pending_closed",
            Error::PendingExpired { .. } => "pending_expired",
            Error::NotInPendingEpoch { .. } => "not_in_pending_epoch",
            Error::AlreadyConfirmed { .. } => "already_confirmed",
            Error::PendingNotReady { .. } => "pending_not_ready",
            Error::RekeyOpen { .. } => "rekey_open",
            Error::InvalidPolicy(_) => "invalid_policy",
            Error::NoChange { .. } => "no_change",
            Error::ChangeOpen { .. } => "change_open",
            Error::WrongKind { .. } => "wrong_kind",
            Error::ApprovedOtherPolicy { .. } => "approved_other_policy",
            Error::CommitmentDiffers { .. } => "commitment_differs",
            Error::NotThePendingEpoch { .. } => "not_the_pending_epoch",
            Error::NoPendingEpoch { .. } => "no_pending_epoch",
            Error::PendingKeyChanged { .. } => "pending_key_changed",
            Error::AttestationNotFound { .. } => "attestation_not_found",
            Error::AttestationUsed { .. } => "attestation_replayed",
            Error::AttestationExpired { .. } => "attestation_expired",
            Error::AttestationNotYours { .. } => "attestation_not_yours",
            Error::DrillGrantsNothing { .. } => "drill_grants_nothing",
            Error::DrillInProgress { .. } => "drill_in_progress",
            Error::ChangeCannotReachQuorum { .. } => "change_cannot_reach_quorum",
            Error::CancelOwnRemoval { .. } => "cancel_own_removal",
            Error::DrillNotAllowed { .. } => "drill_not_allowed",
            Error::DrillCannotReachQuorum { .. } => "drill_cannot_reach_quorum",
            Error::NotRequester { .. } => "not_requester",
            Error::NotAllowedToCancel { .. } => "not_allowed_to_cancel",
            Error::NoCredential { .. } => "no_credential",
            Error::AlreadyRevoked { .. } => "already_revoked",
            Error::NotAllowedToRevoke { .. } => "not_allowed_to_revoke",
            Error::OwnRequest { .. } => "separation_of_duties",
            Error::TooManyOpen { .. } => "too_many_open",
            Error::RateLimited(_) => "rate_limited",
            Error::CertMismatch { .. } => "cert_mismatch",
            Error::SshKey(_) => "ssh_key",
            Error::Policy(_) => "policy",
            Error::StateMissing { .. } => "state_missing",
            Error::CredentialRevoked { .. } => "credential_revoked",
            Error::StateLocked { .. } => "state_locked",
            Error::StateUnreadable { .. } => "state_unreadable",
            Error::UnsafePermissions { .. } => "unsafe_permissions",
            Error::StateCorrupt { .. } => "state_corrupt",
            Error::AlreadyInitialised { .. } => "already_initialised",
            Error::Storage(_) => "storage",
            Error::Reconstruction(_) => "reconstruction",
            Error::Internal(_) => "internal",
            Error::Io { .. } => "io",
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// What a custodian holding a share of another epoch should do.
fn epoch_advice(share_epoch: u64, epoch: u64) -> String {
    if share_epoch < epoch {
        format!("use the share file of epoch {epoch} (`breakglass share fetch` gives it while a rekey waits for confirmation)")
    } else {
        format!("that epoch has not been committed yet; until it is, approve with your epoch {epoch} share")
    }
}

/// A Unix time as RFC 3339 UTC, for messages people read.
fn utc(t: &u64) -> String {
    breakglass_formats::time::rfc3339(*t).unwrap_or_else(|| format!("{t} (Unix time)"))
}

/// A duration as people say it: `45s`, `12m`, `3h20m`, `2d4h`.
fn span(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Result with the daemon's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
