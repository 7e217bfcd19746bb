//! The checks the daemon runs on a decoded gRPC call before any state change,
//! in the order `server::grpc` and `service::Daemon` run them, over the fixture
//! instead of a store: signature presence, sizes, membership, request state,
//! the signature itself, policy, share transport and share commitment, and
//! finally the pure state transition (whose result is dropped, never stored).
//!
//! Every decision is the engine's own function, called in the order the
//! daemon's `ops` call them; only the glue is re-written here because the
//! daemon keeps it private: `server::decode::sig` (missing signature or empty
//! signer id), `ops::Daemon::load`'s request-id length check, and taking the
//! live state of a collecting request. Keep them in step with the daemon. Rate
//! limits and the mutual-TLS identity check (`server::grpc`) come before
//! decoding and are not fuzzed here.

use breakglass_daemon::engine::auth::{self, Actor, SignedBy};
use breakglass_daemon::engine::collecting::{Accepted, Collecting, OpenParams};
use breakglass_daemon::engine::policy;
use breakglass_daemon::engine::request::{Request, State};
use breakglass_daemon::engine::share::verify_share;
use breakglass_daemon::{to_status, Error, Result, MAX_MESSAGE_BYTES};
use breakglass_proto::signing::NONCE_LEN;
use breakglass_proto::{pb, signing, transport};
use prost::Message;

use crate::fixture::{world, DAEMON_ID, LINEAGE};

/// Which message an input holds: its first byte, modulo 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `OpenRequestRequest`.
    Open,
    /// `SubmitShareRequest`.
    Submit,
    /// `CancelRequestRequest`.
    Cancel,
    /// `FetchCredentialRequest`.
    Fetch,
    /// `RevokeCredentialRequest`.
    Revoke,
}

impl Kind {
    /// The kind a selector byte names.
    pub fn from_byte(b: u8) -> Kind {
        match b % 5 {
            0 => Kind::Open,
            1 => Kind::Submit,
            2 => Kind::Cancel,
            3 => Kind::Fetch,
            _ => Kind::Revoke,
        }
    }

    /// The selector byte of this kind.
    pub fn byte(self) -> u8 {
        match self {
            Kind::Open => 0,
            Kind::Submit => 1,
            Kind::Cancel => 2,
            Kind::Fetch => 3,
            Kind::Revoke => 4,
        }
    }
}

/// How far a call got.
#[derive(Debug)]
pub enum Outcome {
    /// Over `server::MAX_MESSAGE_BYTES`: tonic refuses it before decoding.
    TooLarge,
    /// Not a valid protobuf encoding of the message.
    Undecodable(prost::DecodeError),
    /// Decoded, then refused by one of the daemon's checks.
    Refused(Error),
    /// Passed every check; the daemon would now commit the new state.
    Passed,
}

/// Decodes `msg` as the message `kind` names and runs the daemon's checks at `now`.
pub fn check(kind: Kind, msg: &[u8], now: u64) -> Outcome {
    if msg.len() > MAX_MESSAGE_BYTES {
        return Outcome::TooLarge;
    }
    let checked = match kind {
        Kind::Open => pb::OpenRequestRequest::decode(msg).map(|m| open(m, now)),
        Kind::Submit => pb::SubmitShareRequest::decode(msg).map(|m| submit(m, now)),
        Kind::Cancel => pb::CancelRequestRequest::decode(msg).map(|m| cancel(m, now)),
        Kind::Fetch => pb::FetchCredentialRequest::decode(msg).map(|m| fetch(m, now)),
        Kind::Revoke => pb::RevokeCredentialRequest::decode(msg).map(|m| revoke(m, now)),
    };
    match checked {
        Err(e) => Outcome::Undecodable(e),
        Ok(Err(e)) => Outcome::Refused(e),
        Ok(Ok(())) => Outcome::Passed,
    }
}

/// [`check`], then maps a refusal to its gRPC status as the server would.
pub fn run(kind: Kind, msg: &[u8], now: u64) {
    if let Outcome::Refused(e) = check(kind, msg, now) {
        let status = to_status(&e);
        assert!(!status.message().is_empty(), "empty status for {e:?}");
    }
}

/// `server::decode::sig`: a state-changing call must carry a signature with a signer id.
fn sig(s: Option<pb::Signature>) -> Result<pb::Signature> {
    let s = s.ok_or_else(|| {
        Error::invalid(
            "signature",
            "is missing: every state-changing call is signed",
        )
    })?;
    if s.signer_id.is_empty() {
        return Err(Error::invalid("signature.signer_id", "is empty"));
    }
    Ok(s)
}

fn by(s: &pb::Signature) -> SignedBy<'_> {
    SignedBy {
        signer_id: &s.signer_id,
        signed_at: s.signed_at,
        signature: &s.signature,
    }
}

/// `service::Daemon::load`, with the fixture in place of the store.
fn load(id: &str) -> Result<&'static Request> {
    if id.is_empty() || id.len() > 64 {
        return Err(Error::invalid(
            "request_id",
            "must be a request id like `req-0123456789abcdef`",
        ));
    }
    world()
        .request(id)
        .ok_or_else(|| Error::RequestNotFound { id: id.to_string() })
}

/// `ops::Daemon::take_live`: the live state of a collecting request, or why there is none.
fn live(r: &Request) -> Result<Collecting> {
    if r.state.is_terminal() {
        return Err(r.closed_error());
    }
    Ok(world().live_collecting())
}

/// `Daemon::open` up to the store commit.
fn open(m: pb::OpenRequestRequest, now: u64) -> Result<()> {
    let s = sig(m.signature)?;
    if m.nonce.len() != NONCE_LEN {
        return Err(Error::invalid("nonce", "wrong length"));
    }
    let w = world();
    let payload = signing::open_request(
        DAEMON_ID,
        &s.signer_id,
        &m.scope,
        &m.reason,
        m.ttl_seconds,
        &m.ssh_public_key,
        &m.nonce,
        s.signed_at,
    );
    let who =
        auth::authenticate_commander(crate::fixture::checks(&w.policy, now), &by(&s), &payload)?;
    w.policy.authorize_open(who.id(), &m.scope, m.ttl_seconds)?;
    let scope = w.policy.scope(&m.scope)?;
    let ssh_public_key = w.policy.subject_key(scope, &m.ssh_public_key)?;
    let id = signing::request_id(&payload);
    if w.request(&id).is_some() {
        return Err(Error::RequestExists { id });
    }
    w.policy.check_open_bound(
        who.id(),
        [&w.collecting, &w.unlocked]
            .into_iter()
            .filter(|r| r.requester == who.id() && r.state == State::Collecting)
            .map(|r| r.id.clone())
            .collect(),
    )?;
    let (c, records) = Collecting::open(
        OpenParams {
            id,
            daemon_id: DAEMON_ID.into(),
            requester: who.id().to_string(),
            scope: m.scope,
            reason: m.reason,
            ttl_seconds: m.ttl_seconds,
            window_seconds: w.policy.collection_window_seconds,
            threshold: u32::from(w.policy.threshold),
            ssh_public_key,
            kinds: scope
                .credentials
                .iter()
                .map(|k| k.name().to_string())
                .collect(),
            principals: scope.principals.clone(),
            ssh_extensions: scope.ssh_extensions.clone(),
            // This mirror checks access opens (the signature is over
            // `open_request`, so a drill's open is refused at the signature).
            kind: breakglass_daemon::engine::request::Kind::Access,
            change: None,
        },
        &mut rand::rngs::OsRng,
        now,
    )?;
    assert_eq!(c.request().requester, who.id());
    assert_eq!(records.len(), 1);
    Ok(())
}

/// `Daemon::submit` up to the store commit (minting is out of scope).
fn submit(m: pb::SubmitShareRequest, now: u64) -> Result<()> {
    let s = sig(m.signature)?;
    transport::check_sealed(&m.sealed_share).map_err(|e| Error::ShareMalformed {
        custodian: s.signer_id.clone(),
        why: e.to_string(),
    })?;
    let w = world();
    let claimed = auth::claim_custodian(&w.policy, &s.signer_id)?;
    let r = load(&m.request_id)?;
    let c = live(r)?;
    let admitted = c.admit(&w.policy, claimed.id(), now)?;
    let payload = signing::submit_share(
        DAEMON_ID,
        &r.id,
        &r.digest,
        &s.signer_id,
        &m.sealed_share,
        s.signed_at,
    );
    let who = claimed.authenticate(crate::fixture::checks(&w.policy, now), &by(&s), &payload)?;
    let plain = c.open_share(who.id(), &m.sealed_share)?;
    let com = w
        .commitments
        .get(who.id())
        .ok_or_else(|| Error::Internal(format!("no commitment for `{}`", who.id())))?;
    let share = verify_share(&who, com, LINEAGE, &plain)?;
    assert_eq!(share.custodian(), who.id());
    let before = r.approvals.len();
    match c.accept(admitted, share, |_, _| Ok(())) {
        Ok(Accepted::Collecting(next)) => assert_eq!(next.request().approvals.len(), before + 1),
        Ok(Accepted::Quorum(q)) => assert_eq!(q.request().approvals.len(), before + 1),
        Err(refused) => return Err(refused.error),
    }
    Ok(())
}

/// `Daemon::cancel` up to the store commit.
fn cancel(m: pb::CancelRequestRequest, now: u64) -> Result<()> {
    let s = sig(m.signature)?;
    let why = policy::reason(&m.reason, false)?;
    let w = world();
    let r = load(&m.request_id)?;
    let c = live(r)?;
    let payload = signing::cancel_request(
        DAEMON_ID,
        &r.id,
        &r.digest,
        &s.signer_id,
        &m.reason,
        s.signed_at,
    );
    let actor = auth::authenticate_any(crate::fixture::checks(&w.policy, now), &by(&s), &payload)?;
    if let Actor::Commander(c) = &actor {
        if c.id() != r.requester {
            return Err(Error::NotAllowedToCancel {
                id: r.id.clone(),
                caller: c.id().to_string(),
            });
        }
    }
    let cancelled = c
        .cancel(actor.id(), why, now, |_, _| Ok(()))
        .map_err(|refused| refused.error)?;
    assert!(cancelled.state.is_terminal());
    Ok(())
}

/// `Daemon::fetch` up to the audit append.
fn fetch(m: pb::FetchCredentialRequest, now: u64) -> Result<()> {
    let s = sig(m.signature)?;
    let w = world();
    let r = load(&m.request_id)?;
    let payload = signing::fetch_credential(DAEMON_ID, &r.id, &r.digest, &s.signer_id, s.signed_at);
    let who =
        auth::authenticate_commander(crate::fixture::checks(&w.policy, now), &by(&s), &payload)?;
    let (cred, _) = r.fetch(who.id(), now)?;
    assert!(cred.expires_at > 0);
    Ok(())
}

/// `Daemon::revoke` up to the store commit.
fn revoke(m: pb::RevokeCredentialRequest, now: u64) -> Result<()> {
    let s = sig(m.signature)?;
    let why = policy::reason(&m.reason, false)?;
    let w = world();
    let r = load(&m.request_id)?;
    let payload = signing::revoke_credential(
        DAEMON_ID,
        &r.id,
        &r.digest,
        &s.signer_id,
        &m.reason,
        s.signed_at,
    );
    let actor = auth::authenticate_any(crate::fixture::checks(&w.policy, now), &by(&s), &payload)?;
    if let Actor::Commander(c) = &actor {
        if c.id() != r.requester {
            return Err(Error::NotAllowedToRevoke {
                id: r.id.clone(),
                caller: c.id().to_string(),
            });
        }
    }
    let (revoked, _) = r.revoke(actor.id(), why, now)?;
    assert!(revoked.revocation.is_some());
    Ok(())
}
