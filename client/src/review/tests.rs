//! Tests of the review model and pages.

use super::*;
use breakglass_formats::audit::{chain, Record};

fn log(reason: &str) -> Vec<AuditEntry> {
    let evs = vec![
        (
            "daemon",
            None,
            Event::Ceremony {
                ceremony_id: "cer-1".into(),
                policy_digest: "p0".into(),
                custodians: vec!["c1".into(), "c2".into(), "c3".into()],
                threshold: 2,
                authority: "aa".into(),
            },
        ),
        (
            "daemon",
            None,
            Event::DaemonStarted {
                policy_digest: "p1".into(),
                version: "0".into(),
                zero_counter_allowed: false,
            },
        ),
        (
            "ic",
            Some("req-1"),
            Event::RequestOpened {
                requester: "ic".into(),
                scope: "prod-ssh".into(),
                reason: reason.into(),
                ttl_seconds: 600,
                deadline: 1900,
                digest: "00".into(),
                kinds: vec!["ssh".into()],
                principals: vec!["root".into()],
                ssh_extensions: vec!["permit-pty".into()],
                ssh_key_type: Some("ssh-ed25519".into()),
                ssh_key_fingerprint: Some("SHA256:fp".into()),
            },
        ),
        (
            "c1",
            Some("req-1"),
            Event::ShareAccepted {
                custodian: "c1".into(),
                accepted: 1,
                threshold: 2,
            },
        ),
        (
            "c2",
            Some("req-1"),
            Event::ShareAccepted {
                custodian: "c2".into(),
                accepted: 2,
                threshold: 2,
            },
        ),
        (
            "daemon",
            Some("req-1"),
            Event::CredentialMinted {
                expires_at: 1900,
                kinds: vec!["ssh".into()],
                valid_from: Some(1300),
                ssh_serial: Some(42),
                ssh_key_id: Some("breakglass:req-1:ic".into()),
            },
        ),
        (
            "c1",
            Some("req-1"),
            Event::CredentialRevoked {
                by: "c1".into(),
                reason: "done".into(),
            },
        ),
        (
            "daemon",
            None,
            Event::Checkpoint {
                daemon_id: "d-1".into(),
                seq: 7,
                head: "00".into(),
                signature: "00".into(),
            },
        ),
    ];
    let mut prev = [0u8; 32];
    evs.into_iter()
        .enumerate()
        .map(|(i, (actor, req, event))| {
            let rec = Record {
                time: 1000 + 100 * i as u64,
                actor: actor.into(),
                request_id: req.map(String::from),
                event,
                signed_with: None,
            };
            let (e, h) = chain(i as u64 + 1, &prev, rec).unwrap();
            prev = h;
            e
        })
        .collect()
}

fn verified() -> Provenance {
    Provenance {
        source: "the export x".into(),
        verified: vec!["entries 1..=8 form an unbroken hash chain".into()],
        unchecked: vec!["checkpoint signatures not checked".into()],
        failure: None,
    }
}

#[test]
fn the_whole_grant_and_every_custodian() {
    let r = build("req-1", &log("db <down>")).unwrap();
    assert_eq!(r.daemon_id.as_deref(), Some("d-1"));
    assert_eq!(r.ceremony_id.as_deref(), Some("cer-1"));
    assert_eq!(
        r.policy_digest.as_deref(),
        Some("p1"),
        "the start before the open"
    );
    assert_eq!(r.approvers, vec!["c1", "c2"]);
    let rows = custodian_rows(&r);
    assert_eq!(rows[2], ("c3".to_string(), "no answer".to_string()));
    assert!(rows[0]
        .1
        .starts_with("approved at 1970-01-01 00:21:40 (#4)"));
    let md = markdown(&r, &verified());
    for want in [
        "| daemon id | d-1 |",
        "| ssh key | ssh-ed25519 SHA256:fp |",
        "| certificate serial | 42 |",
        "| valid from | 1970-01-01 00:21:40 |",
        "| credential expiry | 1970-01-01 00:31:40 (valid nowhere after it) |",
        "| c3 | no answer |",
        "| reason | db \\<down\\> |",
        "Effective only where the revocation list / KRL was deployed",
        "Verified: entries 1..=8 form an unbroken hash chain.",
        "Warning: checkpoint signatures not checked.",
    ] {
        assert!(md.contains(want), "{want}\n{md}");
    }
    assert!(!md.contains("DID NOT VERIFY"));
    let page = html(&r, &verified());
    assert!(
        page.starts_with("<!doctype html>")
            && page.contains("<svg")
            && page.contains("db &lt;down&gt;")
            && page.contains("<td>certificate key id</td><td>breakglass:req-1:ic</td>")
    );
    assert!(!page.contains("db <down>"), "escaped");
    assert!(build("req-2", &log("x")).is_none());
}

#[test]
fn a_forced_page_says_it_did_not_verify() {
    let r = build("req-1", &log("x")).unwrap();
    let p = Provenance {
        source: "the export x".into(),
        failure: Some("entry 4 was altered".into()),
        ..Provenance::default()
    };
    let md = markdown(&r, &p);
    assert!(md.starts_with(
        "> **THIS LOG DID NOT VERIFY: entry 4 was altered, what follows may be forged**"
    ));
    assert!(!md.contains("after verifying it"), "{md}");
    let page = html(&r, &p);
    assert!(page.contains(
        "<body><div class=\"forged\" role=\"alert\">THIS LOG DID NOT VERIFY: entry 4 was altered"
    ));
    assert!(!page.contains("after verifying it"));
}

/// Caller text cannot reorder, hide or restructure the page.
#[test]
fn caller_text_is_escaped() {
    let r = build(
        "req-1",
        &log("a\u{202e}b\u{1b}[8m | [x](http://e) \u{2066}"),
    )
    .unwrap();
    let md = markdown(&r, &verified());
    assert!(
        // `\u{..}` from `shown`, its backslash escaped for Markdown.
        md.contains(r"| reason | a\\u{202e}b\\u{1b}\[8m \| \[x\](http://e) \\u{2066} |"),
        "{md}"
    );
    let page = html(&r, &verified());
    assert!(!page.contains('\u{202e}') && !page.contains('\u{1b}') && !page.contains('\u{2066}'));
    assert!(page.contains("a\\u{202e}b\\u{1b}[8m"));
}
