//! `breakglass share …`: a custodian approves a request with the share from
//! the ceremony, or checks that the share file still opens with their key.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};

use breakglass_client::api::{open_share_file, state_name, Client, Role};
use breakglass_formats::envelope;
use breakglass_formats::share_file::ShareFile;
use breakglass_proto::pb;

use crate::cli::{Conn, ShareCmd};
use crate::cmd::conn::{connect, load_identity};
use crate::output::{print_grant, print_request, shown};

/// Runs one `share` subcommand; a refused confirmation is a failure exit with nothing sent.
pub(crate) async fn run(conn: &Conn, sc: ShareCmd) -> anyhow::Result<ExitCode> {
    match sc {
        ShareCmd::Submit { id, share, yes } => {
            let mut c = connect(conn).await?;
            submit(conn, &mut c, &id, &share, yes).await
        }
        ShareCmd::Attest { share, json } => {
            let mut c = connect(conn).await?;
            attest(conn, &mut c, &share, json).await
        }
        ShareCmd::Check {
            share,
            offline,
            daemon_key,
            json,
        } => check(conn, &share, offline, daemon_key.as_deref(), json).await,
        ShareCmd::Fetch { change, out, json } => {
            crate::cmd::policy::fetch(conn, &change, &out, json).await
        }
        ShareCmd::Confirm {
            change,
            share,
            json,
        } => crate::cmd::policy::confirm(conn, &change, &share, json).await,
    }
}

/// `share check`: the key opens the file, and the file is genuine. Offline,
/// the share must match the commitment written beside it and D's signature in
/// the file must verify (against `--daemon-key` when given); online, the share
/// must match the commitment the daemon publishes for this custodian, signed by
/// the daemon's D (so a v1 file without a signature is proven too).
async fn check(
    conn: &Conn,
    path: &Path,
    offline: bool,
    daemon_key: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let expected = daemon_key
        .map(crate::cmd::audit::parse_daemon_key)
        .transpose()?
        .map(|k| k.to_bytes());
    let me = load_identity(conn)?;
    let (f, genuine) = if offline {
        let f = open_share_file(&me, path)?;
        let g = f
            .check_origin(expected.as_ref())
            .map_err(|e| anyhow!("share file {}: {e}", path.display()))?;
        (f, g)
    } else {
        let c = connect(conn).await?;
        if let Some(want) = &expected {
            if c.daemon_key().to_bytes() != *want {
                bail!(
                    "daemon {} has key {}, not the expected {}: this is not the daemon you meant",
                    shown(&c.info().daemon_id),
                    hex::encode(c.daemon_key().to_bytes()),
                    hex::encode(want)
                );
            }
        }
        let f = c.read_share_file(&me, path)?;
        let g = c.check_share_origin(&f, path)?;
        (f, g)
    };
    let d_hex = hex::encode(genuine.daemon_public_key);
    if json {
        crate::json::print(&crate::json::ShareCheckJson {
            ok: true,
            custodian_id: f.custodian_id.clone(),
            x: Some(genuine.x),
            threshold: u64::from(f.threshold),
            custodians: u64::from(f.custodians),
            daemon_id: f.daemon_id.clone(),
            ceremony_id: f.ceremony_id.clone(),
            epoch: genuine.epoch,
            daemon_public_key: d_hex,
            checked: if offline { "offline" } else { "daemon" },
            daemon_key_compared: genuine.daemon_key_expected,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "ok: {} holds share {:02x} of a {}-of-{} split for daemon {} (ceremony {}, epoch {})",
        shown(&f.custodian_id),
        genuine.x,
        f.threshold,
        f.custodians,
        shown(&f.daemon_id),
        shown(&f.ceremony_id),
        genuine.epoch
    );
    if offline {
        println!("the share matches its commitment, and daemon key {d_hex} signed the file");
        if !genuine.daemon_key_expected {
            println!(
                "D was not compared with your daemon's key: pass --daemon-key with the key your operator published (`breakglass info` prints it) to prove the file is from your daemon"
            );
        }
    } else {
        println!(
            "the share matches the commitment the daemon publishes for {}, signed by its daemon key {d_hex}",
            shown(&f.custodian_id)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `share attest`: the file must be encrypted to a custodian of this daemon
/// and be from its ceremony (checked before the passphrase is asked); the
/// daemon checks the share itself, so a wrong share is refused on the record.
async fn attest(conn: &Conn, c: &mut Client, share: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let holder = share_holder(c.info(), share, conn.as_id.as_deref())?;
    let me = load_identity(conn)?;
    let (caller, file) = own_share(conn, c, &me, share, &holder)?;
    let a = c.attest(&me, Some(&caller), &file).await?;
    drop(file);
    let when = breakglass_formats::time::rfc3339(a.attested_at);
    if json {
        crate::json::print(&crate::json::ShareAttestJson {
            ok: true,
            custodian_id: a.custodian_id,
            daemon_id: c.info().daemon_id.clone(),
            epoch: a.epoch,
            attested_at: when,
            attested_at_unix: a.attested_at,
            attestation_id: a.attestation_id,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "attested: {} proved their share of daemon {} (epoch {}) at {}",
        shown(&a.custodian_id),
        shown(&c.info().daemon_id),
        a.epoch,
        when.unwrap_or_else(|| a.attested_at.to_string())
    );
    println!(
        "the daemon checked it against the commitment and wiped it; nothing was unlocked ({})",
        shown(&a.attestation_id)
    );
    Ok(ExitCode::SUCCESS)
}

/// `share submit`: everything that can be checked without the custodian's
/// passphrase is checked first (the D-signed view, that the request still
/// collects, that the share file is an age file encrypted to a custodian of
/// this daemon); then the whole grant is shown; then the key is loaded and the
/// file decrypted and checked; only then is the custodian asked (unless `yes`),
/// so a "yes" is always followed by sending.
async fn submit(
    conn: &Conn,
    c: &mut Client,
    id: &str,
    share: &Path,
    yes: bool,
) -> anyhow::Result<ExitCode> {
    let v = c.get(id).await?;
    if v.kind == pb::RequestKind::Change as i32 {
        bail!(
            "{} is a policy change, not an access request: run `breakglass policy approve {} --share FILE`, which shows what it changes",
            shown(id),
            shown(id)
        );
    }
    if v.state != pb::RequestState::Collecting as i32 {
        print_request(&v);
        bail!(
            "request {} is {}; there is nothing to approve",
            shown(id),
            state_name(v.state)
        );
    }
    let holder = share_holder(c.info(), share, conn.as_id.as_deref())?;
    print_grant(
        c.info(),
        &v,
        &format!("{} (encrypted to {holder}'s key)", share.display()),
    );
    let me = load_identity(conn)?;
    let (caller, file) = own_share(conn, c, &me, share, &holder)?;
    let question = if v.kind == pb::RequestKind::Drill as i32 {
        format!(
            "Approve the live drill {} opened by {} (it grants nothing)?",
            shown(&v.id),
            shown(&v.requester)
        )
    } else {
        format!(
            "Approve emergency access for {} to {}?",
            shown(&v.requester),
            shown(&v.scope)
        )
    };
    if !yes && !confirm(&question)? {
        println!("not approved; nothing sent");
        return Ok(ExitCode::FAILURE);
    }
    let p = c.submit(&me, Some(&caller), &v, &file).await?;
    drop(file);
    println!("share accepted: {}/{}", p.accepted, p.threshold);
    let drill = p
        .request
        .as_ref()
        .is_some_and(|r| r.state == pb::RequestState::DrillPassed as i32);
    if drill {
        println!("quorum reached: the drill passed; the key was rebuilt and nothing was minted");
    } else if p.unlocked {
        println!(
            "quorum reached: the credential was minted for {}",
            shown(&v.requester)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the caller's own share file with her key `me` (loaded by the
/// caller, and never moved: a moved key leaves a copy in the frame it left):
/// the key must be the custodian's the file is encrypted to (`holder`), the
/// file must be from this daemon's ceremony and hold that custodian's share.
pub(crate) fn own_share(
    conn: &Conn,
    c: &Client,
    me: &breakglass_client::identity::Identity,
    share: &Path,
    holder: &str,
) -> anyhow::Result<(String, ShareFile)> {
    let caller = c.whoami(me, Role::Custodian, conn.as_id.as_deref())?;
    if caller != holder {
        bail!(
            "{} is encrypted to custodian {holder}'s key, but the key given is {}'s: use your own share file",
            share.display(),
            shown(&caller)
        );
    }
    let file = c.read_share_file(me, share)?;
    if file.custodian_id != caller {
        bail!(
            "{} holds the share of custodian {}, not {}'s",
            share.display(),
            shown(&file.custodian_id),
            shown(&caller)
        );
    }
    Ok((caller, file))
}

/// The custodian whose key the share file at `path` is encrypted to, read from
/// its age header (no key, no passphrase): a file of another daemon, of a
/// ceremony whose custodians were replaced, or not an age file at all is
/// refused before anything is asked. With `as_id`, it must be that custodian's.
pub(crate) fn share_holder(
    info: &pb::GetInfoResponse,
    path: &Path,
    as_id: Option<&str>,
) -> anyhow::Result<String> {
    let ct = std::fs::read(path).with_context(|| format!("share file {}", path.display()))?;
    let tags: Vec<String> = envelope::recipients(&ct)
        .map_err(|e| anyhow!("{} is not a share file: {e}", path.display()))?
        .into_iter()
        .filter(|(kind, _)| kind == "ssh-ed25519")
        .map(|(_, tag)| tag)
        .collect();
    if tags.is_empty() {
        bail!(
            "{} is an age file but not encrypted to an ssh-ed25519 key: it is not a breakglass share file",
            path.display()
        );
    }
    let holders: Vec<&str> = info
        .custodians
        .iter()
        .filter(|cu| envelope::ssh_ed25519_tag(&cu.ssh_public_key).is_ok_and(|t| tags.contains(&t)))
        .map(|cu| cu.id.as_str())
        .collect();
    let holder = match (holders.as_slice(), as_id) {
        ([], _) => bail!(
            "{} is not encrypted to any custodian of daemon {}: it is from another daemon, or from before the custodians changed",
            path.display(),
            shown(&info.daemon_id)
        ),
        (_, Some(me)) if !holders.contains(&me) => bail!(
            "{} is encrypted to custodian {}'s key, not to {}'s (--as)",
            path.display(),
            shown(&holders.join(", ")),
            shown(me)
        ),
        (_, Some(me)) => me,
        ([one], None) => one,
        (_, None) => bail!(
            "{} is encrypted to several custodians ({}): say which you are with --as ID",
            path.display(),
            shown(&holders.join(", "))
        ),
    };
    Ok(shown(holder))
}

/// Asks a yes/no question. Only a terminal can say yes: from a pipe or a file
/// the answer is read, a "no" (or nothing) declines, and a "yes" is refused,
/// so a script cannot approve by accident (it passes `--yes` on purpose).
pub(crate) fn confirm(question: &str) -> anyhow::Result<bool> {
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let yes = matches!(line.trim(), "y" | "Y" | "yes");
    if !std::io::stdin().is_terminal() {
        println!();
        if yes {
            bail!("standard input is not a terminal, so the approval was not asked of a person: read the request above and pass --yes to approve");
        }
    }
    Ok(yes)
}
