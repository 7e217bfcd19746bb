//! Minting OpenSSH user certificates with the authority A acting as an SSH CA
//! (`TrustedUserCAKeys`). What verifiers and the CLI need (verification, key
//! ids, serials, KRLs) lives in `breakglass_formats::sshcert`.

use ssh_key::certificate::{Builder, CertType};
use ssh_key::private::Ed25519Keypair;

use super::authority::AuthorityKey;
use crate::error::{Error, Result};
use breakglass_formats::sshcert::parse_subject_key;

/// What goes into one certificate.
#[derive(Debug, Clone)]
pub struct SshGrant<'a> {
    /// The requester's OpenSSH public key.
    pub public_key: &'a str,
    /// Principals from the scope.
    pub principals: &'a [String],
    /// Extensions from the scope.
    pub extensions: &'a [String],
    /// `breakglass:<request>:<requester>`.
    pub key_id: String,
    /// Serial (never 0: OpenSSH cannot revoke serial 0).
    pub serial: u64,
    /// `valid_after` (now minus the clock skew allowance).
    pub valid_after: u64,
    /// `valid_before` (the credential's expiry).
    pub valid_before: u64,
}

/// Signs the certificate with A. Returns the `…-cert.pub` line.
pub fn mint(
    a: &AuthorityKey,
    mut rng: &mut dyn rand_core::CryptoRngCore,
    g: &SshGrant<'_>,
) -> Result<String> {
    let subject = parse_subject_key(g.public_key).map_err(|e| Error::SshKey(e.to_string()))?;
    let err =
        |e: ssh_key::Error| Error::Internal(format!("building the SSH certificate failed: {e}"));
    let mut b = Builder::new_with_random_nonce(
        &mut rng,
        subject.key_data().clone(),
        g.valid_after,
        g.valid_before,
    )
    .map_err(err)?;
    b.serial(g.serial).map_err(err)?;
    b.cert_type(CertType::User).map_err(err)?;
    b.key_id(g.key_id.clone()).map_err(err)?;
    for p in g.principals {
        b.valid_principal(p.clone()).map_err(err)?;
    }
    for e in g.extensions {
        b.extension(e.clone(), "").map_err(err)?;
    }
    b.comment(g.key_id.clone()).map_err(err)?;
    // The CA key pair lives only for this call; ssh-key wipes its private half on drop.
    // Borrowed, not `to_bytes()`: that would leave an unwiped copy of the seed on the stack.
    let ca = ssh_key::PrivateKey::from(Ed25519Keypair::from_seed(a.signing().as_bytes()));
    let cert = b.sign(&ca).map_err(err)?;
    drop(ca);
    cert.to_openssh().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::secret::AuthoritySeed;
    use breakglass_formats::keys::AuthorityPublic;
    use breakglass_formats::sshcert::{key_id, serial_for, verify, CertError};
    use ssh_key::PublicKey;

    fn subject() -> String {
        let kp = Ed25519Keypair::from_seed(&[3u8; 32]);
        PublicKey::from(kp.public).to_openssh().unwrap()
    }

    /// Invariant 7: the certificate is valid from now - skew to the credential's expiry only;
    /// it names the scope's principals and the request; altered or foreign certificates fail.
    #[test]
    fn mint_and_verify() {
        let a = AuthorityKey::derive(&AuthoritySeed::generate());
        let pubkey = AuthorityPublic(a.public());
        let principals = vec!["root".to_string(), "ops".to_string()];
        let ext = vec!["permit-pty".to_string()];
        let line = mint(
            &a,
            &mut rand_core::OsRng,
            &SshGrant {
                public_key: &subject(),
                principals: &principals,
                extensions: &ext,
                key_id: key_id("req-1", "ic"),
                serial: serial_for("req-1"),
                valid_after: 1000,
                valid_before: 2000,
            },
        )
        .unwrap();
        assert!(line.starts_with("ssh-ed25519-cert-v01@openssh.com "));
        let info = verify(&pubkey, &line, 1500).unwrap();
        assert_eq!(info.key_id, "breakglass:req-1:ic");
        assert_eq!(info.principals, principals);
        assert_eq!(info.extensions, ext);
        assert_eq!((info.valid_after, info.valid_before), (1000, 2000));
        assert_eq!(
            verify(&pubkey, &line, 2000),
            Err(CertError::Expired {
                valid_before: 2000,
                now: 2000
            })
        );
        assert_eq!(
            verify(&pubkey, &line, 999),
            Err(CertError::NotYetValid {
                valid_after: 1000,
                now: 999
            })
        );
        let other = AuthorityPublic(AuthorityKey::derive(&AuthoritySeed::generate()).public());
        assert_eq!(verify(&other, &line, 1500), Err(CertError::Signature));
        // Flip one byte inside the signed blob.
        let mut parts: Vec<String> = line.split(' ').map(str::to_string).collect();
        let mut blob =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &parts[1]).unwrap();
        let i = blob.len() / 2;
        blob[i] ^= 1;
        parts[1] = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &blob);
        assert!(verify(&pubkey, &parts.join(" "), 1500).is_err());
        assert!(matches!(
            verify(&pubkey, "ssh-ed25519 AAAA", 1500),
            Err(CertError::Format(_))
        ));
    }
}
