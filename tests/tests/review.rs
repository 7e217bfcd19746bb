//! `breakglass review` proves what it shows (issue 10, item 5): it verifies the
//! log it renders (refusing a tampered export unless `--force`, which prints a
//! banner), and shows the daemon, ceremony and policy, the whole grant, every
//! custodian asked with her answer or silence, and credential expiry apart
//! from the published revocation. Run against a real daemon and real binaries.
//!
//! With `BREAKGLASS_WRITE_REVIEW_FIXTURE=DIR` the export of the flow is also
//! written to `DIR/review-flow.jsonl` (with its ids in `DIR/review-flow.env`):
//! that is how `client/tests/cmd/data/review-flow.jsonl` was made.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{approve, load, run, share_bytes, Fixture, Submission};

/// The text content of an HTML page: tags removed, entities of the escaper decoded.
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A whole flow (open, a rejected share, three approvals with one custodian
/// silent, unlock, fetch, revoke) reviewed from its export and from the daemon.
#[tokio::test(flavor = "multi_thread")]
async fn review_shows_the_whole_grant_and_refuses_a_tampered_export() {
    let mut fx = Fixture::new(4, 3, "15m");
    fx.start();
    let mut client = fx.client().await;
    let info = client.info().clone();
    let daemon_key = hex::encode(&info.daemon_public_key);
    let ic = load(&fx.commander_key("ic"));
    let r = client
        .open(
            &ic,
            None,
            "prod-ssh",
            "db primary down | see INC-4711",
            1200,
            &ic.ssh_public(),
        )
        .await
        .unwrap();
    approve(&fx, &mut client, &r, 0).await;
    // A corrupted share from c2 is rejected and attributed; she then approves.
    let c2 = load(&fx.custodian_key(1));
    let mut bad = share_bytes(&client, &fx.custodian_key(1), &fx.share_file("c2"));
    bad[9] ^= 1;
    let msg = Submission::new(&client, &r, "c2", &c2, bad).message();
    assert!(client.rpc().submit_share(msg).await.is_err());
    approve(&fx, &mut client, &r, 1).await;
    approve(&fx, &mut client, &r, 2).await;
    client.fetch(&ic, None, &r.id).await.unwrap();
    client
        .revoke(&ic, None, &r.id, "incident over")
        .await
        .unwrap();

    let key = fx.commander_key("ic");
    let export = fx.dir.path().join("flow.jsonl");
    let (ok, _, err) = fx.cli(
        &key,
        &["audit", "export", "--out", export.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    if let Ok(dir) = std::env::var("BREAKGLASS_WRITE_REVIEW_FIXTURE") {
        let dir = std::path::Path::new(&dir);
        std::fs::copy(&export, dir.join("review-flow.jsonl")).unwrap();
        std::fs::write(
            dir.join("review-flow.env"),
            format!(
                "request={}\ndaemon_id={}\ndaemon_key={daemon_key}\n",
                r.id, info.daemon_id
            ),
        )
        .unwrap();
    }

    let fingerprint = ssh_key::PublicKey::from_openssh(&ic.ssh_public())
        .unwrap()
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string();
    let serial = breakglass_formats::sshcert::serial_for(&r.id).to_string();
    let key_id = breakglass_formats::sshcert::key_id(&r.id, "ic");
    let file = export.to_str().unwrap();
    let anchored = [
        "review",
        &r.id,
        "--file",
        file,
        "--daemon-key",
        &daemon_key,
        "--daemon-id",
        &info.daemon_id,
    ];
    let (ok, md, err) = run("breakglass", &anchored, &[]);
    assert!(ok, "{err}");
    for want in [
        format!("| daemon id | {} |", info.daemon_id),
        format!("| ceremony id | {} |", info.ceremony_id),
        format!("| policy digest | {} |", info.policy_digest),
        "| requester | ic |".into(),
        "| scope | prod-ssh |".into(),
        "| credential kinds | ssh, token |".into(),
        "| principals | root, ops |".into(),
        format!("| ssh key | ssh-ed25519 {fingerprint} |"),
        "| ttl asked | 1200s |".into(),
        "| reason | db primary down \\| see INC-4711 |".into(),
        format!("| certificate serial | {serial} |"),
        format!("| certificate key id | {key_id} |"),
        "| valid from | ".into(),
        "| custodian | answer |".into(),
        "| c4 | no answer |".into(),
        "does not match their commitment".into(),
        "| revocation published | revoked at ".into(),
        "Effective only where the revocation list / KRL was deployed".into(),
        "checkpoints signed by the daemon key.".into(),
        "Verified: complete up to entry ".into(),
    ] {
        assert!(md.contains(&want), "missing {want:?} in\n{md}");
    }
    for c in ["c1", "c3"] {
        assert!(md.contains(&format!("| {c} | approved at ")), "{c}: {md}");
    }
    assert!(md.contains("| c2 | rejected at "), "{md}");
    assert!(!md.contains("DID NOT VERIFY") && !md.contains("Warning:"));

    // Without D the page says the checkpoints were not checked.
    let (ok, md_nokey, _) = run("breakglass", &["review", &r.id, "--file", file], &[]);
    assert!(ok);
    assert!(
        md_nokey.contains("Warning: checkpoint signatures not checked"),
        "{md_nokey}"
    );

    // From the daemon: the same page, checked with D from the connection.
    let (ok, md_daemon, err) = fx.cli(&key, &["review", &r.id]);
    assert!(ok, "{err}");
    let body = |m: &str| m.split("\n---\n").next().unwrap().to_string();
    assert_eq!(body(&md_daemon), body(&md));

    // HTML: the same fields in its text content.
    let page = fx.dir.path().join("review.html");
    let mut html_args = anchored.to_vec();
    html_args.extend(["--html", "--out", page.to_str().unwrap()]);
    let (ok, _, err) = run("breakglass", &html_args, &[]);
    assert!(ok, "{err}");
    let text = text_of(&std::fs::read_to_string(&page).unwrap());
    for want in [
        format!("daemon id {}", info.daemon_id),
        format!("ceremony id {}", info.ceremony_id),
        format!("policy digest {}", info.policy_digest),
        format!("ssh key ssh-ed25519 {fingerprint}"),
        format!("certificate serial {serial}"),
        format!("certificate key id {key_id}"),
        "principals root, ops".into(),
        "reason db primary down | see INC-4711".into(),
        "custodian answer c1 approved at".into(),
        "c4 no answer".into(),
        "revocation published revoked at".into(),
        "checkpoints signed by the daemon key.".into(),
    ] {
        assert!(text.contains(&want), "missing {want:?} in\n{text}");
    }

    // A tampered export: refused, the broken entry named; --force renders it under a banner.
    let lines: Vec<String> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let at = lines
        .iter()
        .position(|l| l.contains("\"kind\":\"credential_revoked\""))
        .unwrap();
    let seq = at + 1;
    let mut edited = lines.clone();
    edited[at] = edited[at].replace("incident over", "routine rotation");
    let tampered = fx.dir.path().join("tampered.jsonl");
    std::fs::write(&tampered, edited.join("\n") + "\n").unwrap();
    let t = tampered.to_str().unwrap();
    let (ok, out, err) = run("breakglass", &["review", &r.id, "--file", t], &[]);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(
        err.contains(&format!("entry {seq} was altered")) && err.contains("--force"),
        "{err}"
    );
    let (ok, forced, err) = run(
        "breakglass",
        &["review", &r.id, "--file", t, "--force"],
        &[],
    );
    assert!(ok, "{err}");
    assert!(
        forced.starts_with(&format!(
            "> **THIS LOG DID NOT VERIFY: entry {seq} was altered"
        )) && forced.contains("what follows may be forged"),
        "{forced}"
    );
    assert!(!forced.contains("after verifying it") && !forced.contains("Verified:"));
    // A cut export (the revocation and what follows removed) is refused too.
    let cut = fx.dir.path().join("cut.jsonl");
    let mut short = lines[..at].to_vec();
    short.push(lines.last().unwrap().clone());
    std::fs::write(&cut, short.join("\n") + "\n").unwrap();
    let (ok, _, err) = run(
        "breakglass",
        &["review", &r.id, "--file", cut.to_str().unwrap()],
        &[],
    );
    assert!(!ok && err.contains("the export was cut"), "{err}");
    fx.stop();
}
