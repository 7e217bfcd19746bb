//! Interop for signatures in OpenSSH's SSHSIG format (issue 13, first step):
//! `ssh-keygen -Y sign` with a key file produces what `formats::sshsig`
//! accepts, and what the test authenticator produces for security keys is
//! accepted by `ssh-keygen -Y verify`: proof, from a tool nobody here wrote,
//! that the signed data (application, flags, counter, message) is built as
//! OpenSSH defines it. `ssh-keygen -Y verify` leaves presence and verification
//! to the caller; breakglass always requires presence and reports verification.
//! Guards invariant 4 (every call is signed by the registered key).
//!
//! Needs ssh-keygen, so `#[ignore]`d in the plain run; `.ci/run` runs it with
//! `--ignored`. A missing tool fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use breakglass_formats::sshsig::{self, KeyKind, SigError, FLAG_USER_PRESENT, FLAG_USER_VERIFIED};
use common::authenticator::Authenticator;
use ssh_key::PublicKey;

const PAYLOAD: &[u8] = b"breakglass/v1/submit-share: interop payload";

fn keygen() -> std::path::PathBuf {
    let p = std::path::PathBuf::from("/usr/bin/ssh-keygen");
    assert!(
        p.is_file(),
        "ssh-keygen is missing (apt-get install openssh-client)"
    );
    p
}

/// `ssh-keygen -Y verify` of `sig` over PAYLOAD for signer `tester` with the
/// allowed-signers line `tester options key`.
fn keygen_verify(dir: &Path, key: &PublicKey, options: &str, pem: &str) -> bool {
    let allowed = dir.join("allowed_signers");
    let line = format!(
        "tester {options}{} {}\n",
        if options.is_empty() { "" } else { " " },
        key.to_openssh().unwrap()
    );
    std::fs::write(&allowed, line).unwrap();
    let sig_path = dir.join("payload.sig");
    std::fs::write(&sig_path, pem).unwrap();
    let mut child = Command::new(keygen())
        .args(["-Y", "verify", "-f"])
        .arg(&allowed)
        .args(["-I", "tester", "-n", "breakglass", "-s"])
        .arg(&sig_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(PAYLOAD).unwrap();
    child.wait_with_output().unwrap().status.success()
}

#[test]
#[ignore = "interop: needs ssh-keygen; run by .ci/run with --ignored"]
fn ssh_keygen_file_key_signatures_verify_here() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_ed25519");
    let ok = Command::new(keygen())
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let payload = dir.path().join("payload");
    std::fs::write(&payload, PAYLOAD).unwrap();
    for ns in ["breakglass", "git"] {
        let _ = std::fs::remove_file(dir.path().join("payload.sig"));
        let ok = Command::new(keygen())
            .args(["-Y", "sign", "-f"])
            .arg(&key)
            .args(["-n", ns])
            .arg(&payload)
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "ssh-keygen -Y sign -n {ns}");
        let pem = std::fs::read(dir.path().join("payload.sig")).unwrap();
        let sig = sshsig::parse(&pem).unwrap();
        let public = PublicKey::read_openssh_file(&key.with_extension("pub")).unwrap();
        let got = sshsig::verify(&public, PAYLOAD, &sig);
        if ns == "breakglass" {
            assert_eq!(got.unwrap().kind, KeyKind::Ed25519);
            assert_eq!(
                sshsig::verify(&public, b"other", &sig),
                Err(SigError::BadSignature)
            );
        } else {
            assert_eq!(got, Err(SigError::Namespace { got: "git".into() }));
        }
    }
}

#[test]
#[ignore = "interop: needs ssh-keygen; run by .ci/run with --ignored"]
fn ssh_keygen_accepts_the_test_authenticators_signatures() {
    let dir = tempfile::tempdir().unwrap();
    for a in [
        Authenticator::ed25519(4, "ssh:"),
        Authenticator::p256(5, "ssh:"),
    ] {
        let key = a.public();
        let both = a.sign(PAYLOAD, FLAG_USER_PRESENT | FLAG_USER_VERIFIED, 10);
        let touch = a.sign(PAYLOAD, FLAG_USER_PRESENT, 11);
        let none = a.sign(PAYLOAD, 0, 12);
        let what = key.algorithm().as_str().to_string();
        // OpenSSH verifies each signature as a signature, whatever the flags
        // (it leaves presence and verification to the caller's policy)...
        for (signed, flags) in [
            (&both, "presence + verification"),
            (&touch, "presence"),
            (&none, "no flags"),
        ] {
            assert!(
                keygen_verify(dir.path(), &key, "", &signed.pem),
                "{what}: {flags}"
            );
        }
        // ...and the flags are signed: raising one afterwards breaks it for OpenSSH too.
        let raised = a.sign_as(
            PAYLOAD,
            FLAG_USER_PRESENT,
            FLAG_USER_PRESENT | FLAG_USER_VERIFIED,
            11,
        );
        assert!(
            !keygen_verify(dir.path(), &key, "", &raised.pem),
            "{what}: raised flag"
        );
        assert_eq!(
            sshsig::verify(&key, PAYLOAD, &raised.sig),
            Err(SigError::BadSignature)
        );
        // Presence is our rule: always required; verification is reported.
        let ours = sshsig::verify(&key, PAYLOAD, &both.sig)
            .unwrap()
            .sk
            .unwrap();
        assert_eq!(ours.counter, 10);
        assert!(ours.user_present() && ours.user_verified());
        assert!(!sshsig::verify(&key, PAYLOAD, &touch.sig)
            .unwrap()
            .sk
            .unwrap()
            .user_verified());
        assert_eq!(
            sshsig::verify(&key, PAYLOAD, &none.sig),
            Err(SigError::NoUserPresence)
        );
        // A signature over other bytes fails in both.
        let other = a.sign(b"other", FLAG_USER_PRESENT, 13);
        assert!(
            !keygen_verify(dir.path(), &key, "", &other.pem),
            "{what}: other payload"
        );
        assert_eq!(
            sshsig::verify(&key, PAYLOAD, &other.sig),
            Err(SigError::BadSignature)
        );
    }
}

/// A running `ssh-agent` on a socket in `dir`, killed on drop.
struct Agent {
    child: std::process::Child,
    sock: std::path::PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let bin = std::path::PathBuf::from("/usr/bin/ssh-agent");
        assert!(
            bin.is_file(),
            "ssh-agent is missing (apt-get install openssh-client)"
        );
        let sock = dir.join("agent.sock");
        let child = Command::new(bin)
            .args(["-D", "-a"])
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while !sock.exists() {
            assert!(
                start.elapsed().as_secs() < 10,
                "ssh-agent did not make its socket"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Agent { child, sock }
    }

    fn add(&self, key: &Path) {
        let ok = Command::new("/usr/bin/ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.sock)
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "ssh-add {}", key.display());
    }

    /// `ssh-keygen -Y sign` of `payload` with the key whose public half is at
    /// `public`, in namespace `ns`. Only the public key is given (in a
    /// directory of its own), so the signature can only come from the agent.
    fn sign(&self, public: &Path, ns: &str, payload: &[u8]) -> Vec<u8> {
        let d = tempfile::tempdir().unwrap();
        let pubkey = d.path().join("key.pub");
        std::fs::copy(public, &pubkey).unwrap();
        let msg = d.path().join("payload");
        std::fs::write(&msg, payload).unwrap();
        let out = Command::new(keygen())
            .args(["-Y", "sign", "-U", "-f"])
            .arg(&pubkey)
            .args(["-n", ns])
            .arg(&msg)
            .env("SSH_AUTH_SOCK", &self.sock)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh-keygen -Y sign: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read(d.path().join("payload.sig")).unwrap()
    }
}

fn signature(id: &str, at: u64, sig: Vec<u8>) -> Option<breakglass_proto::pb::Signature> {
    Some(breakglass_proto::pb::Signature {
        signer_id: id.into(),
        signed_at: at,
        signature: sig,
    })
}

/// Issue 13, first test: a real ssh-agent holding the registered ed25519
/// keys signs an open (commander), a share submission (custodian) and the
/// fetch; the daemon accepts the SSHSIG signatures, and `ssh-keygen -Y verify`
/// accepts the same bytes. Another namespace or another key is refused.
/// Guards invariant 4.
#[tokio::test]
#[ignore = "interop: needs ssh-agent and ssh-keygen; run by .ci/run with --ignored"]
async fn an_ssh_agent_signs_open_submit_and_fetch() {
    use breakglass_client::api::unix_now;
    use breakglass_proto::{pb, signing, transport};
    use tonic::Code;

    let mut fx = common::Fixture::new(3, 2, "15m");
    fx.start();
    let mut c = fx.client().await;
    let mut rpc = c.rpc().clone();
    let agent = Agent::start(fx.dir.path());
    let ic_key = fx.commander_key("ic");
    let c1_key = fx.custodian_key(0);
    agent.add(&ic_key);
    agent.add(&c1_key);
    let pub_of = |k: &Path| std::path::PathBuf::from(format!("{}.pub", k.display()));
    let daemon_id = c.info().daemon_id.clone();
    let ssh = common::load(&ic_key).ssh_public();

    let open = |ns: &str, signer: &Path, nonce: u8| {
        let at = unix_now();
        let n = [nonce; signing::NONCE_LEN];
        let payload =
            signing::open_request(&daemon_id, "ic", "prod-db", "agent", 600, &ssh, &n, at);
        let sig = agent.sign(&pub_of(signer), ns, &payload);
        (
            payload,
            pb::OpenRequestRequest {
                scope: "prod-db".into(),
                reason: "agent".into(),
                ttl_seconds: 600,
                nonce: n.to_vec(),
                signature: signature("ic", at, sig),
                ssh_public_key: ssh.clone(),
                kind: pb::RequestKind::Access as i32,
            },
        )
    };
    // Refused: another namespace, another registered key (c1's, claiming to be ic).
    let (_, git) = open("git", &ic_key, 1);
    common::assert_status(
        rpc.open_request(git).await,
        Code::InvalidArgument,
        "namespace is \"git\"",
    );
    let (_, forged) = open("breakglass", &c1_key, 2);
    common::assert_status(
        rpc.open_request(forged).await,
        Code::Unauthenticated,
        "does not verify",
    );

    let (payload, msg) = open("breakglass", &ic_key, 3);
    let sig_bytes = msg.signature.as_ref().unwrap().signature.clone();
    let view = rpc.open_request(msg).await.unwrap().into_inner();
    c.check_view(&view).unwrap();
    // ssh-keygen -Y verify accepts the bytes the daemon accepted.
    let ic_pub = PublicKey::read_openssh_file(&pub_of(&ic_key)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("payload"), &payload).unwrap();
    let allowed = dir.path().join("allowed");
    std::fs::write(&allowed, format!("ic {}\n", ic_pub.to_openssh().unwrap())).unwrap();
    std::fs::write(dir.path().join("sig"), &sig_bytes).unwrap();
    let ok = Command::new(keygen())
        .args(["-Y", "verify", "-f"])
        .arg(&allowed)
        .args(["-I", "ic", "-n", "breakglass", "-s"])
        .arg(dir.path().join("sig"))
        .stdin(std::fs::File::open(dir.path().join("payload")).unwrap())
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(
        ok,
        "ssh-keygen -Y verify refused the signature the daemon accepted"
    );

    // c1 approves through the agent; c2 with its key file, as today.
    let eph: [u8; 32] = view.ephemeral_public_key.as_slice().try_into().unwrap();
    let digest: [u8; 32] = view.digest.as_slice().try_into().unwrap();
    let share = common::share_bytes(&c, &c1_key, &fx.share_file("c1"));
    let sealed =
        transport::seal_share(&eph, &digest, &view.id, "c1", &share, rand_core::OsRng).unwrap();
    let at = unix_now();
    let payload = signing::submit_share(&daemon_id, &view.id, &digest, "c1", &sealed, at);
    let sig = agent.sign(&pub_of(&c1_key), "breakglass", &payload);
    let p = rpc
        .submit_share(pb::SubmitShareRequest {
            request_id: view.id.clone(),
            sealed_share: sealed,
            signature: signature("c1", at, sig),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.accepted, 1);
    let mut client = c.clone();
    common::approve(&fx, &mut client, &view, 1).await;

    // The commander fetches through the agent.
    let at = unix_now();
    let payload = signing::fetch_credential(&daemon_id, &view.id, &digest, "ic", at);
    let sig = agent.sign(&pub_of(&ic_key), "breakglass", &payload);
    let got = rpc
        .fetch_credential(pb::FetchCredentialRequest {
            request_id: view.id.clone(),
            signature: signature("ic", at, sig),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!got.encrypted_credential.is_empty());
}

/// Issue 13: a live drill in which custodian c1 approves through a real
/// ssh-agent holding her ed25519 key and c2 through an agent holding a
/// security key (the test authenticator behind the ssh-agent protocol), both
/// with the `breakglass` CLI, which signs through OpenSSH's own `ssh-keygen
/// -Y sign -U`; the commander signs with her key file (also an OpenSSH
/// signature now). The policy requires hardware of nobody, so c1's key is
/// accepted; the record shows how each approval was signed, and `review`
/// says it. Guards invariant 4.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "interop: needs ssh-agent and ssh-keygen; run by .ci/run with --ignored"]
async fn a_live_drill_with_custodians_on_ssh_agent_and_a_security_key() {
    let c2_sk = Authenticator::ed25519(42, "ssh:");
    let c2_pub = c2_sk.public().to_openssh().unwrap();
    let mut fx = common::Fixture::edited(3, 2, "15m", &["root"], &|policy, _| {
        policy.replacen(
            "id = \"c2\"\n",
            &format!("id = \"c2\"\nsigning_keys = [\"{c2_pub}\"]\n"),
            1,
        )
    });
    fx.start();
    let mut c = fx.client().await;
    let real = Agent::start(fx.dir.path());
    real.add(&fx.custodian_key(0));
    let sk_pub = fx.dir.path().join("c2_sk.pub");
    std::fs::write(&sk_pub, format!("{c2_pub}\n")).unwrap();
    let sk_agent = common::authenticator::Agent::start(fx.dir.path(), c2_sk);

    let mut args = fx.conn_args();
    args.extend(
        [
            "--key",
            &fx.commander_key("ic").display().to_string(),
            "drill",
            "--live",
            "--reason",
            "hardware drill",
        ]
        .map(String::from),
    );
    let commander = Command::new(common::bin("breakglass"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let v = loop {
        let open = c.list(true).await.unwrap();
        if let Some(v) = open.into_iter().next() {
            break v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };

    let approve = |i: usize, sock: &Path, extra: &[&str]| {
        let id = fx.keys.custodians[i].0.clone();
        let share = fx.share_file(&id).display().to_string();
        let key = fx.custodian_key(i).display().to_string();
        let mut all = fx.conn_args();
        all.extend(["--key".into(), key, "--sign-with".into(), "agent".into()]);
        all.extend(extra.iter().map(|s| s.to_string()));
        all.extend(["share", "submit", &v.id, "--share", &share, "--yes"].map(String::from));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        common::run(
            "breakglass",
            &refs,
            &[("SSH_AUTH_SOCK", sock.to_str().unwrap())],
        )
    };
    let (ok, out, err) = approve(0, &real.sock, &[]);
    assert!(ok, "{out}{err}");
    let sk_pub_arg = sk_pub.display().to_string();
    let (ok, out, err) = approve(1, &sk_agent.sock, &["--signing-key", &sk_pub_arg]);
    assert!(ok, "{out}{err}");
    assert!(err.contains("touch your security key"), "{err}");
    assert!(
        out.contains("the drill passed; the key was rebuilt and nothing was minted"),
        "{out}"
    );
    assert_eq!(
        sk_agent
            .signatures
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    let done = commander.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );

    let entries = c.audit_export(1).await.unwrap();
    let how = |kind: &str, actor: &str| {
        entries
            .iter()
            .find(|e| e.event.kind() == kind && e.actor == actor)
            .and_then(|e| e.signed_with.clone())
            .unwrap_or_else(|| panic!("{kind} by {actor} is stamped"))
    };
    let opened = how("drill_opened", "ic");
    assert_eq!(
        (opened.key_type.as_str(), opened.format.as_str()),
        ("ssh-ed25519", "sshsig")
    );
    let c1 = how("share_accepted", "c1");
    assert_eq!(
        (c1.key_type.as_str(), c1.format.as_str()),
        ("ssh-ed25519", "sshsig")
    );
    let c2 = how("share_accepted", "c2");
    assert_eq!(c2.key_type, "sk-ssh-ed25519@openssh.com");
    assert_eq!(
        (c2.user_present, c2.user_verified, c2.counter),
        (Some(true), Some(true), Some(1))
    );

    let (ok, out, err) = fx.cli(&fx.commander_key("ic"), &["review", &v.id]);
    assert!(ok, "{err}");
    assert!(
        out.contains("with security key sk-ssh-ed25519@openssh.com")
            && out.contains("touch, PIN/biometrics verified, counter 1"),
        "{out}"
    );
}
