//! `breakglass keygen`: a new ssh-ed25519 key pair for a custodian or commander.

use std::path::Path;

use anyhow::bail;
use zeroize::Zeroizing;

use breakglass_client::identity::Identity;

/// Writes `out` and `out.pub`, encrypted with a passphrase unless `no_passphrase`.
pub(crate) fn keygen(out: &Path, comment: &str, no_passphrase: bool) -> anyhow::Result<()> {
    let pass = if no_passphrase {
        None
    } else if let Ok(p) = std::env::var("BREAKGLASS_PASSPHRASE") {
        Some(Zeroizing::new(p))
    } else {
        let a = Zeroizing::new(rpassword::prompt_password("new passphrase: ")?);
        let b = Zeroizing::new(rpassword::prompt_password("again: ")?);
        if a != b {
            bail!("the passphrases differ; nothing written");
        }
        Some(a)
    };
    let id = Identity::generate();
    id.write(out, comment, pass.as_ref().map(|p| p.as_str()))?;
    println!("wrote {} and {}.pub", out.display(), out.display());
    println!("{} {comment}", id.ssh_public());
    Ok(())
}
