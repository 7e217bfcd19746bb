//! One-line, plain-text summaries of audit entries, for terminals (`audit
//! tail`) and for people reading notifications. No markup: the daemon's
//! webhooks add their Slack decoration on top.

use super::chain::AuditEntry;
use super::event::Event;

/// A one-line, plain-text summary of an entry; an entry a signed call
/// caused ends with how the signature was made.
pub fn summary(e: &AuditEntry) -> String {
    let line = event_summary(e);
    match &e.signed_with {
        Some(w) => format!("{line} [signed with {}]", w.describe()),
        None => line,
    }
}

fn event_summary(e: &AuditEntry) -> String {
    let req = e.request_id.as_deref().unwrap_or("-");
    match &e.event {
        Event::RequestOpened {
            requester,
            scope,
            reason,
            ttl_seconds,
            ssh_key_fingerprint,
            ..
        } => {
            let key = ssh_key_fingerprint
                .as_deref()
                .map(|f| format!(" (SSH key {f})"))
                .unwrap_or_default();
            format!(
                "breakglass: {requester} asks for emergency access to {scope} for {ttl_seconds}s ({req}){key}: {reason}"
            )
        }
        Event::ShareAccepted {
            custodian,
            accepted,
            threshold,
        } => format!("breakglass: {custodian} approved {req} ({accepted}/{threshold})"),
        Event::ShareRejected { custodian, reason } => match &e.request_id {
            Some(req) => format!("breakglass: share from {custodian} rejected for {req}: {reason}"),
            None => format!("breakglass: share from {custodian} rejected: {reason}"),
        },
        Event::ShareAttested {
            custodian, epoch, ..
        } => format!(
            "breakglass: {custodian} proved their share (epoch {epoch}) without unlocking anything"
        ),
        Event::DrillOpened {
            requester, reason, ..
        } => format!(
            "breakglass: {requester} opened a live drill ({req}): it grants nothing; custodians approve it with their real shares: {reason}"
        ),
        Event::DrillPassed {
            approvers,
            seconds_to_quorum,
            ..
        } => format!(
            "breakglass: live drill {req} passed in {seconds_to_quorum}s (approved by {}); nothing was minted",
            approvers.join(", ")
        ),
        Event::DrillDue { due_at, last_drill } => format!(
            "breakglass: a live drill is due (`breakglass drill --live`): due since {}, last drill {}",
            crate::time::rfc3339(*due_at).unwrap_or_else(|| due_at.to_string()),
            last_drill
                .and_then(crate::time::rfc3339)
                .unwrap_or_else(|| "never in this epoch".into())
        ),
        Event::AttestationDue {
            custodian,
            due_at,
            last_attested,
        } => format!(
            "breakglass: {custodian} should prove their share again (`breakglass share attest`): due since {}, last proven {}",
            crate::time::rfc3339(*due_at).unwrap_or_else(|| due_at.to_string()),
            last_attested
                .and_then(crate::time::rfc3339)
                .unwrap_or_else(|| "never in this epoch".into())
        ),
        Event::CallRefused {
            call,
            caller,
            reason,
        } => format!("breakglass: {call} by {caller} refused ({req}): {reason}"),
        Event::QuorumReached { approvers } => format!(
            "breakglass: quorum reached for {req} (approved by {})",
            approvers.join(", ")
        ),
        Event::CredentialMinted {
            expires_at,
            kinds,
            ssh_serial,
            ..
        } => format!(
            "breakglass: credential minted for {req} ({}{}), expires at {expires_at}",
            kinds.join(" + "),
            ssh_serial
                .map(|s| format!(", certificate serial {s}"))
                .unwrap_or_default()
        ),
        Event::CredentialFetched { by } => {
            format!("breakglass: {by} fetched the credential of {req}")
        }
        Event::CredentialRevoked { by, reason } => {
            format!("breakglass: {by} revoked the credential of {req}: {reason}")
        }
        Event::RequestCancelled { by, reason } => {
            format!("breakglass: {by} cancelled {req}: {reason}")
        }
        Event::RequestExpired { accepted } => {
            format!("breakglass: {req} expired with {accepted} approvals")
        }
        Event::ChangeProposed {
            proposer,
            reason,
            epoch,
            summary,
            ..
        } => format!(
            "breakglass: {proposer} proposed a policy change {req} to epoch {epoch}: {reason} ({})",
            if summary.is_empty() {
                "no change".to_string()
            } else {
                summary.join("; ")
            }
        ),
        Event::ChangeApplied { epoch, cancelled, .. } => format!(
            "breakglass: {req} applied a new policy to epoch {epoch} with the same shares{}",
            if cancelled.is_empty() {
                String::new()
            } else {
                format!("; cancelled {}", cancelled.join(", "))
            }
        ),
        Event::EpochDealt {
            epoch,
            custodians,
            threshold,
            need,
            ..
        } => format!(
            "breakglass: {req} dealt epoch {epoch}: {threshold} of {} custodians ({}); it commits when {need} of them confirm their new shares",
            custodians.len(),
            custodians.join(", ")
        ),
        Event::EpochCommitted {
            change_id,
            from,
            to,
            custodians,
            threshold,
            cancelled,
            ..
        } => format!(
            "breakglass: change {change_id} committed epoch {to} (was {from}): {threshold} of {} custodians ({}){}; the authority key is unchanged",
            custodians.len(),
            custodians.join(", "),
            if cancelled.is_empty() {
                String::new()
            } else {
                format!("; cancelled {} (collecting under epoch {from})", cancelled.join(", "))
            }
        ),
        Event::EpochExpired {
            change_id,
            epoch,
            confirmed,
            need,
        } => format!(
            "breakglass: epoch {epoch} of change {change_id} expired with {confirmed} of {need} confirmations; the current epoch stays"
        ),
        Event::EpochShareFetched {
            change_id,
            epoch,
            custodian,
        } => format!("breakglass: {custodian} fetched her share file of epoch {epoch} (change {change_id})"),
        Event::EpochShareConfirmed {
            change_id,
            epoch,
            custodian,
            confirmed,
            need,
        } => format!(
            "breakglass: {custodian} confirmed her share of epoch {epoch} (change {change_id}): {confirmed} of {need} confirmations"
        ),
        Event::EpochCancelled {
            change_id,
            epoch,
            by,
            reason,
        } => format!(
            "breakglass: {by} cancelled epoch {epoch} of change {change_id}: {reason}; the current epoch stays"
        ),
        Event::EpochFilesDeleted {
            change_id,
            epoch,
            custodians,
        } => format!(
            "breakglass: the unconfirmed share files of epoch {epoch} (change {change_id}) were deleted at its deadline: {}",
            custodians.join(", ")
        ),
        other => format!("breakglass: {} (entry {})", other.kind(), e.seq),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{chain, Record};

    #[test]
    fn plain_text_without_markup() {
        let rec = Record {
            time: 1,
            actor: "ic".into(),
            request_id: Some("req-1".into()),
            event: Event::RequestOpened {
                requester: "ic".into(),
                scope: "prod-ssh".into(),
                reason: "db down".into(),
                ttl_seconds: 600,
                deadline: 900,
                digest: "00".into(),
                kinds: vec![],
                principals: vec![],
                ssh_extensions: vec![],
                ssh_key_type: None,
                ssh_key_fingerprint: None,
            },
            signed_with: None,
        };
        let (mut e, _) = chain(1, &[0; 32], rec).unwrap();
        assert_eq!(
            summary(&e),
            "breakglass: ic asks for emergency access to prod-ssh for 600s (req-1): db down"
        );
        if let Event::RequestOpened {
            ssh_key_fingerprint,
            ..
        } = &mut e.event
        {
            *ssh_key_fingerprint = Some("SHA256:abc".into());
        }
        assert_eq!(
            summary(&e),
            "breakglass: ic asks for emergency access to prod-ssh for 600s (req-1) (SSH key SHA256:abc): db down"
        );
        e.event = Event::CredentialMinted {
            expires_at: 2000,
            kinds: vec!["ssh".into()],
            valid_from: Some(1000),
            ssh_serial: Some(42),
            ssh_key_id: Some("breakglass:req-1:ic".into()),
        };
        assert_eq!(
            summary(&e),
            "breakglass: credential minted for req-1 (ssh, certificate serial 42), expires at 2000"
        );
    }
}
