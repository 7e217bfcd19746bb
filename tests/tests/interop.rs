//! Interop: the credentials are accepted by tools nobody on this project wrote.
//! Invariant 7 (time-boxed: an expired certificate is refused by a real sshd) and the
//! revocation that backs it, checked by independent verifiers.
//!
//! - `ssh-keygen -L` reads the certificate (principals, key id, validity) and
//!   refuses one with a flipped byte;
//! - a real `sshd` (own config, host key, `TrustedUserCAKeys` = A, `RevokedKeys`
//!   = our KRL) lets `ssh` in with the certificate, and refuses the bare key, a
//!   revoked certificate and an expired one;
//! - the same sshd, configured once before a rekey (DESIGN.md "Epochs": a
//!   custodian leaves, one joins, the threshold changes), accepts the
//!   certificate the new epoch's shares unlock: A did not change;
//! - Python's `pyseto` verifies the token against A and rejects a token from
//!   another key.
//!
//! These need outside tools, so they are `#[ignore]`d in the plain test run and
//! `.ci/run` runs them with `--ignored` after installing the tools. A missing
//! tool fails the test; nothing is skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{load, Fixture};

fn tool(path: &str, package: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(
        p.is_file(),
        "{path} is missing: install the Debian package {package} (.ci/run does)"
    );
    p
}

fn python() -> PathBuf {
    let p = std::env::var_os("BREAKGLASS_INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/interop-venv/bin/python"
            ))
        });
    assert!(
        p.is_file(),
        "{} is missing: make it with `python3 -m venv target/interop-venv && target/interop-venv/bin/pip install pyseto` (.ci/run does), or set BREAKGLASS_INTEROP_PYTHON",
        p.display()
    );
    p
}

fn user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Unlocks a `prod-ssh` request for `ic` and fetches it with the CLI; returns (request id, cert path, bundle path).
async fn unlock(fx: &Fixture, ttl: &str, tag: &str) -> (String, PathBuf, PathBuf) {
    let ic = fx.commander_key("ic");
    let ic_pub = format!("{}.pub", ic.display());
    let (ok, out, err) = fx.cli(
        &ic,
        &[
            "request",
            "open",
            "--scope",
            "prod-ssh",
            "--reason",
            tag,
            "--ttl",
            ttl,
            "--ssh-key",
            &ic_pub,
        ],
    );
    assert!(ok, "{out}{err}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("request   "))
        .unwrap()
        .trim()
        .to_string();
    for i in 0..2 {
        let share = fx.share_file(&fx.keys.custodians[i].0);
        let (ok, out, err) = fx.cli(
            &fx.custodian_key(i),
            &[
                "share",
                "submit",
                &id,
                "--share",
                share.to_str().unwrap(),
                "--yes",
            ],
        );
        assert!(ok, "{out}{err}");
    }
    let bundle = fx.dir.path().join(format!("{tag}.json"));
    let (ok, out, err) = fx.cli(
        &ic,
        &[
            "credential",
            "fetch",
            &id,
            "--out",
            bundle.to_str().unwrap(),
            "--ssh-key",
            &ic_pub,
        ],
    );
    assert!(ok, "{out}{err}");
    (
        id,
        PathBuf::from(format!("{}-cert.pub", ic.display())),
        bundle,
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "interop: needs ssh-keygen; run by .ci/run with --ignored"]
async fn ssh_keygen_reads_the_certificate_and_refuses_a_flipped_byte() {
    let keygen = tool("/usr/bin/ssh-keygen", "openssh-client");
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let (id, cert, _) = unlock(&fx, "20m", "keygen").await;
    let out = Command::new(&keygen)
        .args(["-L", "-f"])
        .arg(&cert)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Type: ssh-ed25519-cert-v01@openssh.com user certificate"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Key ID: \"breakglass:{id}:ic\"")),
        "{text}"
    );
    let principals: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.trim().starts_with("Principals:"))
        .skip(1)
        .take_while(|l| !l.trim().starts_with("Critical Options:"))
        .map(str::trim)
        .collect();
    assert_eq!(principals, vec!["root", "ops"], "{text}");
    let valid = text
        .lines()
        .find(|l| l.trim().starts_with("Valid:"))
        .unwrap();
    assert!(valid.contains("from ") && valid.contains(" to "), "{valid}");
    assert!(
        text.contains("permit-pty") && !text.contains("permit-agent-forwarding"),
        "{text}"
    );
    // The same validity as the daemon recorded: 20 minutes plus the 2-minute skew allowance.
    let line = std::fs::read_to_string(&cert).unwrap();
    let c = ssh_key::Certificate::from_openssh(line.trim()).unwrap();
    assert_eq!(c.valid_before() - c.valid_after(), 20 * 60 + 120);

    // One flipped byte inside the signed blob: ssh-keygen refuses the file.
    use base64::Engine;
    let mut parts: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    let mut blob = base64::engine::general_purpose::STANDARD
        .decode(&parts[1])
        .unwrap();
    let i = blob.len() / 3;
    blob[i] ^= 0x01;
    parts[1] = base64::engine::general_purpose::STANDARD.encode(&blob);
    let bad = fx.dir.path().join("bad-cert.pub");
    std::fs::write(&bad, parts.join(" ") + "\n").unwrap();
    let out = Command::new(&keygen)
        .args(["-L", "-f"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "ssh-keygen accepted a tampered certificate: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

struct Sshd {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sshd(dir: &Path, ca_line: &str, krl: &Path) -> Sshd {
    let sshd = tool("/usr/sbin/sshd", "openssh-server");
    let keygen = tool("/usr/bin/ssh-keygen", "openssh-client");
    // Debian's sshd wants its privilege separation directory.
    if !Path::new("/run/sshd").exists() {
        let _ = std::fs::create_dir_all("/run/sshd");
    }
    let host = dir.join("host_ed25519");
    let st = Command::new(&keygen)
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&host)
        .status()
        .unwrap();
    assert!(st.success());
    let ca = dir.join("ca.pub");
    std::fs::write(&ca, format!("{ca_line}\n")).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nAuthorizedKeysFile none\n\
             TrustedUserCAKeys {}\nRevokedKeys {}\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n\
             LogLevel VERBOSE\n",
            host.display(),
            dir.join("sshd.pid").display(),
            ca.display(),
            krl.display()
        ),
    )
    .unwrap();
    let check = Command::new(&sshd)
        .args(["-t", "-f"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "sshd -t: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let log = dir.join("sshd.log");
    let child = Command::new(&sshd)
        .args(["-D", "-e", "-f"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sshd did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Sshd { child, port, log }
}

/// Runs `echo` over ssh with `key` (and the certificate beside it, if any); returns (ok, output).
fn ssh(port: u16, key: &Path, user: &str, extra: &[&str]) -> (bool, String) {
    let ssh = tool("/usr/bin/ssh", "openssh-client");
    let mut c = Command::new(ssh);
    c.args(["-F", "/dev/null", "-p", &port.to_string(), "-i"])
        .arg(key)
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "ConnectTimeout=10",
        ])
        .args(extra)
        .arg(format!("{user}@127.0.0.1"))
        .arg("echo breakglass-interop-ok")
        .stdin(Stdio::null());
    let out = c.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "interop: needs sshd and ssh; run by .ci/run with --ignored"]
async fn sshd_accepts_the_certificate_and_refuses_bare_revoked_and_expired() {
    let me = user();
    let mut fx = Fixture::with_principals(3, 2, "15m", &[&me, "ops"]);
    fx.start();
    let ic = fx.commander_key("ic");
    let client = fx.client().await;
    let ca_line = client.info().authority_ssh.clone();
    let sshdir = fx.dir.path().join("sshd");
    std::fs::create_dir(&sshdir).unwrap();
    let krl = sshdir.join("revoked.krl");
    let (ok, out, err) = fx.cli(&ic, &["revocations", "--krl", krl.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let (ok, ca_out, _) = fx.cli(&ic, &["authority", "--ssh"]);
    assert!(
        ok && ca_out.trim() == ca_line.trim(),
        "`breakglass authority --ssh` prints the TrustedUserCAKeys line"
    );
    let sshd = start_sshd(&sshdir, &ca_line, &krl);
    let log = || std::fs::read_to_string(&sshd.log).unwrap_or_default();

    // 1. The minted certificate lets the key in and the command runs.
    let (id, cert, _) = unlock(&fx, "20m", "sshd").await;
    assert!(cert.is_file());
    let (ok, out) = ssh(sshd.port, &ic, &me, &[]);
    assert!(
        ok && out.contains("breakglass-interop-ok"),
        "certificate login failed: {out}\nsshd: {}",
        log()
    );

    // 2. The same key without the certificate is refused.
    let bare_dir = fx.dir.path().join("bare");
    std::fs::create_dir(&bare_dir).unwrap();
    let bare = bare_dir.join("id_ed25519");
    std::fs::copy(&ic, &bare).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bare, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (ok, out) = ssh(sshd.port, &bare, &me, &[]);
    assert!(
        !ok && out.contains("Permission denied"),
        "the bare key got in: {out}"
    );

    // 3. Revoked: once the KRL lists the certificate, sshd refuses it.
    let (ok, out, err) = fx.cli(
        &fx.custodian_key(0),
        &["credential", "revoke", &id, "--reason", "interop"],
    );
    assert!(ok, "{out}{err}");
    let (ok, out, err) = fx.cli(&ic, &["revocations", "--krl", krl.to_str().unwrap()]);
    assert!(ok && out.contains("(1 certificates)"), "{out}{err}");
    let keygen = tool("/usr/bin/ssh-keygen", "openssh-client");
    let q = Command::new(&keygen)
        .args(["-Q", "-f"])
        .arg(&krl)
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&q.stdout).contains("REVOKED"),
        "ssh-keygen -Q: {}",
        String::from_utf8_lossy(&q.stdout)
    );
    let (ok, out) = ssh(sshd.port, &ic, &me, &[]);
    assert!(!ok, "a revoked certificate got in: {out}");
    assert!(log().contains("revoked"), "sshd says why: {}", log());

    // 4. Expired: a 2-second credential, used after it ends.
    let (_, cert2, _) = unlock(&fx, "2s", "expiring").await;
    let (ok, out) = ssh(sshd.port, &ic, &me, &[]);
    assert!(
        ok,
        "the fresh short certificate works first: {out}\nsshd: {}",
        log()
    );
    std::thread::sleep(Duration::from_millis(3500));
    let (ok, out) = ssh(sshd.port, &ic, &me, &[]);
    assert!(!ok, "an expired certificate got in: {out}");
    assert!(cert2.is_file());
    assert!(
        log().contains("expired") || log().contains("invalid"),
        "sshd says why: {}",
        log()
    );
}

/// The CLI's `request   ID` line.
fn request_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("request   "))
        .unwrap()
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "interop: needs sshd and ssh; run by .ci/run with --ignored"]
async fn an_sshd_configured_before_a_rekey_accepts_the_new_epochs_certificate() {
    // The end-to-end case, through the CLI: 5 custodians, threshold
    // 3; c5 leaves, n1 and n2 join, threshold 4.
    let me = user();
    let mut fx = Fixture::with_principals(5, 3, "15m", &[&me, "ops"]);
    fx.start();
    let ic = fx.commander_key("ic");
    let ic_pub = format!("{}.pub", ic.display());
    let ca_line = fx.client().await.info().authority_ssh.clone();
    let sshdir = fx.dir.path().join("sshd");
    std::fs::create_dir(&sshdir).unwrap();
    let krl = sshdir.join("revoked.krl");
    let (ok, out, err) = fx.cli(&ic, &["revocations", "--krl", krl.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    // sshd trusts A once, before the change, and is never touched again.
    let sshd = start_sshd(&sshdir, &ca_line, &krl);

    let mut joining = Vec::new();
    let text = std::fs::read_to_string(fx.policy_path()).unwrap();
    let mut blocks: Vec<String> = text
        .split("\n\n")
        .filter(|b| !b.starts_with("[[custodians]]\nid = \"c5\""))
        .map(str::to_string)
        .collect();
    for id in ["n1", "n2"] {
        let k = breakglass_client::identity::Identity::generate();
        let path = fx.dir.path().join("keys").join(id);
        k.write(&path, id, None).unwrap();
        blocks.push(format!(
            "[[custodians]]\nid = \"{id}\"\nssh_key = \"{}\"",
            k.ssh_public()
        ));
        joining.push((id, path));
    }
    let proposed = blocks
        .join("\n\n")
        .replacen("threshold = 3", "threshold = 4", 1);
    let file = fx.dir.path().join("new-policy.toml");
    std::fs::write(&file, proposed).unwrap();
    let (ok, out, err) = fx.cli(
        &ic,
        &[
            "policy",
            "propose",
            file.to_str().unwrap(),
            "--reason",
            "c5 leaves; n1 and n2 join",
            "--yes",
            "--json",
        ],
    );
    assert!(ok, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let change = v["id"].as_str().unwrap().to_string();
    for i in 0..3 {
        let share = fx.share_file(&fx.keys.custodians[i].0);
        let (ok, out, err) = fx.cli(
            &fx.custodian_key(i),
            &[
                "policy",
                "approve",
                &change,
                "--share",
                share.to_str().unwrap(),
                "--yes",
            ],
        );
        assert!(ok, "{out}{err}");
    }
    let mut members: Vec<(&str, PathBuf)> = (0..4)
        .map(|i| (fx.keys.custodians[i].0.as_str(), fx.custodian_key(i)))
        .collect();
    members.extend(joining.iter().map(|(id, p)| (*id, p.clone())));
    for (who, key) in &members {
        let f = fx.dir.path().join(format!("{who}-2.share"));
        let (ok, out, err) = fx.cli(
            key,
            &["share", "fetch", &change, "--out", f.to_str().unwrap()],
        );
        assert!(ok, "{out}{err}");
        let (ok, out, err) = fx.cli(
            key,
            &["share", "confirm", &change, "--share", f.to_str().unwrap()],
        );
        assert!(ok, "{out}{err}");
    }
    let (ok, out, err) = fx.cli(&ic, &["info", "--json"]);
    assert!(ok, "{out}{err}");
    let info: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(info["threshold"], 4, "epoch 2 committed");
    let (ok, ca_now, _) = fx.cli(&ic, &["authority", "--ssh"]);
    assert!(ok && ca_now.trim() == ca_line.trim(), "A never changes");

    let (ok, out, err) = fx.cli(
        &ic,
        &[
            "request",
            "open",
            "--scope",
            "prod-ssh",
            "--reason",
            "after the rekey",
            "--ttl",
            "10m",
            "--ssh-key",
            &ic_pub,
        ],
    );
    assert!(ok, "{out}{err}");
    let id = request_id(&out);
    // The removed custodian's share and a remaining custodian's old share are refused.
    for (i, needle) in [
        (4, "is not encrypted to any custodian"),
        (0, "your share is from epoch 1; this daemon is at epoch 2"),
    ] {
        let old = fx.share_file(&fx.keys.custodians[i].0);
        let (ok, out, err) = fx.cli(
            &fx.custodian_key(i),
            &[
                "share",
                "submit",
                &id,
                "--share",
                old.to_str().unwrap(),
                "--yes",
            ],
        );
        assert!(!ok && err.contains(needle), "c{}: {out}{err}", i + 1);
    }
    // Four new shares unlock; the old sshd lets the certificate in.
    for (who, key) in members
        .iter()
        .filter(|(w, _)| ["c1", "c2", "n1", "n2"].contains(w))
    {
        let f = fx.dir.path().join(format!("{who}-2.share"));
        let (ok, out, err) = fx.cli(
            key,
            &[
                "share",
                "submit",
                &id,
                "--share",
                f.to_str().unwrap(),
                "--yes",
            ],
        );
        assert!(ok, "{who}: {out}{err}");
    }
    let bundle = fx.dir.path().join("after-rekey.json");
    let (ok, out, err) = fx.cli(
        &ic,
        &[
            "credential",
            "fetch",
            &id,
            "--out",
            bundle.to_str().unwrap(),
            "--ssh-key",
            &ic_pub,
        ],
    );
    assert!(ok, "{out}{err}");
    let (ok, out) = ssh(sshd.port, &ic, &me, &[]);
    assert!(
        ok && out.contains("breakglass-interop-ok"),
        "the new epoch's certificate was refused: {out}\nsshd: {}",
        std::fs::read_to_string(&sshd.log).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "interop: needs python with pyseto; run by .ci/run with --ignored"]
async fn pyseto_verifies_the_token_and_rejects_a_foreign_one() {
    let py = python();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/verify_paseto.py");
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let ic = load(&fx.commander_key("ic"));
    let mut client = fx.client().await;
    let r = client
        .open(&ic, None, "prod-api", "pyseto interop", 600, "")
        .await
        .unwrap();
    for i in 0..2 {
        common::approve(&fx, &mut client, &r, i).await;
    }
    let b = client.fetch(&ic, None, &r.id).await.unwrap();
    assert!(b.ssh_certificate.is_none(), "prod-api mints tokens only");
    let token = b.paseto.unwrap();
    let paserk = fx.authority_paserk();
    let expected = serde_json::json!({
        "sub": "ic",
        "scope": "prod-api",
        "jti": r.id,
        "approvers": ["c1", "c2"],
        "iss": format!("breakglass:{}", client.info().daemon_id),
    });
    let out = Command::new(&py)
        .arg(script)
        .arg(&paserk)
        .arg(&token)
        .arg(expected.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.starts_with("VALID "),
        "pyseto: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A token with the same claims signed by another key fails against A.
    let other =
        breakglass_daemon::AuthorityKey::derive(&breakglass_daemon::AuthoritySeed::generate());
    let principals: Vec<String> = vec![];
    let approvers = vec!["c1".to_string(), "c2".to_string()];
    let forged = breakglass_daemon::mint_credential(
        &other,
        &mut rand_core::OsRng,
        &breakglass_daemon::Grant {
            daemon_id: &client.info().daemon_id,
            request_id: &r.id,
            requester: "ic",
            scope: "prod-api",
            principals: &principals,
            reason: "pyseto interop",
            approvers: &approvers,
            now: breakglass_client::api::unix_now(),
            ttl_seconds: 600,
            clock_skew: 120,
            token: true,
            ssh: None,
        },
    )
    .unwrap()
    .paseto
    .unwrap();
    let out = Command::new(&py)
        .arg(script)
        .arg(&paserk)
        .arg(&forged)
        .arg(expected.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "pyseto must reject a foreign token: {text}"
    );
    assert!(text.starts_with("REJECTED"), "{text}");
}
