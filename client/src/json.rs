//! What `--json` prints: one serde struct per read command, so the field
//! names and types are a stable contract for scripts (documented in the
//! README, "Scripting (`--json`)"). Times are given twice: RFC 3339 UTC in the
//! field itself and Unix seconds in `…_unix`; an absent time is `null` in both.
//!
//! Nothing here carries a secret: requests, the daemon's public description,
//! verified claims and chain summaries only. Text from callers (reasons, names)
//! is a JSON string, so `serde_json`'s escaping keeps control characters inert.

use serde::Serialize;

use breakglass_client::api::state_name;
use breakglass_formats::audit::{ExportTrailer, VerifyReport};
use breakglass_formats::credential::VerifiedToken;
use breakglass_formats::sshcert::CertInfo;
use breakglass_formats::time::rfc3339;
use breakglass_proto::pb;

/// Prints `value` as one line of JSON on standard output.
pub(crate) fn print<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// RFC 3339 UTC of `t`, or `None` for 0 (the wire's "not set").
fn time(t: u64) -> Option<String> {
    (t != 0).then(|| rfc3339(t)).flatten()
}

/// Unix seconds of `t`, or `None` for 0.
fn unix(t: u64) -> Option<u64> {
    (t != 0).then_some(t)
}

/// `None` for the wire's empty string.
fn text(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// `share check`: the share file opened with the custodian's key. The share
/// itself is never printed; its x coordinate (public: it names the share) is.
#[derive(Serialize)]
pub(crate) struct ShareCheckJson {
    /// Always true (a failed check exits non-zero with the error on stderr).
    pub ok: bool,
    pub custodian_id: String,
    pub x: Option<u8>,
    pub threshold: u64,
    pub custodians: u64,
    pub daemon_id: String,
    pub ceremony_id: String,
    pub epoch: u64,
    /// Hex daemon key D whose signature proved the file's origin.
    pub daemon_public_key: String,
    /// `offline` (the file's own D signature) or `daemon` (the commitment and
    /// signature the daemon publishes).
    pub checked: &'static str,
    /// Whether D was compared with a key the caller gave or the daemon served;
    /// false only offline without --daemon-key.
    pub daemon_key_compared: bool,
}

/// `share attest --json`.
#[derive(Serialize)]
pub(crate) struct ShareAttestJson {
    /// Always true (a refused attestation exits non-zero with the error on stderr).
    pub ok: bool,
    pub custodian_id: String,
    pub daemon_id: String,
    pub epoch: u64,
    pub attested_at: Option<String>,
    pub attested_at_unix: u64,
    pub attestation_id: String,
}

/// One approval of a request.
#[derive(Serialize)]
pub(crate) struct ApprovalJson {
    custodian_id: String,
    accepted_at: Option<String>,
    accepted_at_unix: Option<u64>,
}

/// Who revoked a request's credential, when and why.
#[derive(Serialize)]
pub(crate) struct RevocationJson {
    at: Option<String>,
    at_unix: Option<u64>,
    by: String,
    reason: String,
}

/// A request (`request show`, `request list`, `request watch`), as the daemon
/// signed it; the CLI checked that signature before printing.
#[derive(Serialize)]
pub(crate) struct RequestJson {
    id: String,
    daemon_id: String,
    /// `access` or `drill`.
    kind: &'static str,
    state: &'static str,
    requester: String,
    scope: String,
    reason: String,
    ttl_seconds: u64,
    opened_at: Option<String>,
    opened_at_unix: Option<u64>,
    deadline: Option<String>,
    deadline_unix: Option<u64>,
    threshold: u32,
    approvals: Vec<ApprovalJson>,
    closed_at: Option<String>,
    closed_at_unix: Option<u64>,
    close_reason: Option<String>,
    credential_expires_at: Option<String>,
    credential_expires_at_unix: Option<u64>,
    revoked: Option<RevocationJson>,
    ssh_public_key: Option<String>,
    digest: String,
}

impl From<&pb::RequestView> for RequestJson {
    fn from(v: &pb::RequestView) -> Self {
        RequestJson {
            id: v.id.clone(),
            daemon_id: v.daemon_id.clone(),
            kind: match pb::RequestKind::try_from(v.kind) {
                Ok(pb::RequestKind::Drill) => "drill",
                Ok(pb::RequestKind::Change) => "change",
                _ => "access",
            },
            state: state_name(v.state),
            requester: v.requester.clone(),
            scope: v.scope.clone(),
            reason: v.reason.clone(),
            ttl_seconds: v.ttl_seconds,
            opened_at: time(v.opened_at),
            opened_at_unix: unix(v.opened_at),
            deadline: time(v.deadline),
            deadline_unix: unix(v.deadline),
            threshold: v.threshold,
            approvals: v
                .approvals
                .iter()
                .map(|a| ApprovalJson {
                    custodian_id: a.custodian_id.clone(),
                    accepted_at: time(a.accepted_at),
                    accepted_at_unix: unix(a.accepted_at),
                })
                .collect(),
            closed_at: time(v.closed_at),
            closed_at_unix: unix(v.closed_at),
            close_reason: text(&v.close_reason),
            credential_expires_at: time(v.credential_expires_at),
            credential_expires_at_unix: unix(v.credential_expires_at),
            revoked: (v.revoked_at != 0).then(|| RevocationJson {
                at: time(v.revoked_at),
                at_unix: unix(v.revoked_at),
                by: v.revoked_by.clone(),
                reason: v.revoke_reason.clone(),
            }),
            ssh_public_key: text(&v.ssh_public_key),
            digest: hex::encode(&v.digest),
        }
    }
}

/// `request list --json`.
#[derive(Serialize)]
pub(crate) struct RequestListJson {
    pub(crate) requests: Vec<RequestJson>,
}

/// One line of `request watch --json`: an `update` per change, then one `outcome`.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum WatchJson {
    /// The request changed (or this is its first view).
    Update {
        /// The request now.
        request: RequestJson,
    },
    /// The last line: how the watch ended, and the exit code that follows.
    Outcome {
        /// `unlocked`, `expired`, `cancelled` or `lost_connection`.
        outcome: &'static str,
        /// The process's exit code.
        exit_code: u8,
        /// The last view seen, if any.
        request: Option<RequestJson>,
        /// What went wrong, for `lost_connection`.
        error: Option<String>,
    },
}

/// A member of the policy.
#[derive(Serialize)]
pub(crate) struct MemberJson {
    id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<String>>,
}

/// A scope and what an unlock of it mints.
#[derive(Serialize)]
pub(crate) struct ScopeJson {
    name: String,
    credentials: Vec<String>,
    principals: Vec<String>,
    ssh_extensions: Vec<String>,
    max_ttl_seconds: u64,
}

/// `info --json`: the daemon's description of itself (all public).
#[derive(Serialize)]
pub(crate) struct InfoJson {
    daemon_id: String,
    daemon_public_key: String,
    version: String,
    ceremony_id: String,
    policy_digest: String,
    epoch: u64,
    authority_paserk: String,
    authority_ssh: String,
    threshold: u32,
    collection_window_seconds: u64,
    max_ttl_seconds: u64,
    freshness_seconds: u64,
    custodians: Vec<MemberJson>,
    commanders: Vec<MemberJson>,
    scopes: Vec<ScopeJson>,
}

impl From<&pb::GetInfoResponse> for InfoJson {
    fn from(i: &pb::GetInfoResponse) -> Self {
        InfoJson {
            daemon_id: i.daemon_id.clone(),
            daemon_public_key: hex::encode(&i.daemon_public_key),
            version: i.version.clone(),
            ceremony_id: i.ceremony_id.clone(),
            policy_digest: i.policy_digest.clone(),
            epoch: i.epoch,
            authority_paserk: i.authority_paserk.clone(),
            authority_ssh: i.authority_ssh.clone(),
            threshold: i.threshold,
            collection_window_seconds: i.collection_window_seconds,
            max_ttl_seconds: i.max_ttl_seconds,
            freshness_seconds: i.freshness_seconds,
            custodians: i
                .custodians
                .iter()
                .map(|c| MemberJson {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    scopes: None,
                })
                .collect(),
            commanders: i
                .commanders
                .iter()
                .map(|c| MemberJson {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    scopes: Some(c.scopes.clone()),
                })
                .collect(),
            scopes: i
                .scopes
                .iter()
                .map(|s| ScopeJson {
                    name: s.name.clone(),
                    credentials: s.credentials.clone(),
                    principals: s.principals.clone(),
                    ssh_extensions: s.ssh_extensions.clone(),
                    max_ttl_seconds: s.max_ttl_seconds,
                })
                .collect(),
        }
    }
}

/// The claims of a token that verified.
#[derive(Serialize)]
pub(crate) struct TokenJson {
    issuer: String,
    subject: String,
    request_id: String,
    scope: String,
    approvers: Vec<String>,
    principals: Vec<String>,
    issued_at: Option<String>,
    issued_at_unix: u64,
    not_before: Option<String>,
    not_before_unix: u64,
    expires_at: Option<String>,
    expires_at_unix: u64,
    reason_sha256: String,
}

impl From<&VerifiedToken> for TokenJson {
    fn from(v: &VerifiedToken) -> Self {
        TokenJson {
            issuer: v.issuer.clone(),
            subject: v.subject.clone(),
            request_id: v.request_id.clone(),
            scope: v.scope.clone(),
            approvers: v.approvers.clone(),
            principals: v.principals.clone(),
            issued_at: rfc3339(v.issued_at),
            issued_at_unix: v.issued_at,
            not_before: rfc3339(v.not_before),
            not_before_unix: v.not_before,
            expires_at: rfc3339(v.expires_at),
            expires_at_unix: v.expires_at,
            reason_sha256: v.reason_sha256.clone(),
        }
    }
}

/// An OpenSSH certificate that verified.
#[derive(Serialize)]
pub(crate) struct CertJson {
    key_id: String,
    serial: u64,
    principals: Vec<String>,
    extensions: Vec<String>,
    valid_after: Option<String>,
    valid_after_unix: u64,
    valid_before: Option<String>,
    valid_before_unix: u64,
}

impl From<&CertInfo> for CertJson {
    fn from(c: &CertInfo) -> Self {
        CertJson {
            key_id: c.key_id.clone(),
            serial: c.serial,
            principals: c.principals.clone(),
            extensions: c.extensions.clone(),
            valid_after: rfc3339(c.valid_after),
            valid_after_unix: c.valid_after,
            valid_before: rfc3339(c.valid_before),
            valid_before_unix: c.valid_before,
        }
    }
}

/// `credential verify --json`: `valid` is false (with `error`) when it did not verify.
#[derive(Serialize, Default)]
pub(crate) struct CredentialVerifyJson {
    pub(crate) valid: bool,
    pub(crate) token: Option<TokenJson>,
    pub(crate) ssh_certificate: Option<CertJson>,
    pub(crate) revocations_checked: bool,
    pub(crate) error: Option<String>,
}

/// The signed trailer of an export.
#[derive(Serialize)]
pub(crate) struct TrailerJson {
    seq: u64,
    head_hash: String,
    generated_at: Option<String>,
    generated_at_unix: u64,
    signature_checked: bool,
}

impl TrailerJson {
    /// The trailer `t`; `signature_checked` when D and the daemon id were known.
    pub(crate) fn new(t: &ExportTrailer, signature_checked: bool) -> Self {
        TrailerJson {
            seq: t.seq,
            head_hash: t.head_hash.clone(),
            generated_at: rfc3339(t.generated_at),
            generated_at_unix: t.generated_at,
            signature_checked,
        }
    }
}

/// `audit verify --json`: `valid` is false (with `error`) when the log does not verify.
#[derive(Serialize, Default)]
pub(crate) struct AuditVerifyJson {
    pub(crate) valid: bool,
    pub(crate) entries: u64,
    pub(crate) first_seq: Option<u64>,
    pub(crate) last_seq: Option<u64>,
    pub(crate) head: Option<String>,
    pub(crate) checkpoints_checked: bool,
    pub(crate) checkpoints: u64,
    pub(crate) trailer: Option<TrailerJson>,
    pub(crate) error: Option<String>,
}

impl AuditVerifyJson {
    /// The chain part of a successful verification.
    pub(crate) fn chain(r: &VerifyReport, checkpoints_checked: bool) -> Self {
        AuditVerifyJson {
            valid: true,
            entries: r.entries,
            first_seq: r.range.map(|(a, _)| a),
            last_seq: r.range.map(|(_, b)| b),
            head: r.head.clone(),
            checkpoints_checked,
            checkpoints: r.checkpoints,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A caller's reason with terminal control stays data: escaped by JSON, never raw.
    #[test]
    fn request_json_escapes_control_and_names_absent_times_null() {
        let v = pb::RequestView {
            id: "req-1".into(),
            state: pb::RequestState::Collecting as i32,
            reason: "disk \u{1b}[2K full".into(),
            opened_at: 1_800_000_000,
            ..Default::default()
        };
        let s = serde_json::to_string(&RequestJson::from(&v)).unwrap_or_default();
        assert!(!s.contains('\u{1b}'), "{s}");
        assert!(s.contains(r#""reason":"disk \u001b[2K full""#), "{s}");
        assert!(s.contains(r#""opened_at":"2027-01-15T08:00:00Z","opened_at_unix":1800000000"#));
        assert!(
            s.contains(r#""closed_at":null,"closed_at_unix":null"#),
            "{s}"
        );
        assert!(s.contains(r#""state":"collecting""#), "{s}");
    }

    #[test]
    fn watch_lines_are_tagged() {
        let s = serde_json::to_string(&WatchJson::Outcome {
            outcome: "expired",
            exit_code: 3,
            request: None,
            error: None,
        })
        .unwrap_or_default();
        assert_eq!(
            s,
            r#"{"event":"outcome","outcome":"expired","exit_code":3,"request":null,"error":null}"#
        );
    }
}
