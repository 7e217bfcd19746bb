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

mod attest;
mod drill;
pub use attest::*;
pub use drill::*;

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
/// Domain of a revoke call.
pub const DOMAIN_REVOKE_CREDENTIAL: &str = "breakglass/v1/revoke-credential";
/// Domain of the daemon's signature over the revocation list.
pub const DOMAIN_REVOCATION_LIST: &str = "breakglass/v1/revocation-list";
/// Domain of the daemon's audit checkpoints.
pub const DOMAIN_AUDIT_CHECKPOINT: &str = "breakglass/v1/audit-checkpoint";

/// Domain of D's signature over the end of an audit export.
pub const DOMAIN_AUDIT_EXPORT: &str = "breakglass/v1/audit-export";
/// Domain of D's signature over a share file's statement (its origin).
pub const DOMAIN_SHARE_FILE: &str = "breakglass/v1/share-file";

/// The epoch a ceremony makes; a committed rekey makes the next one.
pub const FIRST_EPOCH: u64 = 1;

mod change;
pub use change::*;

/// What a share file states about itself, signed by the ceremony's daemon key D:
/// whose share it is, for which daemon, ceremony and epoch, at which x, with
/// which commitment, in which split. Written into the file and published by
/// `GetInfo`, so a custodian proves offline that a file is genuine: anyone can
/// encrypt a file to her key, only D can sign this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareStatement<'a> {
    /// Daemon id.
    pub daemon_id: &'a str,
    /// Ceremony id.
    pub ceremony_id: &'a str,
    /// Epoch the share belongs to.
    pub epoch: u64,
    /// Custodian it was made for.
    pub custodian_id: &'a str,
    /// The share's x coordinate.
    pub x: u8,
    /// The share's commitment hash.
    pub commitment: &'a [u8; 32],
    /// Shares needed.
    pub threshold: u8,
    /// Shares made.
    pub custodians: u8,
}

/// The bytes D signs for a share file ([`ShareStatement`]).
pub fn share_statement(s: &ShareStatement<'_>) -> Vec<u8> {
    Payload::new(DOMAIN_SHARE_FILE)
        .str(s.daemon_id)
        .str(s.ceremony_id)
        .u64(s.epoch)
        .str(s.custodian_id)
        .field(&[s.x])
        .field(s.commitment)
        .field(&[s.threshold])
        .field(&[s.custodians])
        .finish()
}

/// What D signs at the end of an export: the head it was cut at, and when.
pub fn audit_export_trailer(
    daemon_id: &str,
    seq: u64,
    head: &[u8; 32],
    generated_at: u64,
) -> Vec<u8> {
    Payload::new(DOMAIN_AUDIT_EXPORT)
        .str(daemon_id)
        .u64(seq)
        .field(head)
        .u64(generated_at)
        .finish()
}

/// What the daemon key D signs to vouch for the audit log up to entry `seq` with hash `head`.
pub fn audit_checkpoint(daemon_id: &str, seq: u64, head: &[u8; 32]) -> Vec<u8> {
    Payload::new(DOMAIN_AUDIT_CHECKPOINT)
        .str(daemon_id)
        .u64(seq)
        .field(head)
        .finish()
}

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
    /// OpenSSH public key to certify, or empty.
    pub ssh_public_key: &'a str,
}

/// `H(domain ‖ daemon id ‖ request id ‖ requester ‖ scope ‖ reason ‖ ttl ‖ opened ‖ deadline ‖ threshold ‖ E_req ‖ ssh key)`.
pub fn request_digest(r: &RequestFields<'_>) -> RequestDigest {
    digest_in(DOMAIN_REQUEST_DIGEST, r)
}

/// The digest of a request's fields under `domain` (access or drill).
fn digest_in(domain: &str, r: &RequestFields<'_>) -> RequestDigest {
    let bytes = Payload::new(domain)
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
        .str(r.ssh_public_key)
        .finish();
    Sha256::digest(bytes).into()
}

/// What a commander signs to open a request. The request id is derived from
/// these bytes ([`request_id`]), so replaying the same signed open names the
/// same request and is refused as a duplicate.
#[allow(clippy::too_many_arguments)]
pub fn open_request(
    daemon_id: &str,
    commander_id: &str,
    scope: &str,
    reason: &str,
    ttl_seconds: u64,
    ssh_public_key: &str,
    nonce: &[u8],
    signed_at: u64,
) -> Vec<u8> {
    Payload::new(DOMAIN_OPEN_REQUEST)
        .str(daemon_id)
        .str(commander_id)
        .str(scope)
        .str(reason)
        .u64(ttl_seconds)
        .str(ssh_public_key)
        .field(nonce)
        .u64(signed_at)
        .finish()
}

/// Length of the client's open nonce: it makes two opens with the same
/// fields two requests, and a replayed open the same request.
pub const NONCE_LEN: usize = 16;

/// A fresh random nonce for an open call, from `rng` (the caller's CSPRNG).
pub fn new_nonce(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut n);
    n
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
    submit_share_of_epoch(
        daemon_id,
        request_id,
        digest,
        custodian_id,
        sealed_share,
        FIRST_EPOCH,
        signed_at,
    )
}

/// [`submit_share`] for a share of `share_epoch`: the epoch is appended after
/// the signing time from epoch 2 on (an epoch 1 share signs the bytes it
/// always signed), so a custodian's signature says which split her share is
/// of and the daemon can tell her when it is the wrong one.
pub fn submit_share_of_epoch(
    daemon_id: &str,
    request_id: &str,
    digest: &RequestDigest,
    custodian_id: &str,
    sealed_share: &[u8],
    share_epoch: u64,
    signed_at: u64,
) -> Vec<u8> {
    let sealed_hash: [u8; 32] = Sha256::digest(sealed_share).into();
    let p = Payload::new(DOMAIN_SUBMIT_SHARE)
        .str(daemon_id)
        .str(request_id)
        .field(digest)
        .str(custodian_id)
        .field(&sealed_hash)
        .u64(signed_at);
    if share_epoch == FIRST_EPOCH {
        p.finish()
    } else {
        p.u64(share_epoch).finish()
    }
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
    /// When the credential was revoked, or 0.
    pub revoked_at: u64,
    /// Who revoked it.
    pub revoked_by: &'a str,
    /// Why.
    pub revoke_reason: &'a str,
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
        .u64(status.revoked_at)
        .str(status.revoked_by)
        .str(status.revoke_reason)
        .finish()
}

/// What the requester or a custodian signs to revoke a minted credential.
pub fn revoke_credential(
    daemon_id: &str,
    request_id: &str,
    digest: &RequestDigest,
    signer_id: &str,
    reason: &str,
    signed_at: u64,
) -> Vec<u8> {
    Payload::new(DOMAIN_REVOKE_CREDENTIAL)
        .str(daemon_id)
        .str(request_id)
        .field(digest)
        .str(signer_id)
        .str(reason)
        .u64(signed_at)
        .finish()
}

/// One entry of the revocation list as the daemon signs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry<'a> {
    /// Request id (token `jti`).
    pub request_id: &'a str,
    /// SSH certificate key id, or empty.
    pub ssh_key_id: &'a str,
    /// SSH certificate serial, or 0.
    pub ssh_serial: u64,
    /// When revoked.
    pub revoked_at: u64,
    /// Who revoked (custodian or commander id).
    pub revoked_by: &'a str,
    /// Why.
    pub reason: &'a str,
    /// When it would expire.
    pub expires_at: u64,
}

/// What the daemon key D signs over the revocation list: every field a
/// verifier reads, including who revoked and why, and the authority A whose
/// serials and key ids the entries name (so a list cannot be moved onto
/// another CA).
pub fn revocation_list(
    daemon_id: &str,
    generated_at: u64,
    authority_public: &[u8; 32],
    entries: &[RevokedEntry<'_>],
) -> Vec<u8> {
    let mut p = Payload::new(DOMAIN_REVOCATION_LIST)
        .str(daemon_id)
        .u64(generated_at)
        .field(authority_public)
        .u64(entries.len() as u64);
    for e in entries {
        p = p
            .str(e.request_id)
            .str(e.ssh_key_id)
            .u64(e.ssh_serial)
            .u64(e.revoked_at)
            .str(e.revoked_by)
            .str(e.reason)
            .u64(e.expires_at);
    }
    p.finish()
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
            ssh_public_key: "ssh-ed25519 AAAA",
        }
    }

    /// Pins every payload's exact bytes: a change here breaks every deployed client.
    #[test]
    fn pinned_bytes() {
        let digest = request_digest(&fields());
        assert_eq!(
            hex::encode(digest),
            "f48871c315a444f5b92f706de70646972713f4a47a03ad557fc74b5fc1c8eaa4"
        );
        let open = open_request("d1", "ic", "prod-ssh", "db down", 1800, "k", &[1, 2], 5);
        assert_eq!(
            hex::encode(&open),
            concat!(
                "0000001a627265616b676c6173732f76312f6f70656e2d72657175657374",
                "000000026431",
                "000000026963",
                "0000000870726f642d737368",
                "00000007646220646f776e",
                "000000080000000000000708",
                "000000016b",
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
                revoked_at: 0,
                revoked_by: "",
                revoke_reason: "",
            },
        );
        let revoke = revoke_credential("d1", "req-1", &digest, "alice", "leaked", 5);
        let list = revocation_list(
            "d1",
            5,
            &[3u8; 32],
            &[RevokedEntry {
                request_id: "req-1",
                ssh_key_id: "k",
                ssh_serial: 9,
                revoked_at: 4,
                revoked_by: "alice",
                reason: "leaked",
                expires_at: 6,
            }],
        );
        let share = share_statement(&ShareStatement {
            daemon_id: "d1",
            ceremony_id: "cer",
            epoch: FIRST_EPOCH,
            custodian_id: "alice",
            x: 2,
            commitment: &[4u8; 32],
            threshold: 3,
            custodians: 5,
        });
        let pinned: Vec<String> = [submit, cancel, fetch, view, revoke, list, share]
            .iter()
            .map(|b| hex::encode(Sha256::digest(b)))
            .collect();
        assert_eq!(
            pinned,
            vec![
                "638e6d838af49e12e2bb41fddcdc793e973ef4fae1f91323b2ae806c1fc08f9a",
                "71b312f45c6d51d2c52d0934132e03db424a70cc7807ff9b46d10cb942087f2f",
                "4e794674c18c9c09b861ec6a5f2c6e691e94c3d47f719301a7c5b05932d9cda2",
                "b8eca6483a61cde9bbb9cf12b55a9a0bbdfd9584ece5a204aaf6a57b1bd4b598",
                "2f6d7f781db5b646b83324fb09875e752ef3c6be44cd823031f7faccd1b7a2df",
                "956d48a32adea0b9abc1bbf631b53539b791dccc62ae4b9bd287496024395f0f",
                "6f0a1bfbdcc036a9ebfe5d6782697b0a7a62eeec279635cf434d30feb7334fa0",
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

    /// The revocation list's signature covers every field a verifier reads: who
    /// revoked, why, the expiry, and the authority the entries belong to.
    #[test]
    fn revocation_list_binds_every_field() {
        let e = RevokedEntry {
            request_id: "req-1",
            ssh_key_id: "k",
            ssh_serial: 9,
            revoked_at: 4,
            revoked_by: "alice",
            reason: "leaked",
            expires_at: 6,
        };
        let a = [3u8; 32];
        let base = revocation_list("d1", 5, &a, std::slice::from_ref(&e));
        let variants = [
            RevokedEntry {
                request_id: "req-2",
                ..e.clone()
            },
            RevokedEntry {
                ssh_key_id: "j",
                ..e.clone()
            },
            RevokedEntry {
                ssh_serial: 8,
                ..e.clone()
            },
            RevokedEntry {
                revoked_at: 3,
                ..e.clone()
            },
            RevokedEntry {
                revoked_by: "bob",
                ..e.clone()
            },
            RevokedEntry {
                reason: "lost",
                ..e.clone()
            },
            RevokedEntry {
                expires_at: 7,
                ..e.clone()
            },
        ];
        for v in variants {
            assert_ne!(
                revocation_list("d1", 5, &a, std::slice::from_ref(&v)),
                base,
                "{v:?}"
            );
        }
        assert_ne!(
            revocation_list("d1", 5, &[4u8; 32], std::slice::from_ref(&e)),
            base
        );
        assert_ne!(revocation_list("d2", 5, &a, std::slice::from_ref(&e)), base);
        assert_ne!(revocation_list("d1", 6, &a, std::slice::from_ref(&e)), base);
        assert_ne!(revocation_list("d1", 5, &a, &[]), base);
    }

    /// Invariant 4: length prefixes keep field boundaries, so moving bytes between
    /// adjacent fields changes the payload.
    #[test]
    fn fields_cannot_shift() {
        let a = open_request("d1", "ab", "c", "r", 1, "", &[], 1);
        let b = open_request("d1", "a", "bc", "r", 1, "", &[], 1);
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
