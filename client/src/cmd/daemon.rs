//! `breakglass info` and `breakglass authority`: what the daemon says about itself.

use crate::cli::Conn;
use crate::cmd::conn::connect;
use crate::json::InfoJson;
use crate::output::print_info;

/// `breakglass info`, or with `json` the same as [`InfoJson`].
pub(crate) async fn info(conn: &Conn, json: bool) -> anyhow::Result<()> {
    let c = connect(conn).await?;
    if json {
        return crate::json::print(&InfoJson::from(c.info()));
    }
    print_info(c.info());
    Ok(())
}

/// `breakglass authority`: A as PASERK and as an OpenSSH line, or only one of them.
pub(crate) async fn authority(conn: &Conn, ssh: bool, paseto: bool) -> anyhow::Result<()> {
    let c = connect(conn).await?;
    let i = c.info();
    if ssh {
        println!("{}", i.authority_ssh);
    } else if paseto {
        println!("{}", i.authority_paserk);
    } else {
        println!("{}", i.authority_paserk);
        println!("{}", i.authority_ssh);
    }
    Ok(())
}
