//! `breakglassd`: run the key ceremony (`init`) or serve (`serve`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use breakglass_daemon::{
    check_modes, harden_process, init, load_or_create, routes, run_webhooks, run_with,
    serve_metrics, system_clock, Config, Daemon, ServeOptions, Store,
};

/// Every heap block is zeroed when it is freed (invariant 3): a library that
/// copies a key into a temporary `Vec` and frees it unwiped (found on the
/// minting path, and for the custodian's decrypted key in the CLI) leaves
/// nothing behind in freed heap.
#[global_allocator]
static ALLOC: zeroizing_alloc::ZeroAlloc<std::alloc::System> =
    zeroizing_alloc::ZeroAlloc(std::alloc::System);

#[derive(Parser)]
#[command(
    name = "breakglassd",
    version,
    about = "breakglass quorum break-glass daemon"
)]
struct Cli {
    /// Log format on stderr: `text` (colours only on a terminal) or `json`
    /// (one object per line). The level comes from BREAKGLASS_LOG (default `info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "BREAKGLASS_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Key ceremony: make R and S, split R among the custodians, seal S, write share files. Local only.
    Init {
        /// Policy file (TOML); see deploy/policy.example.toml.
        #[arg(long)]
        policy: PathBuf,
        /// State directory to create.
        #[arg(long)]
        state: PathBuf,
        /// Directory for the custodians' encrypted share files.
        #[arg(long)]
        shares_out: PathBuf,
    },
    /// Serve the gRPC API over TLS.
    Serve {
        /// State directory made by `init`.
        #[arg(long)]
        state: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7443")]
        listen: SocketAddr,
        /// TLS certificate chain (PEM). Without it a self-signed one is made in STATE/tls.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// TLS private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Extra DNS names or IPs for the self-signed certificate.
        #[arg(long = "tls-name")]
        tls_names: Vec<String>,
        /// Run-time configuration (webhooks, rate limits); see deploy/breakglassd.example.toml.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Mutual TLS: require client certificates signed by this CA (PEM), whose subject
        /// common name must be the policy id that signs the calls.
        #[arg(long)]
        client_ca: Option<PathBuf>,
        /// Have D sign the integrity statement of a state that has none (made by a
        /// version before breakglass recorded one). Only for a state you know is
        /// genuine: without this flag such a state is refused at start.
        #[arg(long)]
        adopt_state_integrity: bool,
        /// Serve Prometheus metrics (`/metrics`) and a write-health probe
        /// (`/healthz`) over plain HTTP on this address, e.g. 127.0.0.1:9464.
        /// Nothing secret is served there; keep it off public networks all the same.
        #[arg(long)]
        metrics: Option<SocketAddr>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("BREAKGLASS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => fmt.json().init(),
        LogFormat::Text => fmt
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("breakglassd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Blocking workers (signing, decryption, fsync); see where the runtime is built.
const BLOCKING_WORKERS: usize = 8;

fn now() -> u64 {
    system_clock()()
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Init {
            policy,
            state,
            shares_out,
        } => {
            harden_process().log();
            let text = std::fs::read_to_string(&policy).map_err(|e| {
                anyhow::anyhow!("{}: cannot read the policy: {e}", policy.display())
            })?;
            let out = init(&text, &state, &shares_out, now())?;
            println!("ceremony complete");
            println!("  daemon id     {}", out.daemon_id);
            println!("  ceremony id   {}", out.ceremony_id);
            println!(
                "  threshold     {} of {}",
                out.threshold,
                out.share_files.len()
            );
            println!("  authority     {}", out.authority.paserk());
            println!("  authority ssh {}", out.authority.ssh());
            println!(
                "share files (each encrypted to its custodian's ssh key; hand each to its owner):"
            );
            for (id, p) in &out.share_files {
                println!("  {id:<16} {}", p.display());
            }
            println!(
                "R and S were wiped; the state in {} holds only the seal and commitments.",
                state.display()
            );
            Ok(())
        }
        Cmd::Serve {
            state,
            listen,
            tls_cert,
            tls_key,
            tls_names,
            config,
            client_ca,
            adopt_state_integrity,
            metrics,
        } => {
            harden_process().log();
            Store::require(&state)?;
            for w in check_modes(&state, tls_key.as_deref())? {
                eprintln!("warning: {w}");
            }
            let config = match &config {
                Some(p) => Config::load(p)?,
                None => Config::default(),
            };
            let client_ca_pem = match &client_ca {
                Some(p) => Some(
                    std::fs::read(p)
                        .map_err(|e| anyhow::anyhow!("--client-ca {}: {e}", p.display()))?,
                ),
                None => None,
            };
            // TLS material and the listening address are checked before the state
            // is touched: a bad key or a busy port must not write `daemon_started`
            // or cancel collecting requests.
            let tls = load_or_create(&state, tls_cert.as_deref(), tls_key.as_deref(), &tls_names)?;
            // State changes serialise on one lock, so more blocking workers only
            // add stacks: each one that ran an operation keeps the stack pages its
            // scrub touched resident (memory is locked), so the pool is bounded.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .max_blocking_threads(BLOCKING_WORKERS)
                .build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
                let addr = listener.local_addr()?;
                let metrics_listener =
                    match metrics {
                        Some(m) => Some(tokio::net::TcpListener::bind(m).await.map_err(|e| {
                            anyhow::anyhow!("--metrics: cannot listen on {m}: {e}")
                        })?),
                        None => None,
                    };
                let store = Store::open(&state)?;
                if adopt_state_integrity && Daemon::adopt_integrity(&store, &state)? {
                    eprintln!(
                        "recorded an integrity statement signed by D over the state as it is now"
                    );
                }
                let pending = store.open_pending()?;
                let hooks =
                    config.webhooks(&store.epoch()?.policy, pending.as_ref().map(|p| &p.policy))?;
                let daemon = Arc::new(Daemon::start_on(
                    store,
                    &state,
                    system_clock(),
                    routes(&hooks),
                )?);
                if tls.created {
                    println!(
                        "made a self-signed TLS certificate: {}",
                        tls.cert_path.display()
                    );
                }
                println!("tls fingerprint {}", tls.fingerprint);
                println!("daemon id {}", daemon.meta().daemon_id);
                if let Some(l) = metrics_listener {
                    println!("metrics on http://{}/metrics", l.local_addr()?);
                    tokio::spawn(serve_metrics(l, daemon.clone(), daemon.stopping()));
                }
                println!("breakglassd listening on {addr}");
                std::io::stdout().flush()?;
                let sender = tokio::spawn(run_webhooks(daemon.clone(), hooks));
                let opts = ServeOptions {
                    client_ca: client_ca_pem,
                    limits: config.limits,
                };
                run_with(daemon, listener, &tls, opts, shutdown_signal()).await?;
                sender.abort();
                println!("breakglassd stopped; memory-only secrets wiped");
                Ok(())
            })
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
