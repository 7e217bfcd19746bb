//! What the CLI prints for people: relative times, a request's card, the live
//! progress line, request and audit rows, the daemon's description. Commands
//! decide what to print; the layout of each shared block lives here.

use std::time::Duration;

use breakglass_client::api::{state_name, unix_now};
use breakglass_client::review;
use breakglass_formats::audit;
use breakglass_proto::pb;

/// Stored text as it may be shown on a terminal: control characters, DEL and
/// bidirectional overrides are written as `\u{..}` escapes, so text from a
/// caller can never move the cursor, hide lines or reorder what a custodian
/// reads (the daemon refuses them; this guards logs from older versions too).
pub(crate) fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi = matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        );
        if c.is_control() || bidi {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// `30m`, `1h 30m`: a number of seconds for people.
pub(crate) fn duration(secs: u64) -> String {
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// `t` relative to `now`: `now`, `in 5m`, `2h ago`.
pub(crate) fn ago(t: u64, now: u64) -> String {
    if t == now {
        "now".to_string()
    } else if t > now {
        format!("in {}", duration(t - now))
    } else {
        format!("{} ago", duration(now - t))
    }
}

/// The custodians who have approved, in order.
fn approvers(v: &pb::RequestView) -> Vec<&str> {
    v.approvals
        .iter()
        .map(|a| a.custodian_id.as_str())
        .collect()
}

/// One request as a card of labelled lines.
pub(crate) fn print_request(v: &pb::RequestView) {
    let now = unix_now();
    println!("request   {}", v.id);
    println!("state     {}", state_name(v.state));
    println!("requester {}", shown(&v.requester));
    println!("scope     {}", shown(&v.scope));
    println!("reason    {}", shown(&v.reason));
    println!("ttl       {}", duration(v.ttl_seconds));
    println!("opened    {}", ago(v.opened_at, now));
    println!("deadline  {}", ago(v.deadline, now));
    println!(
        "approvals {}/{} {}",
        v.approvals.len(),
        v.threshold,
        approvers(v).join(", ")
    );
    if !v.close_reason.is_empty() {
        println!(
            "closed    {} ({})",
            ago(v.closed_at, now),
            shown(&v.close_reason)
        );
    }
    if v.revoked_at != 0 {
        println!(
            "revoked   {} by {}: {}",
            ago(v.revoked_at, now),
            shown(&v.revoked_by),
            shown(&v.revoke_reason)
        );
    } else if v.credential_expires_at != 0 {
        println!("credential expires {}", ago(v.credential_expires_at, now));
    }
}

/// One row of `request list`.
pub(crate) fn request_row(v: &pb::RequestView) -> String {
    format!(
        "{}  {:<10} {}/{}  {:<12} {:<10} {}",
        v.id,
        state_name(v.state),
        v.approvals.len(),
        v.threshold,
        shown(&v.requester),
        shown(&v.scope),
        if v.revoked_at != 0 {
            format!("[revoked] {}", shown(&v.reason))
        } else {
            shown(&v.reason)
        }
    )
}

/// The one-line status `request watch` redraws: shares and time left while
/// collecting, the outcome once closed.
pub(crate) fn progress_line(v: &pb::RequestView, now: u64) -> String {
    let who = approvers(v);
    let left = v.deadline.saturating_sub(now);
    let state = state_name(v.state);
    if v.state == pb::RequestState::Collecting as i32 {
        format!(
            "{} · {}/{} shares · {:02}:{:02} left · approved: {}",
            v.id,
            v.approvals.len(),
            v.threshold,
            left / 60,
            left % 60,
            if who.is_empty() {
                "nobody yet".to_string()
            } else {
                who.join(", ")
            }
        )
    } else {
        format!(
            "{} · {state} · {}/{} shares · {}",
            v.id,
            v.approvals.len(),
            v.threshold,
            v.close_reason
        )
    }
}

/// One audit entry as a row of `audit tail`.
pub(crate) fn tail_line(e: &audit::AuditEntry) -> String {
    format!(
        "#{:<6} {} {:<12} {:<22} {:<18} {}",
        e.seq,
        review::utc(e.time),
        e.actor,
        e.request_id.as_deref().unwrap_or("-"),
        e.event.kind(),
        audit::summary(e)
    )
}

/// `breakglass info`: the daemon's ids, keys, policy and members.
pub(crate) fn print_info(i: &pb::GetInfoResponse) {
    println!("daemon id     {}", i.daemon_id);
    println!("daemon key    {}", hex::encode(&i.daemon_public_key));
    println!("version       {}", i.version);
    println!("ceremony id   {}", i.ceremony_id);
    println!("policy digest {}", i.policy_digest);
    println!("authority     {}", i.authority_paserk);
    println!("authority ssh {}", i.authority_ssh);
    println!("threshold     {} of {}", i.threshold, i.custodians.len());
    println!("window        {}", duration(i.collection_window_seconds));
    println!("max ttl       {}", duration(i.max_ttl_seconds));
    println!("custodians");
    for cu in &i.custodians {
        println!("  {:<16} {}", cu.id, cu.name);
    }
    println!("commanders");
    for co in &i.commanders {
        println!(
            "  {:<16} {} (scopes: {})",
            co.id,
            co.name,
            co.scopes.join(", ")
        );
    }
    println!("scopes");
    for s in &i.scopes {
        println!(
            "  {:<16} principals {} · max ttl {}s",
            s.name,
            s.principals.join(","),
            s.max_ttl_seconds
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ago_reads_both_ways() {
        assert_eq!(ago(100, 100), "now");
        assert_eq!(ago(190, 100), "in 1m 30s");
        assert_eq!(ago(100, 3700), "1h ago");
    }

    #[test]
    fn progress_counts_down_while_collecting_and_names_the_outcome_after() {
        let mut v = pb::RequestView {
            id: "req-1".into(),
            state: pb::RequestState::Collecting as i32,
            threshold: 2,
            deadline: 1000,
            ..Default::default()
        };
        assert_eq!(
            progress_line(&v, 875),
            "req-1 · 0/2 shares · 02:05 left · approved: nobody yet"
        );
        v.state = pb::RequestState::Expired as i32;
        v.close_reason = "window closed".into();
        assert_eq!(
            progress_line(&v, 1001),
            "req-1 · expired · 0/2 shares · window closed"
        );
    }
}

#[cfg(test)]
mod shown_tests {
    use super::shown;

    /// Stored control characters are printed as escapes, never sent to the terminal.
    #[test]
    fn escapes_terminal_control() {
        assert_eq!(shown("disk \u{1b}[2K full"), "disk \\u{1b}[2K full");
        assert_eq!(
            shown("a\u{202e}b\u{9b}c\u{7f}"),
            "a\\u{202e}b\\u{9b}c\\u{7f}"
        );
        assert_eq!(shown("plain: ünïcode ✓"), "plain: ünïcode ✓");
    }
}
