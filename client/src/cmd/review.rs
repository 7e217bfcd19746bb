//! `breakglass review`: a post-incident timeline of one request, built from a
//! verified audit log (the daemon's) or from an export.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};

use breakglass_client::review as timeline;
use breakglass_formats::audit;

use crate::cli::Conn;
use crate::cmd::audit::read_export;
use crate::cmd::conn::connect;

/// Markdown (or HTML) for request `id`, to `out` or standard output.
pub(crate) async fn run(
    conn: &Conn,
    id: &str,
    html: bool,
    out: Option<PathBuf>,
    file: Option<&Path>,
) -> anyhow::Result<()> {
    let entries = match file {
        Some(f) => read_export(f)?,
        None => {
            let mut c = connect(conn).await?;
            let entries = c.audit_export(1).await?;
            audit::verify_log(&entries, Some((c.daemon_key(), &c.info().daemon_id))).map_err(
                |e| anyhow!("the audit log does not verify, so no review is built from it: {e}"),
            )?;
            entries
        }
    };
    let r = timeline::build(id, &entries)
        .ok_or_else(|| anyhow!("no audit entries for request {id}"))?;
    let text = if html {
        timeline::html(&r)
    } else {
        timeline::markdown(&r)
    };
    match out {
        Some(p) => {
            std::fs::write(&p, text).with_context(|| p.display().to_string())?;
            println!("wrote {}", p.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}
