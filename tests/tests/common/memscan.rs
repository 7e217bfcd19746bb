//! Searching a live process's memory for secrets: the engine of the memory
//! suites (`memory.rs` on the debug daemon, `memory_release.rs` on the release
//! daemon and CLI).
//!
//! A pass reads every readable range listed in `/proc/PID/maps` through
//! `/proc/PID/mem`, in 1 MiB chunks that overlap so a secret across a chunk
//! boundary is seen exactly once, on two threads (CI machines have two cores).
//! Two searches run over those chunks: known byte strings ([`Needles`]: the
//! secrets the test rebuilt, raw and in hex), and X25519 private keys known
//! only by their public keys ([`find_x25519_secrets`]).
//!
//! Every pass fails, never skips, when memory cannot be read: breakglassd makes
//! itself non-dumpable, so reading it needs root with CAP_SYS_PTRACE, and a
//! scan that cannot read proves nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use hkdf::Hkdf;
use sha2::{Digest, Sha256, Sha512};
use x25519_dalek::{PublicKey, StaticSecret};

/// Bytes read per chunk; a multiple of 8, so chunk starts keep the alignment of their range.
const CHUNK: u64 = 1 << 20;
/// Threads per pass.
const THREADS: usize = 2;
/// The needle every secret scan must find, or it is blind.
pub const CANARY: &str = "canary";

/// One mapping from `/proc/PID/maps`.
#[derive(Clone)]
pub struct Range {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub name: String,
}

impl Range {
    fn readable(&self) -> bool {
        self.perms.starts_with('r')
    }

    fn writable(&self) -> bool {
        self.perms.as_bytes().get(1) == Some(&b'w')
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:x}-{:x} {} {}",
            self.start, self.end, self.perms, self.name
        )
    }
}

/// The readable mappings of `pid`.
pub fn readable_ranges(pid: u32) -> Vec<Range> {
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
        .filter(Range::readable)
        .collect()
}

/// A secret found in a process's memory: which, where, and in which mapping.
pub struct Hit {
    pub needle: String,
    pub addr: u64,
    pub mapping: String,
}

impl fmt::Display for Hit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {:#x} in {}", self.needle, self.addr, self.mapping)
    }
}

/// What one pass over a process's memory read and found.
struct Pass {
    hits: Vec<Hit>,
    bytes: u64,
    ranges_read: usize,
    /// Ranges that could not be read, with the first error of each.
    unreadable: Vec<String>,
    /// What the search counted (X25519 candidates tested); 0 for needles.
    tested: u64,
    seconds: f64,
}

/// One chunk of a range: read `len` bytes at `at`; hits may start in the first `starts`.
struct Chunk {
    range: usize,
    at: u64,
    len: usize,
    starts: usize,
}

/// Reads `ranges` of `pid` and runs `search(buf, starts, base, hits)` on every chunk.
/// `search` pushes (needle index into `names`, address) and returns how many
/// candidates it tested; `overlap` is how far past `starts` it may look.
fn pass<F>(pid: u32, ranges: &[Range], names: &[String], overlap: u64, search: F) -> Pass
where
    F: Fn(&[u8], usize, u64, &mut Vec<(usize, u64)>) -> u64 + Sync,
{
    let t = Instant::now();
    let mem = File::open(format!("/proc/{pid}/mem")).unwrap_or_else(|e| {
        panic!(
            "cannot open /proc/{pid}/mem: {e}. breakglassd makes itself non-dumpable \
             (PR_SET_DUMPABLE 0), so only a process with CAP_SYS_PTRACE may read its memory: run this \
             test as root (CI does) or give the test binary CAP_SYS_PTRACE; kernel.yama.ptrace_scope = 3 \
             forbids it even to root. This test does not skip: a scan that cannot read proves nothing."
        )
    });
    let mut chunks = Vec::new();
    for (i, r) in ranges.iter().enumerate() {
        let mut at = r.start;
        while at < r.end {
            let starts = (r.end - at).min(CHUNK);
            chunks.push(Chunk {
                range: i,
                at,
                len: (r.end - at).min(CHUNK + overlap) as usize,
                starts: starts as usize,
            });
            at += starts;
        }
    }
    let next = AtomicUsize::new(0);
    let found = Mutex::new((Vec::new(), 0u64, 0u64, BTreeMap::new()));
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                let mut buf = vec![0u8; (CHUNK + overlap) as usize];
                let (mut raw, mut hits) = (Vec::new(), Vec::new());
                let (mut bytes, mut tested) = (0u64, 0u64);
                let mut failed = BTreeMap::new();
                while let Some(c) = chunks.get(next.fetch_add(1, Ordering::Relaxed)) {
                    match mem.read_at(&mut buf[..c.len], c.at) {
                        Ok(n) if n == c.len => {
                            tested += search(&buf[..c.len], c.starts, c.at, &mut raw);
                            hits.extend(raw.drain(..).map(|(n, addr)| Hit {
                                needle: names[n].clone(),
                                addr,
                                mapping: ranges[c.range].to_string(),
                            }));
                            bytes += c.starts as u64;
                        }
                        Ok(n) => {
                            failed.entry(c.range).or_insert(format!(
                                "short read of {n} of {} bytes at {:x}",
                                c.len, c.at
                            ));
                        }
                        Err(e) => {
                            failed
                                .entry(c.range)
                                .or_insert(format!("{e} at {:x}", c.at));
                        }
                    }
                }
                let mut f = found.lock().unwrap();
                f.0.extend(hits);
                f.1 += bytes;
                f.2 += tested;
                for (r, e) in failed {
                    f.3.entry(r).or_insert(e);
                }
            });
        }
    });
    let (mut hits, bytes, tested, failed) = found.into_inner().unwrap();
    hits.sort_by_key(|h: &Hit| h.addr);
    Pass {
        hits,
        bytes,
        ranges_read: ranges.len() - failed.len(),
        unreadable: failed
            .into_iter()
            .map(|(r, e)| format!("{}: {e}", ranges[r]))
            .collect(),
        tested,
        seconds: t.elapsed().as_secs_f64(),
    }
}

/// Prints what a pass read and fails if it could not read all of it.
fn check_read(p: &Pass, who: &str, pid: u32, when: &str) {
    eprintln!(
        "{when}: scanned {} bytes in {} ranges of {who} (pid {pid}) in {:.2} s; {} ranges unreadable",
        p.bytes,
        p.ranges_read,
        p.seconds,
        p.unreadable.len()
    );
    // The kernel's [vvar] pages are the only acceptable blind spots.
    let blind: Vec<&String> = p
        .unreadable
        .iter()
        .filter(|u| !(u.contains("[vvar") || u.contains("[vsyscall]")))
        .collect();
    assert!(
        blind.is_empty(),
        "{when}: parts of {who}'s memory could not be read, so the scan proves nothing: {blind:#?}"
    );
    assert!(
        p.bytes > 1 << 20,
        "{when}: only {} bytes read: the scan did not see {who}'s memory",
        p.bytes
    );
}

/// Byte strings to look for, indexed by their first two bytes so one pass checks all of them.
pub struct Needles {
    list: Vec<(String, Vec<u8>)>,
    by_prefix: Vec<Vec<usize>>,
    max_len: usize,
}

impl Needles {
    /// `list` must include one needle named [`CANARY`].
    pub fn new(list: Vec<(String, Vec<u8>)>) -> Needles {
        assert!(
            list.iter().any(|(n, _)| n == CANARY),
            "a scan without a canary cannot show it sees anything"
        );
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

    /// Records matches that start in `buf[..starts]`; `buf` may run past `starts`
    /// so needles crossing a chunk boundary are seen exactly once.
    fn scan(&self, buf: &[u8], starts: usize, base: u64, hits: &mut Vec<(usize, u64)>) -> u64 {
        if buf.len() < 2 {
            return 0;
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
        0
    }
}

/// Scans every readable range of `pid` (`who`, for messages) for `needles`, checks the
/// scan read everything and found the canary, and returns the other needles found.
pub fn scan_checked(pid: u32, who: &str, needles: &Needles, when: &str) -> Vec<Hit> {
    let names: Vec<String> = needles.list.iter().map(|(n, _)| n.clone()).collect();
    let p = pass(
        pid,
        &readable_ranges(pid),
        &names,
        needles.max_len as u64 - 1,
        |buf, starts, base, hits| needles.scan(buf, starts, base, hits),
    );
    check_read(&p, who, pid, when);
    let (canary, found): (Vec<Hit>, Vec<Hit>) =
        p.hits.into_iter().partition(|h| h.needle == CANARY);
    assert!(
        !canary.is_empty(),
        "{when}: the canary that {who} keeps was not found in its memory: the scan is blind \
         (wrong pid, unread ranges?), so a clean result would prove nothing"
    );
    eprintln!(
        "{when}: canary found {} times, first {}",
        canary.len(),
        canary[0]
    );
    found
}

/// Number of distinct byte values in `w`.
fn distinct_bytes(w: &[u8]) -> u32 {
    let mut seen = [0u64; 4];
    for &b in w {
        seen[usize::from(b >> 6)] |= 1 << (b & 63);
    }
    seen.iter().map(|s| s.count_ones()).sum()
}

/// Fewer distinct byte values than this and a 32-byte window is not tested as a key.
/// For 32 uniformly random bytes (a key as `StaticSecret::random_from_rng` makes it) the
/// chance of fewer than 16 distinct values is below 2^-54 (the expected count is 30.1);
/// even allowing for the 2 bytes clamping may change, below 18 it is under 2^-42. Zeroed
/// memory, text, pointers and small integers, which fill most of a heap, fall below it.
const MIN_DISTINCT: u32 = 16;

/// Searches the writable ranges of `pid` for the private halves of the X25519 `publics`
/// (named), known to the test only by their public keys: every 8-byte-aligned 32-byte
/// window with at least [`MIN_DISTINCT`] byte values is taken as a private key and its
/// public key, X25519(window, 9), compared with each of `publics`. X25519 clamps the
/// scalar, so the raw key and its clamped form (as x25519-dalek computes with it) both
/// match; a scalar reduced mod ℓ would not, but x25519-dalek never reduces one.
/// Fails if any writable range cannot be read; returns every match.
pub fn find_x25519_secrets(
    pid: u32,
    who: &str,
    publics: &[(String, [u8; 32])],
    when: &str,
) -> Vec<Hit> {
    let names: Vec<String> = publics.iter().map(|(n, _)| n.clone()).collect();
    let ranges: Vec<Range> = readable_ranges(pid)
        .into_iter()
        .filter(Range::writable)
        .collect();
    let p = pass(pid, &ranges, &names, 31, |buf, starts, base, hits| {
        assert_eq!(base % 8, 0, "chunks keep 8-byte alignment");
        let mut tested = 0;
        for i in (0..starts.min(buf.len().saturating_sub(31))).step_by(8) {
            let w = &buf[i..i + 32];
            if distinct_bytes(w) < MIN_DISTINCT {
                continue;
            }
            tested += 1;
            // Equal to x25519(window, X25519_BASEPOINT_BYTES), through the base-point
            // table rather than the Montgomery ladder: several times faster.
            let public = PublicKey::from(&StaticSecret::from(<[u8; 32]>::try_from(w).unwrap()));
            for (n, (_, p)) in publics.iter().enumerate() {
                if public.as_bytes() == p {
                    hits.push((n, base + i as u64));
                }
            }
        }
        tested
    });
    check_read(&p, who, pid, when);
    eprintln!(
        "{when}: X25519 search: {} windows of 32 bytes at 8-byte alignment in {} writable bytes, \
         {} with at least {MIN_DISTINCT} distinct byte values tested against {} public keys in {:.2} s on {THREADS} threads",
        p.bytes / 8,
        p.bytes,
        p.tested,
        publics.len(),
        p.seconds
    );
    p.hits
}

/// The forms an ed25519 private key takes in memory, named `{name} …`: the seed, and
/// SHA-512(seed) as signing expands it: the upper half (nonce prefix), the lower half
/// without the two bytes clamping changes (so raw and clamped both match), and the clamped
/// scalar reduced mod ℓ, which is how ed25519-dalek's `ExpandedSecretKey` holds it.
pub fn ed25519_forms(name: &str, seed: &[u8; 32]) -> Vec<(String, Vec<u8>)> {
    let expanded = Sha512::digest(seed);
    vec![
        (format!("{name} seed"), seed.to_vec()),
        (format!("{name} nonce prefix"), expanded[32..].to_vec()),
        (
            format!("{name} scalar bytes 1..31"),
            expanded[1..31].to_vec(),
        ),
        (
            format!("{name} scalar mod l"),
            clamped_mod_l(&expanded[..32]).to_vec(),
        ),
    ]
}

/// ed25519's group order ℓ = 2^252 + 27742317777372353535851937790883648493, 64-bit limbs, little-endian.
const L: [u64; 4] = [
    0x5812_631a_5cf5_d3ed,
    0x14de_f9de_a2f7_9cd6,
    0,
    0x1000_0000_0000_0000,
];

/// The lower half of an expanded ed25519 key, clamped, reduced mod ℓ (little-endian).
fn clamped_mod_l(lower: &[u8]) -> [u8; 32] {
    let mut b: [u8; 32] = lower.try_into().unwrap();
    b[0] &= 248;
    b[31] &= 127;
    b[31] |= 64;
    let mut x = [0u64; 4];
    for (i, limb) in x.iter_mut().enumerate() {
        *limb = u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap());
    }
    // x < 2^255 < 8ℓ: at most 7 subtractions.
    while x.iter().rev().cmp(L.iter().rev()) != std::cmp::Ordering::Less {
        let mut borrow = false;
        for (xi, li) in x.iter_mut().zip(L) {
            let (d, b1) = xi.overflowing_sub(li);
            let (d, b2) = d.overflowing_sub(u64::from(borrow));
            *xi = d;
            borrow = b1 || b2;
        }
    }
    let mut out = [0u8; 32];
    for (i, limb) in x.iter().enumerate() {
        out[8 * i..8 * i + 8].copy_from_slice(&limb.to_le_bytes());
    }
    out
}

/// The key hierarchy of one ceremony as named needles, rebuilt by the test from
/// `k` shares and the sealed state (see [`super::rebuild_secrets`]): R, K_R, S, the
/// HKDF PRKs of R and S (as good as the keys derived from them), and A's forms.
pub fn hierarchy(
    sealed: &super::Sealed,
    shares: &[Vec<u8>],
    authority: &[u8],
) -> Vec<(String, Vec<u8>)> {
    let super::Rebuilt {
        root,
        k_r,
        seed,
        a_seed,
    } = super::rebuild_secrets(sealed, shares, authority);
    let prk = |ikm: &[u8]| Hkdf::<Sha256>::extract(None, ikm).0.to_vec();
    let mut keys = vec![
        ("R".into(), root.clone()),
        ("K_R".into(), k_r.to_vec()),
        ("PRK of R".into(), prk(&root)),
        ("S".into(), seed.clone()),
        ("PRK of S".into(), prk(&seed)),
    ];
    keys.extend(ed25519_forms("A", &a_seed));
    keys
}

/// Needles for `keys` and every share (all 33 bytes, and the 32-byte y alone;
/// `share 1` is custodian 1's), each raw and in hex, and `canary`.
pub fn secret_needles(keys: &[(String, Vec<u8>)], shares: &[Vec<u8>], canary: &str) -> Needles {
    let mut list = keys.to_vec();
    for (i, s) in shares.iter().enumerate() {
        list.push((format!("share {}", i + 1), s.clone()));
        list.push((format!("share {} y", i + 1), s[1..].to_vec()));
    }
    let hexed: Vec<(String, Vec<u8>)> = list
        .iter()
        .map(|(n, s)| (format!("{n} (hex)"), hex::encode(s).into_bytes()))
        .collect();
    list.extend(hexed);
    list.push((CANARY.into(), canary.as_bytes().to_vec()));
    Needles::new(list)
}
