//! `breakglass`: the CLI for custodians, commanders, auditors and CI.
//!
//! - `cli`: the clap types (commands, flags, arguments).
//! - `cmd`: one module per command group, and the connection built from the flags.
//! - `output`: the layout of what is printed for people.
//! - `json`: what `--json` prints for scripts (one serde struct per read command).

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Cmd};

mod cli;
mod cmd;
mod json;
mod output;

/// Every heap block is zeroed when it is freed (invariant 3): a library that
/// copies a key into a temporary `Vec` and frees it unwiped (found on the
/// minting path, and for the custodian's decrypted key in the CLI) leaves
/// nothing behind in freed heap.
#[global_allocator]
static ALLOC: zeroizing_alloc::ZeroAlloc<std::alloc::System> =
    zeroizing_alloc::ZeroAlloc(std::alloc::System);

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
    match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            // Daemon messages quote caller text: escaped like all stored text.
            eprintln!("breakglass: {}", output::shown(&output::error_text(&e)));
            ExitCode::FAILURE
        }
    }
}

/// Hands the parsed command to its module.
async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let conn = &cli.conn;
    match cli.cmd {
        Cmd::Keygen {
            out,
            comment,
            no_passphrase,
        } => cmd::key::keygen(&out, &comment, no_passphrase)?,
        Cmd::Info { json } => cmd::daemon::info(conn, json).await?,
        Cmd::Authority { ssh, paseto } => cmd::daemon::authority(conn, ssh, paseto).await?,
        Cmd::Revocations {
            krl,
            json,
            include_expired,
        } => cmd::revocations::run(conn, krl.as_deref(), json.as_deref(), include_expired).await?,
        Cmd::Request(rc) => return cmd::request::run(conn, rc).await,
        Cmd::Share(sc) => return cmd::share::run(conn, sc).await,
        Cmd::Policy(pc) => return cmd::policy::run(conn, pc).await,
        Cmd::Readiness {
            json,
            require_ready,
        } => return cmd::readiness::run(conn, json, require_ready).await,
        Cmd::Credential(cc) => cmd::credential::run(conn, cc).await?,
        Cmd::Audit(ac) => cmd::audit::run(conn, ac).await?,
        Cmd::Review {
            id,
            html,
            out,
            file,
            daemon_key,
            daemon_id,
            allow_partial,
            force,
        } => {
            let source = cmd::review::Source {
                file,
                daemon_key,
                daemon_id,
                allow_partial,
            };
            cmd::review::run(conn, &id, html, out, source, force).await?
        }
        Cmd::Drill {
            live: true,
            reason,
            out,
            verify,
            authority,
            daemon_id,
            json,
            ..
        } => {
            return match (reason, verify) {
                (Some(reason), None) => cmd::live_drill::run(conn, &reason, out.as_deref(), json).await,
                (None, Some(file)) => cmd::live_drill::verify(
                    &file,
                    authority.as_deref().unwrap_or_default(),
                    daemon_id.as_deref(),
                    json,
                ),
                _ => Err(anyhow::anyhow!(
                    "drill --live needs --reason TEXT (run a live drill) or --verify FILE --authority KEY (check a statement)"
                )),
            }
        }
        Cmd::Drill {
            json,
            custodians,
            threshold,
            ..
        } => return cmd::drill::run(json, custodians, threshold).await,
        Cmd::Completions { shell } => cmd::docs::completions(shell),
        Cmd::Man => cmd::docs::man()?,
    }
    Ok(ExitCode::SUCCESS)
}
