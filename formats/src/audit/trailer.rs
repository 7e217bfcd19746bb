//! The signed end of an audit export: the head (sequence number and hash) the
//! daemon cut the export at, signed by D. An export missing its tail, or with
//! a tail recomputed after an edit, no longer ends where D said it does.

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::chain::AuditEntry;

/// The trailer line of an export file: `{"trailer": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrailerLine {
    /// The trailer.
    pub trailer: ExportTrailer,
}

/// The head an export was cut at, signed by D.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportTrailer {
    /// Daemon id.
    pub daemon_id: String,
    /// Last entry covered (0: the log was empty).
    pub seq: u64,
    /// Its hash, hex.
    pub head_hash: String,
    /// When the export was made.
    pub generated_at: u64,
    /// D's signature over `signing::audit_export_trailer`, hex.
    pub signature: String,
}

/// Why an export's end does not match its trailer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrailerError {
    /// No trailer line.
    #[error("the export has no signed trailer, so a cut-off tail cannot be told apart: export it again with this version, or pass --allow-partial to verify only what is there")]
    Missing,
    /// The entries stop before the head D signed.
    #[error(
        "the export was cut: it ends at entry {last} but the daemon exported up to entry {seq}"
    )]
    Cut {
        /// Last entry in the file.
        last: u64,
        /// Head in the trailer.
        seq: u64,
    },
    /// The last entry is not the head D signed.
    #[error("entry {seq}'s hash is not the head the daemon signed: the log's tail was rewritten")]
    Rewritten {
        /// Head seq.
        seq: u64,
    },
    /// Entries after the signed head.
    #[error("the export has entries after the head the daemon signed (entry {seq})")]
    Extra {
        /// Head seq.
        seq: u64,
    },
    /// Another daemon's trailer.
    #[error("the trailer is from daemon `{found}`, not `{expected}`")]
    Daemon {
        /// In the trailer.
        found: String,
        /// Expected.
        expected: String,
    },
    /// The signature does not verify with D.
    #[error("the trailer's signature does not verify with the daemon key")]
    Signature,
}

impl ExportTrailer {
    /// Checks that `entries` end exactly at the signed head, and, with D and the
    /// daemon id, the signature.
    pub fn check(
        &self,
        entries: &[AuditEntry],
        daemon: Option<(&VerifyingKey, &str)>,
    ) -> Result<(), TrailerError> {
        if let Some((key, id)) = daemon {
            if self.daemon_id != id {
                return Err(TrailerError::Daemon {
                    found: self.daemon_id.clone(),
                    expected: id.to_string(),
                });
            }
            let mut head = [0u8; 32];
            let sig = hex::decode_to_slice(&self.head_hash, &mut head)
                .ok()
                .and_then(|()| hex::decode(&self.signature).ok())
                .and_then(|b| Signature::from_slice(&b).ok())
                .ok_or(TrailerError::Signature)?;
            let payload = breakglass_proto::signing::audit_export_trailer(
                &self.daemon_id,
                self.seq,
                &head,
                self.generated_at,
            );
            key.verify_strict(&payload, &sig)
                .map_err(|_| TrailerError::Signature)?;
        }
        let last = entries.last().map(|e| e.seq).unwrap_or(0);
        if last < self.seq {
            return Err(TrailerError::Cut {
                last,
                seq: self.seq,
            });
        }
        if last > self.seq {
            return Err(TrailerError::Extra { seq: self.seq });
        }
        match entries.last() {
            Some(e) if e.hash != self.head_hash => Err(TrailerError::Rewritten { seq: self.seq }),
            _ => Ok(()),
        }
    }
}

/// An export file: its entries and its trailer line, if it has one (the last line).
pub fn parse_export(
    text: &str,
) -> Result<(Vec<AuditEntry>, Option<ExportTrailer>), super::chain::ChainError> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let (trailer, body) = match lines.split_last() {
        Some(((_, last), body)) => match serde_json::from_str::<TrailerLine>(last) {
            Ok(t) => (Some(t.trailer), body),
            Err(_) => (None, &lines[..]),
        },
        None => (None, &lines[..]),
    };
    let entries = body
        .iter()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| super::chain::ChainError::Parse {
                line: i + 1,
                why: e.to_string(),
            })
        })
        .collect::<Result<Vec<AuditEntry>, _>>()?;
    Ok((entries, trailer))
}
