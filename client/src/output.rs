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

/// An error and its causes on one line, each cause once: a cause whose text
/// the line already holds (`{what}: {source}` wrappers, an OS error repeated
/// by every layer) is not written again.
pub(crate) fn error_text(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !c.is_empty() && !out.contains(&c) {
            out = format!("{out}: {c}");
        }
    }
    out
}

/// `2026-12-02T05:10:00Z, in 23m`: a time in a message, UTC plus relative.
pub(crate) fn when(t: u64, now: u64) -> String {
    breakglass_formats::time::when(t, now)
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

/// `revoked 3m ago by c1: laptop stolen` (with the time in UTC).
pub(crate) fn revoked_text(v: &pb::RequestView, now: u64) -> String {
    format!(
        "revoked {} by {}: {}",
        when(v.revoked_at, now),
        shown(&v.revoked_by),
        shown(&v.revoke_reason)
    )
}

/// The key a certificate would be issued for: `ssh-ed25519 SHA256:… (comment)`,
/// `none` when the request certifies no key.
pub(crate) fn ssh_key_text(line: &str) -> String {
    if line.is_empty() {
        return "none".to_string();
    }
    match ssh_key::PublicKey::from_openssh(line) {
        Ok(k) => {
            let comment = k.comment();
            format!(
                "{} {}{}",
                k.algorithm(),
                k.fingerprint(ssh_key::HashAlg::Sha256),
                if comment.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", shown(comment))
                }
            )
        }
        Err(e) => format!("unreadable key ({e}): {}", shown(line)),
    }
}

/// One request as a card of labelled lines.
pub(crate) fn print_request(v: &pb::RequestView) {
    let now = unix_now();
    println!("request   {}", shown(&v.id));
    if v.kind == pb::RequestKind::Drill as i32 {
        println!("kind      live drill: it grants nothing");
    }
    if v.kind == pb::RequestKind::Change as i32 {
        println!(
            "kind      policy change: `breakglass policy show {}` shows what it changes",
            shown(&v.id)
        );
    }
    println!("state     {}", state_name(v.state));
    println!("requester {}", shown(&v.requester));
    println!("scope     {}", shown(&v.scope));
    println!("reason    {}", shown(&v.reason));
    println!("ssh key   {}", ssh_key_text(&v.ssh_public_key));
    println!("ttl       {}", duration(v.ttl_seconds));
    println!("opened    {}", when(v.opened_at, now));
    println!("deadline  {}", when(v.deadline, now));
    println!(
        "approvals {}/{} {}",
        v.approvals.len(),
        v.threshold,
        shown(&approvers(v).join(", "))
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
            when(v.revoked_at, now),
            shown(&v.revoked_by),
            shown(&v.revoke_reason)
        );
        if v.credential_expires_at > now {
            println!(
                "credential revoked; it would expire {} (and stays valid where the revocation list is not published)",
                when(v.credential_expires_at, now)
            );
        }
    } else if v.credential_expires_at != 0 {
        println!("credential expires {}", ago(v.credential_expires_at, now));
    }
}

/// The confirmation screen of `share submit`: the whole grant a custodian's
/// share would unlock. Request fields come from the view D signed (checked by
/// the client before this is called); what the scope mints (kinds, principals,
/// extensions) comes from the daemon's policy in `GetInfo`.
pub(crate) fn print_grant(info: &pb::GetInfoResponse, v: &pb::RequestView, share_of: &str) {
    let now = unix_now();
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            shown(&v.join(", "))
        }
    };
    if v.kind == pb::RequestKind::Drill as i32 {
        // A drill's digest has its own domain (checked with the view), so this
        // screen cannot be shown for a request that grants access.
        println!(
            "You are asked to approve a LIVE DRILL. It grants nothing: no credential is minted,"
        );
        println!("no access is given. Your real share proves, with the others, that the quorum can unlock.");
        print_daemon(info, v);
        println!("drill     {}", shown(&v.id));
        println!("opened by {}", shown(&v.requester));
        println!("reason    {}", shown(&v.reason));
        println!("deadline  {}", when(v.deadline, now));
        print_progress(v, share_of);
        return;
    }
    let scope = info.scopes.iter().find(|s| s.name == v.scope);
    // The same labelled card as `request show`; what the scope mints is
    // indented under it.
    println!("You are asked to approve emergency access:");
    print_daemon(info, v);
    println!("request   {}", shown(&v.id));
    println!("requester {}", shown(&v.requester));
    println!("scope     {}", shown(&v.scope));
    match scope {
        Some(s) => {
            println!("mints     {}", list(&s.credentials));
            if s.credentials.iter().any(|k| k == "ssh") {
                println!("  principals {}", list(&s.principals));
                println!("  extensions {}", list(&s.ssh_extensions));
            }
        }
        None => println!("mints     unknown: the scope is not in this daemon's policy"),
    }
    println!("ssh key   {}", ssh_key_text(&v.ssh_public_key));
    println!("ttl       {}", duration(v.ttl_seconds));
    println!("reason    {}", shown(&v.reason));
    println!("deadline  {}", when(v.deadline, now));
    print_progress(v, share_of);
}

/// The grant card's daemon line.
fn print_daemon(info: &pb::GetInfoResponse, v: &pb::RequestView) {
    println!(
        "daemon    {} (daemon key {})",
        shown(&v.daemon_id),
        hex::encode(&info.daemon_public_key)
    );
}

/// The grant card's approvals so far and the share to be sent.
fn print_progress(v: &pb::RequestView, share_of: &str) {
    println!(
        "approvals {}/{} so far{}",
        v.approvals.len(),
        v.threshold,
        if v.approvals.is_empty() {
            String::new()
        } else {
            format!(": {}", shown(&approvers(v).join(", ")))
        }
    );
    println!("share     {}", shown(share_of));
}

/// One row of `request list`.
pub(crate) fn request_row(v: &pb::RequestView) -> String {
    format!(
        "{}  {:<10} {}/{}  {:<12} {:<10} {}",
        shown(&v.id),
        state_name(v.state),
        v.approvals.len(),
        v.threshold,
        shown(&v.requester),
        if v.kind == pb::RequestKind::Drill as i32 {
            "(drill)".to_string()
        } else {
            shown(&v.scope)
        },
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
            "{} · {state} · {}/{} shares · {}{}",
            shown(&v.id),
            v.approvals.len(),
            v.threshold,
            shown(&v.close_reason),
            if v.revoked_at != 0 {
                format!(" · {}", revoked_text(v, now))
            } else {
                String::new()
            }
        )
    }
}

/// One audit entry as a row of `audit tail`.
pub(crate) fn tail_line(e: &audit::AuditEntry) -> String {
    format!(
        "#{:<6} {} {:<12} {:<22} {:<18} {}",
        e.seq,
        review::utc(e.time),
        shown(&e.actor),
        shown(e.request_id.as_deref().unwrap_or("-")),
        e.event.kind(),
        shown(&audit::summary(e))
    )
}

/// `breakglass info`: the daemon's ids, keys, policy and members.
pub(crate) fn print_info(i: &pb::GetInfoResponse) {
    println!("daemon id     {}", i.daemon_id);
    println!("daemon key    {}", hex::encode(&i.daemon_public_key));
    println!("version       {}", i.version);
    println!("ceremony id   {}", i.ceremony_id);
    println!("policy digest {}", i.policy_digest);
    println!("epoch         {}", i.epoch);
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
        println!("  {}", scope_line(s));
    }
}

/// What one scope mints: `prod-ssh  mints ssh certificate, token · principals root,ops ·
/// extensions permit-pty · ttl up to 30m`.
pub(crate) fn scope_line(s: &pb::Scope) -> String {
    let kinds: Vec<&str> = s
        .credentials
        .iter()
        .map(|k| match k.as_str() {
            "ssh" => "ssh certificate",
            "token" => "token (PASETO)",
            other => other,
        })
        .collect();
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(",")
        }
    };
    let mut line = format!("{:<16} mints {}", s.name, kinds.join(", "));
    if s.credentials.iter().any(|k| k == "ssh") {
        line.push_str(&format!(
            " · principals {} · extensions {}",
            list(&s.principals),
            list(&s.ssh_extensions)
        ));
    } else if !s.principals.is_empty() {
        line.push_str(&format!(" · principals {}", list(&s.principals)));
    }
    line.push_str(&format!(" · ttl up to {}", duration(s.max_ttl_seconds)));
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cause already in the message is not repeated (`{e}: {source}` wrappers).
    #[test]
    fn errors_are_printed_once() {
        let io = std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "File exists (os error 17)",
        );
        let e = anyhow::Error::new(io).context("k: File exists (os error 17)");
        assert_eq!(error_text(&e), "k: File exists (os error 17)");
        let e = anyhow::anyhow!("No such file").context("--ca missing.pem");
        assert_eq!(error_text(&e), "--ca missing.pem: No such file");
    }

    #[test]
    fn a_scope_says_what_it_mints() {
        let s = pb::Scope {
            name: "prod-ssh".into(),
            principals: vec!["root".into(), "ops".into()],
            max_ttl_seconds: 1800,
            credentials: vec!["ssh".into(), "token".into()],
            ssh_extensions: vec!["permit-pty".into()],
        };
        assert_eq!(
            scope_line(&s),
            "prod-ssh         mints ssh certificate, token (PASETO) · principals root,ops · extensions permit-pty · ttl up to 30m"
        );
    }

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

    /// Every line that prints stored text escapes it: the watch line (close
    /// reason, revocation), the list row, the audit tail, the bound key's comment.
    #[test]
    fn stored_text_is_escaped_where_it_is_printed() {
        use super::*;
        let evil = "ok\u{1b}[2K\u{1b}[1A\u{2066}x";
        let escaped = "ok\\u{1b}[2K\\u{1b}[1A\\u{2066}x";
        let v = pb::RequestView {
            id: "req-1".into(),
            state: pb::RequestState::Unlocked as i32,
            threshold: 2,
            requester: evil.into(),
            scope: evil.into(),
            reason: evil.into(),
            close_reason: evil.into(),
            revoked_at: 100,
            revoked_by: evil.into(),
            revoke_reason: evil.into(),
            ..Default::default()
        };
        for line in [progress_line(&v, 100), request_row(&v)] {
            assert!(
                !line.contains('\u{1b}') && !line.contains('\u{2066}'),
                "{line:?}"
            );
            assert!(line.contains(escaped), "{line}");
        }
        assert!(
            progress_line(&v, 100).contains("revoked "),
            "watch shows the revocation"
        );
        let e = audit::AuditEntry {
            seq: 1,
            time: 0,
            actor: evil.into(),
            request_id: Some(evil.into()),
            event: audit::Event::RequestCancelled {
                by: evil.into(),
                reason: evil.into(),
            },
            signed_with: None,
            prev_hash: String::new(),
            hash: String::new(),
        };
        let line = tail_line(&e);
        assert!(!line.contains('\u{1b}') && line.contains(escaped), "{line}");
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJf/yIPIC+5yN++V2bm3A9StY+YKIeYFhnaCt1uLP0MD a\u{1b}[8m";
        let k = ssh_key_text(key);
        assert!(
            k.starts_with("ssh-ed25519 SHA256:") && k.ends_with("(a\\u{1b}[8m)"),
            "{k}"
        );
        assert_eq!(ssh_key_text(""), "none");
    }
}
