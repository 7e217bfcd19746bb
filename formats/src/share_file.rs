//! The custodian's share file (the plaintext age-encrypts to her key) and the
//! proof of where it came from.
//!
//! Anyone can age-encrypt a file to a custodian's public key, so decrypting is
//! no proof that a file came from the ceremony. Since format v2 the ceremony
//! writes beside the share its commitment and the daemon key D's signature over
//! the share statement (`breakglass_proto::signing::share_statement`: daemon id,
//! ceremony id, epoch, custodian id, x, commitment, threshold, custodians).
//! [`ShareFile::check_origin`] recomputes the commitment from the share and
//! verifies D's signature, optionally against the daemon key the custodian
//! expects; nothing here needs the daemon.
//!
//! What that proves: the file was written by whoever holds D (the ceremony),
//! and its share is the one D committed to. What it does not prove without an
//! expected key: that this D is *your* daemon's. A forger can make a key of
//! their own and sign with it, so the check prints D and compares it when the
//! custodian passes the key the operator published.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use breakglass_proto::signing::{self, ShareStatement};

/// Why a decrypted share file is not usable, or not provably genuine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShareFileError {
    /// Not the JSON of a share file.
    #[error("not a breakglass share file: {0}")]
    NotShareFile(String),
    /// Another format version.
    #[error(
        "share file format {found:?}, expected {SHARE_FILE_FORMAT:?} (or {SHARE_FILE_FORMAT_V1:?})"
    )]
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
    /// A v2 file lacks one of its origin fields, or a v1 file has one.
    #[error("the share file's origin fields are incomplete: {0}")]
    Origin(String),
    /// A format v1 file: written before share files carried D's signature.
    #[error("this share file is format {SHARE_FILE_FORMAT_V1:?}, written before share files carried the daemon's signature: its origin cannot be proven offline; check it online (without --offline), which compares it with the commitment the daemon publishes")]
    Unsigned,
    /// The share does not match the commitment written beside it.
    #[error("the share in this file does not match the commitment written beside it: the file was altered or assembled by someone other than the ceremony; do not use it, ask your operator")]
    CommitmentMismatch,
    /// D's signature over the statement does not verify.
    #[error("the daemon's signature in this share file does not verify: the file was not written by the ceremony of daemon {daemon_id} (it is substituted or altered); do not use it, ask your operator")]
    BadSignature {
        /// The daemon the file claims.
        daemon_id: String,
    },
    /// Signed by a daemon key other than the one expected.
    #[error("this share file is signed by daemon key {found}, not by the expected daemon key {expected}: the file is not from this daemon")]
    OtherDaemon {
        /// Hex key in the file.
        found: String,
        /// Hex key expected.
        expected: String,
    },
}

/// Format tag of a share file's plaintext, with its origin fields.
pub const SHARE_FILE_FORMAT: &str = "breakglass-share/v2";
/// Format tag of share files written before they carried D's signature; still read.
pub const SHARE_FILE_FORMAT_V1: &str = "breakglass-share/v1";

/// Domain of share commitments.
pub const DOMAIN_SHARE_COMMITMENT: &str = "breakglass/v1/share";

/// `H("breakglass/v1/share" ‖ ceremony id ‖ epoch ‖ custodian id ‖ share)`,
/// each part length-prefixed (4 bytes, big-endian), the epoch as 8 big-endian
/// bytes: what the daemon keeps and publishes about a share. The epoch is
/// bound, so a share of an earlier epoch never matches a commitment of a later
/// one, even at the same x.
///
/// Epoch 1 (the ceremony's) leaves the epoch part out: its commitments are the
/// bytes every ceremony has made since v1, so states and share files made
/// before epochs existed keep working. The two layouts cannot collide: a
/// share is 33 bytes, and the epoch part would have to be read as the
/// custodian id and the rest as a longer share.
///
/// Turning the share into this public value is safe: the share's y bytes are
/// uniformly random to anyone holding fewer than `threshold` shares, and the
/// hash reveals nothing more.
pub fn commitment_hash(
    ceremony_id: &str,
    epoch: u64,
    custodian_id: &str,
    share: &[u8],
) -> [u8; 32] {
    let epoch = epoch.to_be_bytes();
    let mut parts: Vec<&[u8]> = vec![DOMAIN_SHARE_COMMITMENT.as_bytes(), ceremony_id.as_bytes()];
    if u64::from_be_bytes(epoch) != signing::FIRST_EPOCH {
        parts.push(&epoch);
    }
    parts.extend([custodian_id.as_bytes(), share]);
    let mut h = Sha256::new();
    for part in parts {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        h.update(len.to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// Where a share file comes from, as the ceremony signed it.
pub struct Origin {
    /// Epoch of the share.
    pub epoch: u64,
    /// The share's commitment hash.
    pub commitment: [u8; 32],
    /// D's public key.
    pub daemon_public_key: [u8; 32],
    /// D's signature over the share statement.
    pub signature: [u8; 64],
}

/// What [`ShareFile::check_origin`] proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genuine {
    /// The share's x coordinate.
    pub x: u8,
    /// Epoch of the share.
    pub epoch: u64,
    /// The share's commitment hash, recomputed and matching.
    pub commitment: [u8; 32],
    /// The daemon key whose signature verified.
    pub daemon_public_key: [u8; 32],
    /// Whether it was compared with a key the caller expected.
    pub daemon_key_expected: bool,
}

/// A custodian's share file, as encrypted to their key. Wiped on drop.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct ShareFile {
    /// [`SHARE_FILE_FORMAT`] (or [`SHARE_FILE_FORMAT_V1`] for older files).
    pub format: String,
    /// Daemon this share belongs to.
    pub daemon_id: String,
    /// Ceremony that made it.
    pub ceremony_id: String,
    /// Epoch of the share (v2; absent in v1 files, whose share is of epoch 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// Custodian it was made for.
    pub custodian_id: String,
    /// Shares needed.
    pub threshold: u8,
    /// Shares made.
    pub custodians: u8,
    /// Hex authority public key, so a custodian can check which authority this share unlocks.
    pub authority_public_key: String,
    /// Hex commitment of the share (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitment: Option<String>,
    /// Hex daemon key D that signed the statement (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_public_key: Option<String>,
    /// Hex signature by D over the share statement (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_signature: Option<String>,
    /// Hex `x ‖ y`: private, read with [`ShareFile::share_bytes`], so the share
    /// is never handled as an ordinary string.
    share: String,
}

impl ShareFile {
    /// A v2 share file for `share` (`x ‖ y`); the hex is written into a buffer
    /// sized once, so no partial copy is left behind.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        daemon_id: String,
        ceremony_id: String,
        custodian_id: String,
        threshold: u8,
        custodians: u8,
        authority_public_key: String,
        origin: &Origin,
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
            epoch: Some(origin.epoch),
            custodian_id,
            threshold,
            custodians,
            authority_public_key,
            commitment: Some(hex::encode(origin.commitment)),
            daemon_public_key: Some(hex::encode(origin.daemon_public_key)),
            daemon_signature: Some(hex::encode(origin.signature)),
            share: hexed,
        }
    }

    /// Parses a decrypted share file and checks its shape (not its origin:
    /// that is [`ShareFile::check_origin`]).
    pub fn parse(plaintext: &[u8]) -> Result<ShareFile, ShareFileError> {
        let f: ShareFile = serde_json::from_slice(plaintext)
            .map_err(|e| ShareFileError::NotShareFile(e.to_string()))?;
        let origin = [
            ("epoch", f.epoch.is_some()),
            ("commitment", f.commitment.is_some()),
            ("daemon_public_key", f.daemon_public_key.is_some()),
            ("daemon_signature", f.daemon_signature.is_some()),
        ];
        match f.format.as_str() {
            SHARE_FILE_FORMAT => {
                if let Some((name, _)) = origin.iter().find(|(_, present)| !present) {
                    return Err(ShareFileError::Origin(format!("{name} is missing")));
                }
            }
            SHARE_FILE_FORMAT_V1 => {
                if let Some((name, _)) = origin.iter().find(|(_, present)| *present) {
                    return Err(ShareFileError::Origin(format!(
                        "{name} is present in a {SHARE_FILE_FORMAT_V1:?} file"
                    )));
                }
            }
            _ => {
                return Err(ShareFileError::Format {
                    found: f.format.clone(),
                })
            }
        }
        if f.share.len() != 2 * breakglass_proto::transport::SHARE_LEN {
            return Err(ShareFileError::Length {
                found: f.share.len(),
                expected: 2 * breakglass_proto::transport::SHARE_LEN,
            });
        }
        Ok(f)
    }

    /// The epoch of the share (1 for v1 files, which predate epochs).
    pub fn epoch(&self) -> u64 {
        self.epoch.unwrap_or(signing::FIRST_EPOCH)
    }

    /// The share's x coordinate (its first byte; public: it names the share).
    pub fn x(&self) -> Result<u8, ShareFileError> {
        let b = self.share_bytes()?;
        b.first()
            .copied()
            .ok_or_else(|| ShareFileError::NotHex("empty share".into()))
    }

    /// The share's commitment, recomputed from the share itself.
    pub fn recomputed_commitment(&self) -> Result<[u8; 32], ShareFileError> {
        let share = self.share_bytes()?;
        Ok(commitment_hash(
            &self.ceremony_id,
            self.epoch(),
            &self.custodian_id,
            &share,
        ))
    }

    /// Proves offline that this file is what the ceremony wrote: the share
    /// matches the commitment beside it, D's signature over the statement
    /// verifies, and (with `expected`) D is the daemon key the caller expects.
    pub fn check_origin(&self, expected: Option<&[u8; 32]>) -> Result<Genuine, ShareFileError> {
        let (Some(commitment), Some(key), Some(sig)) = (
            self.commitment.as_deref(),
            self.daemon_public_key.as_deref(),
            self.daemon_signature.as_deref(),
        ) else {
            return Err(ShareFileError::Unsigned);
        };
        let commitment: [u8; 32] = decode_array(commitment, "commitment")?;
        let key: [u8; 32] = decode_array(key, "daemon_public_key")?;
        let sig: [u8; 64] = decode_array(sig, "daemon_signature")?;
        if let Some(want) = expected {
            if want != &key {
                return Err(ShareFileError::OtherDaemon {
                    found: hex::encode(key),
                    expected: hex::encode(want),
                });
            }
        }
        let recomputed = self.recomputed_commitment()?;
        if !constant_time_eq(&recomputed, &commitment) {
            return Err(ShareFileError::CommitmentMismatch);
        }
        let x = self.x()?;
        let statement = signing::share_statement(&ShareStatement {
            daemon_id: &self.daemon_id,
            ceremony_id: &self.ceremony_id,
            epoch: self.epoch(),
            custodian_id: &self.custodian_id,
            x,
            commitment: &commitment,
            threshold: self.threshold,
            custodians: self.custodians,
        });
        let bad = || ShareFileError::BadSignature {
            daemon_id: self.daemon_id.clone(),
        };
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|_| bad())?;
        vk.verify_strict(&statement, &ed25519_dalek::Signature::from_bytes(&sig))
            .map_err(|_| bad())?;
        Ok(Genuine {
            x,
            epoch: self.epoch(),
            commitment,
            daemon_public_key: key,
            daemon_key_expected: expected.is_some(),
        })
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

/// Decodes a fixed-size hex field of the file.
fn decode_array<const N: usize>(hexed: &str, name: &str) -> Result<[u8; N], ShareFileError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(hexed, &mut out)
        .map_err(|e| ShareFileError::Origin(format!("{name} is not {N} bytes of hex: {e}")))?;
    Ok(out)
}

/// Compares two hashes without an early exit.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn share() -> Vec<u8> {
        let mut s = vec![7u8; breakglass_proto::transport::SHARE_LEN];
        s[0] = 2;
        s
    }

    /// A file as the ceremony writes it, signed by `d`.
    fn genuine(d: &SigningKey, share: &[u8]) -> ShareFile {
        let commitment = commitment_hash("cer", 1, "alice", share);
        let statement = signing::share_statement(&ShareStatement {
            daemon_id: "d1",
            ceremony_id: "cer",
            epoch: 1,
            custodian_id: "alice",
            x: share[0],
            commitment: &commitment,
            threshold: 2,
            custodians: 3,
        });
        let origin = Origin {
            epoch: 1,
            commitment,
            daemon_public_key: d.verifying_key().to_bytes(),
            signature: d.sign(&statement).to_bytes(),
        };
        ShareFile::new(
            "d1".into(),
            "cer".into(),
            "alice".into(),
            2,
            3,
            "aa".into(),
            &origin,
            share,
        )
    }

    fn reparse(f: &ShareFile) -> ShareFile {
        ShareFile::parse(&f.to_bytes()).unwrap()
    }

    /// Readiness (offline check): a genuine file proves its origin, also
    /// against the expected key, after a round trip through its bytes.
    #[test]
    fn genuine_file_proves_its_origin() {
        let d = SigningKey::from_bytes(&[9u8; 32]);
        let f = reparse(&genuine(&d, &share()));
        let g = f.check_origin(Some(&d.verifying_key().to_bytes())).unwrap();
        assert_eq!(g.x, 2);
        assert_eq!(g.epoch, 1);
        assert!(g.daemon_key_expected);
        assert!(!f.check_origin(None).unwrap().daemon_key_expected);
    }

    /// A substituted share, with the genuine file's commitment and signature
    /// copied beside it, fails the commitment; with its own commitment it
    /// fails D's signature; signed by the forger's own key it fails the
    /// expected key.
    #[test]
    fn substituted_files_are_refused() {
        let d = SigningKey::from_bytes(&[9u8; 32]);
        let real = genuine(&d, &share());
        let mut other = share();
        other[5] ^= 1;
        let mut copied = reparse(&genuine(&d, &other));
        copied.commitment = real.commitment.clone();
        copied.daemon_signature = real.daemon_signature.clone();
        assert_eq!(
            copied.check_origin(None).unwrap_err(),
            ShareFileError::CommitmentMismatch
        );

        let mut resigned = reparse(&genuine(&d, &other));
        resigned.daemon_signature = real.daemon_signature.clone();
        let e = resigned.check_origin(None).unwrap_err();
        assert!(matches!(e, ShareFileError::BadSignature { .. }), "{e}");
        assert!(e
            .to_string()
            .contains("not written by the ceremony of daemon d1"));

        let forger = SigningKey::from_bytes(&[10u8; 32]);
        let forged = genuine(&forger, &other);
        assert!(forged.check_origin(None).is_ok(), "self-consistent");
        let e = forged
            .check_origin(Some(&d.verifying_key().to_bytes()))
            .unwrap_err();
        assert!(
            e.to_string().contains("the file is not from this daemon"),
            "{e}"
        );
    }

    /// Every signed field is bound: changing any one breaks the signature.
    #[test]
    fn every_statement_field_is_bound() {
        let d = SigningKey::from_bytes(&[9u8; 32]);
        let edits: [fn(&mut ShareFile); 3] = [
            |f| f.daemon_id = "d2".into(),
            |f| f.threshold = 3,
            |f| f.custodians = 4,
        ];
        for edit in edits {
            let mut f = genuine(&d, &share());
            edit(&mut f);
            assert!(
                matches!(
                    f.check_origin(None),
                    Err(ShareFileError::BadSignature { .. })
                ),
                "an edited field still verified"
            );
        }
        // The epoch is bound twice: into the commitment (so the share itself
        // no longer matches) and into D's statement.
        let mut f = genuine(&d, &share());
        f.epoch = Some(2);
        assert_eq!(
            f.check_origin(None).err(),
            Some(ShareFileError::CommitmentMismatch)
        );
    }

    /// Epoch 1's commitment is the pre-epoch layout (ceremonies and share
    /// files made before epochs keep verifying); later epochs bind their number.
    #[test]
    fn the_first_epoch_commits_as_before_epochs_and_later_ones_bind_the_number() {
        let legacy = {
            let mut h = Sha256::new();
            for part in [&b"breakglass/v1/share"[..], b"cer", b"alice", &share()] {
                h.update((part.len() as u32).to_be_bytes());
                h.update(part);
            }
            <[u8; 32]>::from(h.finalize())
        };
        assert_eq!(commitment_hash("cer", 1, "alice", &share()), legacy);
        let second = {
            let mut h = Sha256::new();
            for part in [
                &b"breakglass/v1/share"[..],
                b"cer",
                &2u64.to_be_bytes(),
                b"alice",
                &share(),
            ] {
                h.update((part.len() as u32).to_be_bytes());
                h.update(part);
            }
            <[u8; 32]>::from(h.finalize())
        };
        assert_eq!(commitment_hash("cer", 2, "alice", &share()), second);
        assert_ne!(second, legacy);
    }

    /// v1 files still parse but cannot prove their origin offline; a v2 file
    /// with a field missing is refused at parse.
    #[test]
    fn versions_and_missing_fields() {
        let d = SigningKey::from_bytes(&[9u8; 32]);
        let mut v1 = genuine(&d, &share());
        v1.format = SHARE_FILE_FORMAT_V1.into();
        v1.epoch = None;
        v1.commitment = None;
        v1.daemon_public_key = None;
        v1.daemon_signature = None;
        let v1 = reparse(&v1);
        assert_eq!(v1.epoch(), 1);
        assert_eq!(v1.check_origin(None).unwrap_err(), ShareFileError::Unsigned);

        let mut partial = genuine(&d, &share());
        partial.daemon_signature = None;
        let e = ShareFile::parse(&partial.to_bytes()).err().unwrap();
        assert_eq!(
            e,
            ShareFileError::Origin("daemon_signature is missing".into())
        );
    }
}
