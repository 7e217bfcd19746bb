//! `breakglass request …`: a commander opens a request; anyone shows, lists or
//! watches requests; the requester or a custodian cancels one.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{anyhow, Context};

use breakglass_client::api::{unix_now, Client};
use breakglass_formats::sshcert;
use breakglass_proto::pb;

use crate::cli::{Conn, RequestCmd};
use crate::cmd::conn::{connect, default_ssh_pub, load_identity};
use crate::output::{print_request, progress_line, request_row};

/// Runs one `request` subcommand.
pub(crate) async fn run(conn: &Conn, rc: RequestCmd) -> anyhow::Result<()> {
    let mut c = connect(conn).await?;
    match rc {
        RequestCmd::Open {
            scope,
            reason,
            ttl,
            ssh_key,
        } => open(conn, &mut c, &scope, &reason, ttl.as_secs(), ssh_key).await?,
        RequestCmd::Show { id } => print_request(&c.get(&id).await?),
        RequestCmd::Watch { id } => watch(&mut c, &id).await?,
        RequestCmd::List { all } => {
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
    Ok(())
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

/// `request watch`: one line per change; on a terminal, one line redrawn every second.
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
