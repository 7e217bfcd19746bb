//! The last signature counter seen per security key (issue 13): a counter
//! that does not increase means a cloned key or a replayed signature. Each
//! advance is its own durable write, compared and set in one transaction
//! (redb serialises writers), so two calls with the same counter cannot both
//! pass, and a restart forgets nothing.

use redb::{ReadableTable, TableDefinition};

use super::{storage, Store};
use crate::error::Result;

/// Key fingerprint (`SHA256:…`) → last counter seen.
const COUNTERS: TableDefinition<&str, u32> = TableDefinition::new("sk_counters");

impl Store {
    /// Records `counter` for the security key with `fingerprint` if it is
    /// above the last one seen; otherwise returns `Ok(Err(last))`.
    pub fn advance(&self, fingerprint: &str, counter: u32) -> Result<std::result::Result<(), u32>> {
        self.write(|tx| {
            let mut t = tx.open_table(COUNTERS).map_err(storage)?;
            let last = t.get(fingerprint).map_err(storage)?.map(|v| v.value());
            match last {
                Some(last) if counter <= last => Ok(Err(last)),
                _ => {
                    t.insert(fingerprint, counter).map_err(storage)?;
                    Ok(Ok(()))
                }
            }
        })
    }
}
