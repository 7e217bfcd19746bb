//! Invariants 2 and 9 under load: junk never counts and never changes state, and a
//! legitimate quorum still unlocks.
//!
//! Flood: while a load generator sends at least 1,000 junk submissions a second
//! (bad signatures, unknown custodians, oversized messages), a legitimate quorum
//! of 3 still completes, and the daemon's memory stays bounded. The test reports
//! the legitimate path's latency under the flood; it asserts completion and
//! bounds, not speed (speed targets are for benchmarks, not tests).
//!
//! The daemon's rate limits are raised for this test so that every junk call is
//! fully processed: the point is that the daemon itself copes, not that a limiter
//! hides the flood. (Limits are tested in abuse.rs.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use breakglass_proto::pb;
use common::{load, Fixture};

fn status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn junk(kind: u64, request_id: &str, n: u64) -> pb::SubmitShareRequest {
    let mut sig = vec![0u8; 64];
    sig[..8].copy_from_slice(&n.to_be_bytes());
    match kind % 3 {
        // A real custodian who is not approving, with a forged signature: costs a verify.
        0 => pb::SubmitShareRequest {
            request_id: request_id.to_string(),
            sealed_share: vec![1u8; breakglass_proto::transport::SEALED_LEN],
            signature: Some(pb::Signature {
                signer_id: if n.is_multiple_of(2) {
                    "c4".into()
                } else {
                    "c5".into()
                },
                signed_at: breakglass_client::api::unix_now(),
                signature: sig,
            }),
            ..Default::default()
        },
        // Someone who is not a custodian.
        1 => pb::SubmitShareRequest {
            request_id: request_id.to_string(),
            sealed_share: vec![2u8; breakglass_proto::transport::SEALED_LEN],
            signature: Some(pb::Signature {
                signer_id: format!("mallory-{n}"),
                signed_at: 0,
                signature: sig,
            }),
            ..Default::default()
        },
        // Oversized: refused before it is decoded.
        _ => pb::SubmitShareRequest {
            request_id: request_id.to_string(),
            sealed_share: vec![3u8; 100 * 1024],
            signature: None,
            ..Default::default()
        },
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_legitimate_quorum_completes_under_a_junk_flood() {
    let mut fx = Fixture::new(5, 3, "15m");
    let cfg = fx.dir.path().join("limits.toml");
    std::fs::write(&cfg, "[limits]\nper_peer_per_second = 1000000.0\nper_peer_burst = 1000000.0\nglobal_per_second = 1000000.0\nglobal_burst = 1000000.0\n").unwrap();
    fx.start_with(&["--config", cfg.to_str().unwrap()]);
    let pid = fx.daemon.as_ref().unwrap().child.id();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    // The flood targets a real collecting request, so junk reaches the signature check.
    let target = client
        .open(&ic, None, "prod-ssh", "flood target", 600, &ic.ssh_public())
        .await
        .unwrap();
    let rss_before = status_kb(pid, "VmRSS:");

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let mut gens = Vec::new();
    for g in 0..6u64 {
        let mut c = fx.client().await;
        let (stop, sent, refused, id) = (
            stop.clone(),
            sent.clone(),
            refused.clone(),
            target.id.clone(),
        );
        gens.push(tokio::spawn(async move {
            let mut n = g << 40;
            while !stop.load(Ordering::Relaxed) {
                // Keep 16 calls in flight per connection.
                let mut batch = Vec::new();
                for _ in 0..16 {
                    n += 1;
                    let mut cc = c.clone();
                    let m = junk(n, &id, n);
                    batch.push(tokio::spawn(async move {
                        cc.rpc().submit_share(m).await.is_err()
                    }));
                }
                for b in batch {
                    if b.await.unwrap() {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            let _ = &mut c;
        }));
    }
    // Let the flood reach its rate, then measure it over the legitimate unlocks.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t0 = Instant::now();
    let sent0 = sent.load(Ordering::Relaxed);
    let mut lat_ms = Vec::new();
    let mut unlocks = 0;
    let keys: Vec<_> = (0..3).map(|i| load(&fx.custodian_key(i))).collect();
    let files: Vec<_> = (0..3)
        .map(|i| {
            client
                .read_share_file(&keys[i], &fx.share_file(&fx.keys.custodians[i].0))
                .unwrap()
        })
        .collect();
    let mut peak = 0;
    while t0.elapsed() < Duration::from_secs(4) {
        let t = Instant::now();
        let r = client
            .open(
                &ic,
                None,
                "prod-ssh",
                "legit under flood",
                600,
                &ic.ssh_public(),
            )
            .await
            .unwrap();
        lat_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        for i in 0..3 {
            let t = Instant::now();
            let p = client.submit(&keys[i], None, &r, &files[i]).await.unwrap();
            lat_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(p.unlocked, i == 2);
        }
        let t = Instant::now();
        let b = client.fetch(&ic, None, &r.id).await.unwrap();
        lat_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(b.paseto.is_some() && b.ssh_certificate.is_some());
        unlocks += 1;
        peak = peak.max(status_kb(pid, "VmRSS:"));
    }
    let secs = t0.elapsed().as_secs_f64();
    let junk_rate = (sent.load(Ordering::Relaxed) - sent0) as f64 / secs;
    stop.store(true, Ordering::Relaxed);
    for g in gens {
        g.await.unwrap();
    }
    let hwm = status_kb(pid, "VmHWM:");
    let (p50, p99, max) = (
        pct(&mut lat_ms, 0.5),
        pct(&mut lat_ms, 0.99),
        pct(&mut lat_ms, 1.0),
    );
    eprintln!(
        "flood: {junk_rate:.0} junk submissions/s for {secs:.1} s ({} refused in all); {unlocks} legitimate unlocks; \
         legitimate call latency p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms ({} calls); \
         daemon RSS {rss_before} kB before, peak {peak} kB during, high-water {hwm} kB",
        refused.load(Ordering::Relaxed),
        lat_ms.len()
    );
    assert!(
        junk_rate >= 1000.0,
        "the load generator reached only {junk_rate:.0}/s; the test needs at least 1000/s"
    );
    assert!(
        unlocks >= 1,
        "no legitimate unlock completed under the flood"
    );
    assert_eq!(
        refused.load(Ordering::Relaxed),
        sent.load(Ordering::Relaxed),
        "every junk call was refused"
    );
    // Bounded memory: junk leaves nothing behind (generous bound: debug build, 6 flooding connections).
    assert!(hwm < 256 * 1024, "daemon high-water mark {hwm} kB");
    assert!(
        peak < rss_before + 128 * 1024,
        "RSS grew from {rss_before} kB to {peak} kB under the flood"
    );
    // Nothing the junk sent was recorded or counted.
    assert_eq!(client.get(&target.id).await.unwrap().approvals.len(), 0);
}
