//! Startup, idle memory and unsigned reads of the release `breakglassd` on a
//! state with a long history, beside the same figures on an empty one.
//!
//! ```sh
//! cargo build --release --bins && cargo run --release -p breakglass-tests --example long_history
//! # REQUESTS=100000 ENTRIES=1000000 by default
//! ```
//!
//! The history is written through the store API (closed requests, one audit
//! entry each, then drill notes up to ENTRIES), as years of use would leave
//! it. Prints one line per figure; nothing asserts a target (BENCHMARKS.md).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use breakglass_client::api::Client;
use breakglass_client::connect::{ConnectOptions, Trust};
use breakglass_client::identity::Identity;
use breakglass_daemon::engine::event::{Event, Record};
use breakglass_daemon::engine::request::{Request, State};
use breakglass_daemon::Store;

struct Daemon {
    child: Child,
    addr: String,
    fp: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn start(bin: &Path, state: &Path) -> (Daemon, Duration) {
    let t = Instant::now();
    let mut child = Command::new(bin)
        .args(["serve", "--state"])
        .arg(state)
        .args(["--listen", "127.0.0.1:0"])
        .env("BREAKGLASS_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut rd = BufReader::new(child.stdout.take().unwrap());
    let (mut addr, mut fp, mut line) = (String::new(), String::new(), String::new());
    while rd.read_line(&mut line).unwrap() > 0 {
        if let Some(f) = line.trim().strip_prefix("tls fingerprint ") {
            fp = f.to_string();
        }
        if let Some(a) = line.trim().strip_prefix("breakglassd listening on ") {
            addr = a.to_string();
            break;
        }
        line.clear();
    }
    assert!(!addr.is_empty(), "breakglassd did not start");
    (Daemon { child, addr, fp }, t.elapsed())
}

async fn connect(d: &Daemon) -> Client {
    Client::connect(&ConnectOptions {
        addr: d.addr.clone(),
        trust: Trust::fingerprint(&d.fp).unwrap(),
        server_name: None,
        client_cert: None,
    })
    .await
    .unwrap()
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn init(bin: &Path, dir: &Path) -> PathBuf {
    let keys: Vec<Identity> = (0..4).map(|_| Identity::generate()).collect();
    let mut policy = String::from(
        "threshold = 2\ncollection_window = \"1h\"\nmax_ttl = \"1h\"\n\n[[scopes]]\nname = \"s\"\nprincipals = [\"root\"]\n\n",
    );
    for (i, k) in keys[..3].iter().enumerate() {
        policy.push_str(&format!(
            "[[custodians]]\nid = \"c{}\"\nssh_key = \"{}\"\n\n",
            i + 1,
            k.ssh_public()
        ));
    }
    policy.push_str(&format!(
        "[[commanders]]\nid = \"ic\"\nssh_key = \"{}\"\nscopes = [\"s\"]\n",
        keys[3].ssh_public()
    ));
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("p.toml");
    std::fs::write(&p, policy).unwrap();
    let state = dir.join("state");
    let ok = Command::new(bin)
        .args(["init", "--policy"])
        .arg(&p)
        .arg("--state")
        .arg(&state)
        .arg("--shares-out")
        .arg(dir.join("shares"))
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "init failed");
    state
}

/// Writes `requests` expired requests (one `request_expired` entry each) and
/// drill notes up to `entries` audit entries.
fn fill(state: &Path, requests: u64, entries: u64) {
    let store = Store::open(state).unwrap();
    let daemon_id = store.meta().unwrap().daemon_id;
    let t0 = 1_700_000_000u64;
    let batch = 10_000u64;
    let mut written = 0u64;
    while written < requests {
        let n = batch.min(requests - written);
        let rs: Vec<Request> = (written..written + n)
            .map(|i| {
                let id = format!("req-{i:016x}");
                let reason = format!("history {i}");
                let digest = breakglass_proto::signing::request_digest(
                    &breakglass_proto::signing::RequestFields {
                        daemon_id: &daemon_id,
                        request_id: &id,
                        requester: "ic",
                        scope: "s",
                        reason: &reason,
                        ttl_seconds: 600,
                        opened_at: t0 + i,
                        deadline: t0 + i + 900,
                        threshold: 2,
                        ephemeral_public: &[9; 32],
                        ssh_public_key: "",
                    },
                );
                Request {
                    id,
                    daemon_id: daemon_id.clone(),
                    requester: "ic".into(),
                    scope: "s".into(),
                    reason,
                    ttl_seconds: 600,
                    opened_at: t0 + i,
                    deadline: t0 + i + 900,
                    threshold: 2,
                    ephemeral_public: [9; 32],
                    ssh_public_key: String::new(),
                    digest,
                    approvals: Vec::new(),
                    state: State::Expired,
                    closed_at: t0 + i + 900,
                    close_reason: "collection window ended without a quorum".into(),
                    credential: None,
                    revocation: None,
                    kind: Default::default(),
                    drill_statement: None,
                    change: None,
                }
            })
            .collect();
        let recs: Vec<Record> = rs
            .iter()
            .map(|r| Record {
                time: r.closed_at,
                actor: "daemon".into(),
                request_id: Some(r.id.clone()),
                event: Event::RequestExpired { accepted: 0 },
                signed_with: None,
            })
            .collect();
        store.commit(&rs.iter().collect::<Vec<_>>(), recs).unwrap();
        written += n;
    }
    let mut head = store.audit_head().unwrap();
    let last_time = t0 + requests + 900;
    while head < entries {
        let n = 50_000u64.min(entries - head);
        let recs: Vec<Record> = (0..n)
            .map(|i| Record {
                time: last_time + head + i,
                actor: "drill".into(),
                request_id: None,
                event: Event::Drill {
                    note: format!("history note {}", head + i),
                },
                signed_with: None,
            })
            .collect();
        store.commit(&[], recs).unwrap();
        head = store.audit_head().unwrap();
    }
}

async fn measure(bin: &Path, state: &Path, what: &str) {
    drop(start(bin, state)); // the first start makes the TLS certificate
    let mut starts = Vec::new();
    for _ in 0..5 {
        let (d, t) = start(bin, state);
        let c = Instant::now();
        drop(connect(&d).await);
        starts.push(ms(t + c.elapsed()));
    }
    let (d, _) = start(bin, state);
    let mut client = connect(&d).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss = rss_kb(d.child.id());
    let mut lists = Vec::new();
    let mut revs = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        client.list_page(false, 100, "").await.unwrap();
        lists.push(ms(t.elapsed()));
        let t = Instant::now();
        client
            .rpc()
            .get_revocations(breakglass_proto::pb::GetRevocationsRequest::default())
            .await
            .unwrap();
        revs.push(ms(t.elapsed()));
    }
    println!(
        "{what}: start → serving median {:.1} ms (5 runs); idle RSS {rss} kB; ListRequests (100) median {:.2} ms; GetRevocations median {:.2} ms",
        median(starts),
        median(lists),
        median(revs)
    );
}

#[tokio::main]
async fn main() {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("breakglassd");
    assert!(
        bin.is_file(),
        "{} is missing: cargo build --release --bins",
        bin.display()
    );
    let requests = env_or("REQUESTS", 100_000);
    let entries = env_or("ENTRIES", 1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let empty = init(&bin, &dir.path().join("empty"));
    let long = init(&bin, &dir.path().join("long"));
    let t = Instant::now();
    fill(&long, requests, entries);
    println!(
        "breakglass long-history bench: release breakglassd, {} cores; wrote {requests} requests and {entries} audit entries in {:.1} s",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        t.elapsed().as_secs_f64()
    );
    measure(&bin, &empty, "empty state").await;
    measure(
        &bin,
        &long,
        &format!("{requests} requests, {entries} entries"),
    )
    .await;
}
