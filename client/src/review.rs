//! Post-incident review: the timeline of one request, rebuilt from the audit
//! log, as Markdown or as a self-contained HTML page with a timeline graphic.
//!
//! The page shows what the log says about the grant (daemon, ceremony and
//! policy, what was asked and minted, every custodian asked and her answer or
//! silence) and, in its [`Provenance`], exactly what was verified about the log
//! it was rebuilt from: a log that did not verify is only rendered on request,
//! under a banner. Caller text is escaped on display ([`shown`]), so a reason
//! cannot rewrite the page.

use std::fmt::Write;

use breakglass_formats::audit::{AuditEntry, Event};

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moment {
    /// Seconds since the epoch.
    pub time: u64,
    /// Who.
    pub actor: String,
    /// Short label for the graphic.
    pub label: String,
    /// Full sentence.
    pub text: String,
    /// Audit entry.
    pub seq: u64,
    /// `open`, `approve`, `reject`, `unlock`, `use`, `close`, `revoke`.
    pub class: &'static str,
}

/// What one custodian did about the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Her share was accepted at `time` (audit entry `seq`).
    Approved {
        /// When.
        time: u64,
        /// Audit entry.
        seq: u64,
        /// How her signature was made (key type, and for a security key
        /// its flags and counter), when the log records it.
        signed_with: Option<String>,
    },
    /// A signed share from her was rejected at `time`.
    Rejected {
        /// When.
        time: u64,
        /// Audit entry.
        seq: u64,
        /// Why, as the daemon recorded it.
        reason: String,
    },
}

/// A custodian who was asked (the ceremony's list), with her answers in order;
/// none means she did not answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Custodian {
    /// Custodian id.
    pub id: String,
    /// Whether the ceremony in the log lists her (she may have been added by
    /// a later policy change).
    pub listed: bool,
    /// Her answers.
    pub answers: Vec<Answer>,
}

/// The credential as minted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Minted {
    /// When.
    pub at: u64,
    /// Kinds (`ssh`, `token`).
    pub kinds: Vec<String>,
    /// Start of validity, if the log records it.
    pub valid_from: Option<u64>,
    /// Credential expiry: valid nowhere after it.
    pub expires_at: u64,
    /// SSH certificate serial.
    pub ssh_serial: Option<u64>,
    /// SSH certificate key id.
    pub ssh_key_id: Option<String>,
}

/// A published revocation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Revoked {
    /// When.
    pub at: u64,
    /// Who.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// What the review found about one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Review {
    /// Request id.
    pub request_id: String,
    /// Daemon id, as the log's checkpoints name it.
    pub daemon_id: Option<String>,
    /// Ceremony id, from the log's `ceremony` entry.
    pub ceremony_id: Option<String>,
    /// Policy digest in force when the request opened (the last start before it).
    pub policy_digest: Option<String>,
    /// Requester.
    pub requester: String,
    /// Scope.
    pub scope: String,
    /// Reason.
    pub reason: String,
    /// TTL asked for.
    pub ttl_seconds: u64,
    /// Collection deadline.
    pub deadline: u64,
    /// Hex request digest (what custodians signed over).
    pub digest: String,
    /// Credential kinds the scope grants.
    pub kinds: Vec<String>,
    /// Principals.
    pub principals: Vec<String>,
    /// SSH certificate extensions.
    pub ssh_extensions: Vec<String>,
    /// Type of the SSH key to certify.
    pub ssh_key_type: Option<String>,
    /// Its SHA256 fingerprint.
    pub ssh_key_fingerprint: Option<String>,
    /// Shares needed.
    pub threshold: Option<u32>,
    /// Every custodian asked, with her answers; empty when the log has no ceremony entry.
    pub custodians: Vec<Custodian>,
    /// Who approved, in order.
    pub approvers: Vec<String>,
    /// The credential, if minted.
    pub minted: Option<Minted>,
    /// The revocation, if published.
    pub revoked: Option<Revoked>,
    /// How it ended.
    pub outcome: String,
    /// The timeline.
    pub moments: Vec<Moment>,
}

/// What was verified about the log a review was rebuilt from; the page states
/// exactly this.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// Where the log came from (`the daemon at …`, `the export audit.jsonl`).
    pub source: String,
    /// Set when the log did not verify and the page is rendered anyway: why.
    pub failure: Option<String>,
    /// What verified, one statement each.
    pub verified: Vec<String>,
    /// What was not checked, one statement each.
    pub unchecked: Vec<String>,
}

/// Formats a Unix time as UTC `YYYY-MM-DD HH:MM:SS`.
pub fn utc(t: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(t).unwrap_or(0))
        .map(|d| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                d.year(),
                u8::from(d.month()),
                d.day(),
                d.hour(),
                d.minute(),
                d.second()
            )
        })
        .unwrap_or_else(|_| t.to_string())
}

/// Stored text as it may be shown: control characters, DEL and bidirectional
/// overrides and isolates (U+202A–U+202E, U+2066–U+2069, and the marks
/// U+061C, U+200E, U+200F) are written as `\u{..}` escapes, so text from a
/// caller can never reorder or hide what a reader sees.
pub fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi = matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        );
        if c.is_control() || bidi {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// entries; the ceremony, start and checkpoint entries give the daemon's ids).
pub fn build(request_id: &str, entries: &[AuditEntry]) -> Option<Review> {
    let mut r = Review {
        request_id: request_id.to_string(),
        ..Review::default()
    };
    let opened_seq = entries
        .iter()
        .find(|e| {
            e.request_id.as_deref() == Some(request_id)
                && matches!(e.event, Event::RequestOpened { .. })
        })
        .map(|e| e.seq)
        .unwrap_or(u64::MAX);
    for e in entries {
        match &e.event {
            Event::Checkpoint { daemon_id, .. } => r.daemon_id = Some(daemon_id.clone()),
            Event::Ceremony {
                ceremony_id,
                policy_digest,
                custodians,
                ..
            } if e.seq < opened_seq || r.ceremony_id.is_none() => {
                r.ceremony_id = Some(ceremony_id.clone());
                r.policy_digest = Some(policy_digest.clone());
                r.custodians = custodians
                    .iter()
                    .map(|id| Custodian {
                        id: id.clone(),
                        listed: true,
                        answers: Vec::new(),
                    })
                    .collect();
            }
            Event::DaemonStarted { policy_digest, .. } if e.seq < opened_seq => {
                r.policy_digest = Some(policy_digest.clone());
            }
            _ => {}
        }
    }
    let mut found = false;
    for e in entries
        .iter()
        .filter(|e| e.request_id.as_deref() == Some(request_id))
    {
        found = true;
        let (label, mut text, class) = moment(&mut r, e);
        if let Some(w) = &e.signed_with {
            text = format!("{text} (signed with {})", w.describe());
        }
        r.moments.push(Moment {
            time: e.time,
            actor: e.actor.clone(),
            label,
            text,
            seq: e.seq,
            class,
        });
    }
    if !found {
        return None;
    }
    if r.outcome.is_empty() {
        r.outcome = "still collecting when this log ends".into();
    }
    if let Some(m) = &r.minted {
        let exp = m.expires_at;
        r.outcome = match &r.revoked {
            Some(v) => format!(
                "unlocked; revocation published {} by {}; credential expiry {} (valid until then wherever the revocation list / KRL was not deployed)",
                utc(v.at),
                v.by,
                utc(exp)
            ),
            None => format!("unlocked; credential expiry {}", utc(exp)),
        };
        r.moments.push(Moment {
            time: exp,
            actor: "-".into(),
            label: "expires".into(),
            text: "credential expiry: from here it is valid nowhere".into(),
            seq: 0,
            class: "close",
        });
    }
    Some(r)
}

/// The custodian entry for `id`, added (as not listed) if the ceremony did not name her.
fn custodian<'a>(r: &'a mut Review, id: &str) -> &'a mut Custodian {
    let i = match r.custodians.iter().position(|c| c.id == id) {
        Some(i) => i,
        None => {
            r.custodians.push(Custodian {
                id: id.to_string(),
                listed: false,
                answers: Vec::new(),
            });
            r.custodians.len() - 1
        }
    };
    &mut r.custodians[i]
}

/// Records what entry `e` says about the request; returns its label, sentence and class.
mod page;
#[cfg(test)]
mod tests;
mod timeline;

pub use page::{custodian_rows, facts, html, markdown};
use timeline::moment;
