//! Live drill payloads. A drill is a request of its own kind: its open and
//! its digest have their own domains, so no signature over a drill (the
//! commander's open, a custodian's approval) can stand for emergency access,
//! and the reverse. At quorum the daemon signs a drill statement with the
//! authority key A: proof that the real quorum rebuilt the key.

use super::{Payload, RequestDigest, RequestFields};

/// Domain of [`open_drill`].
pub const DOMAIN_OPEN_DRILL: &str = "breakglass/v1/open-drill";
/// Domain of [`drill_digest`].
pub const DOMAIN_DRILL_DIGEST: &str = "breakglass/v1/drill-digest";
/// Domain of [`drill_statement`].
pub const DOMAIN_DRILL_STATEMENT: &str = "breakglass/v1/drill-statement";

/// What a commander signs to open a drill (no scope, TTL or key: it grants nothing).
pub fn open_drill(
    daemon_id: &str,
    commander_id: &str,
    reason: &str,
    nonce: &[u8],
    signed_at: u64,
) -> Vec<u8> {
    Payload::new(DOMAIN_OPEN_DRILL)
        .str(daemon_id)
        .str(commander_id)
        .str(reason)
        .field(nonce)
        .u64(signed_at)
        .finish()
}

/// The digest of a drill request: the same fields as an access request's
/// digest, under the drill's own domain.
pub fn drill_digest(r: &RequestFields<'_>) -> RequestDigest {
    super::digest_in(DOMAIN_DRILL_DIGEST, r)
}

/// What a passed drill states, signed by A.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillStatement<'a> {
    /// Daemon id.
    pub daemon_id: &'a str,
    /// Epoch of the shares that were combined.
    pub epoch: u64,
    /// The drill request.
    pub request_id: &'a str,
    /// The request digest.
    pub digest: &'a [u8; 32],
    /// Custodians whose shares rebuilt the key, in arrival order.
    pub approvers: &'a [String],
    /// When the drill was opened.
    pub opened_at: u64,
    /// When the quorum was reached (and the statement signed).
    pub quorum_at: u64,
}

/// The bytes A signs for a passed drill.
pub fn drill_statement(s: &DrillStatement<'_>) -> Vec<u8> {
    let mut p = Payload::new(DOMAIN_DRILL_STATEMENT)
        .str(s.daemon_id)
        .u64(s.epoch)
        .str(s.request_id)
        .field(s.digest)
        .u64(s.approvers.len() as u64);
    for a in s.approvers {
        p = p.str(a);
    }
    p.u64(s.opened_at).u64(s.quorum_at).finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// Invariant 4: the drill payloads are pinned, and a drill's digest is
    /// never an access request's digest for the same fields.
    #[test]
    fn pinned_and_separate_from_access() {
        let e = [7u8; 32];
        let f = RequestFields {
            daemon_id: "d1",
            request_id: "req-1",
            requester: "ic",
            scope: "",
            reason: "quarterly drill",
            ttl_seconds: 0,
            opened_at: 10,
            deadline: 20,
            threshold: 2,
            ephemeral_public: &e,
            ssh_public_key: "",
        };
        let d = drill_digest(&f);
        assert_ne!(d, super::super::request_digest(&f));
        let approvers = vec!["alice".to_string(), "bob".to_string()];
        let pinned: Vec<String> = [
            open_drill("d1", "ic", "quarterly drill", &[1, 2], 5),
            d.to_vec(),
            drill_statement(&DrillStatement {
                daemon_id: "d1",
                epoch: 1,
                request_id: "req-1",
                digest: &d,
                approvers: &approvers,
                opened_at: 10,
                quorum_at: 15,
            }),
        ]
        .iter()
        .map(|b| hex::encode(Sha256::digest(b)))
        .collect();
        assert_eq!(
            pinned,
            vec![
                "d4470e928fa48406ea2aa20719802ec1ac1ce79928b756ac3ec11d0676707aaa",
                "f223bcc2291215ffdc5a9485cae1c02b262eea352f39d0d7ca8d489e99273681",
                "96c9939c2705f293db7c1b8706ff9e4fdebaa2d695b5bfec5cbce861e565d70e",
            ]
        );
    }
}
