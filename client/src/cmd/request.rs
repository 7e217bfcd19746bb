//! `breakglass request …`: a commander opens a request; anyone shows, lists or
//! watches requests; the requester or a custodian cancels one.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};

use breakglass_client::api::{unix_now, Client};
use breakglass_formats::sshcert;
use breakglass_proto::pb;

use crate::cli::{Conn, RequestCmd};
use crate::cmd::conn::{check_key, connect, default_ssh_pub, load_identity};
use crate::json::{self, RequestJson, RequestListJson, WatchJson};
use crate::output::{print_request, progress_line, request_row};

/// Runs one `request` subcommand; `watch` exits with its [`Outcome`]'s code.
pub(crate) async fn run(conn: &Conn, rc: RequestCmd) -> anyhow::Result<ExitCode> {
    if matches!(rc, RequestCmd::Open { .. } | RequestCmd::Cancel { .. }) {
        check_key(conn)?;
    }
    let mut c = connect(conn).await?;
    match rc {
        RequestCmd::Open {
            scope,
            reason,
            ttl,
            ssh_key,
        } => open(conn, &mut c, &scope, &reason, ttl.as_secs(), ssh_key).await?,
        RequestCmd::Show { id, json: true } => json::print(&RequestJson::from(&c.get(&id).await?))?,
        RequestCmd::Show { id, json: false } => print_request(&c.get(&id).await?),
        RequestCmd::Watch { id, json } => {
            let outcome = watch(&mut c, &id, json).await?;
            return Ok(ExitCode::from(outcome.code()));
        }
        RequestCmd::List { all, json: true } => {
            let requests = c.list(!all).await?.iter().map(RequestJson::from).collect();
            json::print(&RequestListJson { requests })?;
        }
        RequestCmd::List { all, json: false } => {
            let rs = c.list(!all).await?;
            if rs.is_empty() {
                println!("no {}requests", if all { "" } else { "collecting " });
            }
            for v in rs {
                println!("{}", request_row(&v));
            }
        }
        RequestCmd::Cancel { id, reason } => {
            let me = load_identity(conn)?;
            print_request(&c.cancel(&me, conn.as_id.as_deref(), &id, &reason).await?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `request open`: with the SSH key to certify when the scope mints certificates.
async fn open(
    conn: &Conn,
    c: &mut Client,
    scope: &str,
    reason: &str,
    ttl: u64,
    ssh_key: Option<PathBuf>,
) -> anyhow::Result<()> {
    // An unknown scope is the first thing to say: notes about --ssh-key would mislead.
    if !c.info().scopes.iter().any(|s| s.name == scope) {
        let known: Vec<&str> = c.info().scopes.iter().map(|s| s.name.as_str()).collect();
        bail!(
            "unknown scope `{}`: this daemon's scopes are {} (`breakglass info` shows what each mints)",
            crate::output::shown(scope),
            known.join(", ")
        );
    }
    let me = load_identity(conn)?;
    let ssh_line = if c.scope_mints(scope, "ssh") {
        let path = ssh_key.or_else(default_ssh_pub).filter(|p| p.is_file()).ok_or_else(|| {
            anyhow!("scope {scope} mints an SSH certificate: give the key to certify with --ssh-key ~/.ssh/id_ed25519.pub")
        })?;
        let line = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
        sshcert::normalise_subject_key(&line).map_err(|e| anyhow!("{}: {e}", path.display()))?
    } else {
        if ssh_key.is_some() {
            eprintln!("note: scope {scope} mints no SSH certificate; --ssh-key is not used");
        }
        String::new()
    };
    let v = c
        .open(&me, conn.as_id.as_deref(), scope, reason, ttl, &ssh_line)
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
    Ok(())
}

/// How `request watch` ended; each has its own exit code (documented in
/// `--help` and the README) so a script can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The quorum was reached and the credential minted: exit 0.
    Unlocked,
    /// The collection window ended without a quorum: exit 3.
    Expired,
    /// Cancelled by its requester, a custodian or a daemon restart: exit 4.
    Cancelled,
    /// The connection to the daemon was lost before the request closed: exit 5.
    LostConnection,
    /// A live drill reached its quorum (nothing was minted): exit 0.
    DrillPassed,
}

impl Outcome {
    /// The process's exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Outcome::Unlocked | Outcome::DrillPassed => 0,
            Outcome::Expired => 3,
            Outcome::Cancelled => 4,
            Outcome::LostConnection => 5,
        }
    }

    /// The name in `request watch --json`.
    fn name(self) -> &'static str {
        match self {
            Outcome::Unlocked => "unlocked",
            Outcome::Expired => "expired",
            Outcome::Cancelled => "cancelled",
            Outcome::LostConnection => "lost_connection",
            Outcome::DrillPassed => "drill_passed",
        }
    }

    /// The outcome a view in state `state` means, if it is terminal.
    fn of(state: i32) -> Option<Outcome> {
        match pb::RequestState::try_from(state) {
            Ok(pb::RequestState::Unlocked) => Some(Outcome::Unlocked),
            Ok(pb::RequestState::Expired) => Some(Outcome::Expired),
            Ok(pb::RequestState::Cancelled) => Some(Outcome::Cancelled),
            Ok(pb::RequestState::DrillPassed) => Some(Outcome::DrillPassed),
            _ => None,
        }
    }
}

/// Whether a stream error means the connection is gone (rather than a refusal
/// by the daemon, such as an unknown request id).
fn is_lost(st: &tonic::Status) -> bool {
    std::error::Error::source(st).is_some()
        || matches!(
            st.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        )
}

/// `request watch`: one line per change; on a terminal, one line redrawn every
/// second; with `json`, one JSON object per change and a last one with the outcome.
async fn watch(c: &mut Client, id: &str, json: bool) -> anyhow::Result<Outcome> {
    let tty = !json && std::io::stdout().is_terminal();
    let mut stream = c.watch_request(id).await?;
    let mut last: Option<pb::RequestView> = None;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let (outcome, lost) = loop {
        tokio::select! {
            msg = stream.message() => {
                match msg {
                    Ok(Some(v)) => {
                        c.check_view(&v)?;
                        if json {
                            json::print(&WatchJson::Update { request: RequestJson::from(&v) })?;
                        } else if tty {
                            print!("\r\x1b[2K{}", progress_line(&v, unix_now()));
                            std::io::stdout().flush()?;
                        } else {
                            println!("{}", progress_line(&v, unix_now()));
                        }
                        let done = Outcome::of(v.state);
                        last = Some(v);
                        if let Some(o) = done {
                            break (o, None);
                        }
                    }
                    Ok(None) => break (
                        Outcome::LostConnection,
                        Some("the daemon ended the watch before the request closed".to_string()),
                    ),
                    Err(st) if (last.is_some() && is_lost(&st)) || st.code() == tonic::Code::Unavailable => {
                        let e = anyhow::Error::new(breakglass_client::ClientError::from(st));
                        break (Outcome::LostConnection, Some(crate::output::error_text(&e)));
                    }
                    Err(st) => return Err(breakglass_client::ClientError::from(st).into()),
                }
            }
            _ = tick.tick(), if tty => {
                if let Some(v) = &last {
                    print!("\r\x1b[2K{}", progress_line(v, unix_now()));
                    std::io::stdout().flush()?;
                }
            }
        }
    };
    if tty {
        println!();
    }
    if json {
        json::print(&WatchJson::Outcome {
            outcome: outcome.name(),
            exit_code: outcome.code(),
            request: last.as_ref().map(RequestJson::from),
            error: lost.clone(),
        })?;
    }
    if let Some(why) = lost {
        eprintln!(
            "breakglass: lost the connection to the daemon: {why}; the request may still be open: check with `breakglass request show {id}`"
        );
    }
    Ok(outcome)
}
