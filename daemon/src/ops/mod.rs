//! The daemon's operations, independent of the transport, one file each:
//! decode (done by `server`) → load → decide (the engine, pure) → crypto → one
//! store commit. The gRPC handlers in `server` only translate to and from this.
//!
//! Memory-only state (invariants 1 and 3): the live map holds one
//! [`Collecting`] per collecting request, which owns E_req and the verified
//! shares. A state leaves the map when it unlocks, is cancelled, expires or
//! the daemon stops, and dropping it wipes what it owns. State-changing calls
//! are serialised by one lock (the map and the injected RNG sit under it), so
//! two shares completing a quorum at the same instant mint exactly once.

mod attest;
mod cancel;
mod change;
mod epoch;
mod fetch;
mod lifecycle;
mod open;
mod read;
mod readiness;
mod revoke;
mod submit;
mod unlock;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use ed25519_dalek::VerifyingKey;
use rand_core::CryptoRngCore;
use tokio::sync::{broadcast, Notify};

use crate::crypto::daemon_key::DaemonKey;
use crate::engine::auth::{self, Actor, SignedBy, Verified};
use crate::engine::collecting::Collecting;
use crate::engine::epoch::Epoch;
use crate::engine::event::{Event, Record};
use crate::engine::policy::Policy;
use crate::engine::request::Request;
use crate::error::{Error, Result};
use crate::metrics::{Gauges, Metrics};
use crate::store::audit::AuditEntry;
use crate::store::{Meta, Store};
use breakglass_formats::audit::SignedWith;
use breakglass_formats::keys::AuthorityPublic;

pub use attest::AttestCall;
pub use change::{ChangeState, ConfirmCall, ProposeCall};
pub use open::OpenCall;
pub use revoke::RevocationList;
pub use submit::{Progress, SubmitCall};

/// Seconds since the epoch; injected so tests control time.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Randomness (E_req, SSH certificate nonces); injected so tests can seed it.
pub type Rng = Box<dyn CryptoRngCore + Send>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    })
}

/// The operating system's RNG.
pub fn system_rng() -> Rng {
    Box::new(rand_core::OsRng)
}

/// A signature as received from a caller.
#[derive(Debug, Clone)]
pub struct Sig {
    /// Signer id.
    pub signer_id: String,
    /// Signing time.
    pub signed_at: u64,
    /// Signature bytes.
    pub signature: Vec<u8>,
}

impl Sig {
    fn by(&self) -> SignedBy<'_> {
        SignedBy {
            signer_id: &self.signer_id,
            signed_at: self.signed_at,
            signature: &self.signature,
        }
    }
}

/// What the lock guards: the live states, the pending attestation keys, and
/// the RNG that makes their keys.
struct Live {
    requests: HashMap<String, Collecting>,
    attestations: crate::engine::attest::Attestations,
    /// The confirming pending epoch's X25519 key (memory only: a new one
    /// after each start; confirmations are sealed to it).
    pending_key: Option<change::PendingKey>,
    rng: Rng,
}

/// The policy of one epoch, kept alive while a call uses it.
pub struct PolicyRef(Arc<Epoch>);

impl std::ops::Deref for PolicyRef {
    type Target = Policy;
    fn deref(&self) -> &Policy {
        &self.0.policy
    }
}

/// The daemon.
pub struct Daemon {
    meta: Meta,
    /// The current epoch. Replaced only while the `live` lock is held, so a
    /// call that reads it under that lock sees one epoch until it commits.
    current: std::sync::RwLock<Arc<Epoch>>,
    /// When the sweep last looked for due attestations.
    due_checked_at: std::sync::atomic::AtomicU64,
    store: Store,
    key: DaemonKey,
    live: Mutex<Live>,
    clock: Clock,
    events: broadcast::Sender<AuditEntry>,
    wake: Arc<Notify>,
    stopping: tokio::sync::watch::Sender<bool>,
    writable: tokio::sync::watch::Sender<bool>,
    metrics: Arc<Metrics>,
}

impl Daemon {
    /// Commits and then tells watchers and the webhook outbox.
    fn commit(&self, requests: &[&Request], records: Vec<Record>) -> Result<()> {
        let entries = self.wrote(self.store.commit(requests, records))?;
        self.announce(requests, entries);
        Ok(())
    }

    /// Counts committed entries and tells watchers and the webhook sender.
    fn announce(&self, requests: &[&Request], entries: Vec<AuditEntry>) {
        self.metrics.committed(
            &entries,
            |id| requests.iter().find(|r| r.id == id).map(|r| r.opened_at),
            |id| {
                requests
                    .iter()
                    .any(|r| r.id == id && r.kind == crate::engine::request::Kind::Drill)
            },
        );
        let any = !entries.is_empty();
        for e in entries {
            // No receiver is fine: nobody is watching.
            let _ = self.events.send(e);
        }
        if any {
            self.wake.notify_one();
        }
    }

    /// `commit` for one request, in the shape the engine's transitions take.
    fn commit_one(&self, r: &Request, records: Vec<Record>) -> Result<()> {
        self.commit(&[r], records)
    }

    /// Live audit entries, as they are committed.
    pub fn subscribe(&self) -> broadcast::Receiver<AuditEntry> {
        self.events.subscribe()
    }

    /// Becomes true when the daemon starts to stop: streams end on it, so
    /// connected watchers do not hold the shutdown.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Follows the store's health: a storage error turns `writable` false
    /// (health NOT_SERVING), the next successful write turns it true again.
    fn wrote<T>(&self, r: Result<T>) -> Result<T> {
        match &r {
            Ok(_) => {
                self.writable
                    .send_if_modified(|w| !std::mem::replace(w, true));
            }
            Err(Error::Storage(_)) => {
                self.writable
                    .send_if_modified(|w| std::mem::replace(w, false));
            }
            Err(_) => {}
        }
        r
    }

    /// The operational counters (the metrics listener renders them).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The figures read at scrape time: requests collecting now and whether the
    /// store accepts writes.
    pub fn gauges(&self) -> Gauges {
        let collecting = self
            .live
            .lock()
            .map(|l| l.requests.len() as u64)
            .unwrap_or(0);
        Gauges {
            collecting,
            writable: *self.writable.borrow(),
        }
    }

    /// False from a failed write until a write succeeds again: the health
    /// service reports NOT_SERVING meanwhile.
    pub fn writable(&self) -> tokio::sync::watch::Receiver<bool> {
        self.writable.subscribe()
    }

    /// Tells every stream to end (the first step of a shutdown).
    pub fn begin_stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Notified after every commit (the webhook sender waits on it).
    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Records that a drill ran against this daemon.
    pub fn record_drill(&self, note: &str) -> Result<()> {
        let now = self.now();
        self.commit(
            &[],
            vec![Record {
                time: now,
                actor: "drill".into(),
                request_id: None,
                event: Event::Drill { note: note.into() },
                signed_with: None,
            }],
        )
    }

    /// Current time from the injected clock.
    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    /// What the ceremony fixed: the ids and A.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The current epoch: policy, seal, commitments.
    pub fn epoch(&self) -> Arc<Epoch> {
        match self.current.read() {
            Ok(e) => e.clone(),
            // A writer panicked mid-swap; the Arc it held is still whole.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Refuses a call checked against `seen` if the epoch changed since (a
    /// change committed meanwhile): called under the `live` lock, after
    /// which the epoch cannot change until the lock is released.
    fn same_epoch(&self, seen: &Epoch) -> Result<()> {
        let now = self.epoch();
        if now.number == seen.number && now.policy_digest == seen.policy_digest {
            return Ok(());
        }
        Err(Error::EpochChanged {
            from: seen.number,
            to: now.number,
        })
    }

    /// The current epoch's policy.
    pub fn policy(&self) -> PolicyRef {
        PolicyRef(self.epoch())
    }

    /// The daemon's public key D.
    pub fn daemon_public(&self) -> VerifyingKey {
        self.key.public()
    }

    /// D's signature over the request's current view.
    pub fn sign_view(&self, r: &Request) -> [u8; 64] {
        self.key.sign_view(r)
    }

    /// The authority public key A.
    pub fn authority(&self) -> Result<AuthorityPublic> {
        AuthorityPublic::from_bytes(&self.meta.authority_public).map_err(|e| Error::StateCorrupt {
            path: self.store.path().to_path_buf(),
            why: e.to_string(),
        })
    }

    /// The store (for audit reads).
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn lock(&self) -> Result<MutexGuard<'_, Live>> {
        // A poisoned lock means a panic mid-operation; refuse rather than guess at the state.
        self.live.lock().map_err(|_| {
            Error::Internal("a previous operation panicked; restart the daemon".into())
        })
    }

    /// A stored request by id (the id's shape is checked first).
    fn load(&self, id: &str) -> Result<Request> {
        crate::engine::policy::plain_text("request_id", id)?;
        if id.is_empty() || id.len() > 64 {
            return Err(Error::invalid(
                "request_id",
                "must be a request id like `req-0123456789abcdef`",
            ));
        }
        self.store
            .request(id)?
            .ok_or_else(|| Error::RequestNotFound { id: id.to_string() })
    }

    /// Authenticates a call that the request's requester or any custodian may
    /// make; a commander who is not the requester is refused on the record.
    fn requester_or_custodian(
        &self,
        call: &'static str,
        r: &Request,
        sig: &Sig,
        payload: &[u8],
        now: u64,
        deny: impl FnOnce(String, String) -> Error,
    ) -> Result<Actor> {
        let policy = self.policy();
        let actor = self.verified(
            call,
            Some(&r.id),
            auth::authenticate_any(self.checks(&policy, now), &sig.by(), payload),
            now,
        )?;
        if let Actor::Commander(c) = &actor {
            if c.id() != r.requester {
                let e = deny(r.id.clone(), c.id().to_string());
                return Err(self.refused_call(call, c, Some(&r.id), e, now));
            }
        }
        Ok(actor)
    }

    /// Records the refusal of a caller whose signature verified (`call_refused`)
    /// and returns the error to answer with.
    fn refused_call(
        &self,
        call: &'static str,
        caller: &dyn Verified,
        request_id: Option<&str>,
        e: Error,
        now: u64,
    ) -> Error {
        let event = Event::CallRefused {
            call: call.to_string(),
            caller: caller.id().to_string(),
            reason: e.to_string(),
        };
        self.audit_refusal(
            caller.id(),
            Some(caller.signed()),
            request_id,
            event,
            e,
            now,
        )
    }

    /// Passes `r` on; a signature that verified but is refused by the
    /// policy's rules for how it was made (no touch, no PIN, a counter that
    /// did not increase, a file key where a security key is required) is
    /// first recorded as a refusal of that signer (`call_refused`).
    fn verified<T>(
        &self,
        call: &'static str,
        request_id: Option<&str>,
        r: Result<T>,
        now: u64,
    ) -> Result<T> {
        match r {
            Err(e @ Error::SignatureRefused { .. }) => {
                let Error::SignatureRefused { signer, signed, .. } = &e else {
                    return Err(e);
                };
                let (signer, signed) = (signer.clone(), signed.clone());
                let event = Event::CallRefused {
                    call: call.to_string(),
                    caller: signer.clone(),
                    reason: e.to_string(),
                };
                Err(self.audit_refusal(&signer, Some(&signed), request_id, event, e, now))
            }
            r => r,
        }
    }

    /// What a signature check needs: the policy (of the epoch the call
    /// uses), the security keys' counters (in the store), and the time.
    fn checks<'a>(&'a self, policy: &'a Policy, now: u64) -> auth::Checks<'a> {
        auth::Checks {
            policy,
            counters: self,
            now,
        }
    }

    /// Writes `event` for a refusal and returns `e`, or the storage error if
    /// even the record cannot be written: nothing is refused off the record.
    /// Failures of the daemon itself (storage, internal) are not the caller's
    /// and are answered as they are.
    fn audit_refusal(
        &self,
        actor: &str,
        signed: Option<&SignedWith>,
        request_id: Option<&str>,
        event: Event,
        e: Error,
        now: u64,
    ) -> Error {
        if matches!(e, Error::Storage(_) | Error::Internal(_)) {
            return e;
        }
        let rec = Record {
            time: now,
            actor: actor.to_string(),
            request_id: request_id.map(str::to_string),
            event,
            signed_with: signed.cloned(),
        };
        match self.commit(&[], vec![rec]) {
            Ok(()) => e,
            Err(store) => store,
        }
    }
}

/// Stamps the records a verified signer caused with how the signature was
/// made, so a reviewer sees how each step was authenticated (issue 13).
fn stamp(mut records: Vec<Record>, who: &dyn Verified) -> Vec<Record> {
    for r in &mut records {
        if r.actor == who.id() && r.signed_with.is_none() {
            r.signed_with = Some(who.signed().clone());
        }
    }
    records
}

impl auth::Counters for Daemon {
    fn advance(&self, fingerprint: &str, counter: u32) -> Result<std::result::Result<(), u32>> {
        self.wrote(self.store.advance(fingerprint, counter))
    }
}

/// Overwrites the calling thread's recent stack with zeros. Libraries (x25519,
/// ed25519, PASETO, OpenSSH signing) leave copies of keys in their stack frames;
/// the operations that touch secrets call this before returning, so nothing of
/// E_req, R, S or A outlives the call in a worker thread's stack (invariant 3).
#[inline(never)]
pub fn scrub_stack() {
    let mut buf = [0u8; 256 * 1024];
    zeroize::Zeroize::zeroize(&mut buf[..]);
    std::hint::black_box(&buf);
}
