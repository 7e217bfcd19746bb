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
