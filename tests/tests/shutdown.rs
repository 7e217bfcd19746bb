//! Shutdown is bounded: connected watchers do not hold the daemon (and its
//! state lock) after SIGTERM; they are told why their stream ended, and the
//! stop is recorded (invariant 6: `daemon_stopped` in the audit log).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{load, Fixture};

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_watchers_connected_exits_promptly_and_records_the_stop() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let r = client
        .open(&ic, None, "prod-ssh", "shutdown test", 60, &ic.ssh_public())
        .await
        .unwrap();
    let mut audit = client.watch_audit(0).await.unwrap();
    let mut request = client.watch_request(&r.id).await.unwrap();
    // The request watch sends the current view first.
    assert!(request.message().await.unwrap().is_some());

    let t = Instant::now();
    assert!(fx.stop(), "breakglassd exited with an error");
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "shutdown took {took:?} with watchers connected"
    );
    for (what, got) in [
        ("audit watch", audit.message().await.map(|_| ())),
        ("request watch", request.message().await.map(|_| ())),
    ] {
        let e = got
            .err()
            .unwrap_or_else(|| panic!("{what} ended without a status"));
        assert_eq!(e.code(), tonic::Code::Unavailable, "{what}: {e}");
        assert!(e.message().contains("shutting down"), "{what}: {e}");
    }
    // The state is free again, and the stop was recorded.
    let store = breakglass_daemon::Store::open(&fx.state).unwrap();
    let head = store.audit_head().unwrap();
    let kinds: Vec<&'static str> = store
        .audit(head.saturating_sub(3), 10)
        .unwrap()
        .iter()
        .map(|e| e.event.kind())
        .collect();
    assert!(kinds.contains(&"daemon_stopped"), "{kinds:?}");
}
