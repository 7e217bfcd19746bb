//! Fast service tests: the daemon in process, served over `tokio::io::duplex`
//! (tonic's in-memory transport, no TLS, no sockets), with a fake clock and a
//! seeded RNG. Time-dependent rules (the collection window, expiry) and
//! separation of duties are checked here by moving the clock, never by
//! sleeping. What only real processes prove (TLS, restarts, kill -9, memory
//! scans, sshd) stays in the end-to-end suites.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use breakglass_client::api::unix_now;
use breakglass_daemon::{Limits, Store};
use breakglass_proto::pb;
use common::inprocess::InProcess;
use common::{assert_status, load, request_events, share_bytes, Fixture, Submission};
use tonic::Code;

/// Invariant 7 (time-boxed): a share is accepted until the second before the
/// deadline and refused from the deadline on, with the request unchanged; the
/// sweep then expires it, and a share after that is refused as expired.
#[tokio::test]
async fn window_closes_at_the_deadline_and_the_request_expires() {
    let fx = Fixture::new(3, 3, "1m");
    let mut d = InProcess::start(&fx, 1).await;
    let ic = load(&fx.commander_key("ic"));
    let r = d
        .client
        .open(&ic, None, "prod-ssh", "deadline test", 60, &ic.ssh_public())
        .await
        .unwrap();
    d.set_clock(r.deadline - 1);
    common::approve(&fx, &mut d.client, &r, 0).await;
    assert!(d.daemon.sweep().unwrap().is_empty(), "not due yet");

    d.set_clock(r.deadline);
    let before = d.client.get(&r.id).await.unwrap();
    let c2 = load(&fx.custodian_key(1));
    let s2 = share_bytes(&d.client, &fx.custodian_key(1), &fx.share_file("c2"));
    let msg = Submission::new(&d.client, &r, "c2", &c2, s2.clone()).message();
    assert_status(
        d.client.rpc().submit_share(msg).await,
        Code::FailedPrecondition,
        &format!(
            "stopped collecting shares at {} (0s ago)",
            breakglass_formats::time::rfc3339(r.deadline).unwrap()
        ),
    );
    assert_eq!(d.client.get(&r.id).await.unwrap(), before, "unchanged");

    assert_eq!(d.daemon.sweep().unwrap(), vec![r.id.clone()]);
    let v = d.client.get(&r.id).await.unwrap();
    assert_eq!(v.state, pb::RequestState::Expired as i32);
    assert_eq!(v.closed_at, r.deadline);
    let msg = Submission::new(&d.client, &r, "c2", &c2, s2).message();
    assert_status(
        d.client.rpc().submit_share(msg).await,
        Code::FailedPrecondition,
        "is expired",
    );
    assert_eq!(d.client.get(&r.id).await.unwrap(), v);
    assert_eq!(
        request_events(&mut d.client, &r.id).await,
        vec![
            "request_opened",
            "share_accepted",
            "share_rejected",
            "request_expired",
            "share_rejected"
        ],
        "both signed refusals (window closed, then expired) are on the record"
    );
}

/// Invariant 7: a stale signature (signed outside the freshness allowance of the
/// daemon's clock) is refused, and the request does not change.
#[tokio::test]
async fn stale_signature_is_refused_by_the_daemons_clock() {
    let fx = Fixture::new(3, 2, "15m");
    let mut d = InProcess::start(&fx, 2).await;
    let ic = load(&fx.commander_key("ic"));
    let r = d
        .client
        .open(&ic, None, "prod-ssh", "freshness", 60, &ic.ssh_public())
        .await
        .unwrap();
    d.set_clock(unix_now() + 121);
    let c1 = load(&fx.custodian_key(0));
    let s1 = share_bytes(&d.client, &fx.custodian_key(0), &fx.share_file("c1"));
    let msg = Submission::new(&d.client, &r, "c1", &c1, s1).message();
    assert_status(
        d.client.rpc().submit_share(msg).await,
        Code::Unauthenticated,
        "at most 120s is accepted",
    );
    assert_eq!(d.client.get(&r.id).await.unwrap(), r);
}

const SOD_COMMANDER: &str =
    "[[commanders]]\nid = \"c1\"\nssh_key = \"{c1_key}\"\nscopes = [\"prod-ssh\"]\n";

/// Separation of duties (on by default): a custodian who is also the requester
/// cannot approve; the others can.
#[tokio::test]
async fn requester_cannot_approve_their_own_request() {
    let fx = Fixture::with_extra(3, 2, "15m", &["root"], "", SOD_COMMANDER);
    let mut d = InProcess::start(&fx, 3).await;
    let c1 = load(&fx.custodian_key(0));
    let r = d
        .client
        .open(&c1, Some("c1"), "prod-ssh", "my own", 60, &c1.ssh_public())
        .await
        .unwrap();
    let f = d.client.read_share_file(&c1, &fx.share_file("c1")).unwrap();
    let e = d
        .client
        .submit(&c1, Some("c1"), &r, &f)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.starts_with("PERMISSION_DENIED"), "{e}");
    assert!(
        e.contains("custodian `c1` opened request") && e.contains("another custodian must approve"),
        "{e}"
    );
    assert_eq!(d.client.get(&r.id).await.unwrap(), r, "nothing changed");
    for i in 1..3 {
        common::approve(&fx, &mut d.client, &r, i).await;
    }
    let v = d.client.get(&r.id).await.unwrap();
    assert_eq!(v.approvals.len(), 2);
    assert_eq!(v.state, pb::RequestState::Unlocked as i32);
}

/// With `separation_of_duties = false` the same share counts.
#[tokio::test]
async fn separation_of_duties_can_be_turned_off() {
    let fx = Fixture::with_extra(
        3,
        2,
        "15m",
        &["root"],
        "separation_of_duties = false",
        SOD_COMMANDER,
    );
    let mut d = InProcess::start(&fx, 4).await;
    let c1 = load(&fx.custodian_key(0));
    let r = d
        .client
        .open(&c1, Some("c1"), "prod-ssh", "my own", 60, &c1.ssh_public())
        .await
        .unwrap();
    let f = d.client.read_share_file(&c1, &fx.share_file("c1")).unwrap();
    let p = d.client.submit(&c1, Some("c1"), &r, &f).await.unwrap();
    assert_eq!(p.accepted, 1);
}

/// Randomness is injected: the same seed gives the same E_req, another seed another.
#[tokio::test]
async fn ephemeral_keys_come_from_the_injected_rng() {
    let mut publics = Vec::new();
    for seed in [9, 9, 10] {
        let fx = Fixture::new(3, 2, "15m");
        let mut d = InProcess::start(&fx, seed).await;
        let ic = load(&fx.commander_key("ic"));
        let r = d
            .client
            .open(&ic, None, "prod-api", "rng", 60, "")
            .await
            .unwrap();
        publics.push(r.ephemeral_public_key);
    }
    assert_eq!(publics[0], publics[1]);
    assert_ne!(publics[0], publics[2]);
}

/// Opens `n` requests one second apart (ic three, then ic2), newest last.
async fn open_many(fx: &Fixture, d: &mut InProcess, n: usize) -> Vec<pb::RequestView> {
    let (ic, ic2) = (
        load(&fx.commander_key("ic")),
        load(&fx.commander_key("ic2")),
    );
    let mut out = Vec::new();
    for i in 0..n {
        d.set_clock(unix_now() + i as u64);
        let (me, as_id) = if i < 3 {
            (&ic, None)
        } else {
            (&ic2, Some("ic2"))
        };
        let r = d
            .client
            .open(
                me,
                as_id,
                "prod-ssh",
                &format!("page {i}"),
                60,
                &me.ssh_public(),
            )
            .await
            .unwrap();
        out.push(r);
    }
    out
}

/// Bounded reads: `ListRequests` pages newest first through the requests-by-time
/// index, each page at most `limit`, with a token for the next; the collecting
/// filter reads the collecting index.
#[tokio::test]
async fn list_requests_pages_newest_first() {
    let fx = Fixture::new(3, 2, "15m");
    let mut d = InProcess::start(&fx, 5).await;
    let opened = open_many(&fx, &mut d, 5).await;
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let (page, next) = d.client.list_page(false, 2, &token).await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.into_iter().map(|r| r.id));
        pages += 1;
        if next.is_empty() {
            break;
        }
        token = next;
    }
    let newest_first: Vec<String> = opened.iter().rev().map(|r| r.id.clone()).collect();
    assert_eq!(seen, newest_first);
    assert_eq!(pages, 3);

    let ic = load(&fx.commander_key("ic"));
    d.client
        .cancel(&ic, None, &opened[0].id, "done")
        .await
        .unwrap();
    let (collecting, next) = d.client.list_page(true, 10, "").await.unwrap();
    assert_eq!(collecting.len(), 4);
    assert!(next.is_empty());
    assert!(collecting.iter().all(|r| r.id != opened[0].id));
}

/// Invariant 9: a page token the daemon did not give is refused with its own message.
#[tokio::test]
async fn list_requests_refuses_a_foreign_page_token() {
    let fx = Fixture::new(3, 2, "15m");
    let mut d = InProcess::start(&fx, 6).await;
    for bad in ["x", "12", "abc:req-1", "5:"] {
        let r = d
            .client
            .rpc()
            .list_requests(pb::ListRequestsRequest {
                collecting_only: false,
                limit: 1,
                page_token: bad.into(),
            })
            .await;
        assert_status(
            r,
            Code::InvalidArgument,
            "page_token: is not a token this daemon gave",
        );
    }
}

/// Unsigned reads have their own rate limit (RESOURCE_EXHAUSTED when spent),
/// separate from the one on approvals.
#[tokio::test]
async fn unsigned_reads_are_rate_limited() {
    let fx = Fixture::new(3, 2, "15m");
    let limits = Limits {
        global_per_second: 0.001,
        global_burst: 4.0,
        ..Limits::default()
    };
    let mut d = InProcess::start_limited(&fx, 7, limits).await;
    let mut refused = None;
    for _ in 0..10 {
        if let Err(e) = d
            .client
            .rpc()
            .get_revocations(pb::GetRevocationsRequest::default())
            .await
        {
            refused = Some(e);
            break;
        }
    }
    let e = refused.expect("reads were never limited");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
}

/// A store made before the indexes existed is indexed once when opened: its
/// collecting requests are found at start and its requests list in order.
#[tokio::test]
async fn a_store_without_indexes_is_indexed_when_opened() {
    let fx = Fixture::new(3, 2, "15m");
    let ids: Vec<String> = {
        let mut d = InProcess::start(&fx, 8).await;
        let ids = open_many(&fx, &mut d, 2)
            .await
            .into_iter()
            .map(|r| r.id)
            .collect();
        d.stop().await;
        ids
    };
    {
        // Take the indexes away, as in a state written by an older daemon.
        let db = redb::Database::open(fx.state.join("state.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        for t in [
            "requests_by_opened",
            "requests_collecting",
            "requests_revoked",
        ] {
            tx.delete_table(redb::TableDefinition::<&str, u8>::new(t))
                .ok();
        }
        {
            let mut meta = tx
                .open_table(redb::TableDefinition::<&str, &[u8]>::new("meta"))
                .unwrap();
            meta.remove("indexes").unwrap();
        }
        tx.commit().unwrap();
    }
    let store = Store::open(&fx.state).unwrap();
    let collecting: Vec<String> = store
        .collecting_requests()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(collecting.len(), 2, "{collecting:?}");
    let (page, _) = store.requests_page(false, None, 10).unwrap();
    let listed: Vec<String> = page.into_iter().map(|r| r.id).collect();
    assert_eq!(listed, ids.iter().rev().cloned().collect::<Vec<_>>());
}

/// Invariant 6 (the log is a faithful record): when the daemon's clock goes
/// back, the log says so (`clock_went_back`) before the entry with the earlier
/// time, and the chain still verifies.
#[tokio::test]
async fn a_clock_going_back_is_recorded() {
    let fx = Fixture::new(3, 2, "15m");
    let mut d = InProcess::start(&fx, 11).await;
    let ic = load(&fx.commander_key("ic"));
    let now = unix_now();
    d.set_clock(now + 60);
    d.client
        .open(
            &ic,
            None,
            "prod-ssh",
            "before the step",
            60,
            &ic.ssh_public(),
        )
        .await
        .unwrap();
    d.set_clock(now);
    d.client
        .open(
            &ic,
            None,
            "prod-ssh",
            "after the step",
            60,
            &ic.ssh_public(),
        )
        .await
        .unwrap();
    let log = d.client.audit_export(1).await.unwrap();
    let kinds: Vec<&str> = log.iter().map(|e| e.event.kind()).collect();
    let i = kinds
        .iter()
        .position(|k| *k == "clock_went_back")
        .expect("not recorded");
    assert_eq!(kinds[i + 1], "request_opened", "{kinds:?}");
    assert_eq!(log[i].time, now);
    assert!(log[i - 1].time == now + 60, "{kinds:?}");
    breakglass_formats::audit::verify_log(&log, None).unwrap();
}

/// Text from callers is data, never terminal control (what a custodian reads is
/// what is signed): reasons with escape sequences, C1 controls, DEL or
/// bidirectional overrides are refused with the field named, and nothing is stored.
#[tokio::test]
async fn control_characters_in_caller_text_are_refused() {
    let fx = Fixture::new(3, 2, "15m");
    let mut d = InProcess::start(&fx, 12).await;
    let ic = load(&fx.commander_key("ic"));
    for (bad, code) in [
        ("disk full\u{1b}[1A\u{1b}[2Kscope prod-api", 0x1b),
        ("routine\u{1b}[8m hidden", 0x1b),
        ("c1 control \u{9b}2J", 0x9b),
        ("delete \u{7f}", 0x7f),
        ("bidi \u{202e}reversed", 0x202e),
        ("isolate \u{2066}x\u{2069}", 0x2066),
    ] {
        let e = d
            .client
            .open(&ic, None, "prod-api", bad, 60, "")
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("INVALID_ARGUMENT"), "{bad:?}: {e}");
        assert!(
            e.contains(&format!(
                "reason: contains the control character U+{code:04X}"
            )),
            "{bad:?}: {e}"
        );
    }
    assert!(d
        .client
        .list_page(false, 10, "")
        .await
        .unwrap()
        .0
        .is_empty());
    let r = d
        .client
        .open(&ic, None, "prod-api", "plain reason", 60, "")
        .await
        .unwrap();
    let e = d
        .client
        .cancel(&ic, None, &r.id, "done\u{1b}]0;title\u{7}")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("reason: contains the control character U+001B"),
        "{e}"
    );
    assert_eq!(d.client.get(&r.id).await.unwrap(), r, "nothing changed");
}

/// Invariant 7 (a revoked credential is not handed out again): fetching it
/// fails, saying who revoked it, when and why; the view shows the revocation.
#[tokio::test]
async fn a_revoked_credential_is_not_fetched_again() {
    let fx = Fixture::new(3, 2, "15m");
    let mut d = InProcess::start(&fx, 13).await;
    let ic = load(&fx.commander_key("ic"));
    let r = d
        .client
        .open(&ic, None, "prod-api", "revoke then fetch", 60, "")
        .await
        .unwrap();
    for i in 0..2 {
        common::approve(&fx, &mut d.client, &r, i).await;
    }
    d.client.fetch(&ic, None, &r.id).await.unwrap();
    let c1 = load(&fx.custodian_key(0));
    let v = d
        .client
        .revoke(&c1, None, &r.id, "laptop stolen")
        .await
        .unwrap();
    assert_eq!(v.revoked_by, "c1");
    let e = d
        .client
        .fetch(&ic, None, &r.id)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.starts_with("FAILED_PRECONDITION"), "{e}");
    assert!(
        e.contains(&format!(
            "the credential of request `{}` was revoked by c1 at",
            r.id
        )) && e.contains("(laptop stolen)")
            && e.contains("must not be used"),
        "{e}"
    );
}

/// Bounded reads: the default revocation list holds only revoked credentials
/// still valid now (read through the expiry index); `include_expired` lists
/// every revocation ever made. Both are signed by D.
#[tokio::test]
async fn revocations_list_only_unexpired_credentials_by_default() {
    let fx = Fixture::new(3, 2, "15m");
    let mut d = InProcess::start(&fx, 14).await;
    let ic = load(&fx.commander_key("ic"));
    let r = d
        .client
        .open(&ic, None, "prod-api", "revoke then expire", 60, "")
        .await
        .unwrap();
    for i in 0..2 {
        common::approve(&fx, &mut d.client, &r, i).await;
    }
    let c1 = load(&fx.custodian_key(0));
    d.client
        .revoke(&c1, None, &r.id, "laptop stolen")
        .await
        .unwrap();
    let now = d.client.revocations(false).await.unwrap();
    assert_eq!(now.revocations.len(), 1);
    assert_eq!(now.revocations[0].request_id, r.id);
    let expires_at = now.revocations[0].expires_at;

    d.set_clock(expires_at + 1);
    let later = d.client.revocations(false).await.unwrap();
    assert!(later.revocations.is_empty(), "{:?}", later.revocations);
    let all = d.client.revocations(true).await.unwrap();
    assert_eq!(all.revocations.len(), 1);
    assert_eq!(all.revocations[0].request_id, r.id);
}
