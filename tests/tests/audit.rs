//! Invariant 6 (everything is audited before it is acknowledged): the hash-chained
//! log, its verification, fail-closed writes, durability across kill -9, live
//! watching, webhooks with a durable outbox, and the review.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use breakglass_client::api::unix_now;
use breakglass_daemon::Store;
use breakglass_daemon::{system_clock, Daemon};
use common::{approve, load, request_events, run, serve_once, share_bytes, Fixture, Submission};
use hmac::Mac;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The exact events one whole unlock produces, and a verifying chain with checkpoints.
#[tokio::test(flavor = "multi_thread")]
async fn unlock_produces_exactly_these_events_and_a_verifying_chain() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let r = client
        .open(&ic, None, "prod-ssh", "audit events", 600, &ic.ssh_public())
        .await
        .unwrap();
    approve(&fx, &mut client, &r, 0).await;
    // A bad share from a known custodian is rejected and attributed in the log.
    let c2 = load(&fx.custodian_key(1));
    let mut bad = share_bytes(&client, &fx.custodian_key(1), &fx.share_file("c2"));
    bad[9] ^= 1;
    let msg = Submission::new(&client, &r, "c2", &c2, bad).message();
    assert!(client.rpc().submit_share(msg).await.is_err());
    approve(&fx, &mut client, &r, 1).await;
    client.fetch(&ic, None, &r.id).await.unwrap();
    client.revoke(&ic, None, &r.id, "done").await.unwrap();
    assert_eq!(
        request_events(&mut client, &r.id).await,
        vec![
            "request_opened",
            "share_accepted",
            "share_rejected",
            "share_accepted",
            "quorum_reached",
            "credential_minted",
            "credential_fetched",
            "credential_revoked",
        ]
    );
    let all = client.audit_export(1).await.unwrap();
    let kinds: Vec<&str> = all.iter().map(|e| e.event.kind()).collect();
    assert_eq!(&kinds[..3], &["ceremony", "daemon_started", "checkpoint"]);
    let rejected = all
        .iter()
        .find(|e| e.event.kind() == "share_rejected")
        .unwrap();
    assert_eq!(rejected.actor, "c2");
    assert!(serde_json::to_string(&rejected.event)
        .unwrap()
        .contains("does not match their commitment"));
    // Checkpoints follow the quorum and the revocation.
    let pos = |k: &str| kinds.iter().position(|x| *x == k).unwrap();
    assert_eq!(kinds[pos("credential_minted") + 1], "checkpoint");
    assert_eq!(kinds[pos("credential_revoked") + 1], "checkpoint");
    let (ok, out, err) = fx.cli(&fx.commander_key("ic"), &["audit", "verify"]);
    assert!(
        ok && out.contains("form an unbroken hash chain")
            && out.contains("3 checkpoints signed by the daemon key"),
        "{out}{err}"
    );
    // Shutdown is recorded and checkpointed too.
    assert!(fx.stop());
    let store = Store::open(&fx.state).unwrap();
    let tail = store.audit(1, usize::MAX).unwrap();
    let n = tail.len();
    assert_eq!(tail[n - 2].event.kind(), "daemon_stopped");
    assert_eq!(tail[n - 1].event.kind(), "checkpoint");
}

fn rewrite_entry(state: &Path, f: impl FnOnce(&mut redb::Table<'_, u64, &[u8]>)) {
    let db = redb::Database::open(state.join("state.redb")).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut t = tx
            .open_table(redb::TableDefinition::<u64, &[u8]>::new("audit"))
            .unwrap();
        f(&mut t);
    }
    tx.commit().unwrap();
}

fn get(t: &redb::Table<'_, u64, &[u8]>, k: u64) -> Vec<u8> {
    use redb::ReadableTable;
    t.get(k).unwrap().unwrap().value().to_vec()
}

/// Editing, deleting or reordering one entry, in the store or in an export, is detected and named.
#[tokio::test(flavor = "multi_thread")]
async fn tampering_in_the_store_or_an_export_is_detected_and_named() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let r = client
        .open(&ic, None, "prod-ssh", "tamper", 600, &ic.ssh_public())
        .await
        .unwrap();
    approve(&fx, &mut client, &r, 0).await;
    approve(&fx, &mut client, &r, 1).await;
    let ic_key = fx.commander_key("ic");
    let export = fx.dir.path().join("audit.jsonl");
    let (ok, _, err) = fx.cli(
        &ic_key,
        &["audit", "export", "--out", export.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let info_key = hex::encode(client.info().daemon_public_key.clone());
    let daemon_id = client.info().daemon_id.clone();
    let verify_file = |p: &Path| {
        run(
            "breakglass",
            &[
                "audit",
                "verify",
                "--file",
                p.to_str().unwrap(),
                "--daemon-key",
                &info_key,
                "--daemon-id",
                &daemon_id,
            ],
            &[],
        )
    };
    let (ok, out, err) = verify_file(&export);
    assert!(
        ok && out.contains("checkpoints signed by the daemon key"),
        "{out}{err}"
    );

    let lines: Vec<String> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let write = |name: &str, ls: &[String]| {
        let p = fx.dir.path().join(name);
        std::fs::write(&p, ls.join("\n") + "\n").unwrap();
        p
    };
    // Edit entry 5 (the first share_accepted): change the actor.
    let mut edited = lines.clone();
    edited[4] = edited[4].replacen("\"actor\":\"c1\"", "\"actor\":\"c3\"", 1);
    assert_ne!(edited[4], lines[4]);
    let (ok, _, err) = verify_file(&write("edited.jsonl", &edited));
    assert!(!ok && err.contains("entry 5 was altered"), "{err}");
    // Delete entry 5.
    let mut deleted = lines.clone();
    deleted.remove(4);
    let (ok, _, err) = verify_file(&write("deleted.jsonl", &deleted));
    assert!(!ok && err.contains("entry 6 follows entry 4"), "{err}");
    // Reorder entries 5 and 6.
    let mut reordered = lines.clone();
    reordered.swap(4, 5);
    let (ok, _, err) = verify_file(&write("reordered.jsonl", &reordered));
    assert!(!ok && err.contains("entry 6 follows entry 4"), "{err}");
    // Rewrite the whole chain after an edit (recomputing every hash): only the checkpoint catches it.
    let trailer_line = lines.last().unwrap().clone();
    assert!(trailer_line.starts_with("{\"trailer\":"), "{trailer_line}");
    let mut entries: Vec<breakglass_formats::audit::AuditEntry> = lines[..lines.len() - 1]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    entries[4].actor = "c3".into();
    let mut prev = [0u8; 32];
    let rechained: Vec<String> = entries
        .into_iter()
        .map(|e| {
            let rec = breakglass_formats::audit::Record {
                time: e.time,
                actor: e.actor,
                request_id: e.request_id,
                event: e.event,
                signed_with: None,
            };
            let (e2, h) = breakglass_formats::audit::chain(e.seq, &prev, rec).unwrap();
            prev = h;
            serde_json::to_string(&e2).unwrap()
        })
        .collect();
    let (ok, _, err) = verify_file(&write("rechained.jsonl", &rechained));
    assert!(
        !ok && err.contains("checkpoint at entry") && err.contains("does not verify"),
        "{err}"
    );
    // Cut the tail (the last entries and the trailer stay consistent as a chain):
    // the signed trailer says where the export really ended.
    let mut cut = lines[..lines.len() - 3].to_vec();
    cut.push(trailer_line.clone());
    let (ok, _, err) = verify_file(&write("cut.jsonl", &cut));
    assert!(
        !ok && err.contains("the export was cut: it ends at entry"),
        "{err}"
    );
    // Edit an entry, recompute the chain, drop everything from the next checkpoint
    // on: every remaining checkpoint verifies, only the trailer catches it.
    let checkpoint_after_5 = rechained
        .iter()
        .position(|l| {
            l.contains("\"kind\":\"checkpoint\"")
                && serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
                    > 5
        })
        .unwrap();
    let mut dropped = rechained[..checkpoint_after_5].to_vec();
    dropped.push(trailer_line.clone());
    let (ok, _, err) = verify_file(&write("dropped.jsonl", &dropped));
    assert!(!ok && err.contains("the export was cut"), "{err}");
    // Without a trailer the file is refused unless the reader accepts a partial export.
    let partial = write("partial.jsonl", &lines[..lines.len() - 1]);
    let (ok, _, err) = verify_file(&partial);
    assert!(
        !ok && err.contains("the export has no signed trailer"),
        "{err}"
    );
    let (ok, out, err) = run(
        "breakglass",
        &[
            "audit",
            "verify",
            "--file",
            partial.to_str().unwrap(),
            "--allow-partial",
        ],
        &[],
    );
    assert!(
        ok && out.contains("warning: no signed trailer"),
        "{out}{err}"
    );

    // In the store: edit, then delete, then reorder: each is found when the daemon
    // next starts (it re-chains its newest entries and checks D's checkpoints) and
    // named; the daemon refuses to serve a log it cannot vouch for.
    assert!(fx.stop());
    let fresh = std::fs::read(fx.state.join("state.redb")).unwrap();
    let refused = |needle: &str| {
        let (ok, _, err) = common::serve_once(&fx.state, &[]);
        assert!(!ok, "served a tampered log");
        assert!(
            err.contains("the newest audit entries do not verify") && err.contains(needle),
            "{err}"
        );
    };
    rewrite_entry(&fx.state, |t| {
        let v = String::from_utf8(get(t, 5)).unwrap().replacen(
            "\"actor\":\"c1\"",
            "\"actor\":\"c3\"",
            1,
        );
        t.insert(5, v.as_bytes()).unwrap();
    });
    refused("entry 5 was altered");
    std::fs::write(fx.state.join("state.redb"), &fresh).unwrap();
    rewrite_entry(&fx.state, |t| {
        t.remove(5).unwrap();
    });
    refused("entry 6 follows entry 4");
    std::fs::write(fx.state.join("state.redb"), &fresh).unwrap();
    rewrite_entry(&fx.state, |t| {
        let (a, b) = (get(t, 6), get(t, 7));
        t.insert(6, b.as_slice()).unwrap();
        t.insert(7, a.as_slice()).unwrap();
    });
    refused("follows entry");
    // And the untouched store still serves and verifies.
    std::fs::write(fx.state.join("state.redb"), &fresh).unwrap();
    fx.start();
    let (ok, out, err) = fx.cli(&ic_key, &["audit", "verify"]);
    assert!(ok, "{out}{err}");
}

/// The fixture's store on a [`FailingDisk`] (a fresh one each time it is reopened).
fn failing_store(fx: &Fixture, fail: &Arc<AtomicBool>) -> Store {
    let path = fx.state.join("state.redb");
    let (p, f) = (path.clone(), fail.clone());
    Store::open_with_backend(&path, move || {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)?;
        Ok(FailingDisk {
            inner: redb::backends::FileBackend::new(file).map_err(std::io::Error::other)?,
            fail: f.clone(),
        })
    })
    .unwrap()
}

/// Serving status of the BreakGlass service, as an orchestrator's probe sees it.
async fn health(addr: &str, fp: &str) -> i32 {
    let ch = breakglass_client::connect::channel(&breakglass_client::connect::ConnectOptions {
        addr: addr.to_string(),
        trust: breakglass_client::connect::Trust::fingerprint(fp).unwrap(),
        server_name: None,
        client_cert: None,
    })
    .await
    .unwrap();
    tonic_health::pb::health_client::HealthClient::new(ch)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "breakglass.v1.BreakGlass".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

/// Storage faults: a full disk fails calls closed (UNAVAILABLE) and turns the
/// health service to NOT_SERVING; once space is freed the daemon reopens its
/// store and resumes (health SERVING again) without losing the collecting
/// request, and a stop records `daemon_stopped` and ends cleanly.
#[tokio::test(flavor = "multi_thread")]
async fn full_disk_then_freed_space_resumes() {
    use tonic_health::pb::health_check_response::ServingStatus;
    let fx = Fixture::new(3, 2, "15m");
    let fail = Arc::new(AtomicBool::new(false));
    let daemon = Arc::new(
        Daemon::start_on(
            failing_store(&fx, &fail),
            &fx.state,
            system_clock(),
            Vec::new(),
        )
        .unwrap(),
    );
    let tls = breakglass_daemon::load_or_create(&fx.state, None, None, &[]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let fp = tls.fingerprint.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        breakglass_daemon::run(daemon, listener, &tls, async {
            let _ = stop_rx.await;
        })
        .await
    });
    let mut client =
        breakglass_client::api::Client::connect(&breakglass_client::connect::ConnectOptions {
            addr: addr.clone(),
            trust: breakglass_client::connect::Trust::fingerprint(&fp).unwrap(),
            server_name: None,
            client_cert: None,
        })
        .await
        .unwrap();
    let ic = load(&fx.commander_key("ic"));
    let r = client
        .open(&ic, None, "prod-ssh", "full disk", 600, &ic.ssh_public())
        .await
        .unwrap();
    approve(&fx, &mut client, &r, 0).await;
    assert_eq!(health(&addr, &fp).await, ServingStatus::Serving as i32);

    fail.store(true, Ordering::SeqCst);
    let c2 = load(&fx.custodian_key(1));
    let f = client.read_share_file(&c2, &fx.share_file("c2")).unwrap();
    let e = client.submit(&c2, None, &r, &f).await.err().unwrap();
    assert!(
        matches!(&e, breakglass_client::ClientError::Status(s) if s.code() == tonic::Code::Unavailable),
        "{e}"
    );
    assert_eq!(health(&addr, &fp).await, ServingStatus::NotServing as i32);

    // Space is freed: the sweeper's probe reopens the store and health recovers.
    fail.store(false, Ordering::SeqCst);
    let mut status = 0;
    for _ in 0..100 {
        status = health(&addr, &fp).await;
        if status == ServingStatus::Serving as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        status,
        ServingStatus::Serving as i32,
        "health did not recover"
    );
    // The collecting request survived: the same share now completes the quorum.
    let p = client.submit(&c2, None, &r, &f).await.unwrap();
    assert!(p.unlocked);

    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
    let store = Store::open(&fx.state).unwrap();
    let head = store.audit_head().unwrap();
    let last = store.audit(head, 1).unwrap();
    assert!(
        last.iter().any(|e| e.event.kind() == "daemon_stopped")
            || store
                .audit(head.saturating_sub(2), 3)
                .unwrap()
                .iter()
                .any(|e| e.event.kind() == "daemon_stopped"),
        "the stop was recorded"
    );
}

/// A redb backend over a file that can be told to fail every write, like a full disk.
#[derive(Debug)]
struct FailingDisk {
    inner: redb::backends::FileBackend,
    fail: Arc<AtomicBool>,
}

impl redb::StorageBackend for FailingDisk {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        self.inner.read(offset, len)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left on device (simulated)",
            ));
        }
        self.inner.set_len(len)
    }
    fn sync_data(&self, eventual: bool) -> std::io::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left on device (simulated)",
            ));
        }
        self.inner.sync_data(eventual)
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left on device (simulated)",
            ));
        }
        self.inner.write(offset, data)
    }
}

/// Invariant 6: when the audit log cannot be written, opens and submissions fail with
/// UNAVAILABLE and nothing is unlocked.
#[tokio::test(flavor = "multi_thread")]
async fn audit_write_failure_fails_closed() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fx = Fixture::new(3, 2, "15m");
    let fail = Arc::new(AtomicBool::new(false));
    let store = failing_store(&fx, &fail);
    let daemon = Arc::new(Daemon::start_on(store, &fx.state, system_clock(), Vec::new()).unwrap());
    let tls = breakglass_daemon::load_or_create(&fx.state, None, None, &[]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fp = tls.fingerprint.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        breakglass_daemon::run(daemon, listener, &tls, async {
            let _ = stop_rx.await;
        })
        .await
    });
    let mut client =
        breakglass_client::api::Client::connect(&breakglass_client::connect::ConnectOptions {
            addr: addr.to_string(),
            trust: breakglass_client::connect::Trust::fingerprint(&fp).unwrap(),
            server_name: None,
            client_cert: None,
        })
        .await
        .unwrap();
    let ic = load(&fx.commander_key("ic"));
    let r = client
        .open(&ic, None, "prod-ssh", "fail closed", 600, &ic.ssh_public())
        .await
        .unwrap();
    approve(&fx, &mut client, &r, 0).await;

    fail.store(true, Ordering::SeqCst);
    let e = client
        .open(
            &ic,
            None,
            "prod-ssh",
            "while the disk is full",
            600,
            &ic.ssh_public(),
        )
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&e, breakglass_client::ClientError::Status(s) if s.code() == tonic::Code::Unavailable),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("the audit log could not be written, so nothing was changed"),
        "{e}"
    );
    let c2 = load(&fx.custodian_key(1));
    let f = client.read_share_file(&c2, &fx.share_file("c2")).unwrap();
    let e = client.submit(&c2, None, &r, &f).await.err().unwrap();
    assert!(
        matches!(&e, breakglass_client::ClientError::Status(s) if s.code() == tonic::Code::Unavailable),
        "{e}"
    );
    assert!(
        e.to_string().contains("audit log could not be written"),
        "{e}"
    );

    let _ = stop_tx.send(());
    let _ = server.await;
    // Reopen on the real disk: nothing was unlocked, the failed share was not recorded, the chain verifies.
    let store = Store::open(&fx.state).unwrap();
    let reqs = store.requests().unwrap();
    assert_eq!(reqs.len(), 1, "the refused open created nothing");
    assert_eq!(reqs[0].approvals.len(), 1);
    assert!(reqs[0].credential.is_none());
    let log = store.audit(1, usize::MAX).unwrap();
    assert_eq!(
        log.iter()
            .filter(|e| e.event.kind() == "share_accepted")
            .count(),
        1
    );
    breakglass_formats::audit::verify_log(&log, None).unwrap();
}

/// Durability: an acknowledged event survives kill -9, and the chain still verifies.
#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_events_survive_kill_9() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let r = client
        .open(&ic, None, "prod-ssh", "kill -9", 600, &ic.ssh_public())
        .await
        .unwrap();
    approve(&fx, &mut client, &r, 0).await;
    fx.kill9();
    fx.start();
    let mut client = fx.client().await;
    let events = request_events(&mut client, &r.id).await;
    assert_eq!(
        events,
        vec!["request_opened", "share_accepted", "request_cancelled"],
        "the acknowledged share is there; the restart cancelled the request"
    );
    let (ok, out, err) = fx.cli(&fx.commander_key("ic"), &["audit", "verify"]);
    assert!(ok, "{out}{err}");
}

/// Live watching: `request watch` follows a request to its end; `audit tail -f` streams new entries.
#[tokio::test(flavor = "multi_thread")]
async fn watch_request_and_tail_follow_live() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let r = client
        .open(&ic, None, "prod-ssh", "watch", 600, &ic.ssh_public())
        .await
        .unwrap();
    let mut args = fx.conn_args();
    args.extend(["request".into(), "watch".into(), r.id.clone()]);
    let watcher = std::process::Command::new(common::bin("breakglass"))
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut targs = fx.conn_args();
    targs.extend([
        "audit".into(),
        "tail".into(),
        "-f".into(),
        "-n".into(),
        "1".into(),
    ]);
    let mut tail = std::process::Command::new(common::bin("breakglass"))
        .args(&targs)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    approve(&fx, &mut client, &r, 0).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    approve(&fx, &mut client, &r, 1).await;
    let out = watcher.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("0/2 shares") && lines[0].contains("left · approved: nobody yet"),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("1/2 shares") && l.contains("approved: c1")),
        "{text}"
    );
    assert!(
        lines.last().unwrap().contains("unlocked · 2/2 shares"),
        "{text}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = tail.kill();
    let out = tail.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for k in ["share_accepted", "quorum_reached", "credential_minted"] {
        assert!(text.contains(k), "tail -f shows {k}: {text}");
    }
}

/// The review rebuilds the timeline as Markdown and as an HTML page.
#[tokio::test(flavor = "multi_thread")]
async fn review_builds_the_timeline() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let r = client
        .open(
            &ic,
            None,
            "prod-ssh",
            "db <primary> down",
            600,
            &ic.ssh_public(),
        )
        .await
        .unwrap();
    approve(&fx, &mut client, &r, 1).await;
    approve(&fx, &mut client, &r, 0).await;
    client.fetch(&ic, None, &r.id).await.unwrap();
    let key = fx.commander_key("ic");
    let (ok, md, err) = fx.cli(&key, &["review", &r.id]);
    assert!(ok, "{err}");
    assert!(
        md.contains(&format!("# Break-glass review: {}", r.id)),
        "{md}"
    );
    assert!(
        md.contains("| c2 | approved at ") && md.contains("| c3 | no answer |"),
        "{md}"
    );
    assert!(md.contains("ic asked for prod-ssh for 600s"), "{md}");
    assert!(md.contains("credential minted (ssh + token)"), "{md}");
    assert!(md.contains("ic fetched the credential"), "{md}");
    let page = fx.dir.path().join("review.html");
    let (ok, _, err) = fx.cli(
        &key,
        &["review", &r.id, "--html", "--out", page.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("<svg")
            && html.contains("db &lt;primary&gt; down")
            && !html.contains("<script"),
        "self-contained, escaped"
    );
    // Offline from an export gives the same Markdown.
    let export = fx.dir.path().join("a.jsonl");
    let (ok, _, _) = fx.cli(
        &key,
        &["audit", "export", "--out", export.to_str().unwrap()],
    );
    assert!(ok);
    let (ok, md2, _) = run(
        "breakglass",
        &["review", &r.id, "--file", export.to_str().unwrap()],
        &[],
    );
    assert!(ok);
    // The footer says what was verified, which differs (no D for the export).
    let body = |m: &str| m.split("\n---\n").next().unwrap().to_string();
    assert_eq!(body(&md), body(&md2));
}

/// One HTTP request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A minimal HTTP/1.1 receiver on `port` that records every POST and answers 200.
async fn receiver(port: u16, got: Arc<Mutex<Vec<Received>>>) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let got = got.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                let head_end = loop {
                    let n = sock.read(&mut tmp).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let headers: Vec<(String, String)> = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| {
                        l.split_once(':')
                            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    })
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let n = sock.read(&mut tmp).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                }
                got.lock().unwrap().push(Received {
                    headers,
                    body: buf[head_end..head_end + len].to_vec(),
                });
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    })
}

const SECRET: &str = "webhook-secret-0123456789";

fn check_hmac(r: &Received) {
    let ts = r.header("x-breakglass-timestamp");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&r.body);
    let want = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        r.header("x-breakglass-signature"),
        want,
        "HMAC over timestamp.body"
    );
    let t: u64 = ts.parse().unwrap();
    assert!(unix_now().abs_diff(t) < 60);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(fx: &Fixture, port: u16, extra: &str) -> String {
    let p = fx.dir.path().join("breakglassd.toml");
    let mut f = std::fs::File::create(&p).unwrap();
    write!(
        f,
        "[[webhooks]]\nname = \"security\"\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret = \"{SECRET}\"\nevents = [\"request_opened\", \"quorum_reached\", \"credential_minted\"]\n\n\
         [[webhooks]]\nname = \"c3-contact\"\nurl = \"http://127.0.0.1:{port}/c3\"\nsecret = \"{SECRET}\"\nevents = [\"credential_revoked\"]\ncustodian = \"c3\"\n{extra}"
    )
    .unwrap();
    p.display().to_string()
}

async fn wait_for(got: &Arc<Mutex<Vec<Received>>>, n: usize, secs: u64) -> Vec<Received> {
    let start = std::time::Instant::now();
    loop {
        let v = got.lock().unwrap().clone();
        if v.len() >= n || start.elapsed() > Duration::from_secs(secs) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Webhooks: signed with HMAC-SHA256, Slack-compatible `text`, custodian contacts get
/// request_opened and quorum_reached even though they did not approve.
#[tokio::test(flavor = "multi_thread")]
async fn webhooks_are_signed_and_reach_every_custodian_contact() {
    let mut fx = Fixture::new(3, 2, "15m");
    let port = free_port();
    let cfg = write_config(&fx, port, "");
    let got = Arc::new(Mutex::new(Vec::new()));
    let _rx = receiver(port, got.clone()).await;
    fx.start_with(&["--config", &cfg]);
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let r = client
        .open(&ic, None, "prod-ssh", "webhooks", 600, &ic.ssh_public())
        .await
        .unwrap();
    approve(&fx, &mut client, &r, 0).await;
    approve(&fx, &mut client, &r, 1).await;
    // security: opened, quorum, minted; c3-contact: opened, quorum.
    let all = wait_for(&got, 5, 15).await;
    assert_eq!(
        all.len(),
        5,
        "{:?}",
        all.iter()
            .map(|r| r.json()["event"]["event"]["kind"].clone())
            .collect::<Vec<_>>()
    );
    for r in &all {
        check_hmac(r);
    }
    let mut pairs: Vec<(String, String)> = all
        .iter()
        .map(|r| {
            (
                r.json()["webhook"].as_str().unwrap().to_string(),
                r.json()["event"]["event"]["kind"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            ("c3-contact".into(), "quorum_reached".into()),
            ("c3-contact".into(), "request_opened".into()),
            ("security".into(), "credential_minted".into()),
            ("security".into(), "quorum_reached".into()),
            ("security".into(), "request_opened".into()),
        ]
    );
    let opened = all
        .iter()
        .find(|r| r.json()["event"]["event"]["kind"] == "request_opened")
        .unwrap();
    let text = opened.json()["text"].as_str().unwrap().to_string();
    assert!(
        text.contains("*ic* asks for emergency access to *prod-ssh*") && text.contains("webhooks"),
        "{text}"
    );
    assert_eq!(opened.json()["event"]["request_id"], r.id.as_str());
}

/// A receiver that is down at first still gets the notification, also across a daemon restart.
#[tokio::test(flavor = "multi_thread")]
async fn webhooks_survive_a_down_receiver_and_a_restart() {
    let mut fx = Fixture::new(3, 2, "15m");
    let port = free_port();
    let cfg = write_config(&fx, port, "");
    fx.start_with(&["--config", &cfg]);
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let r = client
        .open(
            &ic,
            None,
            "prod-ssh",
            "receiver down",
            600,
            &ic.ssh_public(),
        )
        .await
        .unwrap();
    // Let a couple of attempts fail, then restart the daemon while the receiver is still down.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(fx.stop());
    let pending = Store::open(&fx.state).unwrap().outbox_len().unwrap();
    assert!(
        pending >= 2,
        "request_opened for both webhooks is still in the outbox ({pending})"
    );
    fx.start_with(&["--config", &cfg]);
    let got = Arc::new(Mutex::new(Vec::new()));
    let _rx = receiver(port, got.clone()).await;
    let all = wait_for(&got, 2, 20).await;
    let opened: Vec<&Received> = all
        .iter()
        .filter(|x| {
            x.json()["event"]["event"]["kind"] == "request_opened"
                && x.json()["event"]["request_id"] == r.id.as_str()
        })
        .collect();
    assert_eq!(
        opened.len(),
        2,
        "both webhooks got request_opened after the receiver came back"
    );
    for x in opened {
        check_hmac(x);
        assert!(
            x.header("x-breakglass-delivery").ends_with("security")
                || x.header("x-breakglass-delivery").ends_with("c3-contact")
        );
    }
}

/// A bad daemon config is refused with a message naming the problem.
#[test]
fn bad_config_is_refused() {
    let fx = Fixture::new(3, 2, "15m");
    let p = fx.dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "[[webhooks]]\nname = \"x\"\nurl = \"http://127.0.0.1:1/\"\nsecret = \"short\"\n",
    )
    .unwrap();
    let (ok, _, err) = serve_once(&fx.state, &["--config", p.to_str().unwrap()]);
    assert!(
        !ok && err.contains("the secret must be at least 16 bytes"),
        "{err}"
    );
    std::fs::write(&p, "[[webhooks]]\nname = \"x\"\nurl = \"http://127.0.0.1:1/\"\nsecret = \"0123456789abcdefg\"\nevents = [\"nope\"]\n").unwrap();
    let (ok, _, err) = serve_once(&fx.state, &["--config", p.to_str().unwrap()]);
    assert!(!ok && err.contains("unknown event \"nope\""), "{err}");
}
