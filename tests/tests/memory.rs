//! Invariants 1 (no secret at rest: not in a memory image either) and 3 (wiped
//! after use), proved by inspection of the running daemon's memory.
//!
//! A real `breakglassd serve` unlocks a request (3 of 5, and 5 of 6) and keeps
//! running. The test rebuilds R, K_R, S and A's private seed on its own from
//! the share files and the sealed state (as `no_secret_at_rest.rs` does), then
//! reads every readable range of the daemon's address space through
//! `/proc/PID/maps` and `/proc/PID/mem` and asserts that none of them, nor
//! A's expanded key, the HKDF PRKs, or any share (33 raw bytes, or the 32-byte
//! y alone), appears anywhere, raw or in hex. Only the daemon child is
//! scanned, never this test's own memory, which does hold all of them.
//!
//! The scan proves it can see, twice. The request's reason carries a random
//! canary, which the daemon legitimately keeps (request cache, redb pages),
//! and every scan fails if the canary is not found. One share short of the
//! quorum, the scan must find exactly the shares accepted so far (the daemon
//! holds them until the unlock) and nothing derived from R (invariant 2). The
//! test also fails, never skips, if the memory cannot be read: the daemon
//! makes itself non-dumpable, so reading it needs root with CAP_SYS_PTRACE,
//! which is how CI runs. Build the binaries first (`cargo build --workspace`):
//! the test runs `target/debug/breakglassd` as it is.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::memscan::{self, Hit};
use common::{load, share_bytes, Fixture};

/// 3 of 5, as in the README's drill.
#[tokio::test(flavor = "multi_thread")]
async fn daemon_memory_holds_no_root_seed_authority_or_share_after_unlock() {
    unlock_and_scan(5, 3).await;
}

/// 5 of 6: more shares than the first allocation of the daemon's share list
/// holds (4), so the list grows while collecting. Before shares were boxed,
/// the reallocation left shares 1 to 4 in freed heap memory.
#[tokio::test(flavor = "multi_thread")]
async fn no_share_left_behind_when_the_share_list_grows() {
    unlock_and_scan(6, 5).await;
}

async fn unlock_and_scan(n: usize, k: usize) {
    let mut fx = Fixture::new(n, k, "15m");
    // The sealed state, read before the daemon holds the database lock.
    let sealed = common::sealed(&fx.state);
    fx.start();
    let pid = fx.daemon.as_ref().unwrap().child.id();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let shares: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            share_bytes(
                &client,
                &fx.custodian_key(i),
                &fx.share_file(&fx.keys.custodians[i].0),
            )
        })
        .collect();
    let keys = memscan::hierarchy(&sealed, &shares[..k], &client.info().authority_public_key);

    let mut rnd = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut rnd);
    let canary = format!("memory-scan-canary-{}", hex::encode(rnd));
    let needles = memscan::secret_needles(&keys, &shares, &canary);
    let r = client
        .open(
            &ic,
            None,
            "prod-ssh",
            &format!("invariants 1 and 3 {canary}"),
            600,
            &ic.ssh_public(),
        )
        .await
        .unwrap();
    let submit = |i: usize| {
        let (ok, out, err) = fx.cli(
            &fx.custodian_key(i),
            &[
                "share",
                "submit",
                &r.id,
                "--share",
                fx.share_file(&fx.keys.custodians[i].0).to_str().unwrap(),
                "--yes",
            ],
        );
        assert!(ok, "{out}{err}");
    };
    for i in 0..k - 1 {
        submit(i);
    }

    // One share short of the quorum, the daemon must hold exactly the shares it
    // accepted (the scan finds 33-byte secrets, not only the ASCII canary) and
    // nothing derived from R (invariant 2: R does not exist yet).
    let when = format!("{} of {k} shares in", k - 1);
    let found = memscan::scan_checked(pid, "breakglassd", &needles, &when);
    let listed = |hits: &[&Hit]| hits.iter().map(|h| h.to_string()).collect::<Vec<_>>();
    for i in 0..n {
        let raw = format!("share {}", i + 1);
        let held = found.iter().any(|h| h.needle == raw);
        assert_eq!(
            held,
            i < k - 1,
            "share {} {} in breakglassd's memory while collecting: {:#?}",
            i + 1,
            if held { "found" } else { "not found" },
            listed(&found.iter().collect::<Vec<_>>())
        );
    }
    let derived: Vec<&Hit> = found
        .iter()
        .filter(|h| !h.needle.starts_with("share "))
        .collect();
    assert!(
        derived.is_empty(),
        "invariant 2: R or a key derived from it exists before the quorum: {:#?}",
        listed(&derived)
    );

    submit(k - 1);
    let (ok, out, err) = fx.cli(
        &fx.commander_key("ic"),
        &[
            "credential",
            "fetch",
            &r.id,
            "--out",
            fx.dir.path().join("cred.json").to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(
        fx.daemon
            .as_mut()
            .unwrap()
            .child
            .try_wait()
            .unwrap()
            .is_none(),
        "breakglassd exited before the scan"
    );

    // After the unlock and the fetch, with the daemon still running: nothing.
    let found = memscan::scan_checked(pid, "breakglassd", &needles, "after the unlock");
    assert!(
        found.is_empty(),
        "invariants 1 and 3: secrets remain in breakglassd's memory after the unlock:\n{}",
        listed(&found.iter().collect::<Vec<_>>()).join("\n")
    );

    // The hardening that keeps this memory out of core dumps and other processes was applied.
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert!(
        core.split_whitespace().filter(|w| *w == "0").count() == 2,
        "core dumps are not disabled: {core}"
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    for l in status
        .lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmLck"))
    {
        eprintln!("breakglassd {l}");
    }
    let log = fx.daemon.as_ref().unwrap().log.clone();
    assert!(fx.stop());
    let stderr = std::fs::read_to_string(format!("{}.stderr", log.display())).unwrap();
    let report = stderr
        .lines()
        .find(|l| l.contains("memory hardening"))
        .unwrap_or_else(|| panic!("breakglassd logged no hardening report:\n{stderr}"));
    eprintln!("{report}");
    assert!(
        report.contains("dumpable: ok"),
        "breakglassd did not make itself non-dumpable: {report}"
    );
}
