//! `breakglass info` and `breakglass authority`: what the daemon says about itself.

use crate::cli::Conn;
use crate::cmd::conn::connect;
use crate::output::print_info;

/// `breakglass info`.
pub(crate) async fn info(conn: &Conn) -> anyhow::Result<()> {
    let c = connect(conn).await?;
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
