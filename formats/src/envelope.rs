//! age envelopes to ssh-ed25519 keys: custodians' share files and the
//! requester's credential. The people involved already hold these keys.

use std::io::Read;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Why an envelope could not be made or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The recipient is not an `ssh-ed25519 …` line age accepts.
    #[error("recipient {recipient:?} is not an age ssh recipient: {why}")]
    Recipient {
        /// What was given.
        recipient: String,
        /// age's words.
        why: String,
    },
    /// age could not encrypt.
    #[error("age encryption failed: {0}")]
    Encrypt(String),
    /// The bytes are not an age file.
    #[error("not an age file: {0}")]
    NotAge(String),
    /// The identity given is not a recipient of the file.
    #[error("cannot decrypt with this key: {0}")]
    WrongKey(String),
    /// The payload did not decrypt (truncated or altered).
    #[error("decryption failed: {0}")]
    Decrypt(String),
}

/// Why a decrypted share file is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShareFileError {
    /// Not the JSON of a share file.
    #[error("not a breakglass share file: {0}")]
    NotShareFile(String),
    /// Another format version.
    #[error("share file format {found:?}, expected {SHARE_FILE_FORMAT:?}")]
    Format {
        /// The format tag found.
        found: String,
    },
    /// The share has the wrong length.
    #[error("share is {found} hex digits, expected {expected}")]
    Length {
        /// Hex digits found.
        found: usize,
        /// Hex digits expected.
        expected: usize,
    },
    /// The share is not hex.
    #[error("share is not hex: {0}")]
    NotHex(String),
}

/// Format tag of a share file's plaintext.
pub const SHARE_FILE_FORMAT: &str = "breakglass-share/v1";

/// Encrypts `plaintext` to an `ssh-ed25519 …` public key, ASCII-armored.
pub fn encrypt_to_ssh(recipient: &str, plaintext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let r: age::ssh::Recipient = recipient.parse().map_err(|e| EnvelopeError::Recipient {
        recipient: recipient.to_string(),
        why: format!("{e:?}"),
    })?;
    age::encrypt_and_armor(&r, plaintext)
        .map(String::into_bytes)
        .map_err(|e| EnvelopeError::Encrypt(e.to_string()))
}

/// Decrypts an age envelope with an identity; the plaintext is wiped on drop.
pub fn decrypt(
    identity: &dyn age::Identity,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let decryptor = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(ciphertext))
        .map_err(|e| EnvelopeError::NotAge(e.to_string()))?;
    let mut reader = decryptor
        .decrypt(std::iter::once(identity))
        .map_err(|e| EnvelopeError::WrongKey(e.to_string()))?;
    // The ciphertext is longer than the plaintext, so this buffer never grows:
    // a growing Vec would free unwiped partial copies of the plaintext.
    let mut out = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    reader
        .read_to_end(&mut out)
        .map_err(|e| EnvelopeError::Decrypt(e.to_string()))?;
    Ok(out)
}

/// The recipients an age file names in its header, read without any key:
/// `(stanza type, first argument)`, e.g. `("ssh-ed25519", tag)`. Lets a
/// custodian's CLI tell a wrong file from a right one before asking for a
/// passphrase. Only the header is read; nothing is decrypted.
pub fn recipients(ciphertext: &[u8]) -> Result<Vec<(String, String)>, EnvelopeError> {
    let not_age = |why: &str| EnvelopeError::NotAge(why.to_string());
    let mut bytes = Vec::new();
    age::armor::ArmoredReader::new(ciphertext)
        .read_to_end(&mut bytes)
        .map_err(|e| EnvelopeError::NotAge(e.to_string()))?;
    let mut lines = bytes.split(|b| *b == b'\n');
    if lines.next() != Some(b"age-encryption.org/v1".as_slice()) {
        return Err(not_age("no age-encryption.org/v1 header"));
    }
    let mut out = Vec::new();
    for line in lines {
        if line.starts_with(b"---") {
            return Ok(out);
        }
        if let Some(stanza) = line.strip_prefix(b"-> ") {
            let text = std::str::from_utf8(stanza).map_err(|_| not_age("header is not text"))?;
            let mut args = text.split(' ');
            let kind = args.next().unwrap_or_default().to_string();
            let first = args.next().unwrap_or_default().to_string();
            out.push((kind, first));
        }
    }
    Err(not_age("the header does not end"))
}

/// The tag age's `ssh-ed25519` stanza carries for this public key: the first 4
/// bytes of SHA-256 of its SSH encoding, in unpadded base64.
pub fn ssh_ed25519_tag(public_line: &str) -> Result<String, EnvelopeError> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let bad = |why: &str| EnvelopeError::Recipient {
        recipient: public_line.to_string(),
        why: why.to_string(),
    };
    let mut parts = public_line.split_whitespace();
    if parts.next() != Some("ssh-ed25519") {
        return Err(bad("not an ssh-ed25519 key"));
    }
    let blob = base64::engine::general_purpose::STANDARD
        .decode(parts.next().unwrap_or_default())
        .map_err(|_| bad("the key is not base64"))?;
    let h = sha2::Sha256::digest(&blob);
    Ok(base64::engine::general_purpose::STANDARD_NO_PAD.encode(&h[..4]))
}

/// A custodian's share file, as encrypted to their key. Wiped on drop.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct ShareFile {
    /// [`SHARE_FILE_FORMAT`].
    pub format: String,
    /// Daemon this share belongs to.
    pub daemon_id: String,
    /// Ceremony that made it.
    pub ceremony_id: String,
    /// Custodian it was made for.
    pub custodian_id: String,
    /// Shares needed.
    pub threshold: u8,
    /// Shares made.
    pub custodians: u8,
    /// Hex authority public key, so a custodian can check which authority this share unlocks.
    pub authority_public_key: String,
    /// Hex `x ‖ y`: private, read with [`ShareFile::share_bytes`], so the share
    /// is never handled as an ordinary string.
    share: String,
}

impl ShareFile {
    /// A share file for `share` (`x ‖ y`); the hex is written into a buffer
    /// sized once, so no partial copy is left behind.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        daemon_id: String,
        ceremony_id: String,
        custodian_id: String,
        threshold: u8,
        custodians: u8,
        authority_public_key: String,
        share: &[u8],
    ) -> ShareFile {
        let mut hexed = String::with_capacity(2 * share.len());
        for b in share {
            for nibble in [b >> 4, b & 0x0f] {
                hexed.push(char::from(b"0123456789abcdef"[usize::from(nibble)]));
            }
        }
        ShareFile {
            format: SHARE_FILE_FORMAT.to_string(),
            daemon_id,
            ceremony_id,
            custodian_id,
            threshold,
            custodians,
            authority_public_key,
            share: hexed,
        }
    }

    /// Parses a decrypted share file and checks its shape.
    pub fn parse(plaintext: &[u8]) -> Result<ShareFile, ShareFileError> {
        let f: ShareFile = serde_json::from_slice(plaintext)
            .map_err(|e| ShareFileError::NotShareFile(e.to_string()))?;
        if f.format != SHARE_FILE_FORMAT {
            return Err(ShareFileError::Format {
                found: f.format.clone(),
            });
        }
        if f.share.len() != 2 * breakglass_proto::transport::SHARE_LEN {
            return Err(ShareFileError::Length {
                found: f.share.len(),
                expected: 2 * breakglass_proto::transport::SHARE_LEN,
            });
        }
        Ok(f)
    }

    /// The share bytes, wiped on drop.
    pub fn share_bytes(&self) -> Result<Zeroizing<Vec<u8>>, ShareFileError> {
        let mut out = Zeroizing::new(vec![0u8; self.share.len() / 2]);
        hex::decode_to_slice(&self.share, &mut out)
            .map_err(|e| ShareFileError::NotHex(e.to_string()))?;
        Ok(out)
    }

    /// JSON bytes for encryption, wiped on drop.
    ///
    /// Sized exactly before writing: `serde_json::to_vec_pretty` grows its
    /// buffer and would free unwiped partial copies holding the hex share.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut size = ByteCount(0);
        if serde_json::to_writer_pretty(&mut size, self).is_err() {
            return Zeroizing::new(Vec::new());
        }
        let mut out = Zeroizing::new(Vec::with_capacity(size.0));
        if serde_json::to_writer_pretty(&mut *out, self).is_err() {
            out.clear();
        }
        out
    }
}

/// A writer that only counts bytes.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod header_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn public_line(seed: u8) -> String {
        let kp = ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]);
        ssh_key::PublicKey::from(kp.public).to_openssh().unwrap()
    }

    /// The header names the custodian's key by the tag age computes, without any key.
    #[test]
    fn recipients_are_read_from_the_header() {
        let me = public_line(1);
        let ct = encrypt_to_ssh(&me, b"share").unwrap();
        // age adds random "grease" stanzas; only the ssh-ed25519 one names a key.
        let r: Vec<_> = recipients(&ct)
            .unwrap()
            .into_iter()
            .filter(|(kind, _)| kind == "ssh-ed25519")
            .collect();
        assert_eq!(
            r,
            vec![("ssh-ed25519".to_string(), ssh_ed25519_tag(&me).unwrap())]
        );
        assert_ne!(ssh_ed25519_tag(&public_line(2)).unwrap(), r[0].1);
        assert!(recipients(b"not age at all").is_err());
    }
}
