//! OpenSSH user certificates issued by the authority A acting as an SSH CA
//! (`TrustedUserCAKeys`): the key to certify, the key id and serial a request
//! gets, offline verification, and OpenSSH KRLs (`RevokedKeys`) for revoked
//! certificates. Minting lives in the daemon, the only holder of A's private half.

use sha2::{Digest, Sha256};
use ssh_key::certificate::{CertType, Certificate};
use ssh_key::{HashAlg, PublicKey};

use crate::keys::AuthorityPublic;

/// Why the key to certify is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectKeyError {
    /// Not an OpenSSH public key line.
    #[error("not an OpenSSH public key (`ssh-ed25519 AAAA…`): {0}")]
    NotOpenSsh(String),
    /// A DSA key.
    #[error("DSA keys are not accepted; use ssh-ed25519")]
    Dsa,
    /// The key could not be written back.
    #[error("cannot re-encode: {0}")]
    Encode(String),
}

/// The certificate key id for a request.
pub fn key_id(request_id: &str, requester: &str) -> String {
    format!("breakglass:{request_id}:{requester}")
}

/// A stable, non-zero serial derived from the request id.
pub fn serial_for(request_id: &str) -> u64 {
    let h = Sha256::digest(request_id.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    u64::from_be_bytes(b).max(1)
}

/// Parses the key to certify: an OpenSSH public key line, not a certificate, not DSA.
pub fn parse_subject_key(line: &str) -> Result<PublicKey, SubjectKeyError> {
    let k = PublicKey::from_openssh(line.trim())
        .map_err(|e| SubjectKeyError::NotOpenSsh(e.to_string()))?;
    match k.algorithm() {
        ssh_key::Algorithm::Dsa => Err(SubjectKeyError::Dsa),
        _ => Ok(k),
    }
}

/// The key line without its comment, as it is bound into the request digest.
pub fn normalise_subject_key(line: &str) -> Result<String, SubjectKeyError> {
    let mut k = parse_subject_key(line)?;
    k.set_comment("");
    k.to_openssh()
        .map(|s| s.trim().to_string())
        .map_err(|e| SubjectKeyError::Encode(e.to_string()))
}

/// A certificate that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Key id.
    pub key_id: String,
    /// Serial.
    pub serial: u64,
    /// Principals.
    pub principals: Vec<String>,
    /// `valid_after`.
    pub valid_after: u64,
    /// `valid_before`.
    pub valid_before: u64,
    /// Extension names.
    pub extensions: Vec<String>,
}

/// Why a certificate did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// Not an OpenSSH certificate.
    #[error("not an OpenSSH certificate: {0}")]
    Format(String),
    /// Not a user certificate.
    #[error("this is a host certificate, not a user certificate")]
    NotUser,
    /// Signed by another CA, or altered.
    #[error("not signed by the authority key: it was altered or issued by another CA")]
    Signature,
    /// Used before `valid_after`.
    #[error("not valid yet: valid from {} (valid_after)", crate::time::when(*.valid_after, *.now))]
    NotYetValid {
        /// valid_after.
        valid_after: u64,
        /// now.
        now: u64,
    },
    /// Used after `valid_before`.
    #[error("expired at {}", crate::time::when(*.valid_before, *.now))]
    Expired {
        /// valid_before.
        valid_before: u64,
        /// now.
        now: u64,
    },
}

/// Verifies a certificate offline against A at `now`: CA, signature, then validity window.
pub fn verify(authority: &AuthorityPublic, line: &str, now: u64) -> Result<CertInfo, CertError> {
    let cert =
        Certificate::from_openssh(line.trim()).map_err(|e| CertError::Format(e.to_string()))?;
    if cert.cert_type() != CertType::User {
        return Err(CertError::NotUser);
    }
    let ca = ssh_key::public::KeyData::Ed25519(ssh_key::public::Ed25519PublicKey(
        authority.0.to_bytes(),
    ));
    if cert.signature_key() != &ca {
        return Err(CertError::Signature);
    }
    // Signature and CA first, at a time inside the window, so a forged certificate is
    // reported as forged rather than as expired.
    let fp = ca.fingerprint(HashAlg::Sha256);
    cert.validate_at(cert.valid_after(), [&fp])
        .map_err(|_| CertError::Signature)?;
    if now < cert.valid_after() {
        return Err(CertError::NotYetValid {
            valid_after: cert.valid_after(),
            now,
        });
    }
    if now >= cert.valid_before() {
        return Err(CertError::Expired {
            valid_before: cert.valid_before(),
            now,
        });
    }
    Ok(CertInfo {
        key_id: cert.key_id().to_string(),
        serial: cert.serial(),
        principals: cert.valid_principals().to_vec(),
        valid_after: cert.valid_after(),
        valid_before: cert.valid_before(),
        extensions: cert.extensions().keys().cloned().collect(),
    })
}

const KRL_MAGIC: u64 = 0x5353_484b_524c_0a00;
const KRL_FORMAT_VERSION: u32 = 1;
const KRL_SECTION_CERTIFICATES: u8 = 1;
const KRL_SECTION_CERT_SERIAL_LIST: u8 = 0x20;
const KRL_SECTION_CERT_KEY_ID: u8 = 0x23;

fn put_string(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(b);
}

/// An OpenSSH KRL (PROTOCOL.krl) revoking certificates by serial and by key id under CA A.
pub fn krl(
    authority: &AuthorityPublic,
    serials: &[u64],
    key_ids: &[String],
    version: u64,
    generated_at: u64,
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&KRL_MAGIC.to_be_bytes());
    out.extend_from_slice(&KRL_FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&generated_at.to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes()); // flags
    put_string(&mut out, b""); // reserved
    put_string(&mut out, b"breakglass revocations");
    let mut serials: Vec<u64> = serials.iter().copied().filter(|s| *s != 0).collect();
    serials.sort_unstable();
    serials.dedup();
    if serials.is_empty() && key_ids.is_empty() {
        return out;
    }
    let mut ca_blob = Vec::new();
    put_string(&mut ca_blob, b"ssh-ed25519");
    put_string(&mut ca_blob, authority.0.as_bytes());
    let mut section = Vec::new();
    put_string(&mut section, &ca_blob);
    put_string(&mut section, b""); // reserved
    if !serials.is_empty() {
        let mut list = Vec::new();
        for s in &serials {
            list.extend_from_slice(&s.to_be_bytes());
        }
        section.push(KRL_SECTION_CERT_SERIAL_LIST);
        put_string(&mut section, &list);
    }
    if !key_ids.is_empty() {
        let mut ids = Vec::new();
        for k in key_ids {
            put_string(&mut ids, k.as_bytes());
        }
        section.push(KRL_SECTION_CERT_KEY_ID);
        put_string(&mut section, &ids);
    }
    out.push(KRL_SECTION_CERTIFICATES);
    put_string(&mut out, &section);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::private::Ed25519Keypair;

    fn subject() -> String {
        let kp = Ed25519Keypair::from_seed(&[3u8; 32]);
        PublicKey::from(kp.public).to_openssh().unwrap_or_default()
    }

    fn authority() -> AuthorityPublic {
        AuthorityPublic(ed25519_dalek::SigningKey::from_bytes(&[6; 32]).verifying_key())
    }

    #[test]
    fn subject_key_checks() {
        let n = normalise_subject_key(&format!("{} me@host", subject())).unwrap_or_default();
        assert_eq!(n, subject().trim());
        assert!(!n.contains("me@host"));
        assert!(matches!(
            parse_subject_key("nope"),
            Err(SubjectKeyError::NotOpenSsh(_))
        ));
    }

    #[test]
    fn key_id_and_serial() {
        assert_eq!(key_id("req-1", "ic"), "breakglass:req-1:ic");
        assert_eq!(serial_for("req-1"), serial_for("req-1"));
        assert_ne!(serial_for("req-1"), serial_for("req-2"));
        assert_ne!(serial_for("req-1"), 0);
    }

    #[test]
    fn krl_layout() {
        let a = authority();
        let empty = krl(&a, &[], &[], 1, 5);
        assert_eq!(&empty[..8], &KRL_MAGIC.to_be_bytes());
        let k = krl(&a, &[9, 3, 0, 9], &["breakglass:req-1:ic".into()], 1, 5);
        assert!(k.len() > empty.len());
        assert_eq!(k[empty.len()], KRL_SECTION_CERTIFICATES);
        assert!(k.windows(8).any(|w| w == 3u64.to_be_bytes()));
    }

    #[test]
    fn foreign_or_garbage_certificates_fail() {
        assert!(matches!(
            verify(&authority(), "ssh-ed25519 AAAA", 1500),
            Err(CertError::Format(_))
        ));
    }
}
