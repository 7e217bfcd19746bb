//! Durable state in redb: the ceremony's output (seal, commitments, policy),
//! requests, and the audit log. Every state change and its audit records are
//! written in one transaction, committed durably (redb's default immediate
//! durability) before the caller is answered. Secrets never come here: the
//! seal is ciphertext, commitments are hashes, credentials are age ciphertext.
//!
//! State directory layout:
//! - `state.redb`: this store;
//! - `daemon.key`: the daemon key D (hex seed, mode 0600);
//! - `tls/`: the self-signed certificate the daemon made, if no other was configured.

pub use breakglass_formats::audit;

mod index;
pub mod keyfile;
mod log;
mod modes;
mod open;
use log::append_in;
use open::Opener;
mod counters;
pub(crate) mod epochs;
mod outbox;
mod readiness;

pub use epochs::{EpochStep, NewEpoch};
pub use index::Cursor;
pub use modes::check_modes;
pub use outbox::OutboxState;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, TableDefinition};

use crate::engine::event::Record;
use crate::engine::policy::Policy;
use crate::engine::request::Request;
use crate::engine::share::Commitment;
use crate::error::{Error, Result};
use audit::AuditEntry;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const COMMITMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("commitments");
const REQUESTS: TableDefinition<&str, &[u8]> = TableDefinition::new("requests");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// Pending webhook deliveries: (audit seq, webhook name) → [`OutboxState`] JSON.
const OUTBOX: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("outbox");

/// Meta key of D's signed integrity statement.
const INTEGRITY: &str = "integrity";
/// Meta key the write probe rewrites after a storage error.
const PROBE: &str = "write_probe";

/// File name of the store inside the state directory.
pub const DB_FILE: &str = "state.redb";
/// File name of the daemon key inside the state directory.
pub const DAEMON_KEY_FILE: &str = "daemon.key";

/// What the ceremony stores.
pub struct Genesis {
    /// Daemon id.
    pub daemon_id: String,
    /// Ceremony id.
    pub ceremony_id: String,
    /// The first epoch ([`breakglass_proto::signing::FIRST_EPOCH`]).
    pub epoch: u64,
    /// When it began (the ceremony's time).
    pub since: u64,
    /// Validated policy.
    pub policy: Policy,
    /// Sealed S.
    pub seal: Vec<u8>,
    /// A's public key.
    pub authority_public: [u8; 32],
    /// Per custodian.
    pub commitments: BTreeMap<String, Commitment>,
    /// D's signed integrity statement over all of the above.
    pub integrity: crate::crypto::integrity::Signed,
}

/// What never changes after the ceremony, as loaded at start.
#[derive(Debug, Clone)]
pub struct Meta {
    /// Daemon id.
    pub daemon_id: String,
    /// Ceremony id.
    pub ceremony_id: String,
    /// A's public key.
    pub authority_public: [u8; 32],
}

/// The current epoch as stored (its commitments are in their own table).
#[derive(Debug, Clone)]
pub struct StoredEpoch {
    /// Epoch number.
    pub number: u64,
    /// Policy.
    pub policy: Policy,
    /// Policy digest.
    pub policy_digest: [u8; 32],
    /// Sealed S.
    pub seal: Vec<u8>,
    /// When the epoch began; `None` in states made before it was kept (the
    /// ceremony's audit entry says).
    pub since: Option<u64>,
}

/// Meta key of the current epoch number (8 bytes, big-endian).
const EPOCH: &str = "epoch";
/// Meta key of when the current epoch began (8 bytes, big-endian).
const EPOCH_SINCE: &str = "epoch_since";

/// Signs audit checkpoints with the daemon key D.
pub struct Checkpointer {
    /// Daemon id, bound into each checkpoint.
    pub daemon_id: String,
    /// D.
    pub key: ed25519_dalek::SigningKey,
}

/// A webhook route: which event kinds go to which named webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Webhook name.
    pub name: String,
    /// Event kinds (`*` for all).
    pub kinds: std::collections::BTreeSet<String>,
}

impl Route {
    fn wants(&self, kind: &str) -> bool {
        self.kinds.contains("*") || self.kinds.contains(kind)
    }
}

/// The redb store.
pub struct Store {
    /// The open database; `None` only while it is being reopened.
    db: std::sync::RwLock<Option<std::sync::Arc<Database>>>,
    /// How to open it again after a write error (redb refuses every write
    /// after an I/O error until the database is reopened).
    opener: Opener,
    /// Set by a failed write: the next call reopens first.
    broken: std::sync::atomic::AtomicBool,
    path: PathBuf,
    checkpointer: Option<Checkpointer>,
    routes: Vec<Route>,
}

/// A stored record that does not decode: damage, not a storage failure.
fn corrupt_record(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::StateCorrupt {
        path: path.to_path_buf(),
        why: format!("a stored {what} does not decode ({e})"),
    }
}

fn storage(e: impl std::fmt::Display) -> Error {
    Error::Storage(e.to_string())
}

impl Store {
    /// Creates the store for a new ceremony; refuses if one exists.
    pub fn create(state_dir: &Path, g: &Genesis, first: Vec<Record>) -> Result<Store> {
        let path = state_dir.join(DB_FILE);
        if path.exists() {
            return Err(Error::AlreadyInitialised {
                path: state_dir.to_path_buf(),
            });
        }
        // Made private first (0600), then initialised by redb in place.
        crate::ceremony::write_new_private(&path, &[])?;
        let db = Database::create(&path).map_err(storage)?;
        let store = Store::with(db, Store::file_opener(&path), path);
        let tx = store.db()?.begin_write().map_err(storage)?;
        {
            let mut meta = tx.open_table(META).map_err(storage)?;
            meta.insert("format", b"breakglass-state/v1".as_slice())
                .map_err(storage)?;
            meta.insert("daemon_id", g.daemon_id.as_bytes())
                .map_err(storage)?;
            meta.insert("ceremony_id", g.ceremony_id.as_bytes())
                .map_err(storage)?;
            meta.insert("policy", g.policy.canonical_json()?.as_slice())
                .map_err(storage)?;
            meta.insert("policy_digest", g.policy.digest()?.as_slice())
                .map_err(storage)?;
            meta.insert("seal", g.seal.as_slice()).map_err(storage)?;
            meta.insert(EPOCH, g.epoch.to_be_bytes().as_slice())
                .map_err(storage)?;
            meta.insert(EPOCH_SINCE, g.since.to_be_bytes().as_slice())
                .map_err(storage)?;
            meta.insert("authority_public", g.authority_public.as_slice())
                .map_err(storage)?;
            meta.insert(
                INTEGRITY,
                serde_json::to_vec(&g.integrity)
                    .map_err(storage)?
                    .as_slice(),
            )
            .map_err(storage)?;
            let mut com = tx.open_table(COMMITMENTS).map_err(storage)?;
            for (id, c) in &g.commitments {
                com.insert(
                    id.as_str(),
                    serde_json::to_vec(c).map_err(storage)?.as_slice(),
                )
                .map_err(storage)?;
            }
            tx.open_table(REQUESTS).map_err(storage)?;
            tx.open_table(OUTBOX).map_err(storage)?;
            let mut audit = tx.open_table(AUDIT).map_err(storage)?;
            append_in(&mut audit, first, None)?;
        }
        index::create(&tx)?;
        tx.commit().map_err(storage)?;
        Ok(store)
    }

    /// Signs a checkpoint after quorum, revocation, start and stop events.
    pub fn set_checkpointer(&mut self, c: Checkpointer) {
        self.checkpointer = Some(c);
    }

    /// Webhook routes: every appended entry whose kind a route wants gets an outbox item.
    pub fn set_routes(&mut self, routes: Vec<Route>) {
        self.routes = routes;
    }

    /// Path of the store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads meta keys: `get` returns a key's bytes or says it is missing.
    fn read_meta<T>(
        &self,
        read: impl FnOnce(&dyn Fn(&str) -> Result<Option<Vec<u8>>>) -> Result<T>,
    ) -> Result<T> {
        let tx = self.db()?.begin_read().map_err(storage)?;
        let t = tx
            .open_table(META)
            .map_err(|e| self.corrupt(format!("no meta table: {e}")))?;
        let get = |k: &str| -> Result<Option<Vec<u8>>> {
            Ok(t.get(k).map_err(storage)?.map(|v| v.value().to_vec()))
        };
        read(&get)
    }

    fn corrupt(&self, why: String) -> Error {
        Error::StateCorrupt {
            path: self.path.clone(),
            why,
        }
    }

    fn required(&self, k: &str, v: Option<Vec<u8>>) -> Result<Vec<u8>> {
        v.ok_or_else(|| self.corrupt(format!("`{k}` is missing")))
    }

    fn array32(&self, k: &str, v: Option<Vec<u8>>) -> Result<[u8; 32]> {
        self.required(k, v)?
            .try_into()
            .map_err(|_| self.corrupt(format!("`{k}` is not 32 bytes")))
    }

    fn number(&self, k: &str, v: Vec<u8>) -> Result<u64> {
        v.try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| self.corrupt(format!("`{k}` is not an 8-byte number")))
    }

    /// Loads what the ceremony fixed: the ids and A.
    pub fn meta(&self) -> Result<Meta> {
        self.read_meta(|get| {
            let text = |k: &str| -> Result<String> {
                String::from_utf8(self.required(k, get(k)?)?)
                    .map_err(|_| self.corrupt(format!("`{k}` is not text")))
            };
            if self.required("format", get("format")?)? != b"breakglass-state/v1" {
                return Err(self.corrupt("unknown state format".into()));
            }
            Ok(Meta {
                daemon_id: text("daemon_id")?,
                ceremony_id: text("ceremony_id")?,
                authority_public: self.array32("authority_public", get("authority_public")?)?,
            })
        })
    }

    /// Loads the current epoch: its number, policy, seal and start.
    pub fn epoch(&self) -> Result<StoredEpoch> {
        self.read_meta(|get| {
            let policy = Policy::from_canonical_json(&self.required("policy", get("policy")?)?)
                .map_err(|e| self.corrupt(e.to_string()))?;
            let policy_digest = self.array32("policy_digest", get("policy_digest")?)?;
            if policy.digest()? != policy_digest {
                return Err(self.corrupt("the stored policy does not match its digest".into()));
            }
            let number = match get(EPOCH)? {
                Some(v) => self.number(EPOCH, v)?,
                None => breakglass_proto::signing::FIRST_EPOCH,
            };
            let since = get(EPOCH_SINCE)?
                .map(|v| self.number(EPOCH_SINCE, v))
                .transpose()?;
            Ok(StoredEpoch {
                number,
                policy,
                policy_digest,
                seal: self.required("seal", get("seal")?)?,
                since,
            })
        })
    }

    /// D's signed integrity statement, if the state has one (states made before
    /// it existed get one at their first start).
    pub fn integrity(&self) -> Result<Option<crate::crypto::integrity::Signed>> {
        let tx = self.db()?.begin_read().map_err(storage)?;
        let t = tx.open_table(META).map_err(storage)?;
        let v = t.get(INTEGRITY).map_err(storage)?;
        v.map(|v| {
            serde_json::from_slice(v.value())
                .map_err(|e| corrupt_record(&self.path, "integrity record", e))
        })
        .transpose()
    }

    /// Records the integrity statement of a state that had none.
    pub fn set_integrity(&self, signed: &crate::crypto::integrity::Signed) -> Result<()> {
        self.write(|tx| {
            let mut t = tx.open_table(META).map_err(storage)?;
            t.insert(
                INTEGRITY,
                serde_json::to_vec(signed).map_err(storage)?.as_slice(),
            )
            .map_err(storage)?;
            Ok(())
        })
    }

    /// Share commitments by custodian id.
    pub fn commitments(&self) -> Result<BTreeMap<String, Commitment>> {
        let tx = self.db()?.begin_read().map_err(storage)?;
        let t = tx.open_table(COMMITMENTS).map_err(storage)?;
        let mut out = BTreeMap::new();
        for row in t.iter().map_err(storage)? {
            let (k, v) = row.map_err(storage)?;
            let c: Commitment =
                serde_json::from_slice(v.value()).map_err(|e| Error::StateCorrupt {
                    path: self.path.clone(),
                    why: format!("commitment: {e}"),
                })?;
            out.insert(k.value().to_string(), c);
        }
        Ok(out)
    }

    /// One request.
    pub fn request(&self, id: &str) -> Result<Option<Request>> {
        let tx = self.db()?.begin_read().map_err(storage)?;
        let t = tx.open_table(REQUESTS).map_err(storage)?;
        let v = t.get(id).map_err(storage)?;
        v.map(|v| {
            serde_json::from_slice(v.value()).map_err(|e| corrupt_record(&self.path, "request", e))
        })
        .transpose()
    }

    /// All requests, newest first.
    pub fn requests(&self) -> Result<Vec<Request>> {
        let tx = self.db()?.begin_read().map_err(storage)?;
        let t = tx.open_table(REQUESTS).map_err(storage)?;
        let mut out: Vec<Request> = Vec::new();
        for row in t.iter().map_err(storage)? {
            let (_, v) = row.map_err(storage)?;
            out.push(
                serde_json::from_slice(v.value())
                    .map_err(|e| corrupt_record(&self.path, "request", e))?,
            );
        }
        out.sort_by(|a, b| b.opened_at.cmp(&a.opened_at).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Writes requests, their audit records (plus a signed checkpoint where due) and the
    /// webhook outbox items in one durable transaction; returns the entries appended.
    pub fn commit(&self, requests: &[&Request], records: Vec<Record>) -> Result<Vec<AuditEntry>> {
        self.write(|tx| self.commit_in(tx, requests, records))
    }

    /// [`Store::commit`]'s writes, inside a transaction that may write more.
    fn commit_in(
        &self,
        tx: &redb::WriteTransaction,
        requests: &[&Request],
        records: Vec<Record>,
    ) -> Result<Vec<AuditEntry>> {
        let mut t = tx.open_table(REQUESTS).map_err(storage)?;
        for r in requests {
            t.insert(
                r.id.as_str(),
                serde_json::to_vec(r).map_err(storage)?.as_slice(),
            )
            .map_err(storage)?;
            index::index(tx, r)?;
        }
        let mut audit = tx.open_table(AUDIT).map_err(storage)?;
        let entries = append_in(&mut audit, records, self.checkpointer.as_ref())?;
        readiness::note(tx, requests, &entries)?;
        if !self.routes.is_empty() {
            let mut outbox = tx.open_table(OUTBOX).map_err(storage)?;
            let fresh = serde_json::to_vec(&OutboxState {
                attempts: 0,
                next_at: 0,
                last_error: String::new(),
            })
            .map_err(storage)?;
            for e in &entries {
                for r in self.routes.iter().filter(|r| r.wants(e.event.kind())) {
                    outbox
                        .insert((e.seq, r.name.as_str()), fresh.as_slice())
                        .map_err(storage)?;
                }
            }
        }
        Ok(entries)
    }

    /// A small durable write that needs fresh pages, as a real call would:
    /// after a write error it proves (or disproves) that writes work again,
    /// so health does not report SERVING while the disk is still full.
    pub fn probe_write(&self, now: u64) -> Result<()> {
        self.write(|tx| {
            let mut t = tx.open_table(META).map_err(storage)?;
            t.insert(PROBE, now.to_be_bytes().as_slice())
                .map_err(storage)?;
            Ok(())
        })
    }
}
