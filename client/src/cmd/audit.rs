//! `breakglass audit …`: verify the hash chain and checkpoint signatures (from
//! the daemon or offline from an export), export the log as JSON Lines, tail it.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use ed25519_dalek::VerifyingKey;

use breakglass_client::api::{parse_record, Client};
use breakglass_formats::audit::{self, AuditEntry, ExportTrailer, TrailerError, TrailerLine};

use crate::cli::{AuditCmd, Conn};
use crate::cmd::conn::connect;
use crate::output::tail_line;

/// Runs one `audit` subcommand; only `verify --file` works without the daemon.
pub(crate) async fn run(conn: &Conn, ac: AuditCmd) -> anyhow::Result<()> {
    match ac {
        AuditCmd::Verify {
            file,
            daemon_key,
            daemon_id,
            allow_partial,
            json: true,
        } => crate::cmd::audit_json::verify(conn, file, daemon_key, daemon_id, allow_partial).await,
        AuditCmd::Verify {
            file: Some(f),
            daemon_key,
            daemon_id,
            allow_partial,
            ..
        } => {
            let (entries, trailer) = read_export_signed(&f)?;
            let key = daemon_key.as_deref().map(parse_daemon_key).transpose()?;
            print_lines(verify(&entries, key.as_ref(), daemon_id.as_deref())?);
            print_lines(check_trailer(
                &entries,
                trailer.as_ref(),
                key.as_ref(),
                daemon_id.as_deref(),
                allow_partial,
            )?);
            Ok(())
        }
        AuditCmd::Verify { file: None, .. } => {
            let mut c = connect(conn).await?;
            let (entries, trailer) = c.audit_export_signed(1).await?;
            let id = c.info().daemon_id.clone();
            print_lines(verify(&entries, Some(c.daemon_key()), Some(&id))?);
            print_lines(check_trailer(
                &entries,
                trailer.as_ref(),
                Some(c.daemon_key()),
                Some(&id),
                false,
            )?);
            Ok(())
        }
        AuditCmd::Export { since, out } => export(&mut connect(conn).await?, since, out).await,
        AuditCmd::Tail { follow, lines } => tail(&mut connect(conn).await?, follow, lines).await,
    }
}

/// Prints what a check found, one line each.
fn print_lines(lines: Vec<String>) {
    for l in lines {
        println!("{l}");
    }
}

/// An export read from a file: its entries and its signed trailer, if any.
pub(crate) fn read_export_signed(
    f: &Path,
) -> anyhow::Result<(Vec<AuditEntry>, Option<ExportTrailer>)> {
    let text = std::fs::read_to_string(f).with_context(|| f.display().to_string())?;
    audit::parse_export(&text).map_err(|e| anyhow!("{}: {e}", f.display()))
}

/// Checks that the entries end exactly at the head D signed in the trailer;
/// returns what was checked, one line each (`ok: …`, `warning: …`).
pub(crate) fn check_trailer(
    entries: &[AuditEntry],
    trailer: Option<&ExportTrailer>,
    key: Option<&VerifyingKey>,
    id: Option<&str>,
    allow_partial: bool,
) -> anyhow::Result<Vec<String>> {
    let Some(t) = trailer else {
        if allow_partial {
            return Ok(vec![
                "warning: no signed trailer (--allow-partial): a cut-off tail would not be noticed"
                    .to_string(),
            ]);
        }
        bail!("audit log does not verify: {}", TrailerError::Missing);
    };
    let anchor = key.zip(id);
    t.check(entries, anchor)
        .map_err(|e| anyhow!("audit log does not verify: {e}"))?;
    Ok(vec![if anchor.is_some() {
        format!(
            "ok: complete up to entry {}, as the daemon signed at {}",
            t.seq,
            crate::output::when(t.generated_at, breakglass_client::api::unix_now())
        )
    } else {
        format!(
            "ok: ends at entry {} as its trailer says (trailer signature not checked: give --daemon-key and --daemon-id)",
            t.seq
        )
    }])
}

/// `--daemon-key`: D as 64 hex digits, as `breakglass info` prints it.
pub(crate) fn parse_daemon_key(k: &str) -> anyhow::Result<VerifyingKey> {
    let mut b = [0u8; 32];
    hex::decode_to_slice(k.trim(), &mut b)
        .map_err(|_| anyhow!("--daemon-key: expected 64 hex digits"))?;
    VerifyingKey::from_bytes(&b).map_err(|e| anyhow!("--daemon-key: {e}"))
}

/// Checks the chain, and the checkpoints when both D and the daemon id are
/// known; returns what was checked, one line each.
pub(crate) fn verify(
    entries: &[AuditEntry],
    key: Option<&VerifyingKey>,
    id: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let anchor = match (key, id) {
        (Some(k), Some(i)) => Some((k, i)),
        (Some(_), None) => bail!("--daemon-key needs --daemon-id"),
        _ => None,
    };
    let r = audit::verify_log(entries, anchor)
        .map_err(|e| anyhow!("audit log does not verify: {e}"))?;
    let (a, b) = r.range.unwrap_or((0, 0));
    let mut lines = vec![format!(
        "ok: entries {a}..={b} ({} entries) form an unbroken hash chain",
        r.entries
    )];
    lines.push(if anchor.is_some() {
        format!("ok: {} checkpoints signed by the daemon key", r.checkpoints)
    } else {
        "warning: checkpoint signatures not checked: give --daemon-key and --daemon-id".to_string()
    });
    lines.push(format!("head {}", r.head.unwrap_or_default()));
    Ok(lines)
}

/// `audit export`: JSON Lines to `out`, or to standard output.
async fn export(c: &mut Client, since: u64, out: Option<PathBuf>) -> anyhow::Result<()> {
    let (entries, trailer) = c.audit_export_signed(since).await?;
    let mut text = String::new();
    for e in &entries {
        text.push_str(&serde_json::to_string(e)?);
        text.push('\n');
    }
    // The last line: the head D signed, so a shortened file is evident.
    if let Some(t) = trailer {
        text.push_str(&serde_json::to_string(&TrailerLine { trailer: t })?);
        text.push('\n');
    }
    match out {
        Some(p) => {
            std::fs::write(&p, text).with_context(|| p.display().to_string())?;
            eprintln!("wrote {} entries to {}", entries.len(), p.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// `audit tail`: the last `lines` entries, then with `follow` every new one.
///
/// The protocol has no call that returns the head alone, so the whole log is
/// read once; its last entries are printed and the watch starts after them.
async fn tail(c: &mut Client, follow: bool, lines: u64) -> anyhow::Result<()> {
    // Only the tail is read: the head first, then the last `lines` entries.
    let head = c.audit_head().await?;
    let since = head.saturating_sub(lines.saturating_sub(1)).max(1);
    let entries = if head == 0 {
        Vec::new()
    } else {
        c.audit_export(since).await?
    };
    let head = entries.last().map(|e| e.seq).unwrap_or(head).max(head);
    for e in &entries {
        println!("{}", tail_line(e));
    }
    if follow {
        let mut stream = c.watch_audit(head.saturating_add(1)).await?;
        while let Some(r) = stream.message().await? {
            println!("{}", tail_line(&parse_record(&r)?));
        }
    }
    Ok(())
}
