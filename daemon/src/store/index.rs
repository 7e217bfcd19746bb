//! Indexes over the requests table, so nothing at start or on a read scans
//! every request ever made: requests by opening time (newest-first pages),
//! the collecting ones (found at start and by the open bound), and the
//! revoked ones (the revocation list). Each is written in the same
//! transaction as the request it indexes.

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::{storage, Store, META, REQUESTS};
use crate::engine::request::{Request, State};
use crate::error::Result;

/// (opened_at, id) of every request.
pub(super) const BY_OPENED: TableDefinition<(u64, &str), u8> =
    TableDefinition::new("requests_by_opened");
/// id → deadline of every collecting request.
pub(super) const COLLECTING: TableDefinition<&str, u64> =
    TableDefinition::new("requests_collecting");
/// (revoked_at, id) of every revoked credential.
pub(super) const REVOKED: TableDefinition<(u64, &str), u8> =
    TableDefinition::new("requests_revoked");
/// (credential expires_at, id) of every revoked credential: the default
/// revocation list reads only those not yet expired, whatever the history.
pub(super) const REVOKED_BY_EXPIRY: TableDefinition<(u64, &str), u8> =
    TableDefinition::new("requests_revoked_by_expiry");

/// Meta key marking that the indexes cover every request.
const INDEXED: &str = "indexes";
const INDEXED_VERSION: &[u8] = b"v2";

/// Where a page of requests starts: strictly older than this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Opening time of the last request of the previous page.
    pub opened_at: u64,
    /// Its id.
    pub id: String,
}

/// Writes `r`'s index entries inside `tx`.
pub(super) fn index(tx: &WriteTransaction, r: &Request) -> Result<()> {
    let mut by = tx.open_table(BY_OPENED).map_err(storage)?;
    by.insert((r.opened_at, r.id.as_str()), 0)
        .map_err(storage)?;
    let mut col = tx.open_table(COLLECTING).map_err(storage)?;
    if r.state == State::Collecting {
        col.insert(r.id.as_str(), r.deadline).map_err(storage)?;
    } else {
        col.remove(r.id.as_str()).map_err(storage)?;
    }
    if let Some(rev) = &r.revocation {
        let mut revoked = tx.open_table(REVOKED).map_err(storage)?;
        revoked
            .insert((rev.at, r.id.as_str()), 0)
            .map_err(storage)?;
        if let Some(cred) = &r.credential {
            let mut by_exp = tx.open_table(REVOKED_BY_EXPIRY).map_err(storage)?;
            by_exp
                .insert((cred.expires_at, r.id.as_str()), 0)
                .map_err(storage)?;
        }
    }
    Ok(())
}

/// Creates empty indexes and marks them complete (a new store).
pub(super) fn create(tx: &WriteTransaction) -> Result<()> {
    tx.open_table(BY_OPENED).map_err(storage)?;
    tx.open_table(COLLECTING).map_err(storage)?;
    tx.open_table(REVOKED).map_err(storage)?;
    tx.open_table(REVOKED_BY_EXPIRY).map_err(storage)?;
    let mut meta = tx.open_table(META).map_err(storage)?;
    meta.insert(INDEXED, INDEXED_VERSION).map_err(storage)?;
    Ok(())
}

impl Store {
    /// Builds the indexes once for a store made before they existed (one scan,
    /// one transaction); a no-op afterwards.
    pub(super) fn ensure_indexes(&self) -> Result<()> {
        {
            let tx = self.db()?.begin_read().map_err(storage)?;
            let meta = tx.open_table(META).map_err(storage)?;
            if meta
                .get(INDEXED)
                .map_err(storage)?
                .is_some_and(|v| v.value() == INDEXED_VERSION)
            {
                return Ok(());
            }
        }
        let tx = self.db()?.begin_write().map_err(storage)?;
        {
            let all: Vec<Request> = {
                let t = tx.open_table(REQUESTS).map_err(storage)?;
                let mut out = Vec::new();
                for row in t.iter().map_err(storage)? {
                    let (_, v) = row.map_err(storage)?;
                    out.push(
                        serde_json::from_slice(v.value())
                            .map_err(|e| super::corrupt_record(&self.path, "request", e))?,
                    );
                }
                out
            };
            for r in &all {
                index(&tx, r)?;
            }
            create(&tx)?;
        }
        tx.commit().map_err(storage)
    }

    /// The requests stored as collecting (a restart finds them here, without a scan).
    pub fn collecting_requests(&self) -> Result<Vec<Request>> {
        let tx = self.db()?.begin_read().map_err(storage)?;
        let col = tx.open_table(COLLECTING).map_err(storage)?;
        let t = tx.open_table(REQUESTS).map_err(storage)?;
        let mut out = Vec::new();
        for row in col.iter().map_err(storage)? {
            let (id, _) = row.map_err(storage)?;
            if let Some(v) = t.get(id.value()).map_err(storage)? {
                out.push(
                    serde_json::from_slice(v.value())
                        .map_err(|e| super::corrupt_record(&self.path, "request", e))?,
                );
            }
        }
        Ok(out)
    }

    /// Up to `limit` requests older than `before` (or the newest), newest first,
    /// and the cursor of the next page if there may be more. `collecting_only`
    /// reads the collecting index (bounded by the open limits), not the history.
    pub fn requests_page(
        &self,
        collecting_only: bool,
        before: Option<&Cursor>,
        limit: usize,
    ) -> Result<(Vec<Request>, Option<Cursor>)> {
        let older = |opened_at: u64, id: &str| match before {
            Some(c) => (opened_at, id) < (c.opened_at, c.id.as_str()),
            None => true,
        };
        let tx = self.db()?.begin_read().map_err(storage)?;
        let t = tx.open_table(REQUESTS).map_err(storage)?;
        let get = |id: &str| -> Result<Option<Request>> {
            t.get(id)
                .map_err(storage)?
                .map(|v| {
                    serde_json::from_slice(v.value())
                        .map_err(|e| super::corrupt_record(&self.path, "request", e))
                })
                .transpose()
        };
        let mut out: Vec<Request> = Vec::new();
        let mut more = false;
        if collecting_only {
            let col = tx.open_table(COLLECTING).map_err(storage)?;
            for row in col.iter().map_err(storage)? {
                let (id, _) = row.map_err(storage)?;
                if let Some(r) = get(id.value())? {
                    if older(r.opened_at, &r.id) {
                        out.push(r);
                    }
                }
            }
            out.sort_by(|a, b| (b.opened_at, &b.id).cmp(&(a.opened_at, &a.id)));
            more = out.len() > limit;
            out.truncate(limit);
        } else {
            let by = tx.open_table(BY_OPENED).map_err(storage)?;
            let rows = match before {
                Some(c) => by.range(..(c.opened_at, c.id.as_str())).map_err(storage)?,
                None => by.range::<(u64, &str)>(..).map_err(storage)?,
            };
            for row in rows.rev() {
                let (k, _) = row.map_err(storage)?;
                if out.len() == limit {
                    more = true;
                    break;
                }
                if let Some(r) = get(k.value().1)? {
                    out.push(r);
                }
            }
        }
        let next = if more {
            out.last().map(|r| Cursor {
                opened_at: r.opened_at,
                id: r.id.clone(),
            })
        } else {
            None
        };
        Ok((out, next))
    }

    /// Requests whose credential was revoked, oldest revocation first; with
    /// `unexpired_at`, only those whose credential is still valid then (read
    /// through the expiry index, so old revocations cost nothing).
    pub fn revoked_requests(&self, unexpired_at: Option<u64>) -> Result<Vec<Request>> {
        let tx = self.db()?.begin_read().map_err(storage)?;
        let t = tx.open_table(REQUESTS).map_err(storage)?;
        let ids: Vec<String> = match unexpired_at {
            Some(now) => {
                let by_exp = tx.open_table(REVOKED_BY_EXPIRY).map_err(storage)?;
                let rows = by_exp
                    .range((now.saturating_add(1), "")..)
                    .map_err(storage)?;
                rows.map(|row| row.map(|(k, _)| k.value().1.to_string()))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(storage)?
            }
            None => {
                let rev = tx.open_table(REVOKED).map_err(storage)?;
                rev.iter()
                    .map_err(storage)?
                    .map(|row| row.map(|(k, _)| k.value().1.to_string()))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(storage)?
            }
        };
        let mut out = Vec::new();
        for id in ids {
            if let Some(v) = t.get(id.as_str()).map_err(storage)? {
                out.push(
                    serde_json::from_slice(v.value())
                        .map_err(|e| super::corrupt_record(&self.path, "request", e))?,
                );
            }
        }
        Ok(out)
    }
}
