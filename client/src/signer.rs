//! Where a call's signature comes from (issue 13). Every signature the CLI
//! sends is an OpenSSH signature (SSHSIG, namespace `breakglass`, the
//! canonical payload as the message), whatever made it, so `ssh-keygen -Y
//! verify` checks any of them:
//! - [`Signer::File`]: the `--key` file, signed here (today's key, in
//!   OpenSSH's format);
//! - [`Signer::Agent`]: ssh-agent (`SSH_AUTH_SOCK`), selecting the key by its
//!   public key, through `ssh-keygen -Y sign -U`; the agent may hold an
//!   ssh-ed25519 key or a security key;
//! - [`Signer::SecurityKey`]: a FIDO2 security-key handle file (made by
//!   `ssh-keygen -t ed25519-sk`), through `ssh-keygen -Y sign`, which talks to
//!   the authenticator and asks for the touch and the PIN.
//!
//! The daemon decides what it accepts from whom (the policy's
//! `signing_keys` and `require_hardware`); the CLI only makes the signature.
//! A security key proves a touch (and a PIN where made with
//! `-O verify-required`) on this approval; the share file still opens only
//! with the `--key` file, so a custodian with both holds two factors.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ed25519_dalek::{Signer as _, SigningKey};
use ssh_key::public::{Ed25519PublicKey, KeyData};
use ssh_key::{Algorithm, HashAlg, LineEnding, PublicKey, SshSig};

use crate::error::{ClientError, Result};

/// The SSHSIG namespace of every breakglass signature.
pub const NAMESPACE: &str = "breakglass";

/// Where signatures come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Signer {
    /// The `--key` file.
    #[default]
    File,
    /// ssh-agent, holding the key whose public half is at this path.
    Agent {
        /// The key's `.pub` file.
        public: PathBuf,
    },
    /// A security-key handle file, signed through `ssh-keygen -Y sign`.
    SecurityKey {
        /// The handle (the private-key file `ssh-keygen -t ed25519-sk` wrote).
        handle: PathBuf,
    },
}

impl Signer {
    /// From `--sign-with` (`key`, `agent`, `security-key`) and
    /// `--signing-key`; `key_file` is `--key`, whose `.pub` is the agent's
    /// default key.
    pub fn from_flags(mode: &str, signing_key: Option<&Path>, key_file: &Path) -> Result<Signer> {
        let need = |what: &str| ClientError::Key {
            path: "--signing-key".into(),
            why: format!("is needed with --sign-with {mode}: {what}"),
        };
        match mode {
            "key" | "file" => match signing_key {
                None => Ok(Signer::File),
                Some(p) => Err(ClientError::Key {
                    path: p.display().to_string(),
                    why: "--signing-key is for --sign-with agent or security-key; with the key file, --key signs".into(),
                }),
            },
            "agent" => {
                let public = signing_key
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from(format!("{}.pub", key_file.display())));
                public_key(&public)?;
                Ok(Signer::Agent { public })
            }
            "security-key" | "sk" => {
                let handle = signing_key
                    .ok_or_else(|| need("the security-key handle file (e.g. ~/.ssh/id_ed25519_sk)"))?
                    .to_path_buf();
                if !handle.is_file() {
                    return Err(ClientError::Key {
                        path: handle.display().to_string(),
                        why: "no such file: give the handle file ssh-keygen -t ed25519-sk wrote (the private half, not .pub)".into(),
                    });
                }
                Ok(Signer::SecurityKey { handle })
            }
            other => Err(ClientError::Key {
                path: "--sign-with".into(),
                why: format!("{other:?} is not one of key, agent, security-key"),
            }),
        }
    }

    /// Signs `payload` as an armored SSHSIG; `file_key` signs for
    /// [`Signer::File`].
    pub fn sign(&self, file_key: &SigningKey, payload: &[u8]) -> Result<Vec<u8>> {
        match self {
            Signer::File => sign_file(file_key, payload),
            Signer::Agent { public } => {
                let key = public_key(public)?;
                if is_security_key(&key) {
                    eprintln!(
                        "touch your security key ({}, through ssh-agent)",
                        key.fingerprint(HashAlg::Sha256)
                    );
                }
                keygen_sign(public, true, payload)
            }
            Signer::SecurityKey { handle } => {
                eprintln!(
                    "touch your security key ({}); enter its PIN if asked",
                    handle.display()
                );
                keygen_sign(handle, false, payload)
            }
        }
    }
}

/// An SSHSIG over `payload` by the ed25519 key file, made here.
fn sign_file(key: &SigningKey, payload: &[u8]) -> Result<Vec<u8>> {
    let encode = |e: ssh_key::Error| ClientError::Key {
        path: "(signature)".into(),
        why: format!("cannot encode the OpenSSH signature: {e}"),
    };
    let signed = SshSig::signed_data(NAMESPACE, HashAlg::Sha512, payload).map_err(encode)?;
    let raw = key.sign(&signed).to_bytes();
    let sig = ssh_key::Signature::new(Algorithm::Ed25519, raw.to_vec()).map_err(encode)?;
    let public = KeyData::Ed25519(Ed25519PublicKey(key.verifying_key().to_bytes()));
    let sshsig = SshSig::new(public, NAMESPACE, HashAlg::Sha512, sig).map_err(encode)?;
    Ok(sshsig.to_pem(LineEnding::LF).map_err(encode)?.into_bytes())
}

fn public_key(path: &Path) -> Result<PublicKey> {
    PublicKey::read_openssh_file(path).map_err(|e| ClientError::Key {
        path: path.display().to_string(),
        why: format!("not an OpenSSH public key (the agent's key is chosen by its .pub file): {e}"),
    })
}

fn is_security_key(k: &PublicKey) -> bool {
    k.algorithm().as_str().starts_with("sk-")
}

/// `ssh-keygen`, or `BREAKGLASS_SSH_KEYGEN`.
fn keygen() -> PathBuf {
    std::env::var_os("BREAKGLASS_SSH_KEYGEN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("ssh-keygen"))
}

/// `ssh-keygen -Y sign -n breakglass -f KEY [-U]` with `payload` on stdin;
/// the signature comes back on stdout. Its prompts (touch, PIN) reach the
/// terminal through stderr and /dev/tty.
fn keygen_sign(key: &Path, agent: bool, payload: &[u8]) -> Result<Vec<u8>> {
    let bin = keygen();
    let fail = |why: String| ClientError::Key {
        path: key.display().to_string(),
        why,
    };
    let mut cmd = Command::new(&bin);
    cmd.args(["-Y", "sign", "-n", NAMESPACE]);
    if agent {
        cmd.arg("-U");
    }
    let mut child = cmd
        .arg("-f")
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot run {} (OpenSSH's ssh-keygen signs for agents and security keys; install openssh-client or set BREAKGLASS_SSH_KEYGEN): {e}",
                bin.display()
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(payload)
            .map_err(|e| fail(format!("cannot give ssh-keygen the message: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("ssh-keygen did not finish: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let hint = if agent {
            " (is SSH_AUTH_SOCK set, and does the agent hold this key? `ssh-add -l` lists them)"
        } else {
            " (is the security key plugged in? was it touched in time?)"
        };
        return Err(fail(format!(
            "ssh-keygen -Y sign failed{hint}: {}",
            stderr.trim()
        )));
    }
    // Prompts and notices ssh-keygen wrote go on to the person.
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        eprintln!("ssh-keygen: {line}");
    }
    if !breakglass_formats::sshsig::is_armored(&out.stdout) {
        return Err(fail("ssh-keygen -Y sign wrote no OpenSSH signature".into()));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key file's signature is an SSHSIG in the breakglass namespace that
    /// verifies over the payload (and no other).
    #[test]
    fn file_key_signs_sshsig() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let pem = Signer::File.sign(&key, b"payload").unwrap();
        let sig = breakglass_formats::sshsig::parse(&pem).unwrap();
        let public = PublicKey::new(
            KeyData::Ed25519(Ed25519PublicKey(key.verifying_key().to_bytes())),
            "",
        );
        breakglass_formats::sshsig::verify(&public, b"payload", &sig).unwrap();
        assert!(breakglass_formats::sshsig::verify(&public, b"other", &sig).is_err());
    }

    #[test]
    fn flags_are_checked() {
        let key = Path::new("/nonexistent/id_ed25519");
        assert_eq!(Signer::from_flags("key", None, key).unwrap(), Signer::File);
        let e = Signer::from_flags("security-key", None, key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is needed with --sign-with security-key"), "{e}");
        let e = Signer::from_flags("agent", None, key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/id_ed25519.pub"), "{e}");
        let e = Signer::from_flags("hsm", None, key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not one of key, agent, security-key"), "{e}");
    }
}
