//! The caller's key: an OpenSSH ed25519 private key (passphrase-protected or
//! not). It signs calls (ed25519) and decrypts share files and credentials
//! (age's ssh-ed25519 recipient type). The private key is wiped on drop.

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use rand_core::{OsRng, RngCore};
use ssh_key::private::{Ed25519Keypair, KeypairData};
use ssh_key::{LineEnding, PrivateKey};
use zeroize::Zeroizing;

use crate::error::{ClientError, Result};
use crate::signer::Signer;

/// A loaded key.
pub struct Identity {
    signing: SigningKey,
    age: age::ssh::Identity,
    path: PathBuf,
    signer: Signer,
}

/// Where a passphrase comes from, when the key needs one.
pub type PassphraseFn<'a> = &'a dyn Fn(&Path) -> std::io::Result<Zeroizing<String>>;

impl Identity {
    /// Checks, without asking a passphrase, that `path` holds an OpenSSH private
    /// key (not its `.pub`), so a command can refuse a wrong `--key` before it
    /// connects or asks anything.
    pub fn check_file(path: &Path) -> Result<()> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| ClientError::Io {
            path: path.display().to_string(),
            source: e,
        })?);
        public_key_refusal(path, &text)?;
        PrivateKey::from_openssh(text.as_bytes()).map_err(|e| ClientError::Key {
            path: path.display().to_string(),
            why: format!("not an OpenSSH private key: {e}"),
        })?;
        Ok(())
    }

    /// Loads an OpenSSH ed25519 private key, asking `passphrase` if it is encrypted.
    pub fn load(path: &Path, passphrase: PassphraseFn<'_>) -> Result<Identity> {
        let err = |why: String| ClientError::Key {
            path: path.display().to_string(),
            why,
        };
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| ClientError::Io {
            path: path.display().to_string(),
            source: e,
        })?);
        public_key_refusal(path, &text)?;
        let mut key = PrivateKey::from_openssh(text.as_bytes())
            .map_err(|e| err(format!("not an OpenSSH private key: {e}")))?;
        if key.is_encrypted() {
            let pass =
                passphrase(path).map_err(|e| err(format!("cannot read the passphrase: {e}")))?;
            key = key
                .decrypt(pass.as_bytes())
                .map_err(|_| err("wrong passphrase".into()))?;
        }
        Identity::from_private(key, path).map_err(err)
    }

    fn from_private(key: PrivateKey, path: &Path) -> Result<Identity, String> {
        let kp = match key.key_data() {
            KeypairData::Ed25519(kp) => kp,
            other => {
                return Err(format!(
                    "is a {} key; breakglass needs an ssh-ed25519 key (ssh-keygen -t ed25519, or `breakglass keygen`)",
                    other.algorithm().map(|a| a.to_string()).unwrap_or_else(|_| "unknown".into())
                ))
            }
        };
        let seed = Zeroizing::new(kp.private.to_bytes());
        let signing = SigningKey::from_bytes(&seed);
        if signing.verifying_key().to_bytes() != kp.public.0 {
            return Err("the private and public halves do not match".into());
        }
        let pem = key
            .to_openssh(LineEnding::LF)
            .map_err(|e| format!("cannot re-encode: {e}"))?;
        let age = age::ssh::Identity::from_buffer(pem.as_bytes(), None)
            .map_err(|e| format!("age cannot use this key: {e}"))?;
        Ok(Identity {
            signing,
            age,
            path: path.to_path_buf(),
            signer: Signer::File,
        })
    }

    /// A new random key (not written anywhere).
    pub fn generate() -> Identity {
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(seed.as_mut());
        let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
        // A freshly made ed25519 key always converts; see `from_private`.
        match Identity::from_private(key, Path::new("(generated)")) {
            Ok(i) => i,
            Err(e) => unreachable_key(&e),
        }
    }

    /// Writes the key as an OpenSSH private key (0600) and `PATH.pub`, encrypted if a passphrase is given.
    pub fn write(&self, path: &Path, comment: &str, passphrase: Option<&str>) -> Result<()> {
        let io = |e: std::io::Error| ClientError::Io {
            path: path.display().to_string(),
            source: e,
        };
        let mut key = PrivateKey::from(Ed25519Keypair::from_seed(self.signing.as_bytes()));
        key.set_comment(comment);
        if let Some(p) = passphrase {
            key = key.encrypt(&mut OsRng, p).map_err(|e| ClientError::Key {
                path: path.display().to_string(),
                why: format!("cannot encrypt: {e}"),
            })?;
        }
        let pem = key
            .to_openssh(LineEnding::LF)
            .map_err(|e| ClientError::Key {
                path: path.display().to_string(),
                why: e.to_string(),
            })?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        use std::io::Write;
        let mut f = opts.open(path).map_err(io)?;
        f.write_all(pem.as_bytes()).map_err(io)?;
        let pub_path = PathBuf::from(format!("{}.pub", path.display()));
        std::fs::write(&pub_path, format!("{} {comment}\n", self.ssh_public())).map_err(|e| {
            ClientError::Io {
                path: pub_path.display().to_string(),
                source: e,
            }
        })?;
        Ok(())
    }

    /// `ssh-ed25519 AAAA…` (no comment), as the policy holds it.
    pub fn ssh_public(&self) -> String {
        let kd = ssh_key::public::KeyData::Ed25519(ssh_key::public::Ed25519PublicKey(
            self.verifying_key().to_bytes(),
        ));
        ssh_key::PublicKey::new(kd, "")
            .to_openssh()
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// Signs a canonical payload from `breakglass_proto::signing` with the
    /// key file: the 64 raw ed25519 bytes (what clients written from the
    /// proto alone send; the CLI sends [`Identity::sign_call`]).
    pub fn sign(&self, payload: &[u8]) -> [u8; 64] {
        self.signing.sign(payload).to_bytes()
    }

    /// Signs a call's canonical payload as an OpenSSH signature (SSHSIG,
    /// namespace breakglass) with the configured [`Signer`]: the key file,
    /// ssh-agent, or a security key.
    pub fn sign_call(&self, payload: &[u8]) -> Result<Vec<u8>> {
        self.signer.sign(&self.signing, payload)
    }

    /// Where call signatures come from (default: the key file).
    pub fn set_signer(&mut self, signer: Signer) {
        self.signer = signer;
    }

    /// The age identity for decrypting share files and credentials.
    pub fn age(&self) -> &dyn age::Identity {
        &self.age
    }

    /// Where the key came from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// An error when `text` is a public key: `--key` needs the private half.
fn public_key_refusal(path: &Path, text: &str) -> Result<()> {
    if ssh_key::PublicKey::from_openssh(text.trim()).is_err() {
        return Ok(());
    }
    let shown = path.display().to_string();
    let private = shown
        .strip_suffix(".pub")
        .unwrap_or("the file without .pub");
    Err(ClientError::Key {
        path: shown.clone(),
        why: format!("is a public key; --key needs the private key ({private})"),
    })
}

#[cold]
fn unreachable_key(e: &str) -> ! {
    // Only reachable if ssh-key or age change how they treat ed25519 keys.
    #[allow(clippy::panic)]
    {
        panic!("a freshly generated ed25519 key could not be used: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_and_load_with_and_without_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::generate();
        let plain = dir.path().join("plain");
        id.write(&plain, "me@test", None).unwrap();
        let back = Identity::load(&plain, &|_| panic!("no passphrase needed")).unwrap();
        assert_eq!(back.verifying_key(), id.verifying_key());
        let enc = dir.path().join("enc");
        id.write(&enc, "me@test", Some("hunter2")).unwrap();
        let back = Identity::load(&enc, &|_| Ok(Zeroizing::new("hunter2".into()))).unwrap();
        assert_eq!(back.ssh_public(), id.ssh_public());
        let wrong = Identity::load(&enc, &|_| Ok(Zeroizing::new("nope".into())))
            .err()
            .unwrap()
            .to_string();
        assert!(wrong.contains("wrong passphrase"), "{wrong}");
        let pubtext = std::fs::read_to_string(dir.path().join("plain.pub")).unwrap();
        assert!(pubtext.starts_with(&id.ssh_public()));
        let public = Identity::load(&dir.path().join("plain.pub"), &|_| panic!("no passphrase"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            public.ends_with(&format!(
                "is a public key; --key needs the private key ({})",
                plain.display()
            )),
            "{public}"
        );
    }
}
