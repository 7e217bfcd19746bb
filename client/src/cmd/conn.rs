//! From the global flags to what a command needs: a verified connection to the
//! daemon (`--daemon`, `--ca` or `--tls-fingerprint`, mutual-TLS files) and the
//! caller's identity (`--key`, its passphrase, and where signatures come
//! from: `--sign-with`, `--signing-key`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use zeroize::Zeroizing;

use breakglass_client::api::Client;
use breakglass_client::connect::{ConnectOptions, Trust};
use breakglass_client::identity::Identity;
use breakglass_client::signer::Signer;

use crate::cli::Conn;

/// The passphrase of the key at `path`: `BREAKGLASS_PASSPHRASE`, or asked on the terminal.
fn passphrase(path: &Path) -> std::io::Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var("BREAKGLASS_PASSPHRASE") {
        return Ok(Zeroizing::new(p));
    }
    rpassword::prompt_password(format!("passphrase for {}: ", path.display())).map(Zeroizing::new)
}

/// `~/.ssh/id_ed25519`, the key used when `--key` is not given.
fn default_key() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ssh").join("id_ed25519"))
}

/// `~/.ssh/id_ed25519.pub`, the SSH key to certify when `--ssh-key` is not given.
pub(crate) fn default_ssh_pub() -> Option<PathBuf> {
    default_key().map(|k| k.with_file_name("id_ed25519.pub"))
}

/// The caller's key from `--key` (default `~/.ssh/id_ed25519`), decrypted.
pub(crate) fn load_identity(conn: &Conn) -> anyhow::Result<Identity> {
    let path = key_path(conn)?;
    let signer = Signer::from_flags(&conn.sign_with, conn.signing_key.as_deref(), &path)?;
    let mut me = Identity::load(&path, &passphrase)?;
    me.set_signer(signer);
    Ok(me)
}

/// Refuses a missing key or a public key before connecting or asking anything.
pub(crate) fn check_key(conn: &Conn) -> anyhow::Result<()> {
    let path = key_path(conn)?;
    Signer::from_flags(&conn.sign_with, conn.signing_key.as_deref(), &path)?;
    Ok(Identity::check_file(&path)?)
}

/// `--key`, or the default key when it exists; says how to give one otherwise.
fn key_path(conn: &Conn) -> anyhow::Result<PathBuf> {
    Ok(match &conn.key {
        Some(p) => p.clone(),
        None => match default_key() {
            Some(p) if p.is_file() => p,
            Some(p) => bail!(
                "no key: {} does not exist; give your key with --key PATH or BREAKGLASS_KEY (make one with `breakglass keygen --out PATH`)",
                p.display()
            ),
            None => bail!("no key: give it with --key PATH or BREAKGLASS_KEY ($HOME is not set, so there is no default)"),
        },
    })
}

/// Connects to `--daemon`, trusting exactly one of `--ca` and `--tls-fingerprint`.
pub(crate) async fn connect(conn: &Conn) -> anyhow::Result<Client> {
    let trust = match (&conn.ca, &conn.tls_fingerprint) {
        (Some(ca), None) => Trust::Ca(std::fs::read(ca).with_context(|| format!("--ca {}", ca.display()))?),
        (None, Some(fp)) => Trust::fingerprint(fp)?,
        (Some(_), Some(_)) => bail!("give --ca or --tls-fingerprint, not both"),
        (None, None) => bail!(
            "no way to trust the daemon: give --tls-fingerprint sha256:… (printed by `breakglassd serve`) or --ca FILE"
        ),
    };
    let client_cert = match (&conn.client_cert, &conn.client_key) {
        (Some(c), Some(k)) => Some((
            std::fs::read(c).with_context(|| format!("--client-cert {}", c.display()))?,
            Zeroizing::new(
                std::fs::read(k).with_context(|| format!("--client-key {}", k.display()))?,
            ),
        )),
        (None, None) => None,
        _ => bail!("give both --client-cert and --client-key, or neither"),
    };
    Ok(Client::connect(&ConnectOptions {
        addr: conn.daemon.clone(),
        trust,
        server_name: conn.tls_server_name.clone(),
        client_cert,
    })
    .await?)
}
