//! `breakglass keygen`: a new ssh-ed25519 key pair for a custodian or commander.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context};
use zeroize::Zeroizing;

use breakglass_client::identity::Identity;

/// Writes `out` and `out.pub`, encrypted with a passphrase unless `no_passphrase`.
///
/// Everything that can fail without a passphrase is checked before one is
/// asked: the directory is made (0700) and an existing key is refused first.
pub(crate) fn keygen(out: &Path, comment: &str, no_passphrase: bool) -> anyhow::Result<()> {
    prepare_dir(out)?;
    if out.exists() {
        bail!(
            "{} already exists; nothing written (choose another --out, or move the old key away)",
            out.display()
        );
    }
    let pass = if no_passphrase {
        None
    } else if let Ok(p) = std::env::var("BREAKGLASS_PASSPHRASE") {
        if p.is_empty() {
            bail!(
                "BREAKGLASS_PASSPHRASE is empty: pass --no-passphrase to write the key unencrypted"
            );
        }
        Some(Zeroizing::new(p))
    } else {
        ask_passphrase()?
    };
    let id = Identity::generate();
    id.write(out, comment, pass.as_ref().map(|p| p.as_str()))?;
    println!("wrote {} and {}.pub", out.display(), out.display());
    println!("{} {comment}", id.ssh_public());
    Ok(())
}

/// Creates the parent directory of `out` (mode 0700) when it does not exist.
fn prepare_dir(out: &Path) -> anyhow::Result<()> {
    let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))
}

/// Asks the passphrase twice; an empty one only after typing `yes`.
fn ask_passphrase() -> anyhow::Result<Option<Zeroizing<String>>> {
    let a = Zeroizing::new(rpassword::prompt_password("new passphrase: ")?);
    let b = Zeroizing::new(rpassword::prompt_password("again: ")?);
    if a != b {
        bail!("the passphrases differ; nothing written");
    }
    if !a.is_empty() {
        return Ok(Some(a));
    }
    if !std::io::stdin().is_terminal() {
        bail!("empty passphrase refused: pass --no-passphrase to write the key unencrypted");
    }
    eprint!("an empty passphrase leaves the key readable by anyone who gets the file; type `yes` to write it unencrypted: ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() != "yes" {
        bail!("not confirmed; nothing written");
    }
    Ok(None)
}
