//! Invariants 4, 5 and 9: every bad call gets its own gRPC status and an
//! actionable message, and leaves the request exactly as it was.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use breakglass_client::api::unix_now;
use breakglass_proto::{pb, signing};
use common::{assert_status, load, request_events, share_bytes, Fixture, Submission};
use tonic::Code;

#[tokio::test(flavor = "multi_thread")]
async fn bad_submissions_are_refused_and_change_nothing() {
    let mut fx = Fixture::new(5, 3, "15m");
    fx.start();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let req = client
        .open(
            &ic,
            None,
            "prod-ssh",
            "bad input test",
            600,
            &ic.ssh_public(),
        )
        .await
        .unwrap();
    let other = client
        .open(
            &ic,
            None,
            "prod-ssh",
            "another request",
            600,
            &ic.ssh_public(),
        )
        .await
        .unwrap();
    let c1 = load(&fx.custodian_key(0));
    let c2 = load(&fx.custodian_key(1));
    let outsider = load(&fx.keys.outsider);
    let s1 = share_bytes(&client, &fx.custodian_key(0), &fx.share_file("c1"));
    let s2 = share_bytes(&client, &fx.custodian_key(1), &fx.share_file("c2"));

    // One accepted share so "unchanged" also covers approvals.
    let ok = Submission::new(&client, &req, "c1", &c1, s1.clone()).message();
    client.rpc().submit_share(ok).await.unwrap();
    let before = client.get(&req.id).await.unwrap();
    assert_eq!(before.approvals.len(), 1);

    let mut cases: Vec<(&str, pb::SubmitShareRequest, Code, &str)> = Vec::new();

    // Unknown custodian.
    let mut s = Submission::new(&client, &req, "mallory", &outsider, s2.clone());
    cases.push((
        "unknown custodian",
        s.message(),
        Code::PermissionDenied,
        "`mallory` is not a custodian",
    ));

    // Invariant 4: signature by the wrong key (c2's id, outsider's key).
    s = Submission::new(&client, &req, "c2", &outsider, s2.clone());
    cases.push((
        "wrong key",
        s.message(),
        Code::Unauthenticated,
        "does not verify with the key registered",
    ));

    // Invariant 4: a signature made for another daemon id.
    s = Submission::new(&client, &req, "c2", &c2, s2.clone());
    s.daemon_id = "another-daemon".into();
    cases.push((
        "other daemon",
        s.message(),
        Code::Unauthenticated,
        "for another request or daemon",
    ));

    // Invariant 4: a signed submission for `other` replayed on `req`.
    let mut replay = Submission::new(&client, &other, "c2", &c2, s2.clone()).message();
    replay.request_id = req.id.clone();
    cases.push((
        "replay on another request",
        replay,
        Code::Unauthenticated,
        "does not verify",
    ));

    // Invariant 4: stale timestamp.
    s = Submission::new(&client, &req, "c2", &c2, s2.clone());
    s.signed_at = unix_now() - 3600;
    cases.push((
        "stale",
        s.message(),
        Code::Unauthenticated,
        "away from the daemon's clock",
    ));

    // A second share from the same custodian.
    s = Submission::new(&client, &req, "c1", &c1, s1.clone());
    cases.push((
        "duplicate custodian",
        s.message(),
        Code::AlreadyExists,
        "already submitted a share",
    ));

    // Invariant 5: a share that fails its commitment names the custodian.
    let mut corrupt = s2.clone();
    corrupt[5] ^= 0x40;
    s = Submission::new(&client, &req, "c2", &c2, corrupt);
    cases.push((
        "commitment",
        s.message(),
        Code::InvalidArgument,
        "share from custodian `c2` does not match their commitment",
    ));

    // Invariant 5: x = 0.
    let mut zero = s2.clone();
    zero[0] = 0;
    s = Submission::new(&client, &req, "c2", &c2, zero);
    cases.push(("x = 0", s.message(), Code::InvalidArgument, "x = 0"));

    // Invariant 5: duplicate x (c2 submits c1's share, x = 1).
    s = Submission::new(&client, &req, "c2", &c2, s1.clone());
    cases.push((
        "duplicate x",
        s.message(),
        Code::InvalidArgument,
        "another custodian's share",
    ));

    // Invariant 5: wrong length (a 32-byte share seals to 105 bytes, not 106).
    s = Submission::new(&client, &req, "c2", &c2, s2.clone());
    let mut sealed = s.message().sealed_share;
    sealed.pop();
    s.sealed_override = Some(sealed);
    cases.push((
        "wrong length",
        s.message(),
        Code::InvalidArgument,
        "sealed share is 105 bytes with version 1; expected 106 bytes",
    ));

    // Malformed bytes of the right length (garbage ciphertext).
    s = Submission::new(&client, &req, "c2", &c2, s2.clone());
    let mut garbage = s.message().sealed_share;
    for b in garbage.iter_mut().skip(60) {
        *b ^= 0x5a;
    }
    s.sealed_override = Some(garbage);
    cases.push((
        "garbage ciphertext",
        s.message(),
        Code::InvalidArgument,
        "does not open with this request's key",
    ));

    // No signature at all.
    let mut unsigned = Submission::new(&client, &req, "c2", &c2, s2.clone()).message();
    unsigned.signature = None;
    cases.push((
        "unsigned",
        unsigned,
        Code::InvalidArgument,
        "signature: is missing",
    ));

    // Unknown request.
    let mut unknown = Submission::new(&client, &req, "c2", &c2, s2.clone()).message();
    unknown.request_id = "req-0000000000000000".into();
    cases.push((
        "unknown request",
        unknown,
        Code::NotFound,
        "no request `req-0000000000000000`",
    ));

    for (name, msg, code, needle) in cases {
        let r = client.rpc().submit_share(msg).await;
        match r {
            Ok(v) => panic!("{name}: accepted {v:?}"),
            Err(s) => {
                assert_eq!(s.code(), code, "{name}: {}", s.message());
                assert!(
                    s.message().contains(needle),
                    "{name}: {:?} should contain {needle:?}",
                    s.message()
                );
            }
        }
        assert_eq!(
            client.get(&req.id).await.unwrap(),
            before,
            "{name} changed the request"
        );
    }

    // The good share from c2 still works afterwards.
    let good = Submission::new(&client, &req, "c2", &c2, s2).message();
    let p = client.rpc().submit_share(good).await.unwrap().into_inner();
    assert_eq!((p.accepted, p.unlocked), (2, false));

    // Invariant 6: attributed rejections (the signature verified) are in the log with the
    // custodian, whatever was wrong; unauthenticated junk is not.
    assert_eq!(
        request_events(&mut client, &req.id).await,
        vec![
            "request_opened",
            "share_accepted",
            "share_rejected",
            "share_rejected",
            "share_rejected",
            "share_rejected",
            "share_rejected",
            "share_rejected",
            "share_accepted",
        ]
    );
    // Every refusal of a signed submission is on the record with its reason,
    // the wrong-length share included (its signature is checked first).
    let reasons: Vec<String> = client
        .audit_export(1)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.event {
            breakglass_formats::audit::Event::ShareRejected { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("sealed share is 105 bytes")),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_opens_and_fetches_are_refused() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let daemon_id = client.info().daemon_id.clone();
    let ic = load(&fx.commander_key("ic"));
    let ic2 = load(&fx.commander_key("ic2"));
    let c1 = load(&fx.custodian_key(0));

    let open_with = |signer_id: &str,
                     key: &breakglass_client::identity::Identity,
                     scope: &str,
                     ttl: u64,
                     at: u64,
                     ssh: &str| {
        let nonce = [7u8; 16];
        let p = signing::open_request(&daemon_id, signer_id, scope, "why", ttl, ssh, &nonce, at);
        pb::OpenRequestRequest {
            scope: scope.into(),
            reason: "why".into(),
            ttl_seconds: ttl,
            nonce: nonce.to_vec(),
            signature: Some(pb::Signature {
                signer_id: signer_id.into(),
                signed_at: at,
                signature: key.sign(&p).to_vec(),
            }),
            ssh_public_key: ssh.into(),
            kind: pb::RequestKind::Access as i32,
        }
    };
    let open =
        |signer_id: &str,
         key: &breakglass_client::identity::Identity,
         scope: &str,
         ttl: u64,
         at: u64| open_with(signer_id, key, scope, ttl, at, &key.ssh_public());
    let now = unix_now();
    assert_status(
        client
            .rpc()
            .open_request(open("c1", &c1, "prod-ssh", 60, now))
            .await,
        Code::PermissionDenied,
        "`c1` is not a commander",
    );
    assert_status(
        client
            .rpc()
            .open_request(open("ic2", &ic2, "prod-db", 60, now))
            .await,
        Code::PermissionDenied,
        "may not open requests for scope `prod-db`",
    );
    assert_status(
        client
            .rpc()
            .open_request(open("ic", &ic, "prod-ssh", 1801, now))
            .await,
        Code::InvalidArgument,
        "ttl 1801s is over the maximum 1800s",
    );
    assert_status(
        client
            .rpc()
            .open_request(open("ic", &ic, "nope", 60, now))
            .await,
        Code::InvalidArgument,
        "scope `nope` is not in the policy",
    );
    assert_status(
        client
            .rpc()
            .open_request(open("ic", &ic2, "prod-ssh", 60, now))
            .await,
        Code::Unauthenticated,
        "does not verify",
    );
    assert_status(
        client
            .rpc()
            .open_request(open("ic", &ic, "prod-ssh", 60, now - 600))
            .await,
        Code::Unauthenticated,
        "away from the daemon's clock",
    );
    let mut short_nonce = open("ic", &ic, "prod-ssh", 60, now);
    short_nonce.nonce.truncate(3);
    assert_status(
        client.rpc().open_request(short_nonce).await,
        Code::InvalidArgument,
        "nonce: is 3 bytes",
    );
    // The SSH key to certify: needed for an SSH scope, well-formed, and refused for a token-only scope.
    assert_status(
        client
            .rpc()
            .open_request(open_with("ic", &ic, "prod-ssh", 60, now, ""))
            .await,
        Code::InvalidArgument,
        "scope `prod-ssh` mints an OpenSSH certificate, so the key to certify is needed",
    );
    assert_status(
        client
            .rpc()
            .open_request(open_with(
                "ic",
                &ic,
                "prod-ssh",
                60,
                now,
                "ssh-ed25519 garbage",
            ))
            .await,
        Code::InvalidArgument,
        "ssh_public_key: not an OpenSSH public key",
    );
    assert_status(
        client
            .rpc()
            .open_request(open_with("ic", &ic, "prod-api", 60, now, &ic.ssh_public()))
            .await,
        Code::InvalidArgument,
        "scope `prod-api` mints no SSH certificate",
    );
    // A replayed open names the same request and is refused.
    let first = open("ic", &ic, "prod-ssh", 60, now);
    client.rpc().open_request(first.clone()).await.unwrap();
    assert_status(
        client.rpc().open_request(first).await,
        Code::AlreadyExists,
        "this signed open was already used",
    );
    assert_eq!(
        client.list(false).await.unwrap().len(),
        1,
        "refused opens created nothing"
    );

    // Fetch by anyone but the requester.
    let r = client
        .open(&ic, None, "prod-ssh", "fetch test", 60, &ic.ssh_public())
        .await
        .unwrap();
    let e = client
        .fetch(&ic2, None, &r.id)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("PERMISSION_DENIED") && e.contains("only the requester `ic`"),
        "{e}"
    );
    let e = client
        .fetch(&c1, Some("c1"), &r.id)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("PERMISSION_DENIED") && e.contains("`c1` is not a commander"),
        "{e}"
    );
    for i in 0..2 {
        common::approve(&fx, &mut client, &r, i).await;
    }
    let e = client
        .fetch(&ic2, None, &r.id)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.starts_with("PERMISSION_DENIED"), "{e}");
    client.fetch(&ic, None, &r.id).await.unwrap();
}
