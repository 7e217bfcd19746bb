//! `breakglass`: the CLI for custodians, commanders, auditors and CI.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Parser, Subcommand};
use zeroize::Zeroizing;

use breakglass_client::api::{state_name, unix_now, Client};
use breakglass_client::connect::{ConnectOptions, Trust};
use breakglass_client::drill::{self, DrillOptions};
use breakglass_client::identity::Identity;
use breakglass_client::{review, verify};
use breakglass_daemon::store::audit;
use breakglass_proto::pb;

#[derive(Parser)]
#[command(
    name = "breakglass",
    version,
    about = "breakglass: quorum break-glass access"
)]
struct Cli {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct Conn {
    /// Daemon address (host:port).
    #[arg(
        long,
        global = true,
        env = "BREAKGLASS_DAEMON",
        default_value = "127.0.0.1:7443"
    )]
    daemon: String,
    /// CA certificate (PEM) that signed the daemon's certificate.
    #[arg(long, global = true, env = "BREAKGLASS_CA")]
    ca: Option<PathBuf>,
    /// Pin the daemon's certificate: `sha256:…` as printed by `breakglassd serve`.
    #[arg(long, global = true, env = "BREAKGLASS_TLS_FINGERPRINT")]
    tls_fingerprint: Option<String>,
    /// Name to check in the daemon's certificate (default: the host of --daemon).
    #[arg(long, global = true)]
    tls_server_name: Option<String>,
    /// Your OpenSSH ed25519 private key.
    #[arg(long, global = true, env = "BREAKGLASS_KEY")]
    key: Option<PathBuf>,
    /// Mutual TLS: your client certificate (PEM), when the daemon requires one.
    #[arg(long, global = true, env = "BREAKGLASS_CLIENT_CERT")]
    client_cert: Option<PathBuf>,
    /// Mutual TLS: the private key of your client certificate (PEM).
    #[arg(long, global = true, env = "BREAKGLASS_CLIENT_KEY")]
    client_key: Option<PathBuf>,
    /// Your id in the policy (default: found from your key).
    #[arg(long = "as", global = true)]
    as_id: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Make an ssh-ed25519 key pair (PATH and PATH.pub) for use as a custodian or commander.
    Keygen {
        /// Where to write the private key.
        #[arg(long)]
        out: PathBuf,
        /// Comment in the public key.
        #[arg(long, default_value = "breakglass")]
        comment: String,
        /// Write the key unencrypted (otherwise a passphrase is asked, or taken from BREAKGLASS_PASSPHRASE).
        #[arg(long)]
        no_passphrase: bool,
    },
    /// Show the daemon: ids, authority key, threshold, custodians, commanders, scopes.
    Info,
    /// Print the authority public key A that downstream systems trust.
    Authority {
        /// Only the `TrustedUserCAKeys` line for sshd.
        #[arg(long, conflicts_with = "paseto")]
        ssh: bool,
        /// Only the PASERK `k4.public.…` key for token verifiers.
        #[arg(long)]
        paseto: bool,
    },
    /// Write the revocation list: an OpenSSH KRL for sshd's `RevokedKeys` and/or JSON for token verifiers.
    Revocations {
        /// Where to write the OpenSSH KRL.
        #[arg(long)]
        krl: Option<PathBuf>,
        /// Where to write the JSON list of revoked token ids.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Open, show, list or cancel requests.
    #[command(subcommand)]
    Request(RequestCmd),
    /// Custodians: submit or check a share.
    #[command(subcommand)]
    Share(ShareCmd),
    /// Fetch or verify a credential.
    #[command(subcommand)]
    Credential(CredentialCmd),
    /// Export, verify or follow the tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Post-incident review: the timeline of one request from the audit log.
    Review {
        /// Request id.
        id: String,
        /// A self-contained HTML page with a timeline graphic instead of Markdown.
        #[arg(long)]
        html: bool,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Read the log from an export (JSON Lines) instead of the daemon.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Run a whole quorum unlock against a temporary daemon on loopback TLS.
    Drill {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Custodians to generate.
        #[arg(long, default_value_t = 5)]
        custodians: u8,
        /// Shares needed.
        #[arg(long, default_value_t = 3)]
        threshold: u8,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Recompute the hash chain and check every checkpoint signature; names the first bad entry.
    Verify {
        /// Verify an export (JSON Lines) offline instead of the daemon's log.
        #[arg(long)]
        file: Option<PathBuf>,
        /// With --file: the daemon key D (hex, `breakglass info` prints it) to check checkpoints.
        #[arg(long)]
        daemon_key: Option<String>,
        /// With --file: the daemon id the checkpoints must name.
        #[arg(long)]
        daemon_id: Option<String>,
    },
    /// Write the log as JSON Lines (one event per line) for a SIEM.
    Export {
        /// First entry.
        #[arg(long, default_value_t = 1)]
        since: u64,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show the newest entries; with -f keep following.
    Tail {
        /// Keep printing new entries as they are committed.
        #[arg(short = 'f', long)]
        follow: bool,
        /// How many recent entries to show first.
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: u64,
    },
}

#[derive(Subcommand)]
enum RequestCmd {
    /// Follow a request live: approvals, time left, outcome.
    Watch {
        /// Request id.
        id: String,
    },
    /// Ask for emergency access (commander).
    Open {
        /// Scope from the policy.
        #[arg(long)]
        scope: String,
        /// Why; reviewers will read this.
        #[arg(long)]
        reason: String,
        /// Credential lifetime, e.g. 30m.
        #[arg(long, default_value = "30m")]
        ttl: humantime::Duration,
        /// Your SSH public key to certify (default ~/.ssh/id_ed25519.pub when the scope mints SSH certificates).
        #[arg(long)]
        ssh_key: Option<PathBuf>,
    },
    /// Show one request.
    Show {
        /// Request id.
        id: String,
    },
    /// List requests (collecting only, unless --all).
    List {
        /// Include closed requests.
        #[arg(long)]
        all: bool,
    },
    /// Cancel a collecting request (its requester or a custodian).
    Cancel {
        /// Request id.
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Subcommand)]
enum ShareCmd {
    /// Approve a request by submitting your share.
    Submit {
        /// Request id.
        id: String,
        /// Your share file from the ceremony.
        #[arg(long)]
        share: PathBuf,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Check that your key still opens your share file and that it belongs to this daemon.
    Check {
        /// Your share file.
        #[arg(long)]
        share: PathBuf,
    },
}

#[derive(Subcommand)]
enum CredentialCmd {
    /// Fetch the credential of an unlocked request (requester).
    Fetch {
        /// Request id.
        id: String,
        /// Where to write the credential bundle (JSON, mode 0600).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The SSH public key the certificate is for; the certificate is written beside it as
        /// `…-cert.pub` so ssh uses it without flags (default ~/.ssh/id_ed25519.pub).
        #[arg(long)]
        ssh_key: Option<PathBuf>,
    },
    /// Revoke a credential before its expiry (its requester or a custodian).
    Revoke {
        /// Request id.
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Verify a credential offline against the authority key.
    Verify {
        /// Bundle (JSON) or bare token file; `-` for standard input.
        file: PathBuf,
        /// Authority public key: k4.public.…, ssh-ed25519 …, or hex (from `breakglass authority`).
        #[arg(long, env = "BREAKGLASS_AUTHORITY")]
        authority: String,
        /// A JSON revocation list from `breakglass revocations --json`; revoked credentials fail.
        #[arg(long)]
        revocations: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // `breakglass info | head`: when the reader goes away, stop quietly the way a
    // program killed by SIGPIPE would (exit 141), instead of panicking in println!.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("breakglass: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("breakglass: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn passphrase(path: &Path) -> std::io::Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var("BREAKGLASS_PASSPHRASE") {
        return Ok(Zeroizing::new(p));
    }
    rpassword::prompt_password(format!("passphrase for {}: ", path.display())).map(Zeroizing::new)
}

fn default_key() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ssh").join("id_ed25519"))
}

fn default_ssh_pub() -> Option<PathBuf> {
    default_key().map(|k| k.with_file_name("id_ed25519.pub"))
}

/// `~/.ssh/id_ed25519.pub` → `~/.ssh/id_ed25519-cert.pub`, where ssh looks for it.
fn cert_path_for(pub_path: &Path) -> PathBuf {
    let s = pub_path.display().to_string();
    PathBuf::from(format!("{}-cert.pub", s.strip_suffix(".pub").unwrap_or(&s)))
}

fn same_key(pub_path: &Path, cert_line: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(pub_path) else {
        return false;
    };
    let (Ok(k), Ok(c)) = (
        ssh_key::PublicKey::from_openssh(text.trim()),
        ssh_key::Certificate::from_openssh(cert_line),
    ) else {
        return false;
    };
    k.key_data() == c.public_key()
}

fn load_identity(conn: &Conn) -> anyhow::Result<Identity> {
    let path = conn
        .key
        .clone()
        .or_else(default_key)
        .ok_or_else(|| anyhow!("no --key given and no $HOME"))?;
    Ok(Identity::load(&path, &passphrase)?)
}

async fn connect(conn: &Conn) -> anyhow::Result<Client> {
    let trust = match (&conn.ca, &conn.tls_fingerprint) {
        (Some(ca), None) => Trust::Ca(std::fs::read(ca).with_context(|| format!("--ca {}", ca.display()))?),
        (None, Some(fp)) => Trust::fingerprint(fp)?,
        (Some(_), Some(_)) => bail!("give --ca or --tls-fingerprint, not both"),
        (None, None) => bail!(
            "no way to trust the daemon: give --tls-fingerprint sha256:… (printed by `breakglassd serve`) or --ca FILE"
        ),
    };
    let client_cert = match (&conn.client_cert, &conn.client_key) {
        (Some(c), Some(k)) => Some((
            std::fs::read(c).with_context(|| format!("--client-cert {}", c.display()))?,
            Zeroizing::new(
                std::fs::read(k).with_context(|| format!("--client-key {}", k.display()))?,
            ),
        )),
        (None, None) => None,
        _ => bail!("give both --client-cert and --client-key, or neither"),
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(Client::connect(&ConnectOptions {
        addr: conn.daemon.clone(),
        trust,
        server_name: conn.tls_server_name.clone(),
        client_cert,
    })
    .await?)
}

fn ago(t: u64, now: u64) -> String {
    if t == now {
        "now".to_string()
    } else if t > now {
        format!(
            "in {}",
            humantime::format_duration(std::time::Duration::from_secs(t - now))
        )
    } else {
        format!(
            "{} ago",
            humantime::format_duration(std::time::Duration::from_secs(now - t))
        )
    }
}

fn print_request(v: &pb::RequestView) {
    let now = unix_now();
    println!("request   {}", v.id);
    println!("state     {}", state_name(v.state));
    println!("requester {}", v.requester);
    println!("scope     {}", v.scope);
    println!("reason    {}", v.reason);
    println!(
        "ttl       {}",
        humantime::format_duration(std::time::Duration::from_secs(v.ttl_seconds))
    );
    println!("opened    {}", ago(v.opened_at, now));
    println!("deadline  {}", ago(v.deadline, now));
    let who: Vec<&str> = v
        .approvals
        .iter()
        .map(|a| a.custodian_id.as_str())
        .collect();
    println!(
        "approvals {}/{} {}",
        v.approvals.len(),
        v.threshold,
        who.join(", ")
    );
    if !v.close_reason.is_empty() {
        println!("closed    {} ({})", ago(v.closed_at, now), v.close_reason);
    }
    if v.credential_expires_at != 0 {
        println!("credential expires {}", ago(v.credential_expires_at, now));
    }
}

fn tail_line(e: &audit::AuditEntry) -> String {
    format!(
        "#{:<6} {} {:<12} {:<22} {:<18} {}",
        e.seq,
        review::utc(e.time),
        e.actor,
        e.request_id.as_deref().unwrap_or("-"),
        e.event.kind(),
        breakglass_daemon::webhook::summary(e)
    )
}

fn progress_line(v: &pb::RequestView, now: u64) -> String {
    let who: Vec<&str> = v
        .approvals
        .iter()
        .map(|a| a.custodian_id.as_str())
        .collect();
    let left = v.deadline.saturating_sub(now);
    let state = state_name(v.state);
    if v.state == pb::RequestState::Collecting as i32 {
        format!(
            "{} · {}/{} shares · {:02}:{:02} left · approved: {}",
            v.id,
            v.approvals.len(),
            v.threshold,
            left / 60,
            left % 60,
            if who.is_empty() {
                "nobody yet".to_string()
            } else {
                who.join(", ")
            }
        )
    } else {
        format!(
            "{} · {state} · {}/{} shares · {}",
            v.id,
            v.approvals.len(),
            v.threshold,
            v.close_reason
        )
    }
}

async fn watch(c: &mut Client, id: &str) -> anyhow::Result<()> {
    let tty = std::io::stdout().is_terminal();
    let mut stream = c.watch_request(id).await?;
    let mut last: Option<pb::RequestView> = None;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            msg = stream.message() => {
                match msg? {
                    Some(v) => {
                        c.check_view(&v)?;
                        if tty {
                            print!("\r\x1b[2K{}", progress_line(&v, unix_now()));
                            std::io::stdout().flush()?;
                        } else {
                            println!("{}", progress_line(&v, unix_now()));
                        }
                        last = Some(v);
                    }
                    None => break,
                }
            }
            _ = tick.tick(), if tty => {
                if let Some(v) = &last {
                    print!("\r\x1b[2K{}", progress_line(v, unix_now()));
                    std::io::stdout().flush()?;
                }
            }
        }
    }
    if tty {
        println!();
    }
    Ok(())
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("not a terminal, so cannot ask for confirmation: read the request above and pass --yes to approve");
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
        .and_then(|mut f| f.write_all(bytes))
        .with_context(|| path.display().to_string())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let conn = cli.conn;
    match cli.cmd {
        Cmd::Keygen {
            out,
            comment,
            no_passphrase,
        } => {
            let pass = if no_passphrase {
                None
            } else if let Ok(p) = std::env::var("BREAKGLASS_PASSPHRASE") {
                Some(Zeroizing::new(p))
            } else {
                let a = Zeroizing::new(rpassword::prompt_password("new passphrase: ")?);
                let b = Zeroizing::new(rpassword::prompt_password("again: ")?);
                if a != b {
                    bail!("the passphrases differ; nothing written");
                }
                Some(a)
            };
            let id = Identity::generate();
            id.write(&out, &comment, pass.as_ref().map(|p| p.as_str()))?;
            println!("wrote {} and {}.pub", out.display(), out.display());
            println!("{} {comment}", id.ssh_public());
        }
        Cmd::Info => {
            let c = connect(&conn).await?;
            let i = c.info();
            println!("daemon id     {}", i.daemon_id);
            println!("daemon key    {}", hex::encode(&i.daemon_public_key));
            println!("version       {}", i.version);
            println!("ceremony id   {}", i.ceremony_id);
            println!("policy digest {}", i.policy_digest);
            println!("authority     {}", i.authority_paserk);
            println!("authority ssh {}", i.authority_ssh);
            println!("threshold     {} of {}", i.threshold, i.custodians.len());
            println!(
                "window        {}",
                humantime::format_duration(std::time::Duration::from_secs(
                    i.collection_window_seconds
                ))
            );
            println!(
                "max ttl       {}",
                humantime::format_duration(std::time::Duration::from_secs(i.max_ttl_seconds))
            );
            println!("custodians");
            for cu in &i.custodians {
                println!("  {:<16} {}", cu.id, cu.name);
            }
            println!("commanders");
            for co in &i.commanders {
                println!(
                    "  {:<16} {} (scopes: {})",
                    co.id,
                    co.name,
                    co.scopes.join(", ")
                );
            }
            println!("scopes");
            for s in &i.scopes {
                println!(
                    "  {:<16} principals {} · max ttl {}s",
                    s.name,
                    s.principals.join(","),
                    s.max_ttl_seconds
                );
            }
        }
        Cmd::Authority { ssh, paseto } => {
            let c = connect(&conn).await?;
            let i = c.info();
            if ssh {
                println!("{}", i.authority_ssh);
            } else if paseto {
                println!("{}", i.authority_paserk);
            } else {
                println!("{}", i.authority_paserk);
                println!("{}", i.authority_ssh);
            }
        }
        Cmd::Revocations { krl, json } => {
            let mut c = connect(&conn).await?;
            if krl.is_none() && json.is_none() {
                bail!("say where to write: --krl FILE (OpenSSH RevokedKeys) and/or --json FILE (token ids)");
            }
            let list = c.revocations().await?;
            let authority = verify::parse_authority(&c.info().authority_ssh)?;
            if let Some(path) = &krl {
                let serials: Vec<u64> = list
                    .revocations
                    .iter()
                    .map(|r| r.ssh_serial)
                    .filter(|s| *s != 0)
                    .collect();
                let ids: Vec<String> = list
                    .revocations
                    .iter()
                    .map(|r| r.ssh_key_id.clone())
                    .filter(|k| !k.is_empty())
                    .collect();
                let bytes = breakglass_daemon::crypto::sshcert::krl(
                    &authority,
                    &serials,
                    &ids,
                    list.generated_at,
                    list.generated_at,
                );
                std::fs::write(path, bytes).with_context(|| path.display().to_string())?;
                println!(
                    "wrote OpenSSH KRL {} ({} certificates); sshd: RevokedKeys {}",
                    path.display(),
                    serials.len(),
                    path.display()
                );
            }
            if let Some(path) = &json {
                let doc = verify::RevocationListJson {
                    format: verify::REVOCATIONS_FORMAT.to_string(),
                    daemon_id: c.info().daemon_id.clone(),
                    generated_at: list.generated_at,
                    authority_ssh: list.authority_ssh.clone(),
                    revoked_token_ids: list
                        .revocations
                        .iter()
                        .map(|r| r.request_id.clone())
                        .collect(),
                    revoked: list
                        .revocations
                        .iter()
                        .map(|r| verify::RevokedJson {
                            request_id: r.request_id.clone(),
                            ssh_key_id: r.ssh_key_id.clone(),
                            ssh_serial: r.ssh_serial,
                            revoked_at: r.revoked_at,
                            revoked_by: r.revoked_by.clone(),
                            reason: r.reason.clone(),
                            expires_at: r.expires_at,
                        })
                        .collect(),
                };
                std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
                    .with_context(|| path.display().to_string())?;
                println!(
                    "wrote JSON revocation list {} ({} revoked)",
                    path.display(),
                    doc.revoked.len()
                );
            }
        }
        Cmd::Request(rc) => {
            let mut c = connect(&conn).await?;
            match rc {
                RequestCmd::Open {
                    scope,
                    reason,
                    ttl,
                    ssh_key,
                } => {
                    let me = load_identity(&conn)?;
                    let ssh_line = if c.scope_mints(&scope, "ssh") {
                        let path = ssh_key.or_else(default_ssh_pub).filter(|p| p.is_file()).ok_or_else(|| {
                            anyhow!("scope {scope} mints an SSH certificate: give the key to certify with --ssh-key ~/.ssh/id_ed25519.pub")
                        })?;
                        let line = std::fs::read_to_string(&path)
                            .with_context(|| path.display().to_string())?;
                        breakglass_daemon::crypto::sshcert::normalise_subject_key(&line)
                            .map_err(|e| anyhow!("{}: {e}", path.display()))?
                    } else {
                        if ssh_key.is_some() {
                            eprintln!("note: scope {scope} mints no SSH certificate; --ssh-key is not used");
                        }
                        String::new()
                    };
                    let v = c
                        .open(
                            &me,
                            conn.as_id.as_deref(),
                            &scope,
                            &reason,
                            ttl.as_secs(),
                            &ssh_line,
                        )
                        .await?;
                    print_request(&v);
                    println!();
                    println!(
                        "custodians approve with: breakglass share submit {} --share FILE",
                        v.id
                    );
                    println!(
                        "then fetch with:         breakglass credential fetch {}",
                        v.id
                    );
                }
                RequestCmd::Show { id } => print_request(&c.get(&id).await?),
                RequestCmd::Watch { id } => watch(&mut c, &id).await?,
                RequestCmd::List { all } => {
                    let rs = c.list(!all).await?;
                    if rs.is_empty() {
                        println!("no {}requests", if all { "" } else { "collecting " });
                    }
                    for v in rs {
                        println!(
                            "{}  {:<10} {}/{}  {:<12} {:<10} {}",
                            v.id,
                            state_name(v.state),
                            v.approvals.len(),
                            v.threshold,
                            v.requester,
                            v.scope,
                            v.reason
                        );
                    }
                }
                RequestCmd::Cancel { id, reason } => {
                    let me = load_identity(&conn)?;
                    print_request(&c.cancel(&me, conn.as_id.as_deref(), &id, &reason).await?);
                }
            }
        }
        Cmd::Share(sc) => {
            let mut c = connect(&conn).await?;
            let me = load_identity(&conn)?;
            match sc {
                ShareCmd::Submit { id, share, yes } => {
                    let v = c.get(&id).await?;
                    print_request(&v);
                    if v.state != pb::RequestState::Collecting as i32 {
                        bail!(
                            "request {id} is {}; there is nothing to approve",
                            state_name(v.state)
                        );
                    }
                    let file = c.read_share_file(&me, &share)?;
                    if !yes
                        && !confirm(&format!(
                            "Approve emergency access for {} to {}?",
                            v.requester, v.scope
                        ))?
                    {
                        println!("not approved; nothing sent");
                        return Ok(ExitCode::FAILURE);
                    }
                    let p = c.submit(&me, conn.as_id.as_deref(), &v, &file).await?;
                    drop(file);
                    println!("share accepted: {}/{}", p.accepted, p.threshold);
                    if p.unlocked {
                        println!(
                            "quorum reached: the credential was minted for {}",
                            v.requester
                        );
                    }
                }
                ShareCmd::Check { share } => {
                    let f = c.read_share_file(&me, &share)?;
                    println!(
                        "ok: {} holds share {} of a {}-of-{} split for daemon {} (ceremony {})",
                        f.custodian_id,
                        f.share.get(..2).unwrap_or("?"),
                        f.threshold,
                        f.custodians,
                        f.daemon_id,
                        f.ceremony_id
                    );
                }
            }
        }
        Cmd::Credential(cc) => match cc {
            CredentialCmd::Fetch { id, out, ssh_key } => {
                let mut c = connect(&conn).await?;
                let me = load_identity(&conn)?;
                let b = c.fetch(&me, conn.as_id.as_deref(), &id).await?;
                let out = out.unwrap_or_else(|| PathBuf::from(format!("{id}.credential.json")));
                write_private(&out, &serde_json::to_vec_pretty(&b)?)?;
                println!(
                    "credential for {} · scope {} · expires {}",
                    b.requester,
                    b.scope,
                    ago(b.expires_at, unix_now())
                );
                println!("written to {} (mode 0600)", out.display());
                if let Some(cert) = &b.ssh_certificate {
                    let beside = ssh_key
                        .clone()
                        .or_else(default_ssh_pub)
                        .filter(|p| same_key(p, cert));
                    let cert_path = match &beside {
                        Some(p) => cert_path_for(p),
                        None => out.with_file_name(format!("{id}-cert.pub")),
                    };
                    std::fs::write(&cert_path, format!("{cert}\n"))
                        .with_context(|| cert_path.display().to_string())?;
                    println!("ssh certificate written to {}", cert_path.display());
                    let principals = b.principals.join(", ");
                    match &beside {
                        Some(p) => println!(
                            "use it: ssh -i {} PRINCIPAL@HOST   (ssh picks up the certificate beside the key; principals: {principals})",
                            p.display().to_string().trim_end_matches(".pub")
                        ),
                        None => println!(
                            "use it: ssh -i YOUR_KEY -o CertificateFile={} PRINCIPAL@HOST   (principals: {principals})",
                            cert_path.display()
                        ),
                    }
                }
                println!(
                    "verify offline: breakglass credential verify {} --authority {}",
                    out.display(),
                    c.info().authority_paserk
                );
            }
            CredentialCmd::Revoke { id, reason } => {
                let mut c = connect(&conn).await?;
                let me = load_identity(&conn)?;
                let v = c.revoke(&me, conn.as_id.as_deref(), &id, &reason).await?;
                println!(
                    "revoked the credential of {} (by {}: {})",
                    v.id, v.revoked_by, v.revoke_reason
                );
                println!(
                    "publish it: breakglass revocations --krl revoked.krl --json revoked.json"
                );
            }
            CredentialCmd::Verify {
                file,
                authority,
                revocations,
            } => {
                let text = if file.as_os_str() == "-" {
                    let mut s = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
                    s
                } else {
                    std::fs::read_to_string(&file).with_context(|| file.display().to_string())?
                };
                let a = verify::parse_authority(&authority)?;
                let list = match &revocations {
                    Some(p) => {
                        let l: verify::RevocationListJson = serde_json::from_slice(
                            &std::fs::read(p).with_context(|| p.display().to_string())?,
                        )
                        .with_context(|| {
                            format!("{}: not a breakglass revocation list", p.display())
                        })?;
                        Some(l)
                    }
                    None => None,
                };
                let artifact = verify::parse_artifact(&text)?;
                let lines = verify::verify_artifact(&a, &artifact, unix_now(), list.as_ref())?;
                println!("valid: signed by the authority");
                for l in lines {
                    println!("  {l}");
                }
            }
        },
        Cmd::Audit(ac) => {
            let mut c = if matches!(&ac, AuditCmd::Verify { file: Some(_), .. }) {
                None
            } else {
                Some(connect(&conn).await?)
            };
            match ac {
                AuditCmd::Verify {
                    file,
                    daemon_key,
                    daemon_id,
                } => {
                    let (entries, key, id) = match (&file, c.as_mut()) {
                        (Some(f), _) => {
                            let text = std::fs::read_to_string(f)
                                .with_context(|| f.display().to_string())?;
                            let entries = audit::parse_jsonl(&text)
                                .map_err(|e| anyhow!("{}: {e}", f.display()))?;
                            let key = match &daemon_key {
                                Some(k) => {
                                    let mut b = [0u8; 32];
                                    hex::decode_to_slice(k.trim(), &mut b).map_err(|_| {
                                        anyhow!("--daemon-key: expected 64 hex digits")
                                    })?;
                                    Some(
                                        ed25519_dalek::VerifyingKey::from_bytes(&b)
                                            .map_err(|e| anyhow!("--daemon-key: {e}"))?,
                                    )
                                }
                                None => None,
                            };
                            (entries, key, daemon_id.clone())
                        }
                        (None, Some(c)) => {
                            let entries = c.audit_export(1).await?;
                            (
                                entries,
                                Some(*c.daemon_key()),
                                Some(c.info().daemon_id.clone()),
                            )
                        }
                        (None, None) => bail!("no daemon connection"),
                    };
                    let anchor = match (&key, &id) {
                        (Some(k), Some(i)) => Some((k, i.as_str())),
                        (Some(_), None) => bail!("--daemon-key needs --daemon-id"),
                        _ => None,
                    };
                    let r = audit::verify_log(&entries, anchor)
                        .map_err(|e| anyhow!("audit log does not verify: {e}"))?;
                    let (a, b) = r.range.unwrap_or((0, 0));
                    println!(
                        "ok: entries {a}..={b} ({} entries) form an unbroken hash chain",
                        r.entries
                    );
                    if anchor.is_some() {
                        println!("ok: {} checkpoints signed by the daemon key", r.checkpoints);
                    } else {
                        println!("warning: checkpoint signatures not checked: give --daemon-key and --daemon-id");
                    }
                    println!("head {}", r.head.unwrap_or_default());
                }
                AuditCmd::Export { since, out } => {
                    let c = c.as_mut().ok_or_else(|| anyhow!("no daemon connection"))?;
                    let entries = c.audit_export(since).await?;
                    let mut text = String::new();
                    for e in &entries {
                        text.push_str(&serde_json::to_string(e)?);
                        text.push('\n');
                    }
                    match out {
                        Some(p) => {
                            std::fs::write(&p, text).with_context(|| p.display().to_string())?;
                            eprintln!("wrote {} entries to {}", entries.len(), p.display());
                        }
                        None => print!("{text}"),
                    }
                }
                AuditCmd::Tail { follow, lines } => {
                    let c = c.as_mut().ok_or_else(|| anyhow!("no daemon connection"))?;
                    let head = c.audit_export(1).await?.last().map(|e| e.seq).unwrap_or(0);
                    let since = head.saturating_sub(lines.saturating_sub(1)).max(1);
                    if follow {
                        let mut stream = c.watch_audit(since).await?;
                        while let Some(r) = stream.message().await? {
                            println!("{}", tail_line(&breakglass_client::api::parse_record(&r)?));
                        }
                    } else {
                        for e in c.audit_export(since).await? {
                            println!("{}", tail_line(&e));
                        }
                    }
                }
            }
        }
        Cmd::Review {
            id,
            html,
            out,
            file,
        } => {
            let entries = match &file {
                Some(f) => {
                    let text =
                        std::fs::read_to_string(f).with_context(|| f.display().to_string())?;
                    audit::parse_jsonl(&text).map_err(|e| anyhow!("{}: {e}", f.display()))?
                }
                None => {
                    let mut c = connect(&conn).await?;
                    let entries = c.audit_export(1).await?;
                    audit::verify_log(&entries, Some((c.daemon_key(), &c.info().daemon_id)))
                        .map_err(|e| {
                            anyhow!(
                                "the audit log does not verify, so no review is built from it: {e}"
                            )
                        })?;
                    entries
                }
            };
            let r = review::build(&id, &entries)
                .ok_or_else(|| anyhow!("no audit entries for request {id}"))?;
            let text = if html {
                review::html(&r)
            } else {
                review::markdown(&r)
            };
            match out {
                Some(p) => {
                    std::fs::write(&p, text).with_context(|| p.display().to_string())?;
                    println!("wrote {}", p.display());
                }
                None => print!("{text}"),
            }
        }
        Cmd::Drill {
            json,
            custodians,
            threshold,
        } => {
            let r = drill::run(&DrillOptions {
                custodians,
                threshold,
                ..DrillOptions::default()
            })
            .await;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "breakglass drill: {} quorum unlock on loopback TLS",
                    r.threshold
                );
                for s in &r.steps {
                    println!(
                        "  {} {:<32} {:>8.2} ms  {}",
                        if s.ok { "ok  " } else { "FAIL" },
                        s.name,
                        s.ms,
                        s.detail
                    );
                }
                if !r.audit_events.is_empty() {
                    println!("  audit events: {}", r.audit_events.join(" · "));
                }
                println!(
                    "{} in {:.1} ms · request {} · authority {}",
                    if r.ok { "PASS" } else { "FAIL" },
                    r.total_ms,
                    r.request_id,
                    r.authority
                );
            }
            return Ok(if r.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
