//! `breakglass review`: a post-incident timeline of one request, built from
//! the daemon's audit log or from an export, after verifying it the way
//! `breakglass audit verify` does (same functions): the chain, and with D the
//! checkpoints and the export's signed trailer. A log that does not verify is
//! not rendered, unless `--force`, and then under a banner saying so.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};

use breakglass_client::review::{self as timeline, Provenance};
use breakglass_formats::audit::AuditEntry;

use crate::cli::Conn;
use crate::cmd::audit::{check_trailer, parse_daemon_key, read_export_signed, verify};
use crate::cmd::conn::connect;

/// Where the log comes from: the daemon, or an export file with the keys to
/// check it.
pub(crate) struct Source {
    /// The export, or `None` for the daemon's log.
    pub(crate) file: Option<PathBuf>,
    /// D, hex (with `file`).
    pub(crate) daemon_key: Option<String>,
    /// The daemon id D signs for (with `file`).
    pub(crate) daemon_id: Option<String>,
    /// Accept an export with no signed trailer.
    pub(crate) allow_partial: bool,
}

/// What `audit verify` prints (`ok: …`, `warning: …`, `head …`) as the page's provenance.
fn provenance(source: String, lines: Vec<String>) -> Provenance {
    let mut p = Provenance {
        source,
        ..Provenance::default()
    };
    for l in lines {
        if let Some(w) = l.strip_prefix("warning: ") {
            p.unchecked.push(w.to_string());
        } else if let Some((ok, not)) = l.split_once(" (trailer signature not checked: ") {
            p.verified
                .push(ok.strip_prefix("ok: ").unwrap_or(ok).to_string());
            p.unchecked.push(format!(
                "trailer signature not checked: {}",
                not.trim_end_matches(')')
            ));
        } else {
            p.verified
                .push(l.strip_prefix("ok: ").unwrap_or(&l).to_string());
        }
    }
    p
}

/// The verification error as the banner names it.
fn failure(e: &anyhow::Error) -> String {
    let e = format!("{e:#}");
    e.strip_prefix("audit log does not verify: ")
        .unwrap_or(&e)
        .to_string()
}

/// Markdown (or HTML) for request `id`, to `out` or standard output.
pub(crate) async fn run(
    conn: &Conn,
    id: &str,
    html: bool,
    out: Option<PathBuf>,
    source: Source,
    force: bool,
) -> anyhow::Result<()> {
    let (entries, checked, from, daemon_id): (Vec<AuditEntry>, _, _, _) = match &source.file {
        Some(f) => {
            let (entries, trailer) = read_export_signed(f)?;
            let key = source
                .daemon_key
                .as_deref()
                .map(parse_daemon_key)
                .transpose()?;
            let id = source.daemon_id.as_deref();
            let checked = verify(&entries, key.as_ref(), id).and_then(|mut lines| {
                lines.extend(check_trailer(
                    &entries,
                    trailer.as_ref(),
                    key.as_ref(),
                    id,
                    source.allow_partial,
                )?);
                Ok(lines)
            });
            let from = format!("the export {}", f.display());
            (entries, checked, from, None)
        }
        None => {
            let mut c = connect(conn).await?;
            let (entries, trailer) = c.audit_export_signed(1).await?;
            let did = c.info().daemon_id.clone();
            let key = *c.daemon_key();
            let checked = verify(&entries, Some(&key), Some(&did)).and_then(|mut lines| {
                lines.extend(check_trailer(
                    &entries,
                    trailer.as_ref(),
                    Some(&key),
                    Some(&did),
                    false,
                )?);
                Ok(lines)
            });
            let from = format!(
                "the audit log of daemon {did} (key {})",
                hex::encode(key.as_bytes())
            );
            (entries, checked, from, Some(did))
        }
    };
    let p = match checked {
        Ok(lines) => provenance(from, lines),
        Err(e) if force => Provenance {
            source: from,
            failure: Some(failure(&e)),
            ..Provenance::default()
        },
        Err(e) => bail!(
            "the audit log does not verify: {}: no review is built from it (--force renders it anyway, under a warning)",
            failure(&e)
        ),
    };
    let mut r = timeline::build(id, &entries)
        .ok_or_else(|| anyhow!("no audit entries for request {id}"))?;
    if r.daemon_id.is_none() {
        // From the daemon's own description when the log names none.
        r.daemon_id = daemon_id;
    }
    let text = if html {
        timeline::html(&r, &p)
    } else {
        timeline::markdown(&r, &p)
    };
    match out {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| path.display().to_string())?;
            println!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}
