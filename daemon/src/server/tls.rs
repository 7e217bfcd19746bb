//! TLS material for the daemon: an operator-supplied certificate, or a
//! self-signed one made on first start and kept in `STATE/tls/`. Clients pin it
//! by its SHA-256 fingerprint (`--tls-fingerprint sha256:…`) or trust it as a CA (`--ca`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::ceremony::{create_private_dir, write_new_private};
use crate::error::{Error, Result};

/// PEM certificate chain and key.
pub struct TlsMaterial {
    /// Certificate chain PEM.
    pub cert_pem: Vec<u8>,
    /// Private key PEM.
    pub key_pem: zeroize::Zeroizing<Vec<u8>>,
    /// `sha256:<hex>` of the leaf certificate's DER.
    pub fingerprint: String,
    /// Where the certificate is.
    pub cert_path: PathBuf,
    /// True if made just now.
    pub created: bool,
}

/// `sha256:<hex>` of the first certificate in a PEM chain.
pub fn fingerprint(cert_pem: &[u8]) -> Result<String> {
    let mut rd = cert_pem;
    let first = rustls_pemfile::certs(&mut rd)
        .next()
        .ok_or_else(|| Error::invalid("tls certificate", "no CERTIFICATE block in the PEM file"))?
        .map_err(|e| Error::invalid("tls certificate", format!("unreadable PEM: {e}")))?;
    Ok(format!(
        "sha256:{}",
        hex::encode(Sha256::digest(first.as_ref()))
    ))
}

/// Parses the chain and key and builds a rustls server configuration from
/// them, so a damaged, foreign or mismatched key is refused before the daemon
/// writes anything (a bad key found only at the first handshake would have
/// already recorded `daemon_started` and cancelled collecting requests).
fn check(cert_pem: &[u8], key_pem: &[u8], cert_path: &Path, key_path: &Path) -> Result<()> {
    let bad_cert =
        |why: String| Error::invalid("tls certificate", format!("{}: {why}", cert_path.display()));
    let bad_key = |why: String| {
        Error::invalid(
            "tls key",
            format!(
                "{}: {why}; restore the key that belongs to {}, or (self-signed) delete both files to make a new pair",
                key_path.display(),
                cert_path.display()
            ),
        )
    };
    let certs = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad_cert(format!("unreadable PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad_cert("no CERTIFICATE block in the PEM file".into()));
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| bad_key(format!("unreadable PEM: {e}")))?
        .ok_or_else(|| bad_key("no PRIVATE KEY block in the PEM file".into()))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| bad_key(format!("not a usable private key ({e})")))?;
    let certified = rustls::sign::CertifiedKey::new(certs, signing);
    match certified.keys_match() {
        Ok(()) => Ok(()),
        // A key type rustls cannot compare is left to the handshake.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        Err(e) => Err(bad_key(format!(
            "it does not belong to the certificate ({e})"
        ))),
    }
}

/// Loads the configured certificate, or the self-signed one in `state_dir/tls`,
/// making it if absent, and checks that the key parses and belongs to the
/// certificate.
pub fn load_or_create(
    state_dir: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
    extra_names: &[String],
) -> Result<TlsMaterial> {
    let m = load_or_create_unchecked(state_dir, cert, key, extra_names)?;
    let key_path = match key {
        Some(k) => k.to_path_buf(),
        None => state_dir.join("tls").join("key.pem"),
    };
    check(&m.cert_pem, &m.key_pem, &m.cert_path, &key_path)?;
    Ok(m)
}

fn load_or_create_unchecked(
    state_dir: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
    extra_names: &[String],
) -> Result<TlsMaterial> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| Error::io(p, e));
    match (cert, key) {
        (Some(c), Some(k)) => {
            let cert_pem = read(c)?;
            Ok(TlsMaterial {
                fingerprint: fingerprint(&cert_pem)?,
                cert_pem,
                key_pem: zeroize::Zeroizing::new(read(k)?),
                cert_path: c.to_path_buf(),
                created: false,
            })
        }
        (None, None) => {
            let dir = state_dir.join("tls");
            let cert_path = dir.join("cert.pem");
            let key_path = dir.join("key.pem");
            match (cert_path.exists(), key_path.exists()) {
                (true, false) | (false, true) => {
                    let (have, missing) = if cert_path.exists() {
                        (&cert_path, &key_path)
                    } else {
                        (&key_path, &cert_path)
                    };
                    return Err(Error::StateCorrupt {
                        path: dir.clone(),
                        why: format!(
                            "{} is missing but {} is there: restore it, or delete both to make a new self-signed certificate (clients pinning the old fingerprint must then pin the new one)",
                            missing.display(),
                            have.display()
                        ),
                    });
                }
                _ => {}
            }
            if cert_path.exists() && key_path.exists() {
                let cert_pem = read(&cert_path)?;
                return Ok(TlsMaterial {
                    fingerprint: fingerprint(&cert_pem)?,
                    cert_pem,
                    key_pem: zeroize::Zeroizing::new(read(&key_path)?),
                    cert_path,
                    created: false,
                });
            }
            let mut names = vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "::1".to_string(),
            ];
            names.extend(extra_names.iter().cloned());
            let ck = rcgen::generate_simple_self_signed(names).map_err(|e| {
                Error::Internal(format!("making a self-signed certificate failed: {e}"))
            })?;
            let cert_pem = ck.cert.pem().into_bytes();
            let key_pem = zeroize::Zeroizing::new(ck.key_pair.serialize_pem().into_bytes());
            create_private_dir(&dir)?;
            write_new_private(&key_path, &key_pem)?;
            write_new_private(&cert_path, &cert_pem)?;
            Ok(TlsMaterial {
                fingerprint: fingerprint(&cert_pem)?,
                cert_pem,
                key_pem,
                cert_path,
                created: true,
            })
        }
        _ => Err(Error::invalid(
            "--tls-cert/--tls-key",
            "give both or neither",
        )),
    }
}
