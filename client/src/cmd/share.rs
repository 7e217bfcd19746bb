//! `breakglass share …`: a custodian approves a request with the share from
//! the ceremony, or checks that the share file still opens with their key.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

use breakglass_client::api::{state_name, Client};
use breakglass_client::identity::Identity;
use breakglass_proto::pb;

use crate::cli::{Conn, ShareCmd};
use crate::cmd::conn::{connect, load_identity};
use crate::output::{print_request, shown};

/// Runs one `share` subcommand; a refused confirmation is a failure exit with nothing sent.
pub(crate) async fn run(conn: &Conn, sc: ShareCmd) -> anyhow::Result<ExitCode> {
    let mut c = connect(conn).await?;
    let me = load_identity(conn)?;
    match sc {
        ShareCmd::Submit { id, share, yes } => submit(conn, &mut c, &me, &id, &share, yes).await,
        ShareCmd::Check { share } => {
            let f = c.read_share_file(&me, &share)?;
            // The share's x coordinate (its first byte) is public: it names the share.
            let x = f
                .share_bytes()
                .ok()
                .and_then(|b| b.first().map(|x| format!("{x:02x}")));
            println!(
                "ok: {} holds share {} of a {}-of-{} split for daemon {} (ceremony {})",
                f.custodian_id,
                x.as_deref().unwrap_or("?"),
                f.threshold,
                f.custodians,
                f.daemon_id,
                f.ceremony_id
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `share submit`: shows the request, asks (unless `yes`), then sends the share.
async fn submit(
    conn: &Conn,
    c: &mut Client,
    me: &Identity,
    id: &str,
    share: &Path,
    yes: bool,
) -> anyhow::Result<ExitCode> {
    let v = c.get(id).await?;
    print_request(&v);
    if v.state != pb::RequestState::Collecting as i32 {
        bail!(
            "request {id} is {}; there is nothing to approve",
            state_name(v.state)
        );
    }
    let file = c.read_share_file(me, share)?;
    if !yes
        && !confirm(&format!(
            "Approve emergency access for {} to {}?",
            shown(&v.requester),
            shown(&v.scope)
        ))?
    {
        println!("not approved; nothing sent");
        return Ok(ExitCode::FAILURE);
    }
    let p = c.submit(me, conn.as_id.as_deref(), &v, &file).await?;
    drop(file);
    println!("share accepted: {}/{}", p.accepted, p.threshold);
    if p.unlocked {
        println!(
            "quorum reached: the credential was minted for {}",
            shown(&v.requester)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks a yes/no question on the terminal; refuses when standard input is not one.
fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("not a terminal, so cannot ask for confirmation: read the request above and pass --yes to approve");
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}
