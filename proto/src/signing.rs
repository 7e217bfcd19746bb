//! Canonical signed payloads.
//!
//! Every payload is a domain string followed by fields in a fixed order, each
//! field prefixed by its length as a big-endian `u32`. The domain string names
//! the purpose (`breakglass/v1/submit-share`, …), so a signature made for one
//! kind of call can never be accepted for another. Both the client (to sign) and
//! the daemon (to verify) call the functions here; nothing else builds these
//! bytes. `tests::pinned_bytes` pins the exact output: changing it is a
//! protocol break.

use sha2::{Digest, Sha256};

/// Domain of the request digest.
pub const DOMAIN_REQUEST_DIGEST: &str = "breakglass/v1/request-digest";
/// Domain of a commander's open call.
pub const DOMAIN_OPEN_REQUEST: &str = "breakglass/v1/open-request";
/// Domain of a custodian's share submission.
pub const DOMAIN_SUBMIT_SHARE: &str = "breakglass/v1/submit-share";
/// Domain of a cancel call.
pub const DOMAIN_CANCEL_REQUEST: &str = "breakglass/v1/cancel-request";
/// Domain of a credential fetch.
pub const DOMAIN_FETCH_CREDENTIAL: &str = "breakglass/v1/fetch-credential";
/// Domain of the daemon's signature over a request's current view.
pub const DOMAIN_REQUEST_VIEW: &str = "breakglass/v1/request-view";

/// The SHA-256 digest that binds a request's immutable fields.
pub type RequestDigest = [u8; 32];

/// Builds one length-prefixed payload.
struct Payload(Vec<u8>);

impl Payload {
    fn new(domain: &str) -> Self {
        Payload(Vec::with_capacity(256)).field(domain.as_bytes())
    }

    fn field(mut self, bytes: &[u8]) -> Self {
        // Fields are ids, reasons and keys, far below 4 GiB; saturate rather than wrap.
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    fn str(self, s: &str) -> Self {
        self.field(s.as_bytes())
    }

    fn u64(self, v: u64) -> Self {
        self.field(&v.to_be_bytes())
    }

    fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// The immutable description of a request; its digest is what signatures bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFields<'a> {
    /// Daemon id.
    pub daemon_id: &'a str,
    /// Request id.
    pub request_id: &'a str,
    /// Commander who asked.
    pub requester: &'a str,
    /// Scope asked for.
    pub scope: &'a str,
    /// Reason given.
    pub reason: &'a str,
    /// Credential lifetime asked for, seconds.
    pub ttl_seconds: u64,
    /// When opened, seconds since the epoch.
    pub opened_at: u64,
    /// End of the collection window, seconds since the epoch.
    pub deadline: u64,
    /// Shares needed.
    pub threshold: u32,
    /// The request's ephemeral X25519 public key.
    pub ephemeral_public: &'a [u8; 32],
}

/// `H(domain ‖ daemon id ‖ request id ‖ requester ‖ scope ‖ reason ‖ ttl ‖ opened ‖ deadline ‖ threshold ‖ E_req)`.
pub fn request_digest(r: &RequestFields<'_>) -> RequestDigest {
    let bytes = Payload::new(DOMAIN_REQUEST_DIGEST)
        .str(r.daemon_id)
        .str(r.request_id)
        .str(r.requester)
        .str(r.scope)
        .str(r.reason)
        .u64(r.ttl_seconds)
        .u64(r.opened_at)
        .u64(r.deadline)
        .u64(u64::from(r.threshold))
        .field(r.ephemeral_public)
        .finish();
    Sha256::digest(bytes).into()
}

/// What a commander signs to open a request. The request id is derived from
/// these bytes ([`request_id`]), so replaying the same signed open names the
/// same request and is refused as a duplicate.
pub fn open_request(
    daemon_id: &str,
    commander_id: &str,
    scope: &str,
    reason: &str,
    ttl_seconds: u64,
    nonce: &[u8],
    signed_at: u64,
) -> Vec<u8> {
    Payload::new(DOMAIN_OPEN_REQUEST)
        .str(daemon_id)
        .str(commander_id)
        .str(scope)
        .str(reason)
        .u64(ttl_seconds)
        .field(nonce)
        .u64(signed_at)
        .finish()
}

/// The id of the request opened by this signed payload: `req-` and 16 hex digits of its SHA-256.
pub fn request_id(open_payload: &[u8]) -> String {
    let h = Sha256::digest(open_payload);
    format!("req-{}", hex::encode(&h[..8]))
}

/// What a custodian signs to submit a share. It binds the sealed share itself
/// (by its SHA-256), so the signature cannot be moved onto other bytes.
pub fn submit_share(
    daemon_id: &str,
    request_id: &str,
    digest: &RequestDigest,
    custodian_id: &str,
    sealed_share: &[u8],
    signed_at: u64,
) -> Vec<u8> {
    let sealed_hash: [u8; 32] = Sha256::digest(sealed_share).into();
    Payload::new(DOMAIN_SUBMIT_SHARE)
        .str(daemon_id)
        .str(request_id)
        .field(digest)
        .str(custodian_id)
        .field(&sealed_hash)
        .u64(signed_at)
        .finish()
}

/// What the requester or a custodian signs to cancel a request.
pub fn cancel_request(
    daemon_id: &str,
    request_id: &str,
    digest: &RequestDigest,
    signer_id: &str,
    reason: &str,
    signed_at: u64,
) -> Vec<u8> {
    Payload::new(DOMAIN_CANCEL_REQUEST)
        .str(daemon_id)
        .str(request_id)
        .field(digest)
        .str(signer_id)
        .str(reason)
        .u64(signed_at)
        .finish()
}

/// What the requester signs to fetch the credential.
pub fn fetch_credential(
    daemon_id: &str,
    request_id: &str,
    digest: &RequestDigest,
    requester_id: &str,
    signed_at: u64,
) -> Vec<u8> {
    Payload::new(DOMAIN_FETCH_CREDENTIAL)
        .str(daemon_id)
        .str(request_id)
        .field(digest)
        .str(requester_id)
        .u64(signed_at)
        .finish()
}

/// The mutable part of a request that the daemon key D signs together with its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestStatus<'a> {
    /// Numeric `RequestState`.
    pub state: i32,
    /// `(custodian id, accepted at)` in arrival order.
    pub approvals: &'a [(String, u64)],
    /// When the request closed, or 0.
    pub closed_at: u64,
    /// Why it closed.
    pub close_reason: &'a str,
    /// Credential expiry, or 0.
    pub credential_expires_at: u64,
}

/// What the daemon key D signs so a client knows which daemon describes a request, and that
/// the description was not altered on the way.
pub fn request_view(digest: &RequestDigest, status: &RequestStatus<'_>) -> Vec<u8> {
    let mut p = Payload::new(DOMAIN_REQUEST_VIEW)
        .field(digest)
        .u64(u64::from(status.state.unsigned_abs()))
        .u64(status.approvals.len() as u64);
    for (id, at) in status.approvals {
        p = p.str(id).u64(*at);
    }
    p.u64(status.closed_at)
        .str(status.close_reason)
        .u64(status.credential_expires_at)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPH: [u8; 32] = [7u8; 32];

    fn fields() -> RequestFields<'static> {
        RequestFields {
            daemon_id: "d1",
            request_id: "req-1",
            requester: "ic",
            scope: "prod-ssh",
            reason: "db down",
            ttl_seconds: 1800,
            opened_at: 1_700_000_000,
            deadline: 1_700_000_900,
            threshold: 3,
            ephemeral_public: &EPH,
        }
    }

    /// Pins every payload's exact bytes: a change here breaks every deployed client.
    #[test]
    fn pinned_bytes() {
        let digest = request_digest(&fields());
        assert_eq!(
            hex::encode(digest),
            "d80fea6939efc872ac431bc735c1c27a962e5ce9b224b4a13e196b5932a33e9d"
        );
        let open = open_request("d1", "ic", "prod-ssh", "db down", 1800, &[1, 2], 5);
        assert_eq!(
            hex::encode(&open),
            concat!(
                "0000001a627265616b676c6173732f76312f6f70656e2d72657175657374",
                "000000026431",
                "000000026963",
                "0000000870726f642d737368",
                "00000007646220646f776e",
                "000000080000000000000708",
                "000000020102",
                "000000080000000000000005"
            )
        );
        assert_eq!(request_id(&open), request_id(&open.clone()));
        let submit = submit_share("d1", "req-1", &digest, "alice", b"sealed", 5);
        let cancel = cancel_request("d1", "req-1", &digest, "alice", "no", 5);
        let fetch = fetch_credential("d1", "req-1", &digest, "ic", 5);
        let approvals = vec![("alice".to_string(), 9u64)];
        let view = request_view(
            &digest,
            &RequestStatus {
                state: 1,
                approvals: &approvals,
                closed_at: 0,
                close_reason: "",
                credential_expires_at: 0,
            },
        );
        let pinned: Vec<String> = [submit, cancel, fetch, view]
            .iter()
            .map(|b| hex::encode(Sha256::digest(b)))
            .collect();
        assert_eq!(
            pinned,
            vec![
                "56a652834fefc580ab0142d6e5f45a454995f42303e87e6436e8a2b71a493a82",
                "161d90d2c66e3987552baba58763ebd746226cce5d213296b4b2ad25ec3fe5ee",
                "f7099f6f3da44d1a7b089e6851a0da949d5fb36b4152c2dc50f5761f6207ab04",
                "de3a46391c905bc44dbde509f11b7bbf6000ca431722a3a92a2e0d3a212cc5b6",
            ]
        );
    }

    /// Invariant 4: every bound field changes the digest, so a signature over one
    /// request's digest cannot be replayed on another request or daemon.
    #[test]
    fn digest_binds_every_field() {
        let base = request_digest(&fields());
        let other_eph = [8u8; 32];
        let variants = [
            RequestFields {
                daemon_id: "d2",
                ..fields()
            },
            RequestFields {
                request_id: "req-2",
                ..fields()
            },
            RequestFields {
                requester: "ic2",
                ..fields()
            },
            RequestFields {
                scope: "prod-db",
                ..fields()
            },
            RequestFields {
                reason: "db down!",
                ..fields()
            },
            RequestFields {
                ttl_seconds: 1801,
                ..fields()
            },
            RequestFields {
                opened_at: 1,
                ..fields()
            },
            RequestFields {
                deadline: 1,
                ..fields()
            },
            RequestFields {
                threshold: 2,
                ..fields()
            },
            RequestFields {
                ephemeral_public: &other_eph,
                ..fields()
            },
        ];
        for v in variants {
            assert_ne!(request_digest(&v), base, "{v:?} has the same digest");
        }
    }

    /// Invariant 4: length prefixes keep field boundaries, so moving bytes between
    /// adjacent fields changes the payload.
    #[test]
    fn fields_cannot_shift() {
        let a = open_request("d1", "ab", "c", "r", 1, &[], 1);
        let b = open_request("d1", "a", "bc", "r", 1, &[], 1);
        assert_ne!(a, b);
    }

    /// Invariant 4: the same fields under different call kinds never collide.
    #[test]
    fn domains_separate_call_kinds() {
        let d = [0u8; 32];
        let cancel = cancel_request("d", "r", &d, "s", "", 1);
        let fetch = fetch_credential("d", "r", &d, "s", 1);
        assert_ne!(cancel, fetch);
    }
}
