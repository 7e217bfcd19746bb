//! The daemon's operations, independent of the transport: each call runs the
//! engine's checks, the crypto, and one durable store commit, in that order.
//! The gRPC handlers in `server` only translate to and from this.
//!
//! Memory-only state (invariants 1 and 3): per collecting request, the
//! ephemeral key E_req and the verified shares received so far. They are
//! dropped (and so zeroized) when the request unlocks, is cancelled, expires,
//! or the daemon shuts down. State-changing calls are serialised by one lock,
//! so two shares completing a quorum at the same instant mint exactly once.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::{OsRng, RngCore};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use breakglass_proto::{signing, transport};

use crate::crypto::authority::{AuthorityKey, AuthorityPublic};
use crate::crypto::credential::{self, Grant, SshParams};
use crate::crypto::envelope::encrypt_to_ssh;
use crate::crypto::sshcert;
use crate::crypto::{seal, shamir};
use crate::engine::auth::{self, Actor, SignedBy};
use crate::engine::event::{Event, Record};
use crate::engine::policy::{CredentialKind, Policy};
use crate::engine::request::{OpenParams, Request, State, StoredCredential};
use crate::engine::share::{verify_share, Commitment, VerifiedShare};
use crate::error::{Error, Result};
use crate::store::audit::AuditEntry;
use crate::store::{Checkpointer, Meta, Route, Store, DAEMON_KEY_FILE};
use tokio::sync::{broadcast, Notify};

/// Length of the client's open nonce.
pub const NONCE_LEN: usize = 16;

/// Seconds since the epoch; injected so tests control time.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    })
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

/// A commander's open call.
#[derive(Debug, Clone)]
pub struct OpenCall {
    /// Scope.
    pub scope: String,
    /// Reason.
    pub reason: String,
    /// TTL.
    pub ttl_seconds: u64,
    /// OpenSSH public key to certify (required when the scope mints SSH certificates).
    pub ssh_public_key: String,
    /// Client nonce.
    pub nonce: Vec<u8>,
    /// Signature.
    pub sig: Sig,
}

/// One revoked credential in the published list (also the entry of the JSON list
/// `breakglass revocations --json` writes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RevokedItem {
    /// Request id (token `jti`).
    pub request_id: String,
    /// SSH certificate key id, or empty.
    pub ssh_key_id: String,
    /// SSH certificate serial, or 0.
    pub ssh_serial: u64,
    /// When revoked.
    pub revoked_at: u64,
    /// Who revoked.
    pub revoked_by: String,
    /// Why.
    pub reason: String,
    /// When it expires anyway.
    pub expires_at: u64,
}

/// The revocation list, signed by D.
#[derive(Debug, Clone)]
pub struct RevocationList {
    /// Entries, oldest revocation first.
    pub items: Vec<RevokedItem>,
    /// When made.
    pub generated_at: u64,
    /// D's signature over `signing::revocation_list`.
    pub signature: [u8; 64],
}

/// A custodian's submission.
#[derive(Debug, Clone)]
pub struct SubmitCall {
    /// Request id.
    pub request_id: String,
    /// Sealed share.
    pub sealed_share: Vec<u8>,
    /// Signature.
    pub sig: Sig,
}

/// Progress after an accepted share.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The request now.
    pub request: Request,
    /// Accepted so far.
    pub accepted: u32,
    /// True if this share unlocked.
    pub unlocked: bool,
}

/// What lives only in memory for a collecting request. Dropping it wipes E_req
/// (x25519 `StaticSecret` zeroizes on drop) and the shares (`VerifiedShare` does too).
struct Live {
    ephemeral: StaticSecret,
    shares: Vec<VerifiedShare>,
}

/// The daemon.
pub struct Daemon {
    meta: Meta,
    commitments: BTreeMap<String, Commitment>,
    store: Store,
    daemon_key: SigningKey,
    live: Mutex<HashMap<String, Live>>,
    clock: Clock,
    events: broadcast::Sender<AuditEntry>,
    wake: Arc<Notify>,
}

/// Reads the daemon key D from the state directory.
pub fn load_daemon_key(state_dir: &Path) -> Result<SigningKey> {
    let path = state_dir.join(DAEMON_KEY_FILE);
    let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::StateMissing {
            path: state_dir.to_path_buf(),
            why: format!("{DAEMON_KEY_FILE} is missing"),
        },
        _ => Error::io(&path, e),
    })?);
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), seed.as_mut()).map_err(|_| Error::StateCorrupt {
        path: path.clone(),
        why: "not a 32-byte hex key".into(),
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

impl Daemon {
    /// Opens the state directory, cancels requests a previous run left collecting
    /// (their E_req died with it), and records the start.
    pub fn start(state_dir: &Path, clock: Clock) -> Result<Daemon> {
        Daemon::start_on(Store::open(state_dir)?, state_dir, clock, Vec::new())
    }

    /// As [`Daemon::start`], on an opened store and with webhook routes for the outbox.
    pub fn start_on(
        mut store: Store,
        state_dir: &Path,
        clock: Clock,
        routes: Vec<Route>,
    ) -> Result<Daemon> {
        let daemon_key = load_daemon_key(state_dir)?;
        let meta = store.meta()?;
        let commitments = store.commitments()?;
        for c in &meta.policy.custodians {
            if !commitments.contains_key(&c.id) {
                return Err(Error::StateCorrupt {
                    path: store.path().to_path_buf(),
                    why: format!("no share commitment for custodian `{}`", c.id),
                });
            }
        }
        store.set_checkpointer(Checkpointer {
            daemon_id: meta.daemon_id.clone(),
            key: daemon_key.clone(),
        });
        store.set_routes(routes);
        let now = clock();
        let mut records = Vec::new();
        let mut abandoned = Vec::new();
        for r in store.requests()? {
            if let Some((r, recs)) = r.abandon(
                now,
                "the daemon restarted; its ephemeral key and the shares collected so far were wiped: open a new request",
            ) {
                abandoned.push(r);
                records.extend(recs);
            }
        }
        records.push(Record {
            time: now,
            actor: "daemon".into(),
            request_id: None,
            event: Event::DaemonStarted {
                policy_digest: hex::encode(meta.policy_digest),
                version: env!("CARGO_PKG_VERSION").into(),
            },
        });
        store.commit(&abandoned.iter().collect::<Vec<_>>(), records)?;
        let (events, _) = broadcast::channel(1024);
        Ok(Daemon {
            meta,
            commitments,
            store,
            daemon_key,
            live: Mutex::new(HashMap::new()),
            clock,
            events,
            wake: Arc::new(Notify::new()),
        })
    }

    /// Commits and then tells watchers and the webhook outbox.
    fn commit(&self, requests: &[&Request], records: Vec<Record>) -> Result<()> {
        let entries = self.store.commit(requests, records)?;
        let any = !entries.is_empty();
        for e in entries {
            // No receiver is fine: nobody is watching.
            let _ = self.events.send(e);
        }
        if any {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Live audit entries, as they are committed.
    pub fn subscribe(&self) -> broadcast::Receiver<AuditEntry> {
        self.events.subscribe()
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
            }],
        )
    }

    /// Current time from the injected clock.
    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    /// The ceremony output and policy.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.meta.policy
    }

    /// The daemon's public key D.
    pub fn daemon_public(&self) -> VerifyingKey {
        self.daemon_key.verifying_key()
    }

    /// The authority public key A.
    pub fn authority(&self) -> Result<AuthorityPublic> {
        AuthorityPublic::from_bytes(&self.meta.authority_public)
    }

    /// The store (for audit reads).
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn lock(&self) -> Result<MutexGuard<'_, HashMap<String, Live>>> {
        // A poisoned lock means a panic mid-operation; refuse rather than guess at the state.
        self.live
            .lock()
            .map_err(|_| Error::Internal("daemon state lock poisoned; restart the daemon".into()))
    }

    fn load(&self, id: &str) -> Result<Request> {
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

    /// D's signature over the request's current view.
    pub fn sign_view(&self, r: &Request) -> [u8; 64] {
        let approvals: Vec<(String, u64)> = r
            .approvals
            .iter()
            .map(|a| (a.custodian.clone(), a.at))
            .collect();
        let payload = signing::request_view(
            &r.digest,
            &signing::RequestStatus {
                state: state_code(r.state),
                approvals: &approvals,
                closed_at: r.closed_at,
                close_reason: &r.close_reason,
                credential_expires_at: r.credential.as_ref().map(|c| c.expires_at).unwrap_or(0),
                revoked_at: r.revocation.as_ref().map(|x| x.at).unwrap_or(0),
                revoked_by: r.revocation.as_ref().map(|x| x.by.as_str()).unwrap_or(""),
                revoke_reason: r
                    .revocation
                    .as_ref()
                    .map(|x| x.reason.as_str())
                    .unwrap_or(""),
            },
        );
        self.daemon_key.sign(&payload).to_bytes()
    }

    /// Opens a request.
    pub fn open(&self, call: OpenCall) -> Result<Request> {
        if call.nonce.len() != NONCE_LEN {
            return Err(Error::invalid(
                "nonce",
                format!(
                    "is {} bytes; must be {NONCE_LEN} random bytes",
                    call.nonce.len()
                ),
            ));
        }
        let now = self.now();
        let policy = self.policy();
        let payload = signing::open_request(
            &self.meta.daemon_id,
            &call.sig.signer_id,
            &call.scope,
            &call.reason,
            call.ttl_seconds,
            &call.ssh_public_key,
            &call.nonce,
            call.sig.signed_at,
        );
        let who = auth::authenticate_commander(policy, &call.sig.by(), &payload, now)?;
        policy.authorize_open(who.id(), &call.scope, call.ttl_seconds)?;
        let scope = policy.scope(&call.scope)?;
        let ssh_public_key = match (scope.mints(CredentialKind::Ssh), call.ssh_public_key.trim().is_empty()) {
            (true, true) => {
                return Err(Error::SshKey(format!(
                    "scope `{}` mints an OpenSSH certificate, so the key to certify is needed: pass --ssh-key ~/.ssh/id_ed25519.pub",
                    scope.name
                )))
            }
            (true, false) => sshcert::normalise_subject_key(&call.ssh_public_key)?,
            (false, true) => String::new(),
            (false, false) => {
                return Err(Error::SshKey(format!(
                    "scope `{}` mints no SSH certificate; leave the SSH key out",
                    scope.name
                )))
            }
        };
        let id = signing::request_id(&payload);
        let mut live = self.lock()?;
        if self.store.request(&id)?.is_some() {
            return Err(Error::RequestExists { id });
        }
        // Bound the requests one commander can keep collecting (each holds an E_req in memory).
        let mut mine = Vec::new();
        for rid in live.keys() {
            if let Some(r) = self.store.request(rid)? {
                if r.requester == who.id() && r.state == State::Collecting {
                    mine.push(rid.clone());
                }
            }
        }
        if mine.len() as u64 >= u64::from(policy.max_open_per_commander) {
            mine.sort();
            return Err(Error::TooManyOpen {
                commander: who.id().to_string(),
                open: u32::try_from(mine.len()).unwrap_or(u32::MAX),
                ids: mine.join(", "),
                limit: policy.max_open_per_commander,
            });
        }
        let ephemeral = StaticSecret::random_from_rng(OsRng);
        let (r, recs) = Request::open(
            OpenParams {
                id: id.clone(),
                daemon_id: self.meta.daemon_id.clone(),
                requester: who.id().to_string(),
                scope: call.scope,
                reason: call.reason,
                ttl_seconds: call.ttl_seconds,
                window_seconds: policy.collection_window_seconds,
                threshold: u32::from(policy.threshold),
                ephemeral_public: PublicKey::from(&ephemeral).to_bytes(),
                ssh_public_key,
            },
            now,
        )?;
        self.commit(&[&r], recs)?;
        live.insert(
            id,
            Live {
                ephemeral,
                shares: Vec::new(),
            },
        );
        Ok(r)
    }

    /// Accepts one share; the share that completes the quorum also unlocks and mints.
    pub fn submit(&self, call: SubmitCall) -> Result<Progress> {
        // Cheap checks first: size, membership, request state, duplicates; then the
        // signature; then decryption and the commitment.
        if call.sealed_share.len() != transport::SEALED_LEN {
            return Err(Error::ShareMalformed {
                custodian: call.sig.signer_id.clone(),
                why: format!(
                    "the sealed share is {} bytes; expected {} (seal it with `breakglass share submit`)",
                    call.sealed_share.len(),
                    transport::SEALED_LEN
                ),
            });
        }
        let policy = self.policy();
        policy.custodian(&call.sig.signer_id)?;
        let now = self.now();
        let mut live = self.lock()?;
        let r = self.load(&call.request_id)?;
        let collecting = r.collecting(now)?;
        collecting.check_not_approved(&call.sig.signer_id)?;
        if policy.separation_of_duties && policy.same_person(&call.sig.signer_id, &r.requester) {
            return Err(Error::OwnRequest {
                id: r.id.clone(),
                custodian: call.sig.signer_id.clone(),
                requester: r.requester.clone(),
            });
        }
        let payload = signing::submit_share(
            &self.meta.daemon_id,
            &r.id,
            &r.digest,
            &call.sig.signer_id,
            &call.sealed_share,
            call.sig.signed_at,
        );
        let who = auth::authenticate_custodian(policy, &call.sig.by(), &payload, now)?;
        let entry = live.get_mut(&r.id).ok_or_else(|| {
            Error::Internal(format!(
                "request `{}` is collecting but its ephemeral key is gone",
                r.id
            ))
        })?;
        let checked = transport::open_share(
            &entry.ephemeral,
            &r.digest,
            &r.id,
            who.id(),
            &call.sealed_share,
        )
        .map_err(|e| Error::ShareMalformed {
            custodian: who.id().to_string(),
            why: e.to_string(),
        })
        .and_then(|plain| {
            let com = self.commitments.get(who.id()).ok_or_else(|| {
                Error::Internal(format!("no commitment for custodian `{}`", who.id()))
            })?;
            verify_share(&who, com, &self.meta.ceremony_id, &plain)
        });
        let share = match checked {
            Ok(s) => s,
            Err(e) => {
                // Attributed (the signature verified), so it goes in the record; the request is unchanged.
                self.commit(
                    &[],
                    vec![Record {
                        time: now,
                        actor: who.id().to_string(),
                        request_id: Some(r.id.clone()),
                        event: Event::ShareRejected {
                            custodian: who.id().to_string(),
                            reason: e.to_string(),
                        },
                    }],
                )?;
                return Err(e);
            }
        };
        let accepted = collecting.accept(who.id(), now)?;
        let count = u32::try_from(accepted.request.approvals.len()).unwrap_or(u32::MAX);
        if !accepted.quorum {
            self.commit(&[&accepted.request], accepted.records)?;
            entry.shares.push(share);
            return Ok(Progress {
                request: accepted.request,
                accepted: count,
                unlocked: false,
            });
        }

        // Quorum: rebuild R, open the seal, derive A, mint, encrypt to the requester.
        // R, S and A's key are dropped (wiped) at the end of this block whatever happens.
        let mut shares: Vec<VerifiedShare> = std::mem::take(&mut entry.shares);
        shares.push(share);
        let minted = self.mint(&accepted.request, &shares, now);
        let (unlocked, records) = match minted {
            Ok((cred, kinds)) => {
                let mut records = accepted.records;
                let (u, recs) = accepted.request.collecting(now)?.unlock(cred, kinds, now)?;
                records.extend(recs);
                (u, records)
            }
            Err(e) => {
                // Put the earlier shares back so the request can still complete.
                shares.pop();
                entry.shares = shares;
                return Err(e);
            }
        };
        match self.commit(&[&unlocked], records) {
            Ok(()) => {
                // Invariant 3: the shares and E_req go now.
                drop(shares);
                live.remove(&r.id);
                Ok(Progress {
                    request: unlocked,
                    accepted: count,
                    unlocked: true,
                })
            }
            Err(e) => {
                shares.pop();
                entry.shares = shares;
                Err(e)
            }
        }
    }

    fn mint(
        &self,
        r: &Request,
        shares: &[VerifiedShare],
        now: u64,
    ) -> Result<(StoredCredential, Vec<String>)> {
        let root = shamir::combine(shares, r.threshold)?;
        let seed = seal::unseal(
            &root,
            &self.meta.seal,
            &self.meta.ceremony_id,
            &self.meta.policy_digest,
        )?;
        drop(root);
        let a = AuthorityKey::derive(&seed);
        drop(seed);
        if a.public().to_bytes() != self.meta.authority_public {
            return Err(Error::Reconstruction(
                "the rebuilt authority key is not the published one".into(),
            ));
        }
        let scope = self.policy().scope(&r.scope)?;
        let approvers: Vec<String> = r.approvals.iter().map(|x| x.custodian.clone()).collect();
        let bundle = credential::mint(
            &a,
            &Grant {
                daemon_id: &self.meta.daemon_id,
                request_id: &r.id,
                requester: &r.requester,
                scope: &r.scope,
                principals: &scope.principals,
                reason: &r.reason,
                approvers: &approvers,
                now,
                ttl_seconds: r.ttl_seconds,
                token: scope.mints(CredentialKind::Token),
                ssh: if scope.mints(CredentialKind::Ssh) {
                    Some(SshParams {
                        public_key: &r.ssh_public_key,
                        extensions: &scope.ssh_extensions,
                        clock_skew: self.policy().clock_skew_seconds,
                    })
                } else {
                    None
                },
            },
        )?;
        drop(a);
        let requester = self.policy().commander(&r.requester)?;
        let plain = Zeroizing::new(
            serde_json::to_vec(&bundle).map_err(|e| Error::Internal(e.to_string()))?,
        );
        let sealed = encrypt_to_ssh(&requester.member.ssh_key, &plain)?;
        Ok((
            StoredCredential {
                expires_at: bundle.expires_at,
                sealed,
                ssh_serial: bundle.ssh_serial,
                ssh_key_id: bundle.ssh_key_id.clone(),
            },
            bundle.kinds(),
        ))
    }

    /// Authenticates a call that the request's requester or any custodian may make.
    fn requester_or_custodian(
        &self,
        r: &Request,
        sig: &Sig,
        payload: &[u8],
        now: u64,
        deny: impl FnOnce(String, String) -> Error,
    ) -> Result<Actor> {
        let actor = auth::authenticate_any(self.policy(), &sig.by(), payload, now)?;
        if let Actor::Commander(c) = &actor {
            if c.id() != r.requester {
                return Err(deny(r.id.clone(), c.id().to_string()));
            }
        }
        Ok(actor)
    }

    /// Cancels a collecting request (its requester or any custodian).
    pub fn cancel(&self, request_id: &str, reason: &str, sig: Sig) -> Result<Request> {
        check_reason(reason)?;
        let now = self.now();
        let mut live = self.lock()?;
        let r = self.load(request_id)?;
        let collecting = r.collecting(now)?;
        let payload = signing::cancel_request(
            &self.meta.daemon_id,
            &r.id,
            &r.digest,
            &sig.signer_id,
            reason,
            sig.signed_at,
        );
        let actor = self.requester_or_custodian(&r, &sig, &payload, now, |id, caller| {
            Error::NotAllowedToCancel { id, caller }
        })?;
        let (c, recs) = collecting.cancel(actor.id(), reason, now);
        self.commit(&[&c], recs)?;
        live.remove(&r.id);
        Ok(c)
    }

    /// Revokes a minted credential (its requester or any custodian).
    pub fn revoke(&self, request_id: &str, reason: &str, sig: Sig) -> Result<Request> {
        check_reason(reason)?;
        let now = self.now();
        let _guard = self.lock()?;
        let r = self.load(request_id)?;
        let payload = signing::revoke_credential(
            &self.meta.daemon_id,
            &r.id,
            &r.digest,
            &sig.signer_id,
            reason,
            sig.signed_at,
        );
        let actor = self.requester_or_custodian(&r, &sig, &payload, now, |id, caller| {
            Error::NotAllowedToRevoke { id, caller }
        })?;
        let (revoked, recs) = r.revoke(actor.id(), reason, now)?;
        self.commit(&[&revoked], recs)?;
        Ok(revoked)
    }

    /// The revocation list, signed by D.
    pub fn revocations(&self) -> Result<RevocationList> {
        let mut items: Vec<RevokedItem> = self
            .store
            .requests()?
            .into_iter()
            .filter_map(|r| {
                let rev = r.revocation?;
                let cred = r.credential?;
                Some(RevokedItem {
                    request_id: r.id,
                    ssh_key_id: cred.ssh_key_id.unwrap_or_default(),
                    ssh_serial: cred.ssh_serial.unwrap_or(0),
                    revoked_at: rev.at,
                    revoked_by: rev.by,
                    reason: rev.reason,
                    expires_at: cred.expires_at,
                })
            })
            .collect();
        items.sort_by(|a, b| {
            a.revoked_at
                .cmp(&b.revoked_at)
                .then_with(|| a.request_id.cmp(&b.request_id))
        });
        let generated_at = self.now();
        let entries: Vec<signing::RevokedEntry<'_>> = items
            .iter()
            .map(|i| signing::RevokedEntry {
                request_id: &i.request_id,
                ssh_key_id: &i.ssh_key_id,
                ssh_serial: i.ssh_serial,
                revoked_at: i.revoked_at,
                expires_at: i.expires_at,
            })
            .collect();
        let signature = self
            .daemon_key
            .sign(&signing::revocation_list(
                &self.meta.daemon_id,
                generated_at,
                &entries,
            ))
            .to_bytes();
        Ok(RevocationList {
            items,
            generated_at,
            signature,
        })
    }

    /// The requester's encrypted credential.
    pub fn fetch(&self, request_id: &str, sig: Sig) -> Result<(Request, StoredCredential)> {
        let now = self.now();
        let r = self.load(request_id)?;
        let payload = signing::fetch_credential(
            &self.meta.daemon_id,
            &r.id,
            &r.digest,
            &sig.signer_id,
            sig.signed_at,
        );
        let who = auth::authenticate_commander(self.policy(), &sig.by(), &payload, now)?;
        let (cred, recs) = r.fetch(who.id(), now)?;
        let cred = cred.clone();
        self.commit(&[], recs)?;
        Ok((r, cred))
    }

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

    /// Expires collecting requests whose window has passed; returns their ids.
    pub fn sweep(&self) -> Result<Vec<String>> {
        let now = self.now();
        let mut live = self.lock()?;
        let ids: Vec<String> = live.keys().cloned().collect();
        let mut expired = Vec::new();
        for id in ids {
            if let Some(r) = self.store.request(&id)? {
                if let Some((e, recs)) = r.expire(now) {
                    self.commit(&[&e], recs)?;
                    live.remove(&id);
                    expired.push(id);
                }
            }
        }
        Ok(expired)
    }

    /// Wipes all memory-only secrets, cancels what was collecting, records the stop.
    pub fn shutdown(&self) -> Result<()> {
        let now = self.now();
        let mut live = self.lock()?;
        let mut closed = Vec::new();
        let mut records = Vec::new();
        for id in live.keys() {
            if let Some(r) = self.store.request(id)? {
                if let Some((c, recs)) = r.abandon(
                    now,
                    "the daemon shut down; shares collected so far were wiped: open a new request",
                ) {
                    closed.push(c);
                    records.extend(recs);
                }
            }
        }
        live.clear();
        records.push(Record {
            time: now,
            actor: "daemon".into(),
            request_id: None,
            event: Event::DaemonStopped,
        });
        self.commit(&closed.iter().collect::<Vec<_>>(), records)
    }
}

/// Reasons are kept in the audit log; refuse novels.
fn check_reason(reason: &str) -> Result<()> {
    if reason.len() > crate::engine::policy::MAX_REASON_LEN {
        return Err(Error::invalid("reason", "is longer than 1024 bytes"));
    }
    Ok(())
}

/// Numeric `RequestState` of the proto.
pub fn state_code(s: State) -> i32 {
    match s {
        State::Collecting => 1,
        State::Unlocked => 2,
        State::Expired => 3,
        State::Cancelled => 4,
    }
}

/// A fresh random nonce for an open call.
pub fn new_nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut n);
    n
}
