//! age envelopes to ssh-ed25519 keys: custodians' share files (their
//! plaintext is [`crate::share_file`]) and the requester's credential. The
//! people involved already hold these keys.

use std::io::Read;

use zeroize::Zeroizing;

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
