//! age envelopes to ssh-ed25519 keys: custodians' share files and the
//! requester's credential. The people involved already hold these keys.

use std::io::Read;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};

/// Format tag of a share file's plaintext.
pub const SHARE_FILE_FORMAT: &str = "breakglass-share/v1";

/// Encrypts `plaintext` to an `ssh-ed25519 …` public key, ASCII-armored.
pub fn encrypt_to_ssh(recipient: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
    let r: age::ssh::Recipient = recipient.parse().map_err(|e| {
        Error::Internal(format!(
            "recipient {recipient:?} is not an age ssh recipient: {e:?}"
        ))
    })?;
    age::encrypt_and_armor(&r, plaintext)
        .map(String::into_bytes)
        .map_err(|e| Error::Internal(format!("age encryption failed: {e}")))
}

/// Decrypts an age envelope with an identity; the plaintext is wiped on drop.
pub fn decrypt(
    identity: &dyn age::Identity,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, String> {
    let decryptor = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(ciphertext))
        .map_err(|e| format!("not an age file: {e}"))?;
    let mut reader = decryptor
        .decrypt(std::iter::once(identity))
        .map_err(|e| format!("cannot decrypt with this key: {e}"))?;
    // The ciphertext is longer than the plaintext, so this buffer never grows:
    // a growing Vec would free unwiped partial copies of the plaintext.
    let mut out = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    reader
        .read_to_end(&mut out)
        .map_err(|e| format!("decryption failed: {e}"))?;
    Ok(out)
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
    /// Hex `x ‖ y`.
    pub share: String,
}

impl ShareFile {
    /// Parses a decrypted share file and checks its shape.
    pub fn parse(plaintext: &[u8]) -> Result<ShareFile, String> {
        let f: ShareFile = serde_json::from_slice(plaintext)
            .map_err(|e| format!("not a breakglass share file: {e}"))?;
        if f.format != SHARE_FILE_FORMAT {
            return Err(format!(
                "share file format {:?}, expected {SHARE_FILE_FORMAT:?}",
                f.format
            ));
        }
        if f.share.len() != 2 * breakglass_proto::transport::SHARE_LEN {
            return Err(format!(
                "share is {} hex digits, expected {}",
                f.share.len(),
                2 * breakglass_proto::transport::SHARE_LEN
            ));
        }
        Ok(f)
    }

    /// The share bytes, wiped on drop.
    pub fn share_bytes(&self) -> Result<Zeroizing<Vec<u8>>, String> {
        let mut out = Zeroizing::new(vec![0u8; self.share.len() / 2]);
        hex::decode_to_slice(&self.share, &mut out)
            .map_err(|e| format!("share is not hex: {e}"))?;
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
