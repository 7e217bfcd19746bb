//! Hardware-backed approvals (issue 13): custodians and commanders who list
//! FIDO2 security keys in `signing_keys` sign with them, and
//! `require_hardware` makes the daemon refuse anything else. The security
//! keys are the test authenticator (tests/tests/common/authenticator.rs),
//! which signs exactly as OpenSSH's security-key protocol defines; the
//! interop suite proves with `ssh-keygen -Y verify` that its signatures are
//! the real format. Every refusal here comes from a signature that verified,
//! so each is on the record with how the signature was made. Guards
//! invariant 4 (a signature is accepted only from a registered key, made
//! the way the policy requires) and invariant 6 (every refusal of a verified
//! signer is audited).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use breakglass_client::api::{unix_now, Client};
use breakglass_formats::audit::{AuditEntry, SignedWith};
use breakglass_formats::sshsig::{FLAG_USER_PRESENT, FLAG_USER_VERIFIED};
use breakglass_proto::{pb, signing, transport};
use common::authenticator::Authenticator;
use common::inprocess::InProcess;
use common::Fixture;
use tonic::Code;

const UP: u8 = FLAG_USER_PRESENT;

/// Something that signs a payload.
type Signs<'a> = dyn Fn(&[u8]) -> Vec<u8> + 'a;
const UP_UV: u8 = FLAG_USER_PRESENT | FLAG_USER_VERIFIED;

/// Custodian c1 holds an sk-ssh-ed25519 key, c2 an sk-ecdsa-sha2-nistp256
/// key, c3 an sk-ssh-ed25519 key, commander ic an sk-ssh-ed25519 key; `extra`
/// is appended to the policy (a `[require_hardware]` table, say).
fn fixture(top: &str, extra: &str) -> Fixture {
    let keys = [
        ("c1", sk(1).public()),
        ("c2", Authenticator::p256(2, "ssh:").public()),
        ("c3", sk(3).public()),
        ("ic", sk(9).public()),
        ("ic2", sk(8).public()),
    ];
    Fixture::edited(3, 2, "15m", &["root"], &|mut policy, _| {
        for (id, key) in &keys {
            let marker = format!("id = \"{id}\"\n");
            policy = policy.replacen(
                &marker,
                &format!(
                    "{marker}signing_keys = [\"{}\"]\n",
                    key.to_openssh().unwrap()
                ),
                1,
            );
        }
        format!("{top}\n{policy}\n{extra}")
    })
}

fn sk(seed: u8) -> Authenticator {
    Authenticator::ed25519(seed, "ssh:")
}

fn signature(id: &str, at: u64, sig: Vec<u8>) -> Option<pb::Signature> {
    Some(pb::Signature {
        signer_id: id.into(),
        signed_at: at,
        signature: sig,
    })
}

/// An open of a token-only scope by `ic`, signed by `sign`.
fn open_msg(daemon_id: &str, nonce: u8, sign: &dyn Fn(&[u8]) -> Vec<u8>) -> pb::OpenRequestRequest {
    let at = unix_now();
    let n = [nonce; signing::NONCE_LEN];
    let payload = signing::open_request(daemon_id, "ic", "prod-api", "outage", 600, "", &n, at);
    pb::OpenRequestRequest {
        scope: "prod-api".into(),
        reason: "outage".into(),
        ttl_seconds: 600,
        nonce: n.to_vec(),
        signature: signature("ic", at, sign(&payload)),
        ssh_public_key: String::new(),
        kind: pb::RequestKind::Access as i32,
    }
}

/// Custodian `i`'s (0-based) share for `view`, sealed and signed by `sign`.
fn submit_msg(
    fx: &Fixture,
    client: &Client,
    view: &pb::RequestView,
    i: usize,
    sign: &dyn Fn(&[u8]) -> Vec<u8>,
) -> pb::SubmitShareRequest {
    let id = fx.keys.custodians[i].0.clone();
    let share = common::share_bytes(client, &fx.custodian_key(i), &fx.share_file(&id));
    let eph: [u8; 32] = view.ephemeral_public_key.as_slice().try_into().unwrap();
    let digest: [u8; 32] = view.digest.as_slice().try_into().unwrap();
    let sealed =
        transport::seal_share(&eph, &digest, &view.id, &id, &share, rand_core::OsRng).unwrap();
    let at = unix_now();
    let payload = signing::submit_share(
        &client.info().daemon_id,
        &view.id,
        &digest,
        &id,
        &sealed,
        at,
    );
    pb::SubmitShareRequest {
        request_id: view.id.clone(),
        sealed_share: sealed,
        signature: signature(&id, at, sign(&payload)),
        ..Default::default()
    }
}

fn with(a: &Authenticator, flags: u8, counter: u32) -> impl Fn(&[u8]) -> Vec<u8> + '_ {
    move |p| a.sign(p, flags, counter).pem.into_bytes()
}

fn file_key(path: std::path::PathBuf) -> impl Fn(&[u8]) -> Vec<u8> {
    let me = common::load(&path);
    move |p| me.sign(p).to_vec()
}

async fn audit(c: &mut Client) -> Vec<AuditEntry> {
    c.audit_export(1).await.unwrap()
}

fn last_refusal(entries: &[AuditEntry], call: &str) -> (String, SignedWith) {
    entries
        .iter()
        .rev()
        .find_map(|e| match &e.event {
            breakglass_formats::audit::Event::CallRefused {
                call: c, reason, ..
            } if c == call => Some((reason.clone(), e.signed_with.clone().expect("stamped"))),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no call_refused for {call}"))
}

/// Issue 13: with `require_hardware` for custodians and commanders and user
/// verification, only a security-key signature with a touch and a PIN is
/// accepted; a file key, a missing touch, a missing PIN, another
/// application, a counter of 0 and a counter that does not increase are each
/// refused with PERMISSION_DENIED and a message that says what failed, leave
/// the request as it was, and are audited with how the signature was made.
/// An accepted approval records the key type, flags and counter. The counter
/// survives a restart.
#[tokio::test]
async fn security_keys_are_checked_as_the_policy_requires() {
    let fx = fixture(
        "",
        "[require_hardware]\ncustodians = true\ncommanders = true\nuser_verification = true\n",
    );
    let d = InProcess::start(&fx, 1).await;
    let mut c = d.client.clone();
    let mut rpc = c.rpc().clone();
    let daemon_id = c.info().daemon_id.clone();

    // A commander's file key where hardware is required.
    let ic_file = file_key(fx.commander_key("ic"));
    common::assert_status(
        rpc.open_request(open_msg(&daemon_id, 1, &ic_file)).await,
        Code::PermissionDenied,
        "the policy requires commanders to sign with a security key with user verification (PIN or biometrics) and this signature came from a ssh-ed25519 key",
    );
    let (reason, how) = last_refusal(&audit(&mut c).await, "open_request");
    assert!(reason.contains("requires commanders"), "{reason}");
    assert_eq!(how.key_type, "ssh-ed25519");
    assert_eq!(how.format, "raw");

    let ic_sk = sk(9);
    let view = rpc
        .open_request(open_msg(&daemon_id, 2, &with(&ic_sk, UP_UV, 1)))
        .await
        .unwrap()
        .into_inner();
    c.check_view(&view).unwrap();
    let opened = audit(&mut c)
        .await
        .into_iter()
        .find(|e| e.request_id.as_deref() == Some(&view.id))
        .unwrap();
    let how = opened.signed_with.expect("the open is stamped");
    assert_eq!(how.key_type, "sk-ssh-ed25519@openssh.com");
    assert_eq!(
        (how.user_present, how.user_verified, how.counter),
        (Some(true), Some(true), Some(1))
    );

    let c1 = sk(1);
    let refusals: [(Box<Signs<'_>>, &str); 5] = [
        (
            Box::new(file_key(fx.custodian_key(0))),
            "the policy requires custodians to sign with a security key",
        ),
        (
            Box::new(with(&c1, FLAG_USER_VERIFIED, 5)),
            "the security key reported no user presence (nobody touched it)",
        ),
        (
            Box::new(with(&c1, UP, 5)),
            "the policy requires user verification (PIN or biometrics)",
        ),
        (
            Box::new({
                let other = Authenticator::ed25519(1, "ssh:elsewhere");
                move |p: &[u8]| other.sign(p, UP_UV, 5).pem.into_bytes()
            }),
            "the security key signed for application \"ssh:elsewhere\", but its credential is registered for \"ssh:\"",
        ),
        (
            Box::new(with(&c1, UP_UV, 0)),
            "the security key reported signature counter 0",
        ),
    ];
    for (sign, want) in &refusals {
        common::assert_status(
            rpc.submit_share(submit_msg(&fx, &c, &view, 0, sign.as_ref()))
                .await,
            Code::PermissionDenied,
            want,
        );
        let (reason, how) = last_refusal(&audit(&mut c).await, "submit_share");
        assert!(reason.contains(want), "{reason}");
        assert!(!how.fingerprint.is_empty());
    }
    assert_eq!(
        c.get(&view.id).await.unwrap().approvals.len(),
        0,
        "no refusal counted a share"
    );

    // Accepted: touch, PIN, counter 5; the approval records how.
    let p = rpc
        .submit_share(submit_msg(&fx, &c, &view, 0, &with(&c1, UP_UV, 5)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.accepted, 1);
    let accepted = audit(&mut c)
        .await
        .into_iter()
        .rev()
        .find(|e| e.event.kind() == "share_accepted")
        .unwrap();
    let how = accepted
        .signed_with
        .clone()
        .expect("the approval is stamped");
    assert_eq!(how.key_type, "sk-ssh-ed25519@openssh.com");
    assert_eq!(how.counter, Some(5));
    let line = breakglass_formats::audit::summary(&accepted);
    assert!(
        line.contains("[signed with security key sk-ssh-ed25519@openssh.com SHA256:")
            && line.contains("touch, PIN/biometrics verified, counter 5"),
        "{line}"
    );

    // A signature counter that does not increase: a cloned key, or a replay.
    let second = rpc
        .open_request(open_msg(&daemon_id, 3, &with(&ic_sk, UP_UV, 2)))
        .await
        .unwrap()
        .into_inner();
    common::assert_status(
        rpc.submit_share(submit_msg(&fx, &c, &second, 0, &with(&c1, UP_UV, 5)))
            .await,
        Code::PermissionDenied,
        "the security key's signature counter 5 is not above 5, the last one seen for it: the key may have been cloned",
    );
    // The ecdsa key of c2 completes the first request.
    let c2 = Authenticator::p256(2, "ssh:");
    let p = rpc
        .submit_share(submit_msg(&fx, &c, &view, 1, &with(&c2, UP_UV, 77)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.accepted, 2);
    drop((c, rpc));
    d.stop().await;

    // The counters are durable: after a restart, 5 is still not above 5.
    let d = InProcess::start(&fx, 2).await;
    let mut c = d.client.clone();
    let mut rpc = c.rpc().clone();
    common::assert_status(
        rpc.submit_share(submit_msg(&fx, &c, &second, 0, &with(&c1, UP_UV, 4)))
            .await,
        Code::PermissionDenied,
        "counter 4 is not above 5",
    );
    let daemon_id = c.info().daemon_id.clone();
    let third = rpc
        .open_request(open_msg(&daemon_id, 4, &with(&ic_sk, UP_UV, 3)))
        .await
        .unwrap()
        .into_inner();
    rpc.submit_share(submit_msg(&fx, &c, &third, 0, &with(&c1, UP_UV, 6)))
        .await
        .unwrap();
    drop((c, rpc));
    d.stop().await;
}

/// Issue 13: without `require_hardware`, a member with a security key may
/// still sign with her file key (recorded as such), and a security-key
/// signature still needs a touch and a rising counter; `allow_zero_counter`
/// lets authenticators that never count sign, and the daemon's start
/// records that choice.
#[tokio::test]
async fn hardware_is_optional_unless_required_and_zero_counters_are_opt_in() {
    let fx = fixture("allow_zero_counter = true\n", "");
    let d = InProcess::start(&fx, 3).await;
    let mut c = d.client.clone();
    let mut rpc = c.rpc().clone();
    let daemon_id = c.info().daemon_id.clone();
    let started = audit(&mut c)
        .await
        .into_iter()
        .rev()
        .find(|e| e.event.kind() == "daemon_started")
        .unwrap();
    assert!(
        serde_json::to_string(&started.event)
            .unwrap()
            .contains("\"zero_counter_allowed\":true"),
        "{:?}",
        started.event
    );
    let view = rpc
        .open_request(open_msg(&daemon_id, 1, &file_key(fx.commander_key("ic"))))
        .await
        .unwrap()
        .into_inner();
    let c1 = sk(1);
    common::assert_status(
        rpc.submit_share(submit_msg(&fx, &c, &view, 0, &with(&c1, 0, 0)))
            .await,
        Code::PermissionDenied,
        "no user presence",
    );
    rpc.submit_share(submit_msg(&fx, &c, &view, 0, &with(&c1, UP, 0)))
        .await
        .unwrap();
    rpc.submit_share(submit_msg(
        &fx,
        &c,
        &view,
        1,
        &file_key(fx.custodian_key(1)),
    ))
    .await
    .unwrap();
    let how: Vec<SignedWith> = audit(&mut c)
        .await
        .into_iter()
        .filter(|e| e.event.kind() == "share_accepted")
        .map(|e| e.signed_with.unwrap())
        .collect();
    assert_eq!(how[0].key_type, "sk-ssh-ed25519@openssh.com");
    assert_eq!(
        (how[0].user_verified, how[0].counter),
        (Some(false), Some(0))
    );
    assert_eq!(
        (how[1].key_type.as_str(), how[1].counter),
        ("ssh-ed25519", None)
    );
    drop((c, rpc));
    d.stop().await;
}

/// Issue 13: `breakglassd init` refuses a policy that requires hardware of
/// someone with no security key, naming who.
#[test]
fn init_refuses_hardware_required_without_a_security_key() {
    let dir = tempfile::tempdir().unwrap();
    let fx = Fixture::new(3, 2, "15m");
    let policy = std::fs::read_to_string(fx.policy_path()).unwrap()
        + "\n[require_hardware]\ncustodians = true\n";
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, policy).unwrap();
    let (ok, _, err) = common::run(
        "breakglassd",
        &[
            "init",
            "--policy",
            path.to_str().unwrap(),
            "--state",
            dir.path().join("state").to_str().unwrap(),
            "--shares-out",
            dir.path().join("shares").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!ok);
    assert!(
        err.contains("require_hardware.custodians is set but c1, c2, c3 have no security key in signing_keys"),
        "{err}"
    );
    assert!(!dir.path().join("state").exists(), "nothing was written");
}
