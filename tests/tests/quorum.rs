//! The whole quorum unlock through the real binaries over loopback TLS.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use breakglass_client::api::unix_now;
use breakglass_formats::keys::AuthorityPublic;
use breakglass_formats::verify::verify_token;
use breakglass_proto::pb;
use common::{assert_status, load, request_events, Fixture};

/// Invariants 2 and 7: 2 of 3 shares give nothing; the 3rd gives a credential that
/// verifies offline against the authority `init` printed, with the right claims and
/// an expiry within the TTL; a tampered token fails.
#[tokio::test(flavor = "multi_thread")]
async fn two_shares_give_nothing_three_give_a_verifiable_credential() {
    let mut fx = Fixture::new(5, 3, "15m");
    fx.start();
    let ic = fx.commander_key("ic");
    let ic_pub = format!("{}.pub", ic.display());

    // The commander opens through the CLI.
    let (ok, out, err) = fx.cli(
        &ic,
        &[
            "request",
            "open",
            "--scope",
            "prod-ssh",
            "--reason",
            "db primary down",
            "--ttl",
            "20m",
            "--ssh-key",
            &ic_pub,
        ],
    );
    assert!(ok, "{out}\n{err}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("request   "))
        .unwrap()
        .trim()
        .to_string();
    assert!(out.contains("approvals 0/3"), "{out}");

    // Two custodians approve through the CLI.
    for i in 0..2 {
        let who = &fx.keys.custodians[i].0;
        let share = fx.share_file(who);
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
        assert!(ok, "{out}\n{err}");
        assert!(
            out.contains(&format!("share accepted: {}/3", i + 1)),
            "{out}"
        );
        assert!(
            out.contains("reason    db primary down"),
            "the custodian is shown the reason: {out}"
        );
    }

    // Below the threshold: no credential.
    let mut client = fx.client().await;
    let v = client.get(&id).await.unwrap();
    assert_eq!(v.state, pb::RequestState::Collecting as i32);
    assert_eq!(v.approvals.len(), 2);
    let err = client
        .fetch(&load(&ic), None, &id)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("FAILED_PRECONDITION") && err.contains("is collecting"),
        "{err}"
    );
    let (ok, _, err) = fx.cli(&ic, &["credential", "fetch", &id]);
    assert!(!ok && err.contains("has no credential"), "{err}");

    // A custodian cannot approve twice (the second try changes nothing).
    let (ok, _, err) = fx.cli(
        &fx.custodian_key(0),
        &[
            "share",
            "submit",
            &id,
            "--share",
            fx.share_file("c1").to_str().unwrap(),
            "--yes",
        ],
    );
    assert!(
        !ok && err.contains("ALREADY_EXISTS") && err.contains("already submitted"),
        "{err}"
    );

    // The third completes the quorum.
    let (ok, out, err) = fx.cli(
        &fx.custodian_key(3),
        &[
            "share",
            "submit",
            &id,
            "--share",
            fx.share_file("c4").to_str().unwrap(),
            "--yes",
        ],
    );
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("share accepted: 3/3") && out.contains("quorum reached"),
        "{out}"
    );

    let v = client.get(&id).await.unwrap();
    assert_eq!(v.state, pb::RequestState::Unlocked as i32);

    // Fetch through the CLI, verify offline through the CLI and the library.
    let cred = fx.dir.path().join("cred.json");
    let (ok, out, err) = fx.cli(
        &ic,
        &[
            "credential",
            "fetch",
            &id,
            "--out",
            cred.to_str().unwrap(),
            "--ssh-key",
            &ic_pub,
        ],
    );
    assert!(ok, "{out}\n{err}");
    // The certificate lands beside the key, where ssh looks for it.
    let cert_path = format!("{}-cert.pub", ic.display());
    assert!(
        out.contains(&format!("ssh certificate written to {cert_path}")),
        "{out}"
    );
    let cert_line = std::fs::read_to_string(&cert_path).unwrap();
    assert!(
        cert_line.starts_with("ssh-ed25519-cert-v01@openssh.com "),
        "{cert_line}"
    );
    let authority = fx.authority_paserk();
    let (ok, out, err) = common::run(
        "breakglass",
        &[
            "credential",
            "verify",
            cred.to_str().unwrap(),
            "--authority",
            &authority,
        ],
        &[],
    );
    assert!(
        ok && out.contains("valid: signed by the authority"),
        "{out}\n{err}"
    );

    let bundle: serde_json::Value = serde_json::from_slice(&std::fs::read(&cred).unwrap()).unwrap();
    let token = bundle["paseto"].as_str().unwrap();
    assert!(token.starts_with("v4.public."));
    let a = AuthorityPublic::parse(&authority).unwrap();
    let now = unix_now();
    let claims = verify_token(&a, token, now).unwrap();
    assert_eq!(claims.subject, "ic");
    assert_eq!(claims.scope, "prod-ssh");
    assert_eq!(claims.request_id, id);
    assert_eq!(claims.approvers, vec!["c1", "c2", "c4"]);
    assert_eq!(claims.principals, vec!["root", "ops"]);
    assert_eq!(
        claims.expires_at - claims.issued_at,
        20 * 60 + 120,
        "exp = now + requested ttl; iat = nbf = now - clock_skew (120 s), like the certificate"
    );
    assert!(claims.issued_at <= now && claims.expires_at > now);
    assert_eq!(
        claims.issuer,
        format!("breakglass:{}", client.info().daemon_id)
    );

    // Tampered: flip one character in the payload.
    let mut t = token.as_bytes().to_vec();
    let i = 20;
    t[i] = if t[i] == b'x' { b'y' } else { b'x' };
    let tampered = String::from_utf8(t).unwrap();
    let e = verify_token(&a, &tampered, now).err().unwrap().to_string();
    assert!(e.contains("signature does not verify"), "{e}");
    std::fs::write(fx.dir.path().join("bad.token"), &tampered).unwrap();
    let (ok, _, err) = common::run(
        "breakglass",
        &[
            "credential",
            "verify",
            fx.dir.path().join("bad.token").to_str().unwrap(),
            "--authority",
            &authority,
        ],
        &[],
    );
    assert!(!ok && err.contains("signature does not verify"), "{err}");

    // A share after unlock is refused, and the request is unchanged.
    let before = client.get(&id).await.unwrap();
    let (ok, _, err) = fx.cli(
        &fx.custodian_key(4),
        &[
            "share",
            "submit",
            &id,
            "--share",
            fx.share_file("c5").to_str().unwrap(),
            "--yes",
        ],
    );
    assert!(
        !ok && err.contains("nothing to approve"),
        "the CLI refuses before sending: {err}"
    );
    let c5 = load(&fx.custodian_key(4));
    let share = common::share_bytes(&client, &fx.custodian_key(4), &fx.share_file("c5"));
    let msg = common::Submission::new(&client, &before, "c5", &c5, share).message();
    assert_status(
        client.rpc().submit_share(msg).await,
        tonic::Code::FailedPrecondition,
        "is unlocked",
    );
    assert_eq!(client.get(&id).await.unwrap(), before);

    // Invariant 6: exactly these events; the signed-but-refused calls (two
    // fetches before the unlock, a duplicate approval, one after the unlock)
    // are on the record too.
    assert_eq!(
        request_events(&mut client, &id).await,
        vec![
            "request_opened",
            "share_accepted",
            "share_accepted",
            "call_refused",
            "call_refused",
            "share_rejected",
            "share_accepted",
            "quorum_reached",
            "credential_minted",
            "credential_fetched",
            "share_rejected",
        ]
    );

    assert!(fx.stop(), "daemon exits cleanly on SIGTERM");
}

/// The credential is stored encrypted to the requester, so a restart does not lose it;
/// a request left collecting by a restart is cancelled (its ephemeral key is gone).
#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_credentials_and_cancels_collecting_requests() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let ic = load(&fx.commander_key("ic"));
    let mut client = fx.client().await;
    let done = client
        .open(&ic, None, "prod-ssh", "restart test", 600, &ic.ssh_public())
        .await
        .unwrap();
    for i in 0..2 {
        common::approve(&fx, &mut client, &done, i).await;
    }
    let pending = client
        .open(
            &ic,
            None,
            "prod-ssh",
            "left collecting",
            600,
            &ic.ssh_public(),
        )
        .await
        .unwrap();
    assert!(fx.stop());
    fx.start();
    let mut client = fx.client().await;
    let b = client.fetch(&ic, None, &done.id).await.unwrap();
    assert_eq!(b.request_id, done.id);
    let p = client.get(&pending.id).await.unwrap();
    assert_eq!(p.state, pb::RequestState::Cancelled as i32);
    assert_eq!(
        request_events(&mut client, &done.id).await,
        vec![
            "request_opened",
            "share_accepted",
            "share_accepted",
            "quorum_reached",
            "credential_minted",
            "credential_fetched"
        ]
    );
    assert_eq!(
        request_events(&mut client, &pending.id).await,
        vec!["request_opened", "request_cancelled"]
    );
    assert!(p.close_reason.contains("daemon"), "{}", p.close_reason);
}

/// Custodian or requester may cancel; another commander may not; after cancel no share is accepted.
#[tokio::test(flavor = "multi_thread")]
async fn cancel_rules() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let ic2 = load(&fx.commander_key("ic2"));
    let r = client
        .open(&ic, None, "prod-ssh", "cancel test", 600, &ic.ssh_public())
        .await
        .unwrap();
    let e = client
        .cancel(&ic2, None, &r.id, "not mine")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("PERMISSION_DENIED") && e.contains("may not cancel"),
        "{e}"
    );
    assert_eq!(
        client.get(&r.id).await.unwrap(),
        r,
        "refused cancel changes nothing"
    );
    let c1 = load(&fx.custodian_key(0));
    let v = client
        .cancel(&c1, None, &r.id, "looks wrong")
        .await
        .unwrap();
    assert_eq!(v.state, pb::RequestState::Cancelled as i32);
    assert_eq!(v.close_reason, "cancelled by c1: looks wrong");
    let f = client.read_share_file(&c1, &fx.share_file("c1")).unwrap();
    let e = client
        .submit(&c1, None, &v, &f)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("FAILED_PRECONDITION") && e.contains("is cancelled"),
        "{e}"
    );
    let r2 = client
        .open(
            &ic,
            None,
            "prod-ssh",
            "requester cancels",
            600,
            &ic.ssh_public(),
        )
        .await
        .unwrap();
    let v2 = client.cancel(&ic, None, &r2.id, "resolved").await.unwrap();
    assert_eq!(v2.state, pb::RequestState::Cancelled as i32);
    assert_eq!(
        request_events(&mut client, &r.id).await,
        vec![
            "request_opened",
            "call_refused",
            "request_cancelled",
            "share_rejected"
        ],
        "the refused cancel of another commander and the signed submission after the cancel are on the record"
    );
    assert_eq!(
        request_events(&mut client, &r2.id).await,
        vec!["request_opened", "request_cancelled"]
    );
}

/// Revocation: the requester or a custodian may revoke, once; another commander may not; the
/// published list is signed by D and makes offline verification fail for both formats.
#[tokio::test(flavor = "multi_thread")]
async fn revocation_is_published_and_enforced_offline() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let ic2 = load(&fx.commander_key("ic2"));
    let c1 = load(&fx.custodian_key(0));
    let r = client
        .open(
            &ic,
            None,
            "prod-ssh",
            "revocation test",
            600,
            &ic.ssh_public(),
        )
        .await
        .unwrap();
    let e = client
        .revoke(&c1, None, &r.id, "too early")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("FAILED_PRECONDITION") && e.contains("has no credential"),
        "{e}"
    );
    for i in 0..2 {
        common::approve(&fx, &mut client, &r, i).await;
    }
    let cred = fx.dir.path().join("cred.json");
    let ic_path = fx.commander_key("ic");
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
    let cert = fx.dir.path().join(format!("{}-cert.pub", r.id));
    assert!(
        cert.is_file(),
        "without a matching key the certificate is written beside the bundle"
    );

    let before = client.get(&r.id).await.unwrap();
    let e = client
        .revoke(&ic2, None, &r.id, "not mine")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("PERMISSION_DENIED") && e.contains("may not revoke"),
        "{e}"
    );
    assert_eq!(
        client.get(&r.id).await.unwrap(),
        before,
        "a refused revoke changes nothing"
    );

    let authority = fx.authority_paserk();
    let list = fx.dir.path().join("revoked.json");
    let krl = fx.dir.path().join("revoked.krl");
    let (ok, out, err) = fx.cli(
        &ic_path,
        &[
            "revocations",
            "--json",
            list.to_str().unwrap(),
            "--krl",
            krl.to_str().unwrap(),
        ],
    );
    assert!(ok && out.contains("(0 revoked)"), "{out}{err}");
    let (ok, out, err) = common::run(
        "breakglass",
        &[
            "credential",
            "verify",
            cred.to_str().unwrap(),
            "--authority",
            &authority,
            "--revocations",
            list.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        ok && out.contains("token valid") && out.contains("ssh certificate valid"),
        "{out}{err}"
    );

    // A custodian revokes (through the CLI).
    let (ok, out, err) = fx.cli(
        &fx.custodian_key(0),
        &["credential", "revoke", &r.id, "--reason", "laptop stolen"],
    );
    assert!(ok && out.contains("by c1: laptop stolen"), "{out}{err}");
    let v = client.get(&r.id).await.unwrap();
    assert_eq!(
        (v.revoked_by.as_str(), v.revoke_reason.as_str()),
        ("c1", "laptop stolen")
    );
    let e = client
        .revoke(&ic, None, &r.id, "again")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("ALREADY_EXISTS") && e.contains("already revoked by `c1`"),
        "{e}"
    );

    let (ok, out, err) = fx.cli(
        &ic_path,
        &[
            "revocations",
            "--json",
            list.to_str().unwrap(),
            "--krl",
            krl.to_str().unwrap(),
        ],
    );
    assert!(
        ok && out.contains("(1 revoked)") && out.contains("(1 certificates)"),
        "{out}{err}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&list).unwrap()).unwrap();
    assert_eq!(doc["revoked_token_ids"][0], r.id.as_str());
    for file in [&cred, &cert] {
        let (ok, _, err) = common::run(
            "breakglass",
            &[
                "credential",
                "verify",
                file.to_str().unwrap(),
                "--authority",
                &authority,
                "--revocations",
                list.to_str().unwrap(),
            ],
            &[],
        );
        assert!(
            !ok && err.contains("revoked at") && err.contains("by c1 (laptop stolen)"),
            "{err}"
        );
    }
    // Without the list, the signature alone still verifies (revocation is the list's job).
    let (ok, _, err) = common::run(
        "breakglass",
        &[
            "credential",
            "verify",
            cert.to_str().unwrap(),
            "--authority",
            &authority,
        ],
        &[],
    );
    assert!(ok, "{err}");
    // The revocation list is signed by D: the client checked it; a tampered list is refused.
    let list = client.revocations(false).await.unwrap();
    assert_eq!(list.revocations.len(), 1);
    assert_eq!(
        request_events(&mut client, &r.id).await,
        vec![
            "request_opened",
            "call_refused",
            "share_accepted",
            "share_accepted",
            "quorum_reached",
            "credential_minted",
            "credential_fetched",
            "call_refused",
            "credential_revoked",
            "call_refused",
        ],
        "the refused revocations (before the unlock, by another commander, twice) are on the record"
    );
}
