//! OpenSSH signatures (SSHSIG, `PROTOCOL.sshsig`) over breakglass's canonical
//! payloads, namespace [`NAMESPACE`]: the format `ssh-keygen -Y sign`,
//! ssh-agent and FIDO2 security keys produce, verifiable with
//! `ssh-keygen -Y verify`. The daemon accepts them on every signed call from
//! the registered ssh-ed25519 key (`engine::auth::verify`); security keys are
//! checked here but not yet registered in the policy (issue 13).
//!
//! What a security-key signature proves: the authenticator holding the
//! registered credential signed this payload, for the registered application,
//! with user presence (a touch) and, if its flag says so, user verification
//! (PIN or biometrics), at the counter it reports. It does not prove anything
//! about the share file, which stays encrypted to the custodian's ssh-ed25519
//! key: a custodian with both holds two factors.
//!
//! Ed25519 signatures (file keys and `sk-ssh-ed25519`) are checked with
//! `verify_strict`, as every other signature here.

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use ssh_key::public::KeyData;
use ssh_key::{PublicKey, SshSig};

/// The SSHSIG namespace of every breakglass signature.
pub const NAMESPACE: &str = "breakglass";

/// FIDO flag: the user was present (touched the key).
pub const FLAG_USER_PRESENT: u8 = 0x01;
/// FIDO flag: the user was verified (PIN or biometrics).
pub const FLAG_USER_VERIFIED: u8 = 0x04;

/// The kind of key that signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `ssh-ed25519` (a key file or an agent).
    Ed25519,
    /// `sk-ssh-ed25519@openssh.com` (a FIDO2 security key).
    SkEd25519,
    /// `sk-ecdsa-sha2-nistp256@openssh.com` (a FIDO2 security key).
    SkEcdsaP256,
}

impl KeyKind {
    /// The OpenSSH algorithm name.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Ed25519 => "ssh-ed25519",
            KeyKind::SkEd25519 => "sk-ssh-ed25519@openssh.com",
            KeyKind::SkEcdsaP256 => "sk-ecdsa-sha2-nistp256@openssh.com",
        }
    }
}

/// What a security key reported with its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkReport {
    /// The FIDO flags byte.
    pub flags: u8,
    /// The signature counter.
    pub counter: u32,
    /// The application the credential was made for (registered with the key).
    pub application: String,
}

impl SkReport {
    /// User presence (always required by [`verify`]).
    pub fn user_present(&self) -> bool {
        self.flags & FLAG_USER_PRESENT != 0
    }

    /// User verification.
    pub fn user_verified(&self) -> bool {
        self.flags & FLAG_USER_VERIFIED != 0
    }
}

/// A signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The key kind.
    pub kind: KeyKind,
    /// For a security key: its flags, counter and application.
    pub sk: Option<SkReport>,
}

/// Why an SSHSIG signature does not prove a payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigError {
    /// Not an SSHSIG signature.
    #[error("not an OpenSSH signature (SSHSIG): {0}")]
    Malformed(String),
    /// Another namespace than [`NAMESPACE`].
    #[error("the signature's namespace is {got:?}, not \"breakglass\": it was made for another purpose (sign with `-n breakglass`)")]
    Namespace {
        /// The namespace in the signature.
        got: String,
    },
    /// Made by another key than the registered one.
    #[error("the signature was made with another key than the one registered ({registered})")]
    OtherKey {
        /// The registered key's algorithm.
        registered: String,
    },
    /// A key kind breakglass does not accept.
    #[error("{0} keys are not accepted: use ssh-ed25519, sk-ssh-ed25519@openssh.com or sk-ecdsa-sha2-nistp256@openssh.com")]
    Unsupported(String),
    /// The signature does not verify.
    #[error("the signature does not verify: it was made over other bytes, or altered")]
    BadSignature,
    /// A security-key signature without user presence.
    #[error("the security key did not report user presence (no touch): a security-key signature needs a touch")]
    NoUserPresence,
}

/// The armor line that starts an SSHSIG signature.
pub const ARMOR: &str = "-----BEGIN SSH SIGNATURE-----";

/// Whether `b` is an armored SSHSIG signature (leading whitespace allowed).
pub fn is_armored(b: &[u8]) -> bool {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    b[start..].starts_with(ARMOR.as_bytes())
}

/// Reads an SSHSIG signature, PEM-armored (`-----BEGIN SSH SIGNATURE-----`).
pub fn parse(armored: &[u8]) -> Result<SshSig, SigError> {
    SshSig::from_pem(armored).map_err(|e| SigError::Malformed(e.to_string()))
}

/// Checks `sig` over `payload` against the `registered` key: the namespace,
/// the key, the signature, and for a security key user presence. What the
/// policy requires beyond that (user verification, an increasing counter)
/// is the caller's to check with the returned [`Verified`].
pub fn verify(registered: &PublicKey, payload: &[u8], sig: &SshSig) -> Result<Verified, SigError> {
    if sig.namespace() != NAMESPACE {
        return Err(SigError::Namespace {
            got: sig.namespace().to_string(),
        });
    }
    if registered.key_data() != sig.public_key() {
        return Err(SigError::OtherKey {
            registered: registered.algorithm().as_str().to_string(),
        });
    }
    let signed = SshSig::signed_data(NAMESPACE, sig.hash_alg(), payload)
        .map_err(|e| SigError::Malformed(e.to_string()))?;
    let bytes = sig.signature_bytes();
    match registered.key_data() {
        KeyData::Ed25519(k) => {
            ed25519(&k.0, &signed, bytes)?;
            Ok(Verified {
                kind: KeyKind::Ed25519,
                sk: None,
            })
        }
        KeyData::SkEd25519(k) => {
            let (raw, report) = sk_trailer(bytes, k.application())?;
            ed25519(&k.public_key().0, &sk_signed_data(&report, &signed), raw)?;
            Ok(Verified {
                kind: KeyKind::SkEd25519,
                sk: Some(present(report)?),
            })
        }
        KeyData::SkEcdsaSha2NistP256(k) => {
            let (_, report) = sk_trailer(bytes, k.application())?;
            // OpenSSH's encoding of the ECDSA signature (r, s as mpints) and
            // the P-256 check are ssh-key's.
            registered
                .verify(NAMESPACE, payload, sig)
                .map_err(|_| SigError::BadSignature)?;
            Ok(Verified {
                kind: KeyKind::SkEcdsaP256,
                sk: Some(present(report)?),
            })
        }
        other => Err(SigError::Unsupported(
            other.algorithm().as_str().to_string(),
        )),
    }
}

fn ed25519(key: &[u8; 32], msg: &[u8], sig: &[u8]) -> Result<(), SigError> {
    let key = VerifyingKey::from_bytes(key).map_err(|e| SigError::Malformed(e.to_string()))?;
    let sig = Signature::from_slice(sig).map_err(|_| SigError::BadSignature)?;
    key.verify_strict(msg, &sig)
        .map_err(|_| SigError::BadSignature)
}

/// Splits a security-key signature into the signature and its flags and
/// counter (the last 5 bytes, `PROTOCOL.u2f`).
fn sk_trailer<'a>(bytes: &'a [u8], application: &str) -> Result<(&'a [u8], SkReport), SigError> {
    let at = bytes.len().checked_sub(5).ok_or_else(|| {
        SigError::Malformed("a security-key signature ends with flags and a counter".into())
    })?;
    let (raw, trailer) = bytes.split_at(at);
    Ok((
        raw,
        SkReport {
            flags: trailer[0],
            counter: u32::from_be_bytes([trailer[1], trailer[2], trailer[3], trailer[4]]),
            application: application.to_string(),
        },
    ))
}

/// What a security key signs (`PROTOCOL.u2f`): SHA-256 of the application,
/// the flags, the counter, SHA-256 of the message.
pub fn sk_signed_data(report: &SkReport, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + 5 + 32);
    out.extend_from_slice(&Sha256::digest(report.application.as_bytes()));
    out.push(report.flags);
    out.extend_from_slice(&report.counter.to_be_bytes());
    out.extend_from_slice(&Sha256::digest(message));
    out
}

fn present(report: SkReport) -> Result<SkReport, SigError> {
    if report.user_present() {
        Ok(report)
    } else {
        Err(SigError::NoUserPresence)
    }
}

#[cfg(test)]
mod tests;
