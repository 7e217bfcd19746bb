//! The page: Markdown or self-contained HTML, with the banner and footer that
//! say what was verified. Caller text goes through [`shown`] (then Markdown or
//! HTML escaping) before it reaches the page.

use std::fmt::Write;

use super::*;

/// Text for a Markdown table cell: [`shown`], then the characters that would
/// end the cell, open a link, raw HTML or code backslash-escaped.
fn md(s: &str) -> String {
    let mut out = String::new();
    for c in shown(s).chars() {
        if matches!(c, '\\' | '|' | '<' | '>' | '[' | ']' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text for HTML: [`shown`], then HTML-escaped.
fn esc(s: &str) -> String {
    shown(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn list(v: &[String], none: &str) -> String {
    if v.is_empty() {
        none.to_string()
    } else {
        v.join(", ")
    }
}

const NOT_RECORDED: &str = "not recorded in this log";

/// The labelled facts of the page, in sections, unescaped: both renderers show
/// exactly these.
pub fn facts(r: &Review) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| NOT_RECORDED.to_string());
    let kinds = if r.kinds.is_empty() {
        r.minted
            .as_ref()
            .map(|m| list(&m.kinds, NOT_RECORDED))
            .unwrap_or_else(|| NOT_RECORDED.to_string())
    } else {
        list(&r.kinds, "")
    };
    let ssh_key = match (&r.ssh_key_type, &r.ssh_key_fingerprint) {
        (Some(t), Some(f)) => format!("{t} {f}"),
        _ if r.kinds.is_empty() => NOT_RECORDED.to_string(),
        _ => "none (no SSH certificate)".to_string(),
    };
    let daemon = vec![
        ("daemon id", opt(&r.daemon_id)),
        ("ceremony id", opt(&r.ceremony_id)),
        ("policy digest", opt(&r.policy_digest)),
    ];
    let grant = vec![
        ("request", r.request_id.clone()),
        ("requester", r.requester.clone()),
        ("scope", r.scope.clone()),
        ("credential kinds", kinds),
        ("principals", list(&r.principals, NOT_RECORDED)),
        (
            "ssh extensions",
            if r.kinds.is_empty() {
                list(&r.ssh_extensions, NOT_RECORDED)
            } else {
                list(&r.ssh_extensions, "none")
            },
        ),
        ("ssh key", ssh_key),
        ("ttl asked", format!("{}s", r.ttl_seconds)),
        ("reason", r.reason.clone()),
        ("collecting until", utc(r.deadline)),
        ("request digest", r.digest.clone()),
    ];
    let mut sections = vec![("Daemon", daemon), ("Grant", grant)];
    if let Some(m) = &r.minted {
        let mut c = vec![
            ("minted", utc(m.at)),
            ("kinds", list(&m.kinds, "none")),
            (
                "valid from",
                m.valid_from.map(utc).unwrap_or_else(|| NOT_RECORDED.into()),
            ),
            (
                "credential expiry",
                format!("{} (valid nowhere after it)", utc(m.expires_at)),
            ),
        ];
        if m.kinds.iter().any(|k| k == "ssh") {
            c.push((
                "certificate serial",
                m.ssh_serial
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| NOT_RECORDED.into()),
            ));
            c.push(("certificate key id", opt(&m.ssh_key_id)));
        }
        c.push((
            "revocation published",
            match &r.revoked {
                Some(v) => format!(
                    "revoked at {} by {}: {}. Effective only where the revocation list / KRL was deployed; elsewhere the credential stays valid until its expiry",
                    utc(v.at),
                    v.by,
                    v.reason
                ),
                None => "not revoked".to_string(),
            },
        ));
        sections.push(("Credential", c));
    }
    sections
}

/// Each custodian asked and her answer, as (custodian, answer) rows, unescaped.
pub fn custodian_rows(r: &Review) -> Vec<(String, String)> {
    r.custodians
        .iter()
        .map(|c| {
            let answer = if c.answers.is_empty() {
                "no answer".to_string()
            } else {
                c.answers
                    .iter()
                    .map(|a| match a {
                        Answer::Approved {
                            time,
                            seq,
                            signed_with,
                        } => match signed_with {
                            Some(w) => {
                                format!("approved at {} (#{seq}) with {w}", utc(*time))
                            }
                            None => format!("approved at {} (#{seq})", utc(*time)),
                        },
                        Answer::Rejected { time, seq, reason } => {
                            format!("rejected at {} (#{seq}): {reason}", utc(*time))
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            let id = if c.listed || r.ceremony_id.is_none() {
                c.id.clone()
            } else {
                format!("{} (not in the ceremony's list)", c.id)
            };
            (id, answer)
        })
        .collect()
}

/// The banner of a page rendered from a log that did not verify.
fn banner(p: &Provenance) -> Option<String> {
    p.failure
        .as_ref()
        .map(|f| format!("THIS LOG DID NOT VERIFY: {f}, what follows may be forged"))
}

/// What the footer says about the log: exactly what was verified.
fn footer(p: &Provenance) -> Vec<String> {
    let mut out = Vec::new();
    match &p.failure {
        Some(f) => out.push(format!(
            "Rendered with --force from {}, which did NOT verify ({f}): nothing on this page is proven.",
            p.source
        )),
        None => out.push(format!(
            "Rebuilt by breakglass review from {}, after verifying it.",
            p.source
        )),
    }
    for v in &p.verified {
        out.push(format!("Verified: {v}."));
    }
    for u in &p.unchecked {
        out.push(format!("Warning: {u}."));
    }
    out
}

/// The review as Markdown.
pub fn markdown(r: &Review, p: &Provenance) -> String {
    let mut s = String::new();
    if let Some(b) = banner(p) {
        let _ = writeln!(s, "> **{}**\n", md(&b));
    }
    let _ = writeln!(s, "# Break-glass review: {}\n", md(&r.request_id));
    let _ = writeln!(s, "**outcome**: {}\n", md(&r.outcome));
    for (title, rows) in facts(r) {
        let _ = writeln!(s, "## {title}\n");
        let _ = writeln!(s, "| | |\n|---|---|");
        for (k, v) in rows {
            let _ = writeln!(s, "| {k} | {} |", md(&v));
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(
        s,
        "## Custodians asked ({} needed)\n",
        r.threshold
            .map(|t| t.to_string())
            .unwrap_or_else(|| "threshold not recorded".into())
    );
    if r.ceremony_id.is_none() {
        let _ = writeln!(
            s,
            "The log has no ceremony entry: custodians who did not answer are not known.\n"
        );
    }
    if !r.custodians.is_empty() {
        let _ = writeln!(s, "| custodian | answer |\n|---|---|");
        for (c, a) in custodian_rows(r) {
            let _ = writeln!(s, "| {} | {} |", md(&c), md(&a));
        }
        let _ = writeln!(s);
    }
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
            md(&m.actor),
            md(&m.text),
            seq
        );
    }
    let _ = writeln!(s, "\n---\n");
    for l in footer(p) {
        let _ = writeln!(s, "{}  ", md(&l));
    }
    s
}

/// The review as one self-contained HTML page with an SVG timeline.
pub fn html(r: &Review, p: &Provenance) -> String {
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
    if let Some(m) = &r.minted {
        // Valid until its expiry wherever the revocation list was not deployed.
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"33\" width=\"{:.1}\" height=\"14\" fill=\"#e9d5ff\"><title>credential valid until its expiry</title></rect>",
            x(m.at),
            (x(m.expires_at) - x(m.at)).max(2.0)
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
    let mut facts = String::new();
    for (title, rows) in self::facts(r) {
        let _ = write!(facts, "<h2>{title}</h2><table class=\"facts\">");
        for (k, v) in rows {
            let _ = write!(facts, "<tr><td>{k}</td><td>{}</td></tr>", esc(&v));
        }
        facts.push_str("</table>");
    }
    let _ = write!(
        facts,
        "<h2>Custodians asked ({} needed)</h2>",
        r.threshold
            .map(|t| t.to_string())
            .unwrap_or_else(|| "threshold not recorded".into())
    );
    if r.ceremony_id.is_none() {
        facts.push_str(
            "<p>The log has no ceremony entry: custodians who did not answer are not known.</p>",
        );
    }
    if !r.custodians.is_empty() {
        facts.push_str("<table class=\"custodians\"><tr><th>custodian</th><th>answer</th></tr>");
        for (c, a) in custodian_rows(r) {
            let _ = write!(facts, "<tr><td>{}</td><td>{}</td></tr>", esc(&c), esc(&a));
        }
        facts.push_str("</table>");
    }
    let banner = banner(p)
        .map(|b| format!("<div class=\"forged\" role=\"alert\">{}</div>", esc(&b)))
        .unwrap_or_default();
    let footer: String = footer(p)
        .iter()
        .map(|l| format!("{}<br>", esc(l)))
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Break-glass review {id}</title><style>\
body{{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1000px;color:#111827}}\
h1{{font-size:1.4rem}} h2{{font-size:1.1rem}} table{{border-collapse:collapse;width:100%;margin:1rem 0}}\
td,th{{border-bottom:1px solid #e5e7eb;padding:.4rem .6rem;text-align:left;vertical-align:top}}\
.facts td:first-child{{color:#6b7280;width:11rem}} .dot{{display:inline-block;width:.6rem;height:.6rem;border-radius:50%;margin-right:.5rem}}\
.outcome{{padding:.6rem 1rem;background:#f3f4f6;border-left:4px solid #9333ea}}\
.forged{{padding:1rem;margin-bottom:1rem;background:#fee2e2;border:3px solid #dc2626;color:#7f1d1d;font-weight:700;font-size:1.2rem}}\
</style></head><body>{banner}<h1>Break-glass review: {id}</h1>\
<p class=\"outcome\">{outcome}</p>{facts}\
<h2>Timeline (UTC)</h2>{svg}<table><tr><th>time</th><th>actor</th><th>what</th><th>audit entry</th></tr>{rows}</table>\
<p class=\"provenance\" style=\"color:#6b7280;font-size:.85rem\">{footer}</p></body></html>\n",
        id = esc(&r.request_id),
        outcome = esc(&r.outcome),
    )
}
