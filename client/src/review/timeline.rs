//! One sentence, label and class per audit entry of the request.

use super::*;

pub(super) fn moment(r: &mut Review, e: &AuditEntry) -> (String, String, &'static str) {
    match &e.event {
        Event::RequestOpened {
            requester,
            scope,
            reason,
            ttl_seconds,
            deadline,
            digest,
            kinds,
            principals,
            ssh_extensions,
            ssh_key_type,
            ssh_key_fingerprint,
        } => {
            r.requester = requester.clone();
            r.scope = scope.clone();
            r.reason = reason.clone();
            r.ttl_seconds = *ttl_seconds;
            r.deadline = *deadline;
            r.digest = digest.clone();
            r.kinds = kinds.clone();
            r.principals = principals.clone();
            r.ssh_extensions = ssh_extensions.clone();
            r.ssh_key_type = ssh_key_type.clone();
            r.ssh_key_fingerprint = ssh_key_fingerprint.clone();
            (
                "opened".to_string(),
                format!(
                    "{requester} asked for {scope} for {ttl_seconds}s: \u{201c}{reason}\u{201d} (collecting until {})",
                    utc(*deadline)
                ),
                "open",
            )
        }
        Event::ShareAccepted {
            custodian: who,
            accepted,
            threshold,
        } => {
            r.approvers.push(who.clone());
            r.threshold = Some(*threshold);
            custodian(r, who).answers.push(Answer::Approved {
                time: e.time,
                seq: e.seq,
                signed_with: e.signed_with.as_ref().map(|w| w.describe()),
            });
            (
                format!("{who} ✓"),
                format!("{who} approved ({accepted}/{threshold})"),
                "approve",
            )
        }
        Event::ShareRejected {
            custodian: who,
            reason,
        } => {
            custodian(r, who).answers.push(Answer::Rejected {
                time: e.time,
                seq: e.seq,
                reason: reason.clone(),
            });
            (
                format!("{who} ✗"),
                format!("share from {who} rejected: {reason}"),
                "reject",
            )
        }
        Event::QuorumReached { approvers } => (
            "quorum".to_string(),
            format!("quorum reached: {}", approvers.join(", ")),
            "unlock",
        ),
        Event::CredentialMinted {
            expires_at,
            kinds,
            valid_from,
            ssh_serial,
            ssh_key_id,
        } => {
            r.minted = Some(Minted {
                at: e.time,
                kinds: kinds.clone(),
                valid_from: *valid_from,
                expires_at: *expires_at,
                ssh_serial: *ssh_serial,
                ssh_key_id: ssh_key_id.clone(),
            });
            (
                "minted".to_string(),
                format!(
                    "credential minted ({}){}, credential expiry {}",
                    kinds.join(" + "),
                    ssh_serial
                        .map(|s| format!(", certificate serial {s}"))
                        .unwrap_or_default(),
                    utc(*expires_at)
                ),
                "unlock",
            )
        }
        Event::CredentialFetched { by } => (
            "fetched".to_string(),
            format!("{by} fetched the credential"),
            "use",
        ),
        Event::CredentialRevoked { by, reason } => {
            r.revoked = Some(Revoked {
                at: e.time,
                by: by.clone(),
                reason: reason.clone(),
            });
            (
                "revoked".to_string(),
                format!("{by} revoked the credential: {reason} (effective only where the revocation list / KRL is deployed)"),
                "revoke",
            )
        }
        Event::RequestCancelled { by, reason } => {
            r.outcome = format!("cancelled by {by}: {reason}");
            (
                "cancelled".to_string(),
                format!("cancelled by {by}: {reason}"),
                "close",
            )
        }
        Event::RequestExpired { accepted } => {
            r.outcome = format!("expired with {accepted} approvals");
            (
                "expired".to_string(),
                format!("collection window ended with {accepted} approvals"),
                "close",
            )
        }
        Event::CallRefused {
            call,
            caller,
            reason,
        } => (
            "refused".to_string(),
            format!("{call} by {caller} refused: {reason}"),
            "reject",
        ),
        other => (
            other.kind().to_string(),
            other.kind().replace('_', " "),
            "close",
        ),
    }
}
