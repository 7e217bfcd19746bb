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

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use common::{load, share_bytes, Fixture};
use hkdf::Hkdf;
use sha2::{Digest, Sha256, Sha512};

/// One readable mapping from `/proc/PID/maps`.
struct Range {
    start: u64,
    end: u64,
    perms: String,
    name: String,
}

fn readable_ranges(pid: u32) -> Vec<Range> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_else(|e| {
        panic!("cannot read /proc/{pid}/maps: {e}; this test needs Linux procfs and must run as root with CAP_SYS_PTRACE")
    });
    maps.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (a, b) = f.next()?.split_once('-')?;
            let perms = f.next()?.to_string();
            let name = f.nth(3).unwrap_or("[anon]").to_string();
            Some(Range {
                start: u64::from_str_radix(a, 16).ok()?,
                end: u64::from_str_radix(b, 16).ok()?,
                perms,
                name,
            })
        })
        .filter(|r| r.perms.starts_with('r'))
        .collect()
}

/// Needles, indexed by their first two bytes so one pass over memory checks all of them.
struct Needles {
    list: Vec<(String, Vec<u8>)>,
    by_prefix: Vec<Vec<usize>>,
    max_len: usize,
}

impl Needles {
    fn new(list: Vec<(String, Vec<u8>)>) -> Needles {
        let mut by_prefix = vec![Vec::new(); 1 << 16];
        for (i, (name, n)) in list.iter().enumerate() {
            assert!(n.len() >= 16, "{name} is too short to search for");
            by_prefix[usize::from(n[0]) << 8 | usize::from(n[1])].push(i);
        }
        let max_len = list.iter().map(|(_, n)| n.len()).max().unwrap();
        Needles {
            list,
            by_prefix,
            max_len,
        }
    }

    /// Counts matches that start in `buf[..starts]`; `buf` may run past `starts`
    /// so needles crossing a chunk boundary are seen exactly once.
    fn scan(&self, buf: &[u8], starts: usize, base: u64, hits: &mut Vec<(usize, u64)>) {
        if buf.len() < 2 {
            return;
        }
        for i in 0..starts.min(buf.len() - 1) {
            let idx = &self.by_prefix[usize::from(buf[i]) << 8 | usize::from(buf[i + 1])];
            for &n in idx {
                let needle = &self.list[n].1;
                if buf.len() - i >= needle.len() && &buf[i..i + needle.len()] == needle.as_slice() {
                    hits.push((n, base + i as u64));
                }
            }
        }
    }
}

struct Scan {
    hits: Vec<(usize, u64)>,
    bytes: u64,
    ranges_read: usize,
    unreadable: Vec<String>,
    seconds: f64,
}

/// Reads every readable range of `pid` from `/proc/PID/mem` and searches it.
fn scan_process(pid: u32, needles: &Needles) -> Scan {
    let t = Instant::now();
    let mem = File::open(format!("/proc/{pid}/mem")).unwrap_or_else(|e| {
        panic!(
            "cannot open /proc/{pid}/mem of breakglassd: {e}. breakglassd makes itself non-dumpable \
             (PR_SET_DUMPABLE 0), so only a process with CAP_SYS_PTRACE may read its memory: run this \
             test as root (CI does) or give the test binary CAP_SYS_PTRACE; kernel.yama.ptrace_scope = 3 \
             forbids it even to root. This test does not skip: a scan that cannot read proves nothing."
        )
    });
    const CHUNK: u64 = 1 << 20;
    let overlap = needles.max_len as u64 - 1;
    let mut s = Scan {
        hits: Vec::new(),
        bytes: 0,
        ranges_read: 0,
        unreadable: Vec::new(),
        seconds: 0.0,
    };
    let mut buf = vec![0u8; (CHUNK + overlap) as usize];
    for r in readable_ranges(pid) {
        let mut at = r.start;
        let mut ok = true;
        while at < r.end {
            let len = (r.end - at).min(CHUNK + overlap) as usize;
            match mem.read_at(&mut buf[..len], at) {
                Ok(n) if n == len => {}
                Ok(n) => {
                    s.unreadable.push(format!(
                        "{:x}-{:x} {} {}: short read of {n} of {len} bytes at {at:x}",
                        r.start, r.end, r.perms, r.name
                    ));
                    ok = false;
                    break;
                }
                Err(e) => {
                    s.unreadable.push(format!(
                        "{:x}-{:x} {} {}: {e} at {at:x}",
                        r.start, r.end, r.perms, r.name
                    ));
                    ok = false;
                    break;
                }
            }
            let starts = (r.end - at).min(CHUNK) as usize;
            needles.scan(&buf[..len], starts, at, &mut s.hits);
            s.bytes += starts as u64;
            at += starts as u64;
        }
        if ok {
            s.ranges_read += 1;
        }
    }
    s.seconds = t.elapsed().as_secs_f64();
    s
}

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

/// The secrets of one ceremony, rebuilt by the test from the share files and the sealed state.
struct Secrets {
    shares: Vec<Vec<u8>>,
    /// (name, bytes): R, K_R, S, A's seed and expanded key, HKDF PRKs; not the shares.
    keys: Vec<(String, Vec<u8>)>,
}

fn rebuild(
    meta: &breakglass_daemon::store::Meta,
    shares: Vec<Vec<u8>>,
    k: usize,
    authority: &[u8],
) -> Secrets {
    let common::Rebuilt {
        root,
        k_r,
        seed,
        a_seed,
    } = common::rebuild_secrets(meta, &shares[..k], authority);
    // A's expanded key: the nonce prefix, and the scalar without the two bytes clamping changes.
    let expanded = Sha512::digest(a_seed);
    // HKDF's pseudo-random keys: as good as R (for K_R) and S (for A).
    let prk = |ikm: &[u8]| Hkdf::<Sha256>::extract(None, ikm).0.to_vec();
    let keys = vec![
        ("R".into(), root.clone()),
        ("K_R".into(), k_r.to_vec()),
        ("PRK of R".into(), prk(&root)),
        ("S".into(), seed.clone()),
        ("PRK of S".into(), prk(&seed)),
        ("A seed".into(), a_seed.to_vec()),
        ("A nonce prefix".into(), expanded[32..].to_vec()),
        ("A scalar bytes 1..31".into(), expanded[1..31].to_vec()),
    ];
    Secrets { shares, keys }
}

/// Needles for `keys` and the shares, raw and in hex, then the canary last.
fn needles(secrets: &Secrets, canary: &str) -> Needles {
    let mut list = secrets.keys.clone();
    for (i, s) in secrets.shares.iter().enumerate() {
        list.push((format!("share {}", i + 1), s.clone()));
        list.push((format!("share {} y", i + 1), s[1..].to_vec()));
    }
    let hexed: Vec<(String, Vec<u8>)> = list
        .iter()
        .map(|(n, s)| (format!("{n} (hex)"), hex::encode(s).into_bytes()))
        .collect();
    list.extend(hexed);
    list.push(("canary".into(), canary.as_bytes().to_vec()));
    Needles::new(list)
}

/// Scans the daemon and checks the scan could see all of it and found the canary.
/// Returns the names of the other needles found, with where.
fn scan_checked(pid: u32, needles: &Needles, when: &str) -> Vec<String> {
    let scan = scan_process(pid, needles);
    eprintln!(
        "{when}: scanned {} bytes in {} readable ranges of breakglassd (pid {pid}) in {:.2} s; {} ranges unreadable",
        scan.bytes,
        scan.ranges_read,
        scan.seconds,
        scan.unreadable.len()
    );
    for u in &scan.unreadable {
        eprintln!("  unreadable: {u}");
    }
    // The kernel's [vvar] pages are the only acceptable blind spots.
    let blind: Vec<&String> = scan
        .unreadable
        .iter()
        .filter(|u| !(u.contains("[vvar") || u.contains("[vsyscall]")))
        .collect();
    assert!(
        blind.is_empty(),
        "{when}: parts of breakglassd's memory could not be read, so the scan proves nothing: {blind:#?}"
    );
    assert!(
        scan.bytes > 1 << 20,
        "{when}: only {} bytes read: the scan did not see the daemon's memory",
        scan.bytes
    );
    let canary = needles.list.len() - 1;
    let canary_hits = scan.hits.iter().filter(|(n, _)| *n == canary).count();
    assert!(
        canary_hits > 0,
        "{when}: the canary that breakglassd keeps in its request cache was not found in its memory: \
         the scan is blind (wrong pid, unread ranges?), so a clean result would prove nothing"
    );
    eprintln!("{when}: canary found {canary_hits} times");
    let ranges = readable_ranges(pid);
    scan.hits
        .iter()
        .filter(|(n, _)| *n != canary)
        .map(|(n, addr)| {
            let range = ranges
                .iter()
                .find(|r| r.start <= *addr && *addr < r.end)
                .map(|r| format!("{:x}-{:x} {} {}", r.start, r.end, r.perms, r.name))
                .unwrap_or_default();
            format!("{} at {addr:#x} in {range}", needles.list[*n].0)
        })
        .collect()
}

async fn unlock_and_scan(n: usize, k: usize) {
    let mut fx = Fixture::new(n, k, "15m");
    // The sealed state, read before the daemon holds the database lock.
    let meta = breakglass_daemon::store::Store::open(&fx.state)
        .unwrap()
        .meta()
        .unwrap();
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
    let authority = client.info().authority_public_key.clone();
    let secrets = rebuild(&meta, shares, k, &authority);

    let mut rnd = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut rnd);
    let canary = format!("memory-scan-canary-{}", hex::encode(rnd));
    let needles = needles(&secrets, &canary);
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
    let found = scan_checked(pid, &needles, &format!("{} of {k} shares in", k - 1));
    for i in 0..n {
        let raw = format!("share {} at ", i + 1);
        let held = found.iter().any(|f| f.starts_with(&raw));
        assert_eq!(
            held,
            i < k - 1,
            "share {} {} in breakglassd's memory while collecting: {found:#?}",
            i + 1,
            if held { "found" } else { "not found" }
        );
    }
    let derived: Vec<&String> = found.iter().filter(|f| !f.starts_with("share ")).collect();
    assert!(
        derived.is_empty(),
        "invariant 2: R or a key derived from it exists before the quorum: {derived:#?}"
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
    let found = scan_checked(pid, &needles, "after the unlock");
    assert!(
        found.is_empty(),
        "invariants 1 and 3: secrets remain in breakglassd's memory after the unlock:\n{}",
        found.join("\n")
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
