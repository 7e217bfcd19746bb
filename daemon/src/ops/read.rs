//! Unsigned reads: `GetRequest` and `ListRequests`.

use super::Daemon;
use crate::engine::request::Request;
use crate::error::Result;
use crate::store::Cursor;

impl Daemon {
    /// One request.
    pub fn get(&self, id: &str) -> Result<Request> {
        self.load(id)
    }

    /// Up to `limit` requests older than `before` (or the newest), newest
    /// first, read through the index, and where the next page starts.
    pub fn list(
        &self,
        collecting_only: bool,
        before: Option<&Cursor>,
        limit: usize,
    ) -> Result<(Vec<Request>, Option<Cursor>)> {
        self.store.requests_page(collecting_only, before, limit)
    }
}

impl Daemon {
    /// The signed end of an export cut at `head` (the head's hash, now, D's signature).
    pub fn export_trailer(&self, head: u64) -> Result<breakglass_proto::pb::ExportTrailer> {
        let mut hash = [0u8; 32];
        if head > 0 {
            let e = self.store.audit_entry(head)?.ok_or_else(|| {
                crate::error::Error::Internal(format!("audit entry {head} vanished"))
            })?;
            hex::decode_to_slice(&e.hash, &mut hash).map_err(|_| {
                crate::error::Error::StateCorrupt {
                    path: self.store.path().to_path_buf(),
                    why: format!("audit entry {head} has no valid hash"),
                }
            })?;
        }
        let generated_at = self.now();
        let signature =
            self.key
                .sign_export_trailer(&self.meta.daemon_id, head, &hash, generated_at);
        Ok(breakglass_proto::pb::ExportTrailer {
            daemon_id: self.meta.daemon_id.clone(),
            seq: head,
            head_hash: hash.to_vec(),
            generated_at,
            daemon_signature: signature.to_vec(),
        })
    }
}
