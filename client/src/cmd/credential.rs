//! `breakglass credential …`: the requester fetches the credential of an
//! unlocked request; the requester or a custodian revokes it; anyone verifies
//! one offline against the authority key with `breakglass_formats::verify`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};

use breakglass_client::api::unix_now;
use breakglass_formats::keys::AuthorityPublic;
use breakglass_formats::revocation::RevocationListJson;
use breakglass_formats::{sshcert, verify};

use crate::cli::{Conn, CredentialCmd};
use crate::cmd::audit::parse_daemon_key;
use crate::cmd::conn::{connect, default_ssh_pub, load_identity};
use crate::output::{ago, shown};

/// Runs one `credential` subcommand.
pub(crate) async fn run(conn: &Conn, cc: CredentialCmd) -> anyhow::Result<()> {
    match cc {
        CredentialCmd::Fetch { id, out, ssh_key } => fetch(conn, &id, out, ssh_key).await,
        CredentialCmd::Revoke { id, reason } => {
            let mut c = connect(conn).await?;
            let me = load_identity(conn)?;
            let v = c.revoke(&me, conn.as_id.as_deref(), &id, &reason).await?;
            println!(
                "revoked the credential of {} (by {}: {})",
                v.id,
                shown(&v.revoked_by),
                shown(&v.revoke_reason)
            );
            println!("publish it: breakglass revocations --krl revoked.krl --json revoked.json");
            Ok(())
        }
        CredentialCmd::Verify {
            file,
            authority,
            revocations,
            daemon_key,
            json,
        } => {
            let r = verify_offline(
                &file,
                &authority,
                revocations.as_deref(),
                daemon_key.as_deref(),
                json,
            );
            if let (true, Err(e)) = (json, &r) {
                // Scripts read the verdict on stdout; the reason goes to stderr too.
                crate::json::print(&crate::json::CredentialVerifyJson {
                    error: Some(crate::output::error_text(e)),
                    revocations_checked: revocations.is_some(),
                    ..Default::default()
                })?;
            }
            r
        }
    }
}

/// `credential fetch`: the bundle to `out` (mode 0600) and the SSH certificate
/// beside the key it certifies, where ssh finds it.
async fn fetch(
    conn: &Conn,
    id: &str,
    out: Option<PathBuf>,
    ssh_key: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut c = connect(conn).await?;
    let me = load_identity(conn)?;
    let b = c.fetch(&me, conn.as_id.as_deref(), id).await?;
    let out = out.unwrap_or_else(|| PathBuf::from(format!("{id}.credential.json")));
    write_private(&out, &serde_json::to_vec_pretty(&b)?)?;
    println!(
        "credential for {} · scope {} · expires {}",
        shown(&b.requester),
        shown(&b.scope),
        ago(b.expires_at, unix_now())
    );
    println!("written to {} (mode 0600)", out.display());
    if let Some(cert) = &b.ssh_certificate {
        let beside = ssh_key
            .or_else(default_ssh_pub)
            .filter(|p| same_key(p, cert));
        let cert_path = match &beside {
            Some(p) => cert_path_for(p),
            None => out.with_file_name(format!("{id}-cert.pub")),
        };
        std::fs::write(&cert_path, format!("{cert}\n"))
            .with_context(|| cert_path.display().to_string())?;
        println!("ssh certificate written to {}", cert_path.display());
        let principals = shown(&b.principals.join(", "));
        match &beside {
            Some(p) => println!(
                "use it: ssh -i {} PRINCIPAL@HOST   (ssh picks up the certificate beside the key; principals: {principals})",
                p.display().to_string().trim_end_matches(".pub")
            ),
            None => println!(
                "use it: ssh -i YOUR_KEY -o CertificateFile={} PRINCIPAL@HOST   (principals: {principals})",
                cert_path.display()
            ),
        }
    }
    println!(
        "verify offline: breakglass credential verify {} --authority {}",
        out.display(),
        c.info().authority_paserk
    );
    Ok(())
}

/// `credential verify`: a bundle or bare token (`-`: standard input) against A,
/// and against a JSON revocation list when one is given: the list's signature
/// by D (and, with `daemon_key`, that D is that key) is checked before any
/// entry is believed.
fn verify_offline(
    file: &Path,
    authority: &str,
    revocations: Option<&Path>,
    daemon_key: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let text = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        s
    } else {
        std::fs::read_to_string(file).with_context(|| file.display().to_string())?
    };
    let a = AuthorityPublic::parse(authority)?;
    let list = match revocations {
        Some(p) => {
            let l: RevocationListJson =
                serde_json::from_slice(&std::fs::read(p).with_context(|| p.display().to_string())?)
                    .with_context(|| {
                        format!("{}: not a breakglass revocation list", p.display())
                    })?;
            let expected = daemon_key.map(parse_daemon_key).transpose()?;
            let l = l
                .verify(expected.as_ref())
                .map_err(|e| anyhow!("{}: refused: {e}", p.display()))?;
            Some(l)
        }
        None => None,
    };
    let artifact = verify::parse_artifact(&text)?;
    if json {
        let mut out = crate::json::CredentialVerifyJson {
            valid: true,
            revocations_checked: list.is_some(),
            ..Default::default()
        };
        for v in verify::verify_artifact_items(&a, &artifact, unix_now(), list.as_ref())? {
            match v {
                verify::Verified::Token(t) => out.token = Some((&t).into()),
                verify::Verified::Certificate(c) => out.ssh_certificate = Some((&c).into()),
                _ => {}
            }
        }
        return crate::json::print(&out);
    }
    let lines = verify::verify_artifact(&a, &artifact, unix_now(), list.as_ref())?;
    println!("valid: signed by the authority");
    for l in lines {
        println!("  {}", shown(&l));
    }
    Ok(())
}

/// Writes a file only its owner can read (the credential bundle).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
        .and_then(|mut f| f.write_all(bytes))
        .with_context(|| path.display().to_string())
}

/// `~/.ssh/id_ed25519.pub` → `~/.ssh/id_ed25519-cert.pub`, where ssh looks for it.
fn cert_path_for(pub_path: &Path) -> PathBuf {
    let s = pub_path.display().to_string();
    PathBuf::from(format!("{}-cert.pub", s.strip_suffix(".pub").unwrap_or(&s)))
}

/// Whether the public key file at `pub_path` is the key `cert_line` certifies.
fn same_key(pub_path: &Path, cert_line: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(pub_path) else {
        return false;
    };
    let (Ok(k), Ok(c)) = (
        sshcert::parse_subject_key(&text),
        ssh_key::Certificate::from_openssh(cert_line),
    ) else {
        return false;
    };
    k.key_data() == c.public_key()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_goes_beside_the_key() {
        assert_eq!(
            cert_path_for(Path::new("/h/.ssh/id_ed25519.pub")),
            PathBuf::from("/h/.ssh/id_ed25519-cert.pub")
        );
        assert_eq!(
            cert_path_for(Path::new("key")),
            PathBuf::from("key-cert.pub")
        );
    }
}
