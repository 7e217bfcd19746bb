//! Fast service tests: the daemon in process, served over `tokio::io::duplex`
//! (tonic's in-memory transport, no TLS, no sockets), with a fake clock and a
//! seeded RNG. Time-dependent rules (the collection window, expiry) and
//! separation of duties are checked here by moving the clock, never by
//! sleeping. What only real processes prove (TLS, restarts, kill -9, memory
//! scans, sshd) stays in the end-to-end suites.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use breakglass_client::api::{unix_now, Client};
use breakglass_daemon::{serve_duplex_insecure, Daemon, Limits, Store};
use breakglass_proto::pb;
use common::{assert_status, load, request_events, share_bytes, Fixture, Submission};
use rand::SeedableRng;
use tonic::Code;

/// A daemon on a fake clock, and a client talking to it in memory.
struct InProcess {
    daemon: Arc<Daemon>,
    clock: Arc<AtomicU64>,
    client: Client,
}

impl InProcess {
    /// Starts the fixture's state with the clock at the real time (so the
    /// client's signatures are fresh) and the RNG seeded with `seed`.
    async fn start(fx: &Fixture, seed: u64) -> InProcess {
        let clock = Arc::new(AtomicU64::new(unix_now()));
        let c = clock.clone();
        let daemon = Arc::new(
            Daemon::start_with(
                Store::open(&fx.state).unwrap(),
                &fx.state,
                Arc::new(move || c.load(Ordering::SeqCst)),
                Box::new(rand::rngs::StdRng::seed_from_u64(seed)),
                Vec::new(),
            )
            .unwrap(),
        );
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        tokio::spawn(serve_duplex_insecure(
            daemon.clone(),
            server_io,
            Limits::default(),
        ));
        let client = Client::over_duplex(client_io).await.unwrap();
        InProcess {
            daemon,
            clock,
            client,
        }
    }

    fn set_clock(&self, t: u64) {
        self.clock.store(t, Ordering::SeqCst);
    }
}

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
        "stopped collecting shares at",
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
        vec!["request_opened", "share_accepted", "request_expired"]
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
