//! Unsigned reads: `GetRequest` and `ListRequests`.

use super::Daemon;
use crate::engine::request::{Request, State};
use crate::error::Result;

impl Daemon {
    /// One request.
    pub fn get(&self, id: &str) -> Result<Request> {
        self.load(id)
    }

    /// Requests, newest first.
    pub fn list(&self, collecting_only: bool, limit: usize) -> Result<Vec<Request>> {
        let mut all = self.store.requests()?;
        if collecting_only {
            all.retain(|r| r.state == State::Collecting);
        }
        all.truncate(limit);
        Ok(all)
    }
}
