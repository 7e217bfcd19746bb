//! `breakglass drill --live`: rehearse on the production daemon with the real
//! custodians. The commander opens a request of kind drill; custodians approve
//! it with `share submit` (their screen says it is a drill and grants
//! nothing); at quorum the daemon rebuilds the key, A signs a drill statement,
//! nothing is minted. `--verify` checks a statement offline against A.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};

use breakglass_client::api::state_name;
use breakglass_formats::drill::DrillStatement;
use breakglass_formats::keys::AuthorityPublic;
use breakglass_proto::pb;

use crate::cli::Conn;
use crate::cmd::conn::{connect, load_identity};
use crate::output::shown;

/// Exit status when the drill's window ended without a quorum.
const EXPIRED: u8 = 3;
/// Exit status when the drill was cancelled.
const CANCELLED: u8 = 4;
/// Exit status when the connection was lost before the drill closed (as `request watch`).
const LOST: u8 = 5;

/// Opens a live drill, waits for it to close, and keeps its statement.
pub(crate) async fn run(
    conn: &Conn,
    reason: &str,
    out: Option<&Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut c = connect(conn).await?;
    let me = load_identity(conn)?;
    let v = c.open_drill(&me, conn.as_id.as_deref(), reason).await?;
    eprintln!(
        "live drill {} opened on daemon {}: it grants nothing.\ncustodians approve it with `breakglass share submit {} --share FILE` until {}; waiting…",
        shown(&v.id),
        shown(&v.daemon_id),
        shown(&v.id),
        breakglass_formats::time::rfc3339(v.deadline).unwrap_or_default()
    );
    let mut stream = c.watch_request(&v.id).await?;
    let mut last = v;
    loop {
        let next = match stream.message().await {
            Ok(Some(next)) => next,
            Ok(None) | Err(_) => {
                eprintln!(
                    "lost the connection to the daemon while drill {} was collecting; it may still be open: check with `breakglass request show {}`",
                    shown(&last.id),
                    shown(&last.id)
                );
                return Ok(ExitCode::from(LOST));
            }
        };
        c.check_view(&next)?;
        if next.approvals.len() != last.approvals.len() {
            eprintln!("  {}/{} approved", next.approvals.len(), next.threshold);
        }
        last = next;
        if last.state != pb::RequestState::Collecting as i32 {
            break;
        }
    }
    match pb::RequestState::try_from(last.state) {
        Ok(pb::RequestState::DrillPassed) => {}
        Ok(pb::RequestState::Expired) => {
            eprintln!(
                "drill {} expired with {}/{} approvals: the quorum did not act in time; find out who could not, and why",
                shown(&last.id),
                last.approvals.len(),
                last.threshold
            );
            return Ok(ExitCode::from(EXPIRED));
        }
        Ok(pb::RequestState::Cancelled) => {
            eprintln!(
                "drill {} was cancelled: {}",
                shown(&last.id),
                shown(&last.close_reason)
            );
            return Ok(ExitCode::from(CANCELLED));
        }
        _ => bail!(
            "drill {} ended {} while still being watched",
            shown(&last.id),
            state_name(last.state)
        ),
    }
    let st = c.drill_statement(&last)?;
    let text = serde_json::to_string_pretty(&st)?;
    match out {
        Some(p) => {
            std::fs::write(p, format!("{text}\n"))
                .with_context(|| format!("writing {}", p.display()))?;
            eprintln!("drill statement written to {}", p.display());
        }
        None => println!("{text}"),
    }
    eprintln!(
        "drill {} passed in {}s: {} rebuilt the key; the statement is signed by the authority key; nothing was minted",
        shown(&st.request_id),
        st.seconds_to_quorum,
        shown(&st.approvers.join(", "))
    );
    if json && out.is_some() {
        println!("{}", serde_json::to_string(&st)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// `drill --live --verify FILE --authority KEY [--daemon-id ID]`: offline.
pub(crate) fn verify(
    file: &Path,
    authority: &str,
    daemon_id: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let a = AuthorityPublic::parse(authority).map_err(|e| anyhow!("--authority: {e}"))?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let checked = DrillStatement::parse(&text)
        .and_then(|st| st.verify(&a.0.to_bytes(), daemon_id).map(|()| st));
    let st = match checked {
        Ok(st) => st,
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"valid": false, "error": e.to_string()})
                );
            }
            bail!("drill statement {}: {e}", file.display());
        }
    };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "valid": true,
                "daemon_id": st.daemon_id,
                "epoch": st.epoch,
                "request_id": st.request_id,
                "approvers": st.approvers,
                "opened_at": st.opened_at,
                "quorum_at": st.quorum_at,
                "seconds_to_quorum": st.seconds_to_quorum,
                "daemon_id_checked": daemon_id.is_some(),
                "error": null,
            })
        );
    } else {
        println!(
            "valid: drill {} on daemon {} (epoch {}) passed in {}s, approved by {}; signed by the authority",
            shown(&st.request_id),
            shown(&st.daemon_id),
            st.epoch,
            st.seconds_to_quorum,
            shown(&st.approvers.join(", "))
        );
        if daemon_id.is_none() {
            println!("the daemon id was not compared: pass --daemon-id to prove the drill ran on your daemon");
        }
    }
    Ok(ExitCode::SUCCESS)
}
