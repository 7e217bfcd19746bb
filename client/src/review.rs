//! Post-incident review: the timeline of one request, rebuilt from the audit
//! log, as Markdown or as a self-contained HTML page with a timeline graphic.

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

/// What the review found about one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Review {
    /// Request id.
    pub request_id: String,
    /// Requester.
    pub requester: String,
    /// Scope.
    pub scope: String,
    /// Reason.
    pub reason: String,
    /// TTL asked for.
    pub ttl_seconds: u64,
    /// Who approved, in order.
    pub approvers: Vec<String>,
    /// Credential expiry, if minted.
    pub expires_at: Option<u64>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<u64>,
    /// How it ended.
    pub outcome: String,
    /// The timeline.
    pub moments: Vec<Moment>,
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

/// Builds the review of `request_id` from audit entries (any superset of its entries).
pub fn build(request_id: &str, entries: &[AuditEntry]) -> Option<Review> {
    let mut r = Review {
        request_id: request_id.to_string(),
        ..Review::default()
    };
    let mut found = false;
    for e in entries
        .iter()
        .filter(|e| e.request_id.as_deref() == Some(request_id))
    {
        found = true;
        let (label, text, class) = match &e.event {
            Event::RequestOpened {
                requester,
                scope,
                reason,
                ttl_seconds,
                deadline,
                ..
            } => {
                r.requester = requester.clone();
                r.scope = scope.clone();
                r.reason = reason.clone();
                r.ttl_seconds = *ttl_seconds;
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
                custodian,
                accepted,
                threshold,
            } => {
                r.approvers.push(custodian.clone());
                (
                    format!("{custodian} ✓"),
                    format!("{custodian} approved ({accepted}/{threshold})"),
                    "approve",
                )
            }
            Event::ShareRejected { custodian, reason } => (
                format!("{custodian} ✗"),
                format!("share from {custodian} rejected: {reason}"),
                "reject",
            ),
            Event::QuorumReached { approvers } => (
                "quorum".to_string(),
                format!("quorum reached: {}", approvers.join(", ")),
                "unlock",
            ),
            Event::CredentialMinted { expires_at, kinds } => {
                r.expires_at = Some(*expires_at);
                (
                    "minted".to_string(),
                    format!(
                        "credential minted ({}), valid until {}",
                        kinds.join(" + "),
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
                r.revoked_at = Some(e.time);
                (
                    "revoked".to_string(),
                    format!("{by} revoked the credential: {reason}"),
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
            other => (
                other.kind().to_string(),
                other.kind().replace('_', " "),
                "close",
            ),
        };
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
    if let Some(exp) = r.expires_at {
        let until = r.revoked_at.map(|t| t.min(exp)).unwrap_or(exp);
        r.outcome = match r.revoked_at {
            Some(t) if t < exp => {
                format!("unlocked; credential usable until {} (revoked)", utc(until))
            }
            _ => format!("unlocked; credential usable until {} (expiry)", utc(until)),
        };
        r.moments.push(Moment {
            time: until,
            actor: "-".into(),
            label: "ends".into(),
            text: format!(
                "credential stops being valid ({})",
                if r.revoked_at.is_some_and(|t| t < exp) {
                    "revoked"
                } else {
                    "expires"
                }
            ),
            seq: 0,
            class: "close",
        });
    }
    Some(r)
}

/// The review as Markdown.
pub fn markdown(r: &Review) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Break-glass review: {}\n", r.request_id);
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| requester | {} |", r.requester);
    let _ = writeln!(s, "| scope | {} |", r.scope);
    let _ = writeln!(s, "| reason | {} |", r.reason.replace('|', "\\|"));
    let _ = writeln!(s, "| ttl asked | {}s |", r.ttl_seconds);
    let _ = writeln!(
        s,
        "| approvers | {} |",
        if r.approvers.is_empty() {
            "none".into()
        } else {
            r.approvers.join(", ")
        }
    );
    let _ = writeln!(s, "| outcome | {} |\n", r.outcome);
    let _ = writeln!(s, "## Timeline (UTC)\n");
    let _ = writeln!(
        s,
        "| time | actor | what | audit entry |\n|---|---|---|---|"
    );
    for m in &r.moments {
        let seq = if m.seq == 0 {
            "-".to_string()
        } else {
            format!("#{}", m.seq)
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            utc(m.time),
            m.actor,
            m.text.replace('|', "\\|"),
            seq
        );
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The review as one self-contained HTML page with an SVG timeline.
pub fn html(r: &Review) -> String {
    let t0 = r.moments.iter().map(|m| m.time).min().unwrap_or(0);
    let t1 = r
        .moments
        .iter()
        .map(|m| m.time)
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let (w, left, right) = (960.0_f64, 40.0_f64, 40.0_f64);
    let x = |t: u64| left + (w - left - right) * ((t - t0) as f64) / ((t1 - t0) as f64);
    let color = |c: &str| match c {
        "open" => "#2563eb",
        "approve" => "#16a34a",
        "reject" => "#dc2626",
        "unlock" => "#9333ea",
        "use" => "#0891b2",
        "revoke" => "#dc2626",
        _ => "#6b7280",
    };
    let mut svg = String::new();
    let h = 80 + 26 * r.moments.len();
    let _ = write!(
        svg,
        "<svg viewBox=\"0 0 {w} {h}\" width=\"100%\" role=\"img\" aria-label=\"timeline\">"
    );
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"40\" x2=\"{}\" y2=\"40\" stroke=\"#9ca3af\" stroke-width=\"2\"/>",
        w - right
    );
    if let (Some(start), Some(exp)) = (
        r.moments
            .iter()
            .find(|m| m.label == "minted")
            .map(|m| m.time),
        r.expires_at,
    ) {
        let end = r.revoked_at.map(|t| t.min(exp)).unwrap_or(exp);
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"33\" width=\"{:.1}\" height=\"14\" fill=\"#e9d5ff\"><title>credential valid</title></rect>",
            x(start),
            (x(end) - x(start)).max(2.0)
        );
    }
    for (i, m) in r.moments.iter().enumerate() {
        let cx = x(m.time);
        let y = 70 + 26 * i;
        let _ = write!(
            svg,
            "<circle cx=\"{cx:.1}\" cy=\"40\" r=\"6\" fill=\"{}\"><title>{}</title></circle>",
            color(m.class),
            esc(&m.text)
        );
        let _ = write!(svg, "<line x1=\"{cx:.1}\" y1=\"46\" x2=\"{cx:.1}\" y2=\"{}\" stroke=\"{}\" stroke-dasharray=\"2 3\"/>", y - 12, color(m.class));
        let anchor = if cx > w * 0.7 { "end" } else { "start" };
        let _ = write!(
            svg,
            "<text x=\"{cx:.1}\" y=\"{y}\" font-size=\"13\" text-anchor=\"{anchor}\" fill=\"#111827\">{} · {}</text>",
            esc(&utc(m.time)[11..]),
            esc(&m.label)
        );
    }
    svg.push_str("</svg>");
    let mut rows = String::new();
    for m in &r.moments {
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td><span class=\"dot\" style=\"background:{}\"></span>{}</td><td>{}</td></tr>",
            esc(&utc(m.time)),
            esc(&m.actor),
            color(m.class),
            esc(&m.text),
            if m.seq == 0 { "-".into() } else { format!("#{}", m.seq) }
        );
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Break-glass review {id}</title><style>\
body{{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1000px;color:#111827}}\
h1{{font-size:1.4rem}} table{{border-collapse:collapse;width:100%;margin:1rem 0}}\
td,th{{border-bottom:1px solid #e5e7eb;padding:.4rem .6rem;text-align:left;vertical-align:top}}\
.facts td:first-child{{color:#6b7280;width:9rem}} .dot{{display:inline-block;width:.6rem;height:.6rem;border-radius:50%;margin-right:.5rem}}\
.outcome{{padding:.6rem 1rem;background:#f3f4f6;border-left:4px solid #9333ea}}\
</style></head><body><h1>Break-glass review: {id}</h1>\
<p class=\"outcome\">{outcome}</p>\
<table class=\"facts\"><tr><td>requester</td><td>{req}</td></tr><tr><td>scope</td><td>{scope}</td></tr>\
<tr><td>reason</td><td>{reason}</td></tr><tr><td>ttl asked</td><td>{ttl}s</td></tr><tr><td>approvers</td><td>{appr}</td></tr></table>\
<h2>Timeline (UTC)</h2>{svg}<table><tr><th>time</th><th>actor</th><th>what</th><th>audit entry</th></tr>{rows}</table>\
<p style=\"color:#6b7280;font-size:.85rem\">Rebuilt from the hash-chained audit log by <code>breakglass review</code>.</p></body></html>\n",
        id = esc(&r.request_id),
        outcome = esc(&r.outcome),
        req = esc(&r.requester),
        scope = esc(&r.scope),
        reason = esc(&r.reason),
        ttl = r.ttl_seconds,
        appr = esc(&r.approvers.join(", ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use breakglass_formats::audit::{chain, Record};

    fn log() -> Vec<AuditEntry> {
        let evs = vec![
            (
                "ic",
                Event::RequestOpened {
                    requester: "ic".into(),
                    scope: "prod-ssh".into(),
                    reason: "db <down>".into(),
                    ttl_seconds: 600,
                    deadline: 1900,
                    digest: "00".into(),
                },
            ),
            (
                "c1",
                Event::ShareAccepted {
                    custodian: "c1".into(),
                    accepted: 1,
                    threshold: 2,
                },
            ),
            (
                "c2",
                Event::ShareAccepted {
                    custodian: "c2".into(),
                    accepted: 2,
                    threshold: 2,
                },
            ),
            (
                "daemon",
                Event::QuorumReached {
                    approvers: vec!["c1".into(), "c2".into()],
                },
            ),
            (
                "daemon",
                Event::CredentialMinted {
                    expires_at: 1700,
                    kinds: vec!["ssh".into()],
                },
            ),
            ("ic", Event::CredentialFetched { by: "ic".into() }),
            (
                "c1",
                Event::CredentialRevoked {
                    by: "c1".into(),
                    reason: "done".into(),
                },
            ),
        ];
        let mut prev = [0u8; 32];
        evs.into_iter()
            .enumerate()
            .map(|(i, (actor, event))| {
                let rec = Record {
                    time: 1000 + 100 * i as u64,
                    actor: actor.into(),
                    request_id: Some("req-1".into()),
                    event,
                };
                let (e, h) = chain(i as u64 + 1, &prev, rec).unwrap();
                prev = h;
                e
            })
            .collect()
    }

    #[test]
    fn timeline_from_the_log() {
        let r = build("req-1", &log()).unwrap();
        assert_eq!(r.requester, "ic");
        assert_eq!(r.approvers, vec!["c1", "c2"]);
        assert_eq!(r.revoked_at, Some(1600));
        assert!(r.outcome.contains("(revoked)"), "{}", r.outcome);
        let md = markdown(&r);
        assert!(
            md.contains("| 1970-01-01 00:16:40 | ic | ic asked for prod-ssh for 600s"),
            "{md}"
        );
        assert!(md.contains("c1 revoked the credential: done"));
        let page = html(&r);
        assert!(
            page.starts_with("<!doctype html>")
                && page.contains("<svg")
                && page.contains("db &lt;down&gt;")
        );
        assert!(!page.contains("db <down>"), "escaped");
        assert!(build("req-2", &log()).is_none());
    }
}
