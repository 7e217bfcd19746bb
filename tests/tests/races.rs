//! Replay and race tests (invariants 2 and 4): the same signed submission twice,
//! concurrently and to a second daemon; two custodians completing the quorum at
//! the same instant; cancel racing the last share.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use breakglass_proto::pb;
use common::{load, request_events, share_bytes, Fixture, Submission};

fn code(
    r: &Result<tonic::Response<pb::SubmitShareResponse>, tonic::Status>,
) -> Option<tonic::Code> {
    r.as_ref().err().map(|s| s.code())
}

/// Invariant 4: a signed submission counts once, however often and wherever it is replayed.
#[tokio::test(flavor = "multi_thread")]
async fn the_same_signed_submission_counts_once() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let r = client
        .open(&ic, None, "prod-ssh", "replay", 600, &ic.ssh_public())
        .await
        .unwrap();
    let c1 = load(&fx.custodian_key(0));
    let msg = Submission::new(
        &client,
        &r,
        "c1",
        &c1,
        share_bytes(&client, &fx.custodian_key(0), &fx.share_file("c1")),
    )
    .message();

    // Sent twice at the same instant over two connections.
    let (mut a, mut b) = (fx.client().await, fx.client().await);
    let (ra, rb) = tokio::join!(
        a.rpc().submit_share(msg.clone()),
        b.rpc().submit_share(msg.clone())
    );
    let oks = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
    assert_eq!(oks, 1, "exactly one copy counts: {ra:?} {rb:?}");
    let loser = if ra.is_ok() { &rb } else { &ra };
    assert_eq!(code(loser), Some(tonic::Code::AlreadyExists), "{loser:?}");
    // And again, later.
    let again = client.rpc().submit_share(msg.clone()).await;
    assert_eq!(code(&again), Some(tonic::Code::AlreadyExists));
    assert_eq!(client.get(&r.id).await.unwrap().approvals.len(), 1);

    // To a second daemon: that daemon has no such request (its ids bind its daemon id), and nothing changes there.
    let mut fx2 = Fixture::new(3, 2, "15m");
    fx2.start();
    let mut other = fx2.client().await;
    let e = other.rpc().submit_share(msg).await;
    assert_eq!(code(&e), Some(tonic::Code::NotFound), "{e:?}");
    assert!(other.list(false).await.unwrap().is_empty());
    assert!(request_events(&mut other, &r.id).await.is_empty());
}

/// Invariant 2: when two custodians complete the quorum at the same instant, exactly
/// one credential is minted, exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn two_last_shares_at_once_mint_exactly_one_credential() {
    let mut fx = Fixture::new(5, 3, "15m");
    fx.start();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let shares: Vec<Vec<u8>> = (0..5)
        .map(|i| {
            share_bytes(
                &client,
                &fx.custodian_key(i),
                &fx.share_file(&fx.keys.custodians[i].0),
            )
        })
        .collect();
    let keys: Vec<_> = (0..5).map(|i| load(&fx.custodian_key(i))).collect();
    for round in 0..3 {
        let r = client
            .open(
                &ic,
                None,
                "prod-ssh",
                &format!("race {round}"),
                600,
                &ic.ssh_public(),
            )
            .await
            .unwrap();
        for i in 0..2 {
            let m = Submission::new(
                &client,
                &r,
                &format!("c{}", i + 1),
                &keys[i],
                shares[i].clone(),
            )
            .message();
            client.rpc().submit_share(m).await.unwrap();
        }
        let m3 = Submission::new(&client, &r, "c3", &keys[2], shares[2].clone()).message();
        let m4 = Submission::new(&client, &r, "c4", &keys[3], shares[3].clone()).message();
        let (mut a, mut b) = (fx.client().await, fx.client().await);
        let (r3, r4) = tokio::join!(a.rpc().submit_share(m3), b.rpc().submit_share(m4));
        let unlocked: Vec<bool> = [&r3, &r4]
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|p| p.get_ref().unlocked)
            .collect();
        assert_eq!(
            unlocked,
            vec![true],
            "one share unlocks, the other is refused: {r3:?} {r4:?}"
        );
        let loser = if r3.is_ok() { &r4 } else { &r3 };
        assert_eq!(code(loser), Some(tonic::Code::FailedPrecondition));
        assert!(loser
            .as_ref()
            .err()
            .unwrap()
            .message()
            .contains("is unlocked"));
        let ev = request_events(&mut client, &r.id).await;
        assert_eq!(
            ev.iter().filter(|k| *k == "credential_minted").count(),
            1,
            "{ev:?}"
        );
        assert_eq!(
            ev.iter().filter(|k| *k == "share_accepted").count(),
            3,
            "{ev:?}"
        );
        client.fetch(&ic, None, &r.id).await.unwrap();
    }
}

/// Cancel racing the last share: one of them wins, never both, and the state agrees with the log.
#[tokio::test(flavor = "multi_thread")]
async fn cancel_racing_the_last_share_has_one_winner() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let keys: Vec<_> = (0..2).map(|i| load(&fx.custodian_key(i))).collect();
    let shares: Vec<Vec<u8>> = (0..2)
        .map(|i| {
            share_bytes(
                &client,
                &fx.custodian_key(i),
                &fx.share_file(&fx.keys.custodians[i].0),
            )
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for round in 0..6 {
        let r = client
            .open(
                &ic,
                None,
                "prod-ssh",
                &format!("cancel race {round}"),
                600,
                &ic.ssh_public(),
            )
            .await
            .unwrap();
        let m1 = Submission::new(&client, &r, "c1", &keys[0], shares[0].clone()).message();
        client.rpc().submit_share(m1).await.unwrap();
        let m2 = Submission::new(&client, &r, "c2", &keys[1], shares[1].clone()).message();
        let (mut a, mut b) = (fx.client().await, fx.client().await);
        let (share, cancel) =
            tokio::join!(a.rpc().submit_share(m2), b.cancel(&ic, None, &r.id, "race"));
        let v = client.get(&r.id).await.unwrap();
        let ev = request_events(&mut client, &r.id).await;
        match (share.is_ok(), cancel.is_ok()) {
            (true, false) => {
                assert!(share.unwrap().get_ref().unlocked);
                assert_eq!(v.state, pb::RequestState::Unlocked as i32);
                assert!(cancel
                    .err()
                    .unwrap()
                    .to_string()
                    .starts_with("FAILED_PRECONDITION"));
                assert!(
                    ev.contains(&"credential_minted".to_string())
                        && !ev.contains(&"request_cancelled".to_string())
                );
                seen.insert("share won");
            }
            (false, true) => {
                assert_eq!(share.err().unwrap().code(), tonic::Code::FailedPrecondition);
                assert_eq!(v.state, pb::RequestState::Cancelled as i32);
                assert!(
                    !ev.contains(&"credential_minted".to_string())
                        && ev.contains(&"request_cancelled".to_string())
                );
                assert_eq!(v.credential_expires_at, 0);
                seen.insert("cancel won");
            }
            other => panic!("both or neither succeeded: {other:?}"),
        }
    }
    eprintln!("outcomes seen: {seen:?}");
}
