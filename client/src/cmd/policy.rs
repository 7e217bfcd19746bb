//! `breakglass policy …` and `breakglass share fetch|confirm`: change the
//! custodians, the threshold or the policy by quorum (DESIGN.md "Epochs").
//!
//! Every screen a custodian approves from is the summary this client
//! recomputes from the two policies after checking both digests and D's
//! signature (`api::change`); nothing the daemon writes about a change is
//! shown as fact before that.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde::Serialize;

use breakglass_client::api::{open_share_file, state_name, unix_now, Change};
use breakglass_proto::pb;

use crate::cli::{Conn, PolicyCmd};
use crate::cmd::conn::{connect, load_identity};
use crate::output::{shown, when};

/// Runs one `policy` subcommand.
pub(crate) async fn run(conn: &Conn, pc: PolicyCmd) -> anyhow::Result<ExitCode> {
    match pc {
        PolicyCmd::Propose {
            file,
            reason,
            yes,
            json,
        } => propose(conn, &file, &reason, yes, json).await,
        PolicyCmd::Show { id, full, json } => {
            let mut c = connect(conn).await?;
            let ch = c.get_change(&id).await?;
            if json {
                print_json(&ch)?;
            } else {
                print_change(&ch, full);
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCmd::Status { id, json } => {
            let mut c = connect(conn).await?;
            let ch = c.get_change(&id).await?;
            if json {
                print_json(&ch)?;
            } else {
                print_status(&ch);
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCmd::Approve {
            id,
            share,
            full,
            yes,
            json,
        } => approve(conn, &id, &share, full, yes, json).await,
        PolicyCmd::Cancel { id, reason, json } => {
            let mut c = connect(conn).await?;
            let me = load_identity(conn)?;
            let ch = c
                .cancel_change(&me, conn.as_id.as_deref(), &id, &reason)
                .await?;
            if json {
                print_json(&ch)?;
            } else {
                println!(
                    "cancelled: change {}; the current epoch stays",
                    shown(ch.id())
                );
                print_status(&ch);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `policy propose`: the daemon validates the file as `init` would and the
/// summary is shown before the proposal is signed.
async fn propose(
    conn: &Conn,
    file: &Path,
    reason: &str,
    yes: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("policy file {}", file.display()))?;
    let mut c = connect(conn).await?;
    let (checked, summary) = c.check_policy(&text).await?;
    if !json {
        println!(
            "Proposed policy {} for daemon {} (now at epoch {}, policy {}):",
            hex::encode(checked.policy_digest.get(..8).unwrap_or_default()),
            shown(&c.info().daemon_id),
            checked.epoch,
            hex::encode(checked.current_policy_digest.get(..8).unwrap_or_default()),
        );
        for l in summary.lines() {
            println!("  {}", shown(&l));
        }
    }
    if !yes && !crate::cmd::share::confirm("Propose this change?")? {
        println!("not proposed; nothing sent");
        return Ok(ExitCode::FAILURE);
    }
    let me = load_identity(conn)?;
    let ch = c.propose(&me, conn.as_id.as_deref(), &text, reason).await?;
    if json {
        print_json(&ch)?;
    } else {
        println!(
            "proposed: change {}; custodians of epoch {} approve it with `breakglass policy approve {} --share FILE` until {}",
            shown(ch.id()),
            ch.view.epoch,
            shown(ch.id()),
            when(ch.request().deadline, unix_now())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `policy approve`: the recomputed summary, then the question, then the share.
async fn approve(
    conn: &Conn,
    id: &str,
    share: &Path,
    full: bool,
    yes: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut c = connect(conn).await?;
    let ch = c.get_change(id).await?;
    if ch.request().state != pb::RequestState::Collecting as i32 {
        print_status(&ch);
        bail!(
            "change {} is {}; there is nothing to approve",
            shown(id),
            state_name(ch.request().state)
        );
    }
    if !json {
        println!("You are asked to approve a POLICY CHANGE with your current share:");
        print_change(&ch, full);
    }
    let holder = crate::cmd::share::share_holder(c.info(), share, conn.as_id.as_deref())?;
    let me = load_identity(conn)?;
    let (caller, file) = crate::cmd::share::own_share(conn, &c, &me, share, &holder)?;
    if !yes && !crate::cmd::share::confirm("Approve this change?")? {
        println!("not approved; nothing sent");
        return Ok(ExitCode::FAILURE);
    }
    let (out, after) = c.approve_change(&me, Some(&caller), &ch, &file).await?;
    drop(file);
    if json {
        print_json(&after)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("approval accepted: {}/{}", out.accepted, out.threshold);
    let st = after.request().state;
    if st == pb::RequestState::ChangeApplied as i32 {
        println!("quorum reached: the new policy applies now, with the same shares");
    } else if st == pb::RequestState::ChangeDealt as i32 {
        if let Some(p) = after.pending() {
            println!(
                "quorum reached: epoch {} was dealt; each new custodian runs `breakglass share fetch {}` and `breakglass share confirm {}`; it commits when {} have confirmed (until {})",
                p.epoch,
                shown(after.id()),
                shown(after.id()),
                p.need,
                when(p.deadline, unix_now())
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `share fetch`: a new custodian's share file of a pending epoch, checked
/// (hers, this daemon's, matching the commitment D signed), written as the
/// daemon keeps it (age-encrypted to her key), mode 0600.
pub(crate) async fn fetch(
    conn: &Conn,
    change: &str,
    out: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut c = connect(conn).await?;
    let me = load_identity(conn)?;
    let got = c
        .fetch_new_share(&me, conn.as_id.as_deref(), change)
        .await?;
    crate::cmd::credential::write_private(out, &got.encrypted)?;
    let epoch = got.file.epoch();
    let who = got.file.custodian_id.clone();
    drop(got.file);
    if json {
        #[derive(Serialize)]
        struct FetchJson {
            ok: bool,
            change_id: String,
            custodian_id: String,
            epoch: u64,
            out: String,
        }
        crate::json::print(&FetchJson {
            ok: true,
            change_id: change.to_string(),
            custodian_id: who,
            epoch,
            out: out.display().to_string(),
        })?;
    } else {
        println!(
            "fetched: {}'s share of epoch {} (change {}), checked against the commitment D signed; written to {}",
            shown(&who),
            epoch,
            shown(change),
            out.display()
        );
        println!(
            "next: `breakglass share confirm {} --share {}` proves it to the daemon",
            shown(change),
            out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `share confirm`: proves the new share against its commitment; the
/// confirmation that completes the rule commits the epoch.
pub(crate) async fn confirm(
    conn: &Conn,
    change: &str,
    share: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut c = connect(conn).await?;
    let me = load_identity(conn)?;
    let file = open_share_file(&me, share)?;
    let (out, after) = c
        .confirm_new_share(&me, conn.as_id.as_deref(), change, &file)
        .await?;
    drop(file);
    if json {
        print_json(&after)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("confirmed: {}/{} new custodians", out.confirmed, out.need);
    if out.committed {
        println!(
            "epoch {} committed: the new custodians' shares unlock from now on; the authority key is unchanged",
            out.epoch
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_change(ch: &Change, full: bool) {
    let now = unix_now();
    let r = ch.request();
    println!("change    {}", shown(&r.id));
    println!("daemon    {}", shown(&r.daemon_id));
    println!("proposer  {}", shown(&r.requester));
    println!("reason    {}", shown(&r.reason));
    println!(
        "policy    {} -> {} (epoch {})",
        hex::encode(ch.view.current_policy_digest.get(..8).unwrap_or_default()),
        hex::encode(ch.view.new_policy_digest.get(..8).unwrap_or_default()),
        ch.view.epoch
    );
    println!("state     {}", state_name(r.state));
    println!("deadline  {}", when(r.deadline, now));
    println!(
        "approvals {}/{}{}",
        r.approvals.len(),
        r.threshold,
        if r.approvals.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                shown(
                    &r.approvals
                        .iter()
                        .map(|a| a.custodian_id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            )
        }
    );
    println!("changes (computed by this client from both policies):");
    for l in ch.summary.lines() {
        println!("  {}", shown(&l));
    }
    if full {
        println!("proposed policy (canonical JSON, SHA-256 = the digest above):");
        println!("{}", shown(&ch.view.new_policy_json));
    }
}

fn pending_state(s: i32) -> &'static str {
    match pb::PendingState::try_from(s) {
        Ok(pb::PendingState::Confirming) => "waiting for confirmations",
        Ok(pb::PendingState::Committed) => "committed",
        Ok(pb::PendingState::Cancelled) => "cancelled",
        Ok(pb::PendingState::Expired) => "expired",
        _ => "unknown",
    }
}

fn print_status(ch: &Change) {
    let now = unix_now();
    let r = ch.request();
    println!(
        "change {}: {}{}",
        shown(&r.id),
        state_name(r.state),
        if r.close_reason.is_empty() {
            String::new()
        } else {
            format!(" ({})", shown(&r.close_reason))
        }
    );
    let Some(p) = ch.pending() else {
        return;
    };
    println!(
        "epoch {}: {}, {}/{} confirmations, deadline {}{}",
        p.epoch,
        pending_state(p.state),
        p.confirmed,
        p.need,
        when(p.deadline, now),
        if p.close_reason.is_empty() {
            String::new()
        } else {
            format!(" ({})", shown(&p.close_reason))
        }
    );
    for s in &p.shares {
        println!(
            "  {:<12} x={:<3} {}",
            shown(&s.custodian_id),
            s.x,
            if s.confirmed_at != 0 {
                format!("confirmed {}", when(s.confirmed_at, now))
            } else if s.fetched_at != 0 {
                format!("fetched {}, not confirmed", when(s.fetched_at, now))
            } else {
                "not fetched".to_string()
            }
        );
    }
}

/// A change as one JSON object (fields in the README, "Scripting").
#[derive(Serialize)]
struct ChangeJson<'a> {
    id: &'a str,
    daemon_id: &'a str,
    proposer: &'a str,
    reason: &'a str,
    state: &'static str,
    epoch: u64,
    current_policy_digest: String,
    new_policy_digest: String,
    opened_at: u64,
    deadline: u64,
    threshold: u32,
    approvals: Vec<&'a str>,
    close_reason: &'a str,
    summary: Vec<String>,
    rekey: bool,
    pending: Option<PendingJson<'a>>,
}

#[derive(Serialize)]
struct PendingJson<'a> {
    epoch: u64,
    state: &'static str,
    need: u32,
    confirmed: u32,
    deadline: u64,
    close_reason: &'a str,
    custodians: Vec<NewShareJson<'a>>,
}

#[derive(Serialize)]
struct NewShareJson<'a> {
    id: &'a str,
    x: u32,
    fetched_at: Option<u64>,
    confirmed_at: Option<u64>,
}

fn print_json(ch: &Change) -> anyhow::Result<()> {
    let r = ch.request();
    crate::json::print(&ChangeJson {
        id: &r.id,
        daemon_id: &r.daemon_id,
        proposer: &r.requester,
        reason: &r.reason,
        state: state_name(r.state),
        epoch: ch.view.epoch,
        current_policy_digest: hex::encode(&ch.view.current_policy_digest),
        new_policy_digest: hex::encode(&ch.view.new_policy_digest),
        opened_at: r.opened_at,
        deadline: r.deadline,
        threshold: r.threshold,
        approvals: r
            .approvals
            .iter()
            .map(|a| a.custodian_id.as_str())
            .collect(),
        close_reason: &r.close_reason,
        summary: ch.summary.lines(),
        rekey: ch.summary.rekey,
        pending: ch.pending().map(|p| PendingJson {
            epoch: p.epoch,
            state: pending_state(p.state),
            need: p.need,
            confirmed: p.confirmed,
            deadline: p.deadline,
            close_reason: &p.close_reason,
            custodians: p
                .shares
                .iter()
                .map(|s| NewShareJson {
                    id: &s.custodian_id,
                    x: s.x,
                    fetched_at: (s.fetched_at != 0).then_some(s.fetched_at),
                    confirmed_at: (s.confirmed_at != 0).then_some(s.confirmed_at),
                })
                .collect(),
        }),
    })
}
