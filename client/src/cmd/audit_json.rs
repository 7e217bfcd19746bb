//! `breakglass audit verify --json`: the same checks as the text form (chain,
//! checkpoints, signed trailer), reported as one [`AuditVerifyJson`] object.
//! A log that does not verify prints `"valid": false` with the reason, and
//! the command still fails.

use std::path::PathBuf;

use anyhow::{anyhow, bail};

use breakglass_formats::audit::{self, TrailerError};

use crate::cli::Conn;
use crate::cmd::audit::{parse_daemon_key, read_export_signed};
use crate::cmd::conn::connect;
use crate::json::{self, AuditVerifyJson, TrailerJson};

/// Verifies the export `file` (or the daemon's log) and prints the verdict as JSON.
pub(crate) async fn verify(
    conn: &Conn,
    file: Option<PathBuf>,
    daemon_key: Option<String>,
    daemon_id: Option<String>,
    allow_partial: bool,
) -> anyhow::Result<()> {
    match check(conn, file, daemon_key, daemon_id, allow_partial).await {
        Ok(out) => json::print(&out),
        Err(e) => {
            json::print(&AuditVerifyJson {
                error: Some(crate::output::error_text(&e)),
                ..Default::default()
            })?;
            Err(e)
        }
    }
}

async fn check(
    conn: &Conn,
    file: Option<PathBuf>,
    daemon_key: Option<String>,
    daemon_id: Option<String>,
    allow_partial: bool,
) -> anyhow::Result<AuditVerifyJson> {
    let (entries, trailer, key, id, allow_partial) = match file {
        Some(f) => {
            let (entries, trailer) = read_export_signed(&f)?;
            let key = daemon_key.as_deref().map(parse_daemon_key).transpose()?;
            (entries, trailer, key, daemon_id, allow_partial)
        }
        None => {
            let mut c = connect(conn).await?;
            let (entries, trailer) = c.audit_export_signed(1).await?;
            let id = c.info().daemon_id.clone();
            (entries, trailer, Some(*c.daemon_key()), Some(id), false)
        }
    };
    let anchor = match (key.as_ref(), id.as_deref()) {
        (Some(k), Some(i)) => Some((k, i)),
        (Some(_), None) => bail!("--daemon-key needs --daemon-id"),
        _ => None,
    };
    let r = audit::verify_log(&entries, anchor)
        .map_err(|e| anyhow!("audit log does not verify: {e}"))?;
    let mut out = AuditVerifyJson::chain(&r, anchor.is_some());
    match trailer {
        Some(t) => {
            t.check(&entries, anchor)
                .map_err(|e| anyhow!("audit log does not verify: {e}"))?;
            out.trailer = Some(TrailerJson::new(&t, anchor.is_some()));
        }
        None if allow_partial => {}
        None => bail!("audit log does not verify: {}", TrailerError::Missing),
    }
    Ok(out)
}
