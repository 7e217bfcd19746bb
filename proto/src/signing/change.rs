//! Signed payloads of policy changes and rekeys (DESIGN.md "Epochs").
//!
//! A change request is bound by its digest to the daemon, the epoch it
//! changes, the policy it replaces and the policy it proposes (both by
//! digest), so an approval can never be moved onto another change, another
//! epoch or another policy. Every payload here also names the epoch and the
//! new policy digest directly, so a custodian's signature says in its own
//! bytes what she approved. New shares of a pending epoch are fetched and
//! confirmed with payloads that name the pending epoch and, for a
//! confirmation, the commitment the share is proven against.

use sha2::{Digest, Sha256};

use super::Payload;

/// Domain of change digests.
pub const DOMAIN_CHANGE_DIGEST: &str = "breakglass/v1/change-digest";
/// Domain of a proposal.
pub const DOMAIN_PROPOSE_CHANGE: &str = "breakglass/v1/propose-change";
/// Domain of a custodian's approval of a change (her current share, sealed).
pub const DOMAIN_APPROVE_CHANGE: &str = "breakglass/v1/approve-change";
/// Domain of a change's cancellation.
pub const DOMAIN_CANCEL_CHANGE: &str = "breakglass/v1/cancel-change";
/// Domain of a new custodian's fetch of her pending-epoch share file.
pub const DOMAIN_FETCH_NEW_SHARE: &str = "breakglass/v1/fetch-new-share";
/// Domain of a new custodian's confirmation of her pending-epoch share.
pub const DOMAIN_CONFIRM_NEW_SHARE: &str = "breakglass/v1/confirm-new-share";
/// Domain of D's signature over a change view (both policies and the pending epoch).
pub const DOMAIN_CHANGE_VIEW: &str = "breakglass/v1/change-view";

/// One new custodian's share in a pending epoch, as D signs it in a change view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShareStatus<'a> {
    /// Custodian id.
    pub custodian_id: &'a str,
    /// Her x.
    pub x: u32,
    /// Her new commitment.
    pub commitment: &'a [u8],
    /// First fetch, or 0.
    pub fetched_at: u64,
    /// Confirmation, or 0.
    pub confirmed_at: u64,
    /// Whether her file can still be fetched.
    pub file_available: bool,
}

/// A pending epoch, as D signs it in a change view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingStatus<'a> {
    /// Epoch number.
    pub epoch: u64,
    /// `PendingState` number of the proto.
    pub state: i32,
    /// Confirmations needed.
    pub need: u32,
    /// Confirmations so far.
    pub confirmed: u32,
    /// When dealt.
    pub dealt_at: u64,
    /// Deadline.
    pub deadline: u64,
    /// When closed, or 0.
    pub closed_at: u64,
    /// Why.
    pub close_reason: &'a str,
    /// The confirmations' X25519 key, or empty.
    pub ephemeral_public: &'a [u8],
    /// Each new custodian's share.
    pub shares: Vec<NewShareStatus<'a>>,
}

impl<'a> PendingStatus<'a> {
    /// The status a change view's `PendingEpoch` states: what D signs (the
    /// daemon, from the view it sends) and checks against (the client, from
    /// the view it received).
    pub fn of(p: &'a crate::pb::PendingEpoch) -> PendingStatus<'a> {
        PendingStatus {
            epoch: p.epoch,
            state: p.state,
            need: p.need,
            confirmed: p.confirmed,
            dealt_at: p.dealt_at,
            deadline: p.deadline,
            closed_at: p.closed_at,
            close_reason: &p.close_reason,
            ephemeral_public: &p.ephemeral_public_key,
            shares: p
                .shares
                .iter()
                .map(|s| NewShareStatus {
                    custodian_id: &s.custodian_id,
                    x: s.x,
                    commitment: &s.commitment,
                    fetched_at: s.fetched_at,
                    confirmed_at: s.confirmed_at,
                    file_available: s.file_available,
                })
                .collect(),
        }
    }
}

/// What D signs over a change view: the change digest (which binds the
/// epoch and both policy digests), the policies' canonical JSON by SHA-256,
/// and the pending epoch if one was dealt (an absent one is epoch 0).
pub fn change_view(
    digest: &ChangeDigest,
    current_policy_json: &[u8],
    new_policy_json: &[u8],
    pending: Option<&PendingStatus<'_>>,
) -> Vec<u8> {
    let current: [u8; 32] = Sha256::digest(current_policy_json).into();
    let new: [u8; 32] = Sha256::digest(new_policy_json).into();
    let mut p = Payload::new(DOMAIN_CHANGE_VIEW)
        .field(digest)
        .field(&current)
        .field(&new);
    match pending {
        None => p = p.u64(0),
        Some(s) => {
            p = p
                .u64(s.epoch)
                .u64(u64::from(s.state.unsigned_abs()))
                .u64(u64::from(s.need))
                .u64(u64::from(s.confirmed))
                .u64(s.dealt_at)
                .u64(s.deadline)
                .u64(s.closed_at)
                .str(s.close_reason)
                .field(s.ephemeral_public)
                .u64(s.shares.len() as u64);
            for n in &s.shares {
                p = p
                    .str(n.custodian_id)
                    .u64(u64::from(n.x))
                    .field(n.commitment)
                    .u64(n.fetched_at)
                    .u64(n.confirmed_at)
                    .u64(u64::from(n.file_available));
            }
        }
    }
    p.finish()
}

/// The SHA-256 digest that binds a change request's immutable fields.
pub type ChangeDigest = [u8; 32];

/// The immutable description of a change request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeFields<'a> {
    /// Daemon id.
    pub daemon_id: &'a str,
    /// Change request id.
    pub change_id: &'a str,
    /// Who proposed it (a custodian or commander of `epoch`).
    pub proposer: &'a str,
    /// Reason given.
    pub reason: &'a str,
    /// The epoch it changes.
    pub epoch: u64,
    /// Digest of that epoch's policy.
    pub current_policy_digest: &'a [u8; 32],
    /// Digest of the proposed policy.
    pub new_policy_digest: &'a [u8; 32],
    /// When opened.
    pub opened_at: u64,
    /// End of the approval window.
    pub deadline: u64,
    /// Approvals needed (the current epoch's threshold).
    pub threshold: u32,
    /// The change request's ephemeral X25519 public key (approvals are sealed to it).
    pub ephemeral_public: &'a [u8; 32],
}

/// `H(domain ‖ daemon id ‖ change id ‖ proposer ‖ reason ‖ epoch ‖ current
/// policy digest ‖ new policy digest ‖ opened ‖ deadline ‖ threshold ‖ E_req)`.
pub fn change_digest(c: &ChangeFields<'_>) -> ChangeDigest {
    let bytes = Payload::new(DOMAIN_CHANGE_DIGEST)
        .str(c.daemon_id)
        .str(c.change_id)
        .str(c.proposer)
        .str(c.reason)
        .u64(c.epoch)
        .field(c.current_policy_digest)
        .field(c.new_policy_digest)
        .u64(c.opened_at)
        .u64(c.deadline)
        .u64(u64::from(c.threshold))
        .field(c.ephemeral_public)
        .finish();
    Sha256::digest(bytes).into()
}

/// What a custodian or commander signs to propose a policy. The proposed
/// policy travels as its canonical JSON; the daemon checks it hashes to
/// `new_policy_digest`. The change id is derived from these bytes
/// ([`super::request_id`]'s rule with the `chg-` prefix), so a replayed
/// proposal names the same change and is refused.
#[allow(clippy::too_many_arguments)]
pub fn propose_change(
    daemon_id: &str,
    proposer_id: &str,
    epoch: u64,
    current_policy_digest: &[u8; 32],
    new_policy_digest: &[u8; 32],
    reason: &str,
    nonce: &[u8],
    signed_at: u64,
) -> Vec<u8> {
    Payload::new(DOMAIN_PROPOSE_CHANGE)
        .str(daemon_id)
        .str(proposer_id)
        .u64(epoch)
        .field(current_policy_digest)
        .field(new_policy_digest)
        .str(reason)
        .field(nonce)
        .u64(signed_at)
        .finish()
}

/// The change id a signed proposal names: `chg-` and 16 hex digits of its SHA-256.
pub fn change_id(propose_payload: &[u8]) -> String {
    let h = Sha256::digest(propose_payload);
    format!("chg-{}", hex::encode(&h[..8]))
}

/// What a custodian of the current epoch signs to approve a change with her
/// current share (sealed to the change's ephemeral key; bound by SHA-256).
#[allow(clippy::too_many_arguments)]
pub fn approve_change(
    daemon_id: &str,
    change_id: &str,
    digest: &ChangeDigest,
    epoch: u64,
    new_policy_digest: &[u8; 32],
    custodian_id: &str,
    sealed_share: &[u8],
    signed_at: u64,
) -> Vec<u8> {
    let sealed_hash: [u8; 32] = Sha256::digest(sealed_share).into();
    Payload::new(DOMAIN_APPROVE_CHANGE)
        .str(daemon_id)
        .str(change_id)
        .field(digest)
        .u64(epoch)
        .field(new_policy_digest)
        .str(custodian_id)
        .field(&sealed_hash)
        .u64(signed_at)
        .finish()
}

/// What the proposer or a custodian of the current epoch signs to cancel a
/// change (before its quorum, or while its pending epoch waits for confirmations).
pub fn cancel_change(
    daemon_id: &str,
    change_id: &str,
    digest: &ChangeDigest,
    signer_id: &str,
    reason: &str,
    signed_at: u64,
) -> Vec<u8> {
    Payload::new(DOMAIN_CANCEL_CHANGE)
        .str(daemon_id)
        .str(change_id)
        .field(digest)
        .str(signer_id)
        .str(reason)
        .u64(signed_at)
        .finish()
}

/// What a custodian of a pending epoch signs to fetch her new share file.
pub fn fetch_new_share(
    daemon_id: &str,
    change_id: &str,
    epoch: u64,
    custodian_id: &str,
    signed_at: u64,
) -> Vec<u8> {
    Payload::new(DOMAIN_FETCH_NEW_SHARE)
        .str(daemon_id)
        .str(change_id)
        .u64(epoch)
        .str(custodian_id)
        .u64(signed_at)
        .finish()
}

/// What a custodian of a pending epoch signs to confirm her new share: the
/// share sealed to the pending epoch's ephemeral key, the commitment she
/// checked it against (the one D signed in her file), both bound.
#[allow(clippy::too_many_arguments)]
pub fn confirm_new_share(
    daemon_id: &str,
    change_id: &str,
    epoch: u64,
    ephemeral_public: &[u8; 32],
    custodian_id: &str,
    commitment: &[u8; 32],
    sealed_share: &[u8],
    signed_at: u64,
) -> Vec<u8> {
    let sealed_hash: [u8; 32] = Sha256::digest(sealed_share).into();
    Payload::new(DOMAIN_CONFIRM_NEW_SHARE)
        .str(daemon_id)
        .str(change_id)
        .u64(epoch)
        .field(ephemeral_public)
        .str(custodian_id)
        .field(commitment)
        .field(&sealed_hash)
        .u64(signed_at)
        .finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const EPH: [u8; 32] = [7u8; 32];
    const OLD: [u8; 32] = [1u8; 32];
    const NEW: [u8; 32] = [2u8; 32];

    fn fields() -> ChangeFields<'static> {
        ChangeFields {
            daemon_id: "d1",
            change_id: "chg-1",
            proposer: "alice",
            reason: "bob left",
            epoch: 1,
            current_policy_digest: &OLD,
            new_policy_digest: &NEW,
            opened_at: 1_700_000_000,
            deadline: 1_700_086_400,
            threshold: 3,
            ephemeral_public: &EPH,
        }
    }

    /// Pins every change payload's exact bytes: a change here breaks every deployed client.
    #[test]
    fn pinned_bytes() {
        let digest = change_digest(&fields());
        let propose = propose_change("d1", "alice", 1, &OLD, &NEW, "bob left", &[1, 2], 5);
        assert_eq!(
            hex::encode(&propose),
            concat!(
                "0000001c627265616b676c6173732f76312f70726f706f73652d6368616e6765",
                "000000026431",
                "00000005616c696365",
                "000000080000000000000001",
                "000000200101010101010101010101010101010101010101010101010101010101010101",
                "000000200202020202020202020202020202020202020202020202020202020202020202",
                "00000008626f62206c656674",
                "000000020102",
                "000000080000000000000005"
            )
        );
        assert!(change_id(&propose).starts_with("chg-") && change_id(&propose).len() == 20);
        let pinned: Vec<String> = [
            digest.to_vec(),
            approve_change("d1", "chg-1", &digest, 1, &NEW, "alice", b"sealed", 5),
            cancel_change("d1", "chg-1", &digest, "alice", "no", 5),
            fetch_new_share("d1", "chg-1", 2, "carol", 5),
            confirm_new_share("d1", "chg-1", 2, &EPH, "carol", &[4u8; 32], b"sealed", 5),
            change_view(&digest, b"{}", b"{\"a\":1}", None),
            change_view(
                &digest,
                b"{}",
                b"{}",
                Some(&PendingStatus {
                    epoch: 2,
                    state: 1,
                    need: 2,
                    confirmed: 1,
                    dealt_at: 10,
                    deadline: 20,
                    closed_at: 0,
                    close_reason: "",
                    ephemeral_public: &EPH,
                    shares: vec![NewShareStatus {
                        custodian_id: "carol",
                        x: 1,
                        commitment: &[4u8; 32],
                        fetched_at: 11,
                        confirmed_at: 12,
                        file_available: false,
                    }],
                }),
            ),
        ]
        .iter()
        .map(|b| hex::encode(Sha256::digest(b)))
        .collect();
        assert_eq!(
            pinned,
            vec![
                "d45ee6b0a85c503bf0aa3410a31b6d1e8fa0d501fb0c4cdefb64a967023d0ee8",
                "2dd16a42b9340411e5b58f2d9c103e3e1e2821923b31a1930d0b371f9fa3afe1",
                "8d853458bc7d5d47784c2606a72bc2524e6000d3098d0a25d62ffae7dbd1aad9",
                "20f06b2f637ca23f04cd97808c1dd1d6364e61ca51bac5e0ed99f49caf3b49a0",
                "3b7dbd95ed0cd352ea7cec788adb893f47d6183fc1370cf3c368d031c587f378",
                "212142f5ffc6b8565a1df37d3bbe08b7f815981ea64a704ba085ddff85420b54",
                "de182df5435f982f62d62b46e32e07fca6917117f084b575b4a6d90600d07d46",
            ]
        );
    }

    /// An epoch 1 share signs the bytes `submit_share` always signed; from
    /// epoch 2 on the share's epoch follows as one more field, so the two
    /// layouts never coincide (invariant 4: a signature names its split).
    #[test]
    fn a_share_submission_names_its_epoch_from_epoch_2() {
        let d = [3u8; 32];
        let one = crate::signing::submit_share("d1", "req-1", &d, "alice", b"s", 5);
        assert_eq!(
            crate::signing::submit_share_of_epoch("d1", "req-1", &d, "alice", b"s", 1, 5),
            one
        );
        let two = crate::signing::submit_share_of_epoch("d1", "req-1", &d, "alice", b"s", 2, 5);
        assert_eq!(&two[..one.len()], &one[..]);
        assert_eq!(hex::encode(&two[one.len()..]), "000000080000000000000002");
    }

    /// Invariant 4 for changes: every bound field changes the digest, so an
    /// approval of one change cannot be replayed on another change, epoch,
    /// proposed policy or daemon.
    #[test]
    fn every_field_is_bound() {
        let base = change_digest(&fields());
        let other = [9u8; 32];
        let edits: [fn(&mut ChangeFields<'static>); 11] = [
            |c| c.daemon_id = "d2",
            |c| c.change_id = "chg-2",
            |c| c.proposer = "bob",
            |c| c.reason = "carol left",
            |c| c.epoch = 2,
            |c| c.current_policy_digest = &[9u8; 32],
            |c| c.new_policy_digest = &[9u8; 32],
            |c| c.opened_at += 1,
            |c| c.deadline += 1,
            |c| c.threshold = 4,
            |c| c.ephemeral_public = &[9u8; 32],
        ];
        for edit in edits {
            let mut c = fields();
            edit(&mut c);
            assert_ne!(change_digest(&c), base);
        }
        let a = approve_change("d1", "chg-1", &base, 1, &NEW, "alice", b"s", 5);
        assert_ne!(
            a,
            approve_change("d1", "chg-1", &base, 2, &NEW, "alice", b"s", 5)
        );
        assert_ne!(
            a,
            approve_change("d1", "chg-1", &base, 1, &other, "alice", b"s", 5)
        );
        assert_ne!(
            a,
            approve_change("d1", "chg-1", &base, 1, &NEW, "alice", b"t", 5)
        );
    }
}
