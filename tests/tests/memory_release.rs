//! Invariants 1 (no secret at rest: not in a memory image either) and 3 (wiped
//! after use: "no copy anywhere in the process: not in freed heap, not in a
//! map's old buckets, not in a library's temporary buffer"), checked on the
//! RELEASE binaries, which is what DESIGN.md says the check is, after every way
//! a request closes.
//!
//! The test builds `target/release/breakglassd` and `target/release/breakglass`
//! (quick when CI built them already) and runs a real `breakglassd serve` on
//! loopback TLS with scopes of every kind: token only (`prod-api`), SSH only
//! (`prod-ops`) and both (`prod-ssh`). Against it: three unlocks, one per kind,
//! whose shares go through the release CLI (`breakglass share submit`); a
//! request cancelled after one share; a request left to expire after one share
//! (a short collection window; the daemon's sweeper closes it, and the API must
//! say `expired` before the scan). A live drill (readiness: the quorum
//! rebuilds the key and A signs a statement, nothing is minted); a rekey
//! (DESIGN.md "Epochs": a change to threshold K + 1 whose quorum rebuilds R
//! of epoch 1 and S and deals epoch 2, then every custodian confirms her new
//! share, which the daemon opens and checks), after which R of epoch 2, its
//! seal key and every new share are searched for too, with the change's
//! E_req and the pending epoch's confirmation key; and three
//! attestations: two
//! through the release CLI (`breakglass share attest`), one through the client
//! library, whose one-shot attestation key must be gone like every E_req.
//!
//! Then, with the daemon still running, every readable range of its address
//! space (`/proc/PID/maps`, `/proc/PID/mem`) is searched for what the test
//! rebuilds on its own from the share files and the sealed state: R, K_R, S,
//! the HKDF PRKs of R and S, A's seed and its expanded key (SHA-512 of the seed:
//! nonce prefix, scalar raw or clamped, scalar reduced mod ℓ), and every share
//! (33 bytes, or the 32-byte y alone), each raw and in hex. Every closed
//! request's ephemeral key E_req is searched too, although the test never knows
//! it: each 8-byte-aligned 32-byte window of writable memory is taken as an
//! X25519 private key and its public key compared with the `ephemeral_public_key`
//! each request was opened with (see `memscan::find_x25519_secrets`).
//!
//! The custodian's CLI holds secrets too: its ssh-ed25519 key (which decrypts
//! the share file) and the share. One submission runs under gdb, stopped at its
//! `exit_group` system call, and that process is searched for the custodian's
//! seed and expanded key, the lines of the key file that hold the seed, the
//! share, and everything the daemon is searched for.
//!
//! Each scan proves it can see. The daemon keeps a random canary from the
//! requests' reasons; the CLI keeps a canary from its own command line. While a
//! request is still collecting, the scans must find its E_req and its accepted
//! share (the daemon legitimately holds them then); only then is it cancelled
//! and its E_req added to what must be gone. The test fails, never skips, if
//! memory cannot be read (the daemon makes itself non-dumpable, so this needs
//! root with CAP_SYS_PTRACE, which is how CI runs) or if gdb is missing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use breakglass_client::api::Client;
use breakglass_client::identity::Identity;
use breakglass_proto::pb;
use common::memscan::{self, Hit};
use common::{load, share_bytes, Fixture};

/// Custodians and threshold, as in the README's drill.
const N: usize = 5;
const K: usize = 3;

/// Collection window: long enough for the unlocks and the scans of a collecting
/// request, short enough to wait out for the request that must expire.
const WINDOW: &str = "25s";

/// An SSH-only scope (the fixture has token-only `prod-api` and both-kinds `prod-ssh`)
/// and a commander for it who uses custodian c1's key, so c1 may not approve it.
const SSH_ONLY: &str =
    "[[scopes]]\nname = \"prod-ops\"\nprincipals = [\"ops\"]\ncredentials = [\"ssh\"]\n\n\
     [[commanders]]\nid = \"ops-lead\"\nssh_key = \"{c1_key}\"\nscopes = [\"prod-ops\"]\n";

#[tokio::test(flavor = "multi_thread")]
async fn release_daemon_and_cli_keep_no_secret_after_unlock_cancel_or_expiry() {
    common::use_binaries_in(build_release());
    let mut fx = Fixture::with_extra(N, K, WINDOW, &["root", "ops"], "", SSH_ONLY);
    // The sealed state, read before the daemon holds the database lock.
    let sealed = common::sealed(&fx.state);
    fx.start();
    let pid = fx.daemon.as_ref().unwrap().child.id();
    let mut client = fx.client().await;
    let shares: Vec<Vec<u8>> = (0..N)
        .map(|i| share_bytes(&client, &fx.custodian_key(i), &share_path(&fx, i)))
        .collect();
    let keys = memscan::hierarchy(&sealed, &shares[..K], &client.info().authority_public_key);
    let canary = random_canary("memory-release-canary");
    let daemon_needles = memscan::secret_needles(&keys, &shares, &canary);
    let (ic, ic2, lead) = (
        load(&fx.commander_key("ic")),
        load(&fx.commander_key("ic2")),
        load(&fx.custodian_key(0)),
    );
    let mut closed: Vec<(String, pb::RequestView)> = Vec::new();
    let reason = |what: &str| format!("invariants 1 and 3, {what} {canary}");

    // Opened first, so its window runs out while the rest happens.
    let expiring = open(&mut client, &ic, None, "prod-api", &reason("expires")).await;
    common::approve(&fx, &mut client, &expiring, 1).await;

    let token = open(&mut client, &ic, None, "prod-api", &reason("token only")).await;
    for i in 0..K {
        cli_submit(&fx, &token.id, i);
    }
    client.fetch(&ic, None, &token.id).await.unwrap();
    closed.push(("the token-only request (unlocked)".into(), token));

    let ssh = open(
        &mut client,
        &lead,
        Some("ops-lead"),
        "prod-ops",
        &reason("ssh only"),
    )
    .await;
    for i in 1..=K {
        cli_submit(&fx, &ssh.id, i);
    }
    client
        .fetch(&lead, Some("ops-lead"), &ssh.id)
        .await
        .unwrap();
    closed.push(("the ssh-only request (unlocked)".into(), ssh));

    // The last share of this unlock comes from a CLI stopped at its exit and scanned.
    let both = open(&mut client, &ic, None, "prod-ssh", &reason("both kinds")).await;
    for i in K - 1..N - 1 {
        cli_submit(&fx, &both.id, i);
    }
    let cli_found = scan_cli_at_exit(&fx, &both.id, N - 1, &keys, &shares);
    client.fetch(&ic, None, &both.id).await.unwrap();
    closed.push(("the ssh-and-token request (unlocked)".into(), both));

    // While collecting, the daemon holds this request's E_req and its share: the scans must find them.
    let cancelled = open(&mut client, &ic2, None, "prod-ssh", &reason("cancelled")).await;
    common::approve(&fx, &mut client, &cancelled, 0).await;
    scan_while_collecting(pid, &daemon_needles, &cancelled);
    client
        .cancel(&ic2, None, &cancelled.id, "memory scan")
        .await
        .unwrap();
    closed.push(("the cancelled request".into(), cancelled));

    // Readiness: attestations open a custodian's share with a one-shot key and wipe both.
    for i in [0, 2] {
        let file = share_path(&fx, i).display().to_string();
        let (ok, out, err) = fx.cli(&fx.custodian_key(i), &["share", "attest", "--share", &file]);
        assert!(ok, "breakglass share attest as c{}: {out}{err}", i + 1);
    }
    // A live drill: the quorum rebuilds R, S and A, A signs the statement, nothing is minted.
    let drill = client
        .open_drill(&ic, None, &reason("live drill"))
        .await
        .unwrap();
    for i in 0..K {
        cli_submit(&fx, &drill.id, i);
    }
    closed.push(("the live drill (drill_passed)".into(), drill));
    // Waited out before the rekey: a commit cancels what is collecting.
    wait_until_expired(&mut client, &expiring).await;
    closed.push(("the expired request".into(), expiring));

    // A rekey (DESIGN.md "Epochs"): the quorum rebuilds R of epoch 1 and S,
    // deals epoch 2 (a new R, threshold K + 1), and each custodian confirms
    // her new share, which the daemon opens with the pending epoch's key and
    // checks. After the commit neither R, S nor any new share may remain.
    let rekey = rekey(&fx, &mut client, &ic, &reason("rekey")).await;
    let mut keys = keys;
    keys.extend(rekey.needles);
    let daemon_needles = memscan::secret_needles(&keys, &shares, &canary);

    let c2 = load(&fx.custodian_key(1));
    let attested = client.attest(&c2, None, &rekey.files[1]).await.unwrap();
    // c4 starts twice: the first key, replaced, must be gone; the second is
    // pending (the daemon must hold it), so the scan must find it.
    let c4 = load(&fx.custodian_key(3));
    let replaced = client.start_attestation(&c4, "c4").await.unwrap();
    let pending = client.start_attestation(&c4, "c4").await.unwrap();
    let key32 =
        |c: &pb::AttestationChallenge| -> [u8; 32] { c.public_key.as_slice().try_into().unwrap() };
    let pending_name = "the pending attestation key of c4 (must be found)".to_string();

    check_states(&mut client, &closed).await;
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

    let when = "after 3 unlocks, a live drill, a cancel, an expiry, a rekey and 3 attestations";
    let mut daemon_found = memscan::scan_checked(pid, "breakglassd", &daemon_needles, when);
    let publics: Vec<(String, [u8; 32])> = closed
        .iter()
        .map(|(what, r)| (format!("E_req of {what}"), eph(r)))
        .chain([
            (
                "the attestation key of c2".to_string(),
                attested.attestation_key,
            ),
            (
                "the replaced attestation key of c4".to_string(),
                key32(&replaced),
            ),
            (pending_name.clone(), key32(&pending)),
            (
                "E_req of the rekey's change request".to_string(),
                rekey.change_key,
            ),
            (
                "the rekey's confirmation key".to_string(),
                rekey.confirm_key,
            ),
        ])
        .collect();
    let (seen, gone): (Vec<_>, Vec<_>) =
        memscan::find_x25519_secrets(pid, "breakglassd", &publics, when)
            .into_iter()
            .partition(|h| h.needle == pending_name);
    assert!(
        !seen.is_empty(),
        "{when}: the pending attestation key of c4 was not found: the scan is blind to attestation keys"
    );
    daemon_found.extend(gone);

    let mut report = String::new();
    for (who, found) in [
        (
            format!("breakglassd (release, pid {pid}), {when}"),
            &daemon_found,
        ),
        (
            "breakglass share submit (release CLI) stopped at exit_group".into(),
            &cli_found,
        ),
    ] {
        if !found.is_empty() {
            report.push_str(&describe(&who, found));
        }
    }
    eprint!("{report}");
    assert!(
        report.is_empty(),
        "invariants 1 and 3: secrets remain in memory after use:\n{report}"
    );
}

/// What a rekey left for the scan: the secrets of epoch 2 as needles, the
/// new share files, and the public halves of the X25519 keys it used.
struct Rekeyed {
    needles: Vec<(String, Vec<u8>)>,
    files: Vec<breakglass_formats::share_file::ShareFile>,
    change_key: [u8; 32],
    confirm_key: [u8; 32],
}

/// `ic` proposes threshold K + 1 for the same custodians; c1..cK approve;
/// every custodian fetches and confirms her epoch 2 share (through the
/// library: the shares pass through this process, never the daemon's, except
/// sealed). Returns R of epoch 2 (rebuilt here from the new shares), its seal
/// key and every new share as needles.
async fn rekey(fx: &Fixture, client: &mut Client, ic: &Identity, reason: &str) -> Rekeyed {
    let text = std::fs::read_to_string(fx.policy_path()).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("threshold = "))
        .unwrap()
        .to_string();
    let proposed = text.replacen(&line, &format!("threshold = {}", K + 1), 1);
    let change = client.propose(ic, None, &proposed, reason).await.unwrap();
    let change_key: [u8; 32] = change
        .request()
        .ephemeral_public_key
        .as_slice()
        .try_into()
        .unwrap();
    for i in 0..K {
        let me = load(&fx.custodian_key(i));
        let f = client.read_share_file(&me, &share_path(fx, i)).unwrap();
        client.approve_change(&me, None, &change, &f).await.unwrap();
    }
    let dealt = client.get_change(change.id()).await.unwrap();
    let confirm_key: [u8; 32] = dealt
        .pending()
        .unwrap()
        .ephemeral_public_key
        .as_slice()
        .try_into()
        .unwrap();
    let mut files = Vec::new();
    for i in 0..N {
        let me = load(&fx.custodian_key(i));
        let got = client
            .fetch_new_share(&me, None, change.id())
            .await
            .unwrap();
        let (out, _) = client
            .confirm_new_share(&me, None, change.id(), &got.file)
            .await
            .unwrap();
        assert_eq!(out.committed, i == N - 1);
        files.push(got.file);
    }
    assert_eq!(client.info().epoch, 2);
    let new_shares: Vec<Vec<u8>> = files
        .iter()
        .map(|f| f.share_bytes().unwrap().to_vec())
        .collect();
    let root = vsss_rs::Gf256::combine_array(&new_shares[..=K]).unwrap();
    let k_r = common::hkdf32(&root, b"breakglass/v1/seal");
    let prk = hkdf::Hkdf::<sha2::Sha256>::extract(None, &root).0.to_vec();
    let mut needles = vec![
        ("R of epoch 2".to_string(), root),
        ("K_R of epoch 2".to_string(), k_r.to_vec()),
        ("PRK of R of epoch 2".to_string(), prk),
    ];
    for (i, s) in new_shares.iter().enumerate() {
        needles.push((format!("epoch 2 share {}", i + 1), s.clone()));
        needles.push((format!("epoch 2 share {} y", i + 1), s[1..].to_vec()));
    }
    Rekeyed {
        needles,
        files,
        change_key,
        confirm_key,
    }
}

/// Builds the release daemon and CLI (`cargo build --release`) into this test's target
/// directory and returns where they are. `BREAKGLASS_RELEASE_BIN_DIR` names a
/// directory of release binaries to scan instead (how this test was run
/// against the code before the wipe fixes, to see it fail).
fn build_release() -> PathBuf {
    if let Some(dir) = std::env::var_os("BREAKGLASS_RELEASE_BIN_DIR") {
        eprintln!("scanning the binaries in {}", Path::new(&dir).display());
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<this test> → target
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let t = Instant::now();
    let mut cargo = Command::new(env!("CARGO"));
    // Cargo sets CARGO_PKG_NAME, CARGO_MANIFEST_DIR, … for this test; build
    // scripts (ring's, through cc) rerun when those differ from the shell's, so
    // a cargo started with them would build a release tree that the README's
    // `cargo run --release` rebuilds. Start it with the shell's environment.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let per_crate = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_CFG_",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "OUT_DIR",
        ];
        if per_crate.iter().any(|p| name.starts_with(p)) {
            cargo.env_remove(&name);
        }
    }
    let out = cargo
        .current_dir(root)
        .args(["build", "--release", "--target-dir"])
        .arg(&target)
        .args(["-p", "breakglass-daemon", "--bin", "breakglassd"])
        .args(["-p", "breakglass-client", "--bin", "breakglass"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo build --release failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "cargo build --release of breakglassd and breakglass: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    target.join("release")
}

fn random_canary(prefix: &str) -> String {
    let mut rnd = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut rnd);
    format!("{prefix}-{}", hex::encode(rnd))
}

fn share_path(fx: &Fixture, i: usize) -> PathBuf {
    fx.share_file(&fx.keys.custodians[i].0)
}

/// The X25519 public key of a request's E_req.
fn eph(r: &pb::RequestView) -> [u8; 32] {
    r.ephemeral_public_key.as_slice().try_into().unwrap()
}

/// Opens a request for `scope`, with an SSH key to certify when the scope mints certificates.
async fn open(
    client: &mut Client,
    me: &Identity,
    as_id: Option<&str>,
    scope: &str,
    reason: &str,
) -> pb::RequestView {
    let ssh_key = if client.scope_mints(scope, "ssh") {
        me.ssh_public()
    } else {
        String::new()
    };
    client
        .open(me, as_id, scope, reason, 600, &ssh_key)
        .await
        .unwrap()
}

/// The `breakglass` arguments with which custodian `i` approves `request` from `share`.
fn submit_args(fx: &Fixture, request: &str, i: usize, share: &Path) -> Vec<String> {
    let mut args = fx.conn_args();
    args.extend(["--key".into(), fx.custodian_key(i).display().to_string()]);
    args.extend(["share", "submit", request, "--share"].map(String::from));
    args.extend([share.display().to_string(), "--yes".into()]);
    args
}

/// Custodian `i` approves `request` through the release CLI.
fn cli_submit(fx: &Fixture, request: &str, i: usize) {
    let args = submit_args(fx, request, i, &share_path(fx, i));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out, err) = common::run("breakglass", &args, &[]);
    assert!(ok, "breakglass share submit as c{}: {out}{err}", i + 1);
}

/// One share short of nothing: the daemon holds this collecting request's E_req and its
/// one accepted share (custodian 1's), and the scans must find both, or they are blind.
fn scan_while_collecting(pid: u32, needles: &memscan::Needles, r: &pb::RequestView) {
    let when = "while a request collects";
    let found = memscan::scan_checked(pid, "breakglassd", needles, when);
    assert!(
        found.iter().any(|h| h.needle == "share 1"),
        "{when}: the share breakglassd holds for request {} was not found: the scan is blind to \
         binary secrets; found only: {}",
        r.id,
        found
            .iter()
            .map(Hit::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    );
    let e_req = memscan::find_x25519_secrets(
        pid,
        "breakglassd",
        &[("E_req of the collecting request".into(), eph(r))],
        when,
    );
    assert!(
        !e_req.is_empty(),
        "{when}: the E_req breakglassd holds for request {} was not found: the X25519 search is blind",
        r.id
    );
    for h in &e_req {
        eprintln!("{when}: positive control: {h}");
    }
}

/// Waits until the sweeper has expired `r` (its window plus a margin).
async fn wait_until_expired(client: &mut Client, r: &pb::RequestView) {
    let t = Instant::now();
    let left = r
        .deadline
        .saturating_sub(breakglass_client::api::unix_now());
    let limit = Duration::from_secs(left + 30);
    loop {
        let v = client.get(&r.id).await.unwrap();
        if v.state == pb::RequestState::Expired as i32 {
            eprintln!(
                "request {} expired; waited {:.1} s",
                r.id,
                t.elapsed().as_secs_f64()
            );
            return;
        }
        assert!(
            t.elapsed() < limit,
            "request {} is still {} {left} s after its deadline plus 30 s",
            r.id,
            breakglass_client::api::state_name(v.state)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The API says each request is closed the way its label says.
async fn check_states(client: &mut Client, closed: &[(String, pb::RequestView)]) {
    for (what, r) in closed {
        let state = breakglass_client::api::state_name(client.get(&r.id).await.unwrap().state);
        let expected = ["drill_passed", "unlocked", "cancelled", "expired"]
            .into_iter()
            .find(|s| what.contains(s))
            .unwrap();
        assert_eq!(state, expected, "{what} ({})", r.id);
    }
}

/// Custodian `i` approves `request` through the release CLI run under gdb; the CLI is
/// scanned when it reaches `exit_group`, with everything it handled gone (the daemon's
/// secrets too, which it must never see). Returns what was found.
fn scan_cli_at_exit(
    fx: &Fixture,
    request: &str,
    i: usize,
    keys: &[(String, Vec<u8>)],
    shares: &[Vec<u8>],
) -> Vec<Hit> {
    let canary = random_canary("memory-release-cli-canary");
    // The canary rides in the share file's name, so it is on the CLI's command line.
    let share = fx.dir.path().join(format!("{canary}.share"));
    std::fs::copy(share_path(fx, i), &share).unwrap();
    let key = fx.custodian_key(i);
    let mut cli_keys = keys.to_vec();
    cli_keys.extend(custodian_key_needles(
        &format!("custodian c{}", i + 1),
        &key,
    ));
    let needles = memscan::secret_needles(&cli_keys, shares, &canary);

    let cli = StoppedCli::start(
        &common::bin("breakglass"),
        &submit_args(fx, request, i, &share),
        fx.dir.path(),
    );
    let found = memscan::scan_checked(
        cli.pid,
        "breakglass share submit",
        &needles,
        "CLI stopped at exit_group",
    );
    let out = cli.finish();
    assert!(
        out.contains("share accepted") && out.contains("quorum reached"),
        "the traced breakglass share submit did not complete the unlock:\n{out}"
    );
    found
}

/// A custodian's ssh-ed25519 key as needles: its seed and expanded forms, and each line
/// of the key file whose base64 holds at least 16 bytes of the seed.
fn custodian_key_needles(name: &str, path: &Path) -> Vec<(String, Vec<u8>)> {
    use base64::Engine;
    let key = ssh_key::PrivateKey::read_openssh_file(path).unwrap();
    let seed = key.key_data().ed25519().unwrap().private.to_bytes();
    let mut out = memscan::ed25519_forms(name, &seed);
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let blob = base64::engine::general_purpose::STANDARD
        .decode(lines.concat())
        .unwrap();
    let at = blob.windows(32).position(|w| w == seed).unwrap();
    let mut first = 0; // first base64 character of the current line
    for (n, l) in lines.iter().enumerate() {
        let (from, to) = (first * 3 / 4, (first + l.len()) * 3 / 4);
        let held = to.min(at + 32).saturating_sub(from.max(at));
        if held >= 16 {
            out.push((
                format!(
                    "{name} key file line {} (base64 of {held} seed bytes)",
                    n + 2
                ),
                l.as_bytes().to_vec(),
            ));
        }
        first += l.len();
    }
    assert!(out.len() > 4, "{}: no line holds the seed", path.display());
    out
}

/// The release CLI run under gdb and stopped at its `exit_group` system call: its
/// memory is all there, nothing more will run in it.
struct StoppedCli {
    gdb: Option<Child>,
    pid: u32,
    /// gdb waits for this file before letting the CLI exit.
    go: PathBuf,
    /// gdb's and the CLI's output.
    out: PathBuf,
}

impl StoppedCli {
    fn start(bin: &Path, args: &[String], dir: &Path) -> StoppedCli {
        match Command::new("gdb").arg("--version").output() {
            Ok(o) if o.status.success() => {}
            r => panic!(
                "gdb is needed to stop `breakglass share submit` at its exit and scan its memory, \
                 and it is missing or broken ({r:?}): install it (`apt-get install -y gdb`; .ci/run \
                 does). This test does not skip."
            ),
        }
        let (stopped, go, out) = (
            dir.join("cli-stopped"),
            dir.join("cli-go"),
            dir.join("cli-under-gdb.out"),
        );
        let wait = format!(
            "shell touch {} && while [ ! -e {} ]; do sleep 0.02; done",
            stopped.display(),
            go.display()
        );
        let gdb = Command::new("gdb")
            .args(["-nx", "-q", "-batch"])
            .args(["-ex", "set startup-with-shell off"])
            .args(["-ex", "set disable-randomization off"])
            .args(["-ex", "catch syscall exit_group"])
            .args(["-ex", "run", "-ex", &wait, "-ex", "continue"])
            .arg("--args")
            .arg(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&out).unwrap(),
            ))
            .spawn()
            .unwrap();
        let mut cli = StoppedCli {
            gdb: Some(gdb),
            pid: 0,
            go,
            out,
        };
        let t = Instant::now();
        while !stopped.exists() {
            let gdb = cli.gdb.as_mut().unwrap();
            assert!(
                gdb.try_wait().unwrap().is_none(),
                "gdb exited before the CLI reached exit_group:\n{}",
                cli.output()
            );
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "the CLI under gdb did not reach exit_group in 120 s:\n{}",
                cli.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        cli.pid = cli.find_inferior(bin);
        eprintln!(
            "breakglass share submit (pid {}) stopped at exit_group after {:.2} s",
            cli.pid,
            t.elapsed().as_secs_f64()
        );
        cli
    }

    /// gdb's child running `bin` (its other child is the shell that waits).
    fn find_inferior(&self, bin: &Path) -> u32 {
        let gdb = self.gdb.as_ref().unwrap().id();
        let bin = bin.canonicalize().unwrap();
        let tasks = std::fs::read_dir(format!("/proc/{gdb}/task")).unwrap();
        let children: Vec<u32> = tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
            .flat_map(|c| {
                c.split_whitespace()
                    .map(|p| p.parse().unwrap())
                    .collect::<Vec<u32>>()
            })
            .collect();
        let found: Vec<u32> = children
            .into_iter()
            .filter(|p| std::fs::read_link(format!("/proc/{p}/exe")).ok().as_ref() == Some(&bin))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one breakglass process under gdb: {found:?}\n{}",
            self.output()
        );
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", found[0])).unwrap();
        let state = stat.rsplit_once(") ").unwrap().1.chars().next().unwrap();
        assert_eq!(
            state,
            't',
            "the CLI is not stopped by gdb: {stat}\n{}",
            self.output()
        );
        found[0]
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Lets the CLI exit; returns gdb's and the CLI's output after checking the CLI
    /// stopped at exit_group and then exited with status 0.
    fn finish(mut self) -> String {
        std::fs::write(&self.go, b"").unwrap();
        let status = self.gdb.take().unwrap().wait().unwrap();
        let out = self.output();
        assert!(
            status.success() && out.contains("exit_group") && out.contains("exited normally"),
            "breakglass share submit under gdb: {status}:\n{out}"
        );
        out
    }
}

impl Drop for StoppedCli {
    /// On a failed assertion: let gdb go, and stop it (by its pid) if it does not.
    fn drop(&mut self) {
        if let Some(mut gdb) = self.gdb.take() {
            let _ = std::fs::write(&self.go, b"");
            let t = Instant::now();
            while gdb.try_wait().ok().flatten().is_none() && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = gdb.kill();
            let _ = gdb.wait();
        }
    }
}

/// What was found in `who`: a count per needle with the mappings, then every hit.
fn describe(who: &str, found: &[Hit]) -> String {
    let mut per: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    for h in found {
        let mapping = h.mapping.rsplit(' ').next().unwrap_or_default().to_string();
        *per.entry(&h.needle)
            .or_default()
            .entry(mapping)
            .or_default() += 1;
    }
    let mut s = format!("{who}: {} hits\n", found.len());
    for (needle, maps) in &per {
        let total: usize = maps.values().sum();
        let maps: Vec<String> = maps.iter().map(|(m, n)| format!("{m} {n}")).collect();
        s.push_str(&format!("  {needle}: {total} ({})\n", maps.join(", ")));
    }
    for h in found {
        s.push_str(&format!("    {h}\n"));
    }
    s
}
