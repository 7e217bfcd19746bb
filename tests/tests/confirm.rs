//! What a custodian sees before approving, and what anyone sees of a revoked
//! credential, through the real `breakglass` CLI against a real daemon.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use breakglass_formats::time::rfc3339;
use common::{load, Fixture};

/// Runs the CLI against `fx`'s daemon with `key`, writing `stdin` to it.
fn cli_with_stdin(fx: &Fixture, key: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(common::bin("breakglass"))
        .args(fx.conn_args())
        .arg("--key")
        .arg(key)
        .args(args)
        .env_remove("BREAKGLASS_PASSPHRASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The confirmation screen shows the whole grant from the daemon-signed view
/// (daemon, requester, scope, what it mints, the SSH key's fingerprint, TTL,
/// reason, deadline, approvals so far); a "no" sends nothing; a share file of
/// another custodian or not an age file is refused before the key is loaded.
#[tokio::test(flavor = "multi_thread")]
async fn the_confirmation_screen_shows_the_whole_grant() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let ssh = ic.ssh_public();
    let r = client
        .open(&ic, None, "prod-ssh", "disk full on db-1", 1200, &ssh)
        .await
        .unwrap();
    common::approve(&fx, &mut client, &r, 0).await;
    let info = client.info().clone();
    let fp = ssh_key::PublicKey::from_openssh(&ssh)
        .unwrap()
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string();
    let share = fx.share_file("c2");
    let c2 = fx.custodian_key(1);
    let (ok, out, err) = cli_with_stdin(
        &fx,
        &c2,
        &["share", "submit", &r.id, "--share", share.to_str().unwrap()],
        "n\n",
    );
    assert!(!ok, "declining is a failure exit: {out}{err}");
    let deadline = format!("deadline  {}, in ", rfc3339(r.deadline).unwrap());
    let lines: Vec<String> = out
        .lines()
        .map(|l| {
            if l.starts_with(&deadline) {
                format!("{deadline}…")
            } else {
                l.to_string()
            }
        })
        .collect();
    let expected = vec![
        "You are asked to approve emergency access:".to_string(),
        format!(
            "daemon    {} (daemon key {})",
            info.daemon_id,
            hex::encode(&info.daemon_public_key)
        ),
        format!("request   {}", r.id),
        "requester ic".into(),
        "scope     prod-ssh".into(),
        "mints     ssh, token".into(),
        "  principals root, ops".into(),
        "  extensions permit-pty".into(),
        format!("ssh key   ssh-ed25519 {fp}"),
        "ttl       20m".into(),
        "reason    disk full on db-1".into(),
        format!("{deadline}…"),
        "approvals 1/2 so far: c1".into(),
        format!("share     {} (encrypted to c2's key)", share.display()),
        "Approve emergency access for ic to prod-ssh? [y/N] ".into(),
        "not approved; nothing sent".into(),
    ];
    assert_eq!(lines, expected, "{out}");
    assert_eq!(
        client.get(&r.id).await.unwrap().approvals.len(),
        1,
        "a declined approval sends nothing"
    );

    // A piped "yes" is not a person's approval.
    let (ok, _, err) = cli_with_stdin(
        &fx,
        &c2,
        &["share", "submit", &r.id, "--share", share.to_str().unwrap()],
        "y\n",
    );
    assert!(!ok && err.contains("pass --yes"), "{err}");
    assert_eq!(client.get(&r.id).await.unwrap().approvals.len(), 1);

    // Another custodian's file, and a file that is no age file, are refused before
    // the key (and so the passphrase) is touched: the key path does not even exist.
    let missing_key = fx.dir.path().join("no-such-key");
    let c3_share = fx.share_file("c3");
    let (ok, out, err) = cli_with_stdin(
        &fx,
        &missing_key,
        &[
            "--as",
            "c2",
            "share",
            "submit",
            &r.id,
            "--share",
            c3_share.to_str().unwrap(),
        ],
        "",
    );
    assert!(
        !ok && err.contains("encrypted to custodian c3's key, not to c2's"),
        "{out}{err}"
    );
    assert!(!out.contains("You are asked"), "{out}");
    let junk = fx.dir.path().join("junk.share");
    std::fs::write(&junk, "hello").unwrap();
    let (ok, _, err) = cli_with_stdin(
        &fx,
        &missing_key,
        &["share", "submit", &r.id, "--share", junk.to_str().unwrap()],
        "",
    );
    assert!(!ok && err.contains("is not a share file"), "{err}");

    // With --yes it goes through, and `request show` names the bound key.
    let (ok, out, err) = fx.cli(
        &c2,
        &[
            "share",
            "submit",
            &r.id,
            "--share",
            share.to_str().unwrap(),
            "--yes",
        ],
    );
    assert!(ok && out.contains("share accepted: 2/2"), "{out}{err}");
    let (ok, out, err) = fx.cli(&c2, &["request", "show", &r.id]);
    assert!(
        ok && out.contains(&format!("ssh key   ssh-ed25519 {fp}")),
        "{out}{err}"
    );
}

/// Revocation is visible: `request show` says who, when and why; fetching the
/// revoked credential fails with the daemon's message printed once; the JSON
/// list is signed by D and `credential verify` checks it against `--daemon-key`.
#[tokio::test(flavor = "multi_thread")]
async fn revocation_is_shown_and_the_published_list_is_signed() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let r = client
        .open(
            &ic,
            None,
            "prod-ssh",
            "revocation shown",
            600,
            &ic.ssh_public(),
        )
        .await
        .unwrap();
    for i in 0..2 {
        common::approve(&fx, &mut client, &r, i).await;
    }
    let ic_path = fx.commander_key("ic");
    let cred = fx.dir.path().join("cred.json");
    let (ok, _, err) = fx.cli(
        &ic_path,
        &[
            "credential",
            "fetch",
            &r.id,
            "--out",
            cred.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = fx.cli(
        &fx.custodian_key(0),
        &["credential", "revoke", &r.id, "--reason", "laptop stolen"],
    );
    assert!(ok, "{out}{err}");

    let (ok, out, err) = fx.cli(&ic_path, &["request", "show", &r.id]);
    assert!(ok, "{err}");
    let revoked = out
        .lines()
        .find(|l| l.starts_with("revoked   "))
        .unwrap_or_else(|| panic!("no revoked line: {out}"));
    assert!(
        revoked.contains("Z, ") && revoked.ends_with("by c1: laptop stolen"),
        "{revoked}"
    );

    let (ok, out, err) = fx.cli(&ic_path, &["credential", "fetch", &r.id]);
    assert!(!ok, "a revoked credential is not handed out: {out}");
    assert_eq!(err.lines().count(), 1, "the daemon's message, once: {err}");
    assert!(
        err.contains("revoked by c1") && err.contains("laptop stolen"),
        "{err}"
    );
    assert_eq!(err.matches("revoked by").count(), 1, "{err}");

    let list = fx.dir.path().join("revoked.json");
    let (ok, out, err) = fx.cli(&ic_path, &["revocations", "--json", list.to_str().unwrap()]);
    assert!(
        ok && out.contains("(1 revoked), signed by daemon key"),
        "{out}{err}"
    );
    let d = hex::encode(&client.info().daemon_public_key);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&list).unwrap()).unwrap();
    assert_eq!(doc["daemon_public_key"], d.as_str());
    assert_eq!(doc["revoked"][0]["revoked_by"], "c1");
    assert_eq!(doc["signature"].as_str().map(str::len), Some(128));
    let authority = fx.authority_paserk();
    let verify = |list: &Path, daemon_key: &str| {
        common::run(
            "breakglass",
            &[
                "credential",
                "verify",
                cred.to_str().unwrap(),
                "--authority",
                &authority,
                "--revocations",
                list.to_str().unwrap(),
                "--daemon-key",
                daemon_key,
            ],
            &[],
        )
    };
    let (ok, _, err) = verify(&list, &d);
    assert!(
        !ok && err.contains("revoked at") && err.contains("by c1 (laptop stolen)"),
        "the signed list is accepted and names the revocation: {err}"
    );
    // Another daemon's key is refused by name.
    let other = hex::encode(
        ed25519_dalek::SigningKey::from_bytes(&[9; 32])
            .verifying_key()
            .as_bytes(),
    );
    let (ok, _, err) = verify(&list, &other);
    assert!(!ok && err.contains("comes from another daemon"), "{err}");
    // An entry removed (so nothing looks revoked) is refused, not believed.
    let mut edited = doc.clone();
    edited["revoked"] = serde_json::json!([]);
    edited["revoked_token_ids"] = serde_json::json!([]);
    let tampered = fx.dir.path().join("tampered.json");
    std::fs::write(&tampered, serde_json::to_vec_pretty(&edited).unwrap()).unwrap();
    let (ok, _, err) = verify(&tampered, &d);
    assert!(!ok && err.contains("signature does not verify"), "{err}");
}
