//! Test fixture: keys, a policy, `breakglassd init`, and a real `breakglassd serve`
//! on loopback TLS, with its output captured to files.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use breakglass_client::api::{unix_now, Client};
use breakglass_client::connect::{ConnectOptions, Trust};
use breakglass_client::identity::Identity;
use breakglass_formats::share_file::ShareFile;
use breakglass_proto::{pb, signing, transport};

pub mod authenticator;
pub mod inprocess;
pub mod memscan;

/// Where [`bin`] finds the binaries when a suite chose (see [`use_binaries_in`]).
static BIN_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Makes every later [`bin`] (so `init`, `serve` and the CLI) use the binaries in `dir`
/// (e.g. `target/release`) instead of the ones built next to this test's executable.
pub fn use_binaries_in(dir: PathBuf) {
    let chosen = BIN_DIR.get_or_init(|| dir.clone());
    assert_eq!(chosen, &dir, "a suite uses one set of binaries");
}

/// Path of a workspace binary, built next to this test's executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = match BIN_DIR.get() {
        Some(d) => d.as_path(),
        None => exe.parent().and_then(Path::parent).unwrap(),
    };
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "{} is missing: run the tests with `cargo test --workspace` so the binaries are built",
        p.display()
    );
    p
}

/// Runs a binary to completion; returns (success, stdout, stderr).
pub fn run(name: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut c = Command::new(bin(name));
    c.args(args).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

pub struct Keys {
    pub custodians: Vec<(String, PathBuf)>,
    pub commanders: Vec<(String, PathBuf)>,
    pub outsider: PathBuf,
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub keys: Keys,
    pub state: PathBuf,
    pub shares: PathBuf,
    pub init_stdout: String,
    pub daemon: Option<Daemon>,
}

pub struct Daemon {
    pub child: Child,
    pub addr: String,
    pub fingerprint: String,
    pub log: PathBuf,
    /// `host:port` of the metrics listener, when started with `--metrics`.
    pub metrics: Option<String>,
}

fn keyfile(dir: &Path, name: &str) -> (Identity, PathBuf) {
    let id = Identity::generate();
    let p = dir.join(name);
    id.write(&p, name, None).unwrap();
    (id, p)
}

pub fn load(p: &Path) -> Identity {
    Identity::load(p, &|_| panic!("test keys have no passphrase")).unwrap()
}

impl Fixture {
    /// `n` custodians, threshold `k`, two commanders (`ic` may use prod-ssh and prod-db, `ic2` prod-ssh),
    /// collection window `window`.
    pub fn new(n: usize, k: usize, window: &str) -> Fixture {
        Fixture::with_principals(n, k, window, &["root", "ops"])
    }

    /// As [`Fixture::new`], with the SSH principals of scope `prod-ssh` given.
    pub fn with_principals(n: usize, k: usize, window: &str, principals: &[&str]) -> Fixture {
        Fixture::with_extra(n, k, window, principals, "", "")
    }

    /// As [`Fixture::with_principals`], with `top` inserted at the top of the policy and
    /// `extra` appended; `{c1_key}` in them is replaced by custodian c1's public key.
    pub fn with_extra(
        n: usize,
        k: usize,
        window: &str,
        principals: &[&str],
        top: &str,
        extra: &str,
    ) -> Fixture {
        Fixture::edited(n, k, window, principals, &|policy, c1_key| {
            format!(
                "{}\n{policy}\n{}",
                top.replace("{c1_key}", c1_key),
                extra.replace("{c1_key}", c1_key)
            )
        })
    }

    /// The policy `edit(policy, c1's public key)` returns, then `init`.
    pub fn edited(
        n: usize,
        k: usize,
        window: &str,
        principals: &[&str],
        edit: &dyn Fn(String, &str) -> String,
    ) -> Fixture {
        let principals = principals
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let dir = tempfile::tempdir().unwrap();
        let kd = dir.path().join("keys");
        std::fs::create_dir(&kd).unwrap();
        let mut policy = format!(
            "threshold = {k}\ncollection_window = \"{window}\"\nmax_ttl = \"1h\"\n\n\
             [[scopes]]\nname = \"prod-ssh\"\nprincipals = [{principals}]\nmax_ttl = \"30m\"\n\n\
             [[scopes]]\nname = \"prod-db\"\nprincipals = [\"dba\"]\n\n\
             [[scopes]]\nname = \"prod-api\"\ncredentials = [\"token\"]\n\n"
        );
        let mut custodians = Vec::new();
        for i in 1..=n {
            let id = format!("c{i}");
            let (ident, p) = keyfile(&kd, &id);
            policy.push_str(&format!(
                "[[custodians]]\nid = \"{id}\"\nname = \"Custodian {i}\"\nssh_key = \"{}\"\n\n",
                ident.ssh_public()
            ));
            custodians.push((id, p));
        }
        let mut commanders = Vec::new();
        for (id, scopes) in [
            ("ic", "[\"prod-ssh\", \"prod-db\", \"prod-api\"]"),
            ("ic2", "[\"prod-ssh\"]"),
        ] {
            let (ident, p) = keyfile(&kd, id);
            policy.push_str(&format!(
                "[[commanders]]\nid = \"{id}\"\nssh_key = \"{}\"\nscopes = {scopes}\n\n",
                ident.ssh_public()
            ));
            commanders.push((id.to_string(), p));
        }
        let (_, outsider) = keyfile(&kd, "outsider");
        let c1_key = load(&custodians[0].1).ssh_public();
        policy = edit(policy, &c1_key);
        let policy_path = dir.path().join("policy.toml");
        std::fs::write(&policy_path, policy).unwrap();
        let state = dir.path().join("state");
        let shares = dir.path().join("shares");
        let (ok, out, err) = run(
            "breakglassd",
            &[
                "init",
                "--policy",
                policy_path.to_str().unwrap(),
                "--state",
                state.to_str().unwrap(),
                "--shares-out",
                shares.to_str().unwrap(),
            ],
            &[],
        );
        assert!(ok, "init failed: {out}\n{err}");
        Fixture {
            dir,
            keys: Keys {
                custodians,
                commanders,
                outsider,
            },
            state,
            shares,
            init_stdout: out,
            daemon: None,
        }
    }

    pub fn policy_path(&self) -> PathBuf {
        self.dir.path().join("policy.toml")
    }

    /// The authority key `init` printed (PASERK).
    pub fn authority_paserk(&self) -> String {
        self.init_stdout
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("authority ")
                    .map(|s| s.trim().to_string())
            })
            .filter(|s| s.starts_with("k4.public."))
            .expect("init prints the authority")
    }

    pub fn share_file(&self, custodian: &str) -> PathBuf {
        self.shares.join(format!("{custodian}.share"))
    }

    pub fn custodian_key(&self, i: usize) -> PathBuf {
        self.keys.custodians[i].1.clone()
    }

    pub fn commander_key(&self, id: &str) -> PathBuf {
        self.keys
            .commanders
            .iter()
            .find(|(c, _)| c == id)
            .unwrap()
            .1
            .clone()
    }

    /// Starts `breakglassd serve` on 127.0.0.1:0 and waits until it listens.
    pub fn start(&mut self) -> &Daemon {
        self.start_with(&[])
    }

    /// SIGKILL, no clean shutdown.
    pub fn kill9(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.child.kill();
            let _ = d.child.wait();
        }
    }

    /// Starts `breakglassd serve` with extra arguments.
    pub fn start_with(&mut self, extra: &[&str]) -> &Daemon {
        let n = std::fs::read_dir(self.dir.path()).unwrap().count();
        let log = self.dir.path().join(format!("daemon-{n}.log"));
        let mut child = Command::new(bin("breakglassd"))
            .args([
                "serve",
                "--state",
                self.state.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env("BREAKGLASS_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(format!("{}.stderr", log.display())).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let mut logf = std::fs::File::create(&log).unwrap();
        let (mut addr, mut fp, mut metrics) = (String::new(), String::new(), None);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 {
            logf.write_all(line.as_bytes()).unwrap();
            if let Some(m) = line.trim().strip_prefix("metrics on http://") {
                metrics = m.strip_suffix("/metrics").map(str::to_string);
            }
            if let Some(f) = line.trim().strip_prefix("tls fingerprint ") {
                fp = f.to_string();
            }
            if let Some(a) = line.trim().strip_prefix("breakglassd listening on ") {
                addr = a.to_string();
                break;
            }
            line.clear();
        }
        assert!(
            !addr.is_empty(),
            "breakglassd did not start; see {}",
            log.display()
        );
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut reader, &mut logf);
        });
        self.daemon = Some(Daemon {
            child,
            addr,
            fingerprint: fp,
            log,
            metrics,
        });
        self.daemon.as_ref().unwrap()
    }

    /// SIGTERM and wait; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let Some(mut d) = self.daemon.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &d.child.id().to_string()])
            .status();
        d.child.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// SIGTERM and wait; returns what the daemon wrote to stderr.
    pub fn stop_and_stderr(&mut self) -> String {
        let log = self.daemon.as_ref().map(|d| d.log.clone());
        self.stop();
        log.map(|l| std::fs::read_to_string(format!("{}.stderr", l.display())).unwrap_or_default())
            .unwrap_or_default()
    }

    pub fn conn_args(&self) -> Vec<String> {
        let d = self.daemon.as_ref().unwrap();
        vec![
            "--daemon".into(),
            d.addr.clone(),
            "--tls-fingerprint".into(),
            d.fingerprint.clone(),
        ]
    }

    pub async fn client(&self) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let d = self.daemon.as_ref().unwrap();
        Client::connect(&ConnectOptions {
            addr: d.addr.clone(),
            trust: Trust::fingerprint(&d.fingerprint).unwrap(),
            server_name: None,
            client_cert: None,
        })
        .await
        .unwrap()
    }

    /// Runs the `breakglass` CLI against this daemon with `key`.
    pub fn cli(&self, key: &Path, args: &[&str]) -> (bool, String, String) {
        let mut all: Vec<String> = self.conn_args();
        all.extend(["--key".to_string(), key.display().to_string()]);
        all.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        run("breakglass", &refs, &[])
    }

    /// Every file's bytes under the temp dir (state, logs), with paths.
    pub fn all_files(&self, under: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![under.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push((p.clone(), std::fs::read(&p).unwrap()));
                }
            }
        }
        out
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.child.kill();
            let _ = d.child.wait();
        }
    }
}

/// A submission built by hand so tests can bend any part of it.
pub struct Submission<'a> {
    pub daemon_id: String,
    pub request: &'a pb::RequestView,
    pub signer_id: String,
    pub signer: &'a Identity,
    pub share: Vec<u8>,
    pub signed_at: u64,
    pub sealed_override: Option<Vec<u8>>,
    /// The epoch the submission says the share is of (0: not stated, read as 1).
    pub share_epoch: u64,
}

impl<'a> Submission<'a> {
    pub fn new(
        client: &Client,
        request: &'a pb::RequestView,
        signer_id: &str,
        signer: &'a Identity,
        share: Vec<u8>,
    ) -> Self {
        Submission {
            daemon_id: client.info().daemon_id.clone(),
            request,
            signer_id: signer_id.to_string(),
            signer,
            share,
            signed_at: unix_now(),
            sealed_override: None,
            share_epoch: 0,
        }
    }

    pub fn message(&self) -> pb::SubmitShareRequest {
        let eph: [u8; 32] = self
            .request
            .ephemeral_public_key
            .as_slice()
            .try_into()
            .unwrap();
        let digest: [u8; 32] = self.request.digest.as_slice().try_into().unwrap();
        let sealed = self.sealed_override.clone().unwrap_or_else(|| {
            transport::seal_share(
                &eph,
                &digest,
                &self.request.id,
                &self.signer_id,
                &self.share,
                rand_core::OsRng,
            )
            .unwrap()
        });
        let payload = signing::submit_share_of_epoch(
            &self.daemon_id,
            &self.request.id,
            &digest,
            &self.signer_id,
            &sealed,
            self.share_epoch.max(signing::FIRST_EPOCH),
            self.signed_at,
        );
        pb::SubmitShareRequest {
            request_id: self.request.id.clone(),
            sealed_share: sealed,
            signature: Some(pb::Signature {
                signer_id: self.signer_id.clone(),
                signed_at: self.signed_at,
                signature: self.signer.sign(&payload).to_vec(),
            }),
            share_epoch: self.share_epoch,
        }
    }
}

/// The share bytes inside a custodian's share file.
pub fn share_bytes(client: &Client, key: &Path, file: &Path) -> Vec<u8> {
    let f: ShareFile = client.read_share_file(&load(key), file).unwrap();
    f.share_bytes().unwrap().to_vec()
}

/// Asserts a gRPC error's code and that its message contains `needle`.
pub fn assert_status<T: std::fmt::Debug>(
    r: Result<T, tonic::Status>,
    code: tonic::Code,
    needle: &str,
) {
    match r {
        Ok(v) => panic!("expected {code:?} containing {needle:?}, got Ok({v:?})"),
        Err(s) => {
            assert_eq!(s.code(), code, "wrong code; message: {}", s.message());
            assert!(
                s.message().contains(needle),
                "message {:?} should contain {needle:?}",
                s.message()
            );
        }
    }
}

/// Kinds of the audit events about one request, in order.
pub async fn request_events(client: &mut Client, id: &str) -> Vec<String> {
    client
        .audit_export(1)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.request_id.as_deref() == Some(id))
        .map(|e| e.event.kind().to_string())
        .collect()
}

/// HKDF-SHA256 with no salt, 32 bytes out.
pub fn hkdf32(ikm: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(None, ikm)
        .expand(info, &mut out)
        .unwrap();
    out
}

/// The key hierarchy rebuilt by the test, independently of the daemon's code.
pub struct Rebuilt {
    /// R.
    pub root: Vec<u8>,
    /// K_R = HKDF(R, "breakglass/v1/seal").
    pub k_r: [u8; 32],
    /// S, from the seal.
    pub seed: Vec<u8>,
    /// A's ed25519 seed = HKDF(S, "breakglass/v1/authority/ed25519").
    pub a_seed: [u8; 32],
}

/// What the store holds of the key hierarchy: the ceremony's facts and the current epoch's seal.
pub struct Sealed {
    /// Daemon id, ceremony id, A.
    pub meta: breakglass_daemon::Meta,
    /// The current epoch: its number, policy digest and seal.
    pub epoch: breakglass_daemon::StoredEpoch,
}

/// Reads the sealed state from a daemon's state directory (before the daemon holds its lock).
pub fn sealed(state: &Path) -> Sealed {
    let store = breakglass_daemon::Store::open(state).unwrap();
    Sealed {
        meta: store.meta().unwrap(),
        epoch: store.epoch().unwrap(),
    }
}

/// Rebuilds R from `k` shares, opens the stored seal with it and derives A's seed; checks
/// the result against the published authority key, so a test knows it found the real secrets.
/// The seal's associated data is rebuilt here from DESIGN.md, not by the daemon's code:
/// `len(ceremony id) (4, BE) ‖ ceremony id ‖ epoch (8, BE) ‖ policy digest`, without the
/// epoch for epoch 1 (the layout of seals made before epochs).
pub fn rebuild_secrets(sealed: &Sealed, shares: &[Vec<u8>], authority: &[u8]) -> Rebuilt {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let root = vsss_rs::Gf256::combine_array(shares).unwrap();
    assert_eq!(root.len(), 32);
    let k_r = hkdf32(&root, b"breakglass/v1/seal");
    let (meta, epoch) = (&sealed.meta, &sealed.epoch);
    let mut aad = (meta.ceremony_id.len() as u32).to_be_bytes().to_vec();
    aad.extend_from_slice(meta.ceremony_id.as_bytes());
    if epoch.number != 1 {
        aad.extend_from_slice(&epoch.number.to_be_bytes());
    }
    aad.extend_from_slice(&epoch.policy_digest);
    let seed = chacha20poly1305::XChaCha20Poly1305::new((&k_r).into())
        .decrypt(
            chacha20poly1305::XNonce::from_slice(&epoch.seal[..24]),
            Payload {
                msg: &epoch.seal[24..],
                aad: &aad,
            },
        )
        .expect("the rebuilt R opens the seal");
    let a_seed = hkdf32(&seed, b"breakglass/v1/authority/ed25519");
    assert_eq!(
        ed25519_dalek::SigningKey::from_bytes(&a_seed)
            .verifying_key()
            .as_bytes()
            .as_slice(),
        authority,
        "we rebuilt the real secrets"
    );
    Rebuilt {
        root,
        k_r,
        seed,
        a_seed,
    }
}

/// Custodian `i` (0-based) approves request `r` through the client library.
pub async fn approve(fx: &Fixture, client: &mut Client, r: &pb::RequestView, i: usize) {
    let me = load(&fx.custodian_key(i));
    let f = client
        .read_share_file(&me, &fx.share_file(&fx.keys.custodians[i].0))
        .unwrap();
    client.submit(&me, None, r, &f).await.unwrap();
}

/// Runs `breakglassd serve` on `state` with extra arguments, expecting it to exit
/// (startup refusals); returns (success, stdout, stderr).
pub fn serve_once(state: &Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec![
        "serve",
        "--state",
        state.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    run("breakglassd", &args, &[])
}
