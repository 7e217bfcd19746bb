//! Epochs (DESIGN.md "Epochs", issue 11): custodians, threshold and policy
//! change by quorum while the authority key A stays the one every server
//! trusts. Each test runs the real daemon binary and the client library.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use breakglass_client::api::{unix_now, Change, Client};
use breakglass_client::error::ClientError;
use breakglass_client::identity::Identity;
use breakglass_formats::keys::AuthorityPublic;
use breakglass_formats::share_file::ShareFile;
use breakglass_formats::verify::verify_token;
use breakglass_proto::{pb, signing, transport};
use common::{assert_status, load, Fixture, Submission};
use tonic::Code;

/// The client library's error as the gRPC status it carries.
fn status<T>(r: Result<T, ClientError>) -> Result<T, tonic::Status> {
    r.map_err(|e| match e {
        ClientError::Status(s) => s,
        other => panic!("expected a gRPC status, got {other}"),
    })
}

/// The fixture's policy with `threshold`, custodians `drop` removed and
/// `add` (id, ssh key) appended.
fn policy_with(fx: &Fixture, threshold: usize, drop: &[&str], add: &[(&str, String)]) -> String {
    let text = std::fs::read_to_string(fx.policy_path()).unwrap();
    let mut blocks: Vec<String> = text.split("\n\n").map(str::to_string).collect();
    blocks.retain(|b| {
        !drop
            .iter()
            .any(|id| b.starts_with(&format!("[[custodians]]\nid = \"{id}\"")))
    });
    for (id, key) in add {
        blocks.push(format!(
            "[[custodians]]\nid = \"{id}\"\nname = \"New {id}\"\nssh_key = \"{key}\""
        ));
    }
    let text = blocks.join("\n\n");
    let first = text
        .lines()
        .find(|l| l.starts_with("threshold = "))
        .unwrap()
        .to_string();
    text.replacen(&first, &format!("threshold = {threshold}"), 1)
}

/// A new key written beside the fixture's keys.
fn new_key(fx: &Fixture, name: &str) -> (Identity, std::path::PathBuf) {
    let id = Identity::generate();
    let p = fx.dir.path().join("keys").join(name);
    id.write(&p, name, None).unwrap();
    (load(&p), p)
}

fn old_share(fx: &Fixture, client: &Client, i: usize) -> (Identity, ShareFile) {
    let me = load(&fx.custodian_key(i));
    let f = client
        .read_share_file(&me, &fx.share_file(&fx.keys.custodians[i].0))
        .unwrap();
    (me, f)
}

/// Opens a prod-api (token) request as `ic`.
async fn open_token(fx: &Fixture, client: &mut Client) -> pb::RequestView {
    client
        .open(
            &load(&fx.commander_key("ic")),
            None,
            "prod-api",
            "db down",
            600,
            "",
        )
        .await
        .unwrap()
}

/// DESIGN.md "Epochs", the end-to-end contract: 5 custodians,
/// threshold 3; remove c5, add n1 and n2, threshold 4. The old epoch keeps
/// unlocking until the commit, across a kill -9 and restart between the
/// quorum and the last confirmation; after the commit the removed custodian and every old
/// share are refused, four new shares unlock, and the credential verifies
/// against the same A (DESIGN.md "Epochs": A never changes; invariant 2:
/// only a quorum of the current epoch unlocks; invariant 6: every step
/// committed durably, so a kill -9 loses nothing).
#[tokio::test(flavor = "multi_thread")]
async fn a_rekey_changes_the_custodians_and_the_threshold_and_keeps_the_authority_key() {
    let mut fx = Fixture::new(5, 3, "15m");
    fx.start();
    let mut client = fx.client().await;
    let authority = client.info().authority_public_key.clone();
    let (n1, n1_path) = new_key(&fx, "n1");
    let (n2, n2_path) = new_key(&fx, "n2");
    let proposed = policy_with(
        &fx,
        4,
        &["c5"],
        &[("n1", n1.ssh_public()), ("n2", n2.ssh_public())],
    );

    // c1 proposes; the summary every custodian approves from is recomputed
    // by the client from both policies.
    let c1 = load(&fx.custodian_key(0));
    let change = client
        .propose(&c1, None, &proposed, "c5 leaves; n1 and n2 join")
        .await
        .unwrap();
    let s = &change.summary;
    assert_eq!(s.custodians_added, vec!["n1", "n2"]);
    assert_eq!(s.custodians_removed, vec!["c5"]);
    assert_eq!((s.threshold_old, s.threshold_new), (3, 4));
    assert!(s.rekey);

    // A second proposal while this one is open is refused, naming it.
    let other = policy_with(&fx, 2, &[], &[]);
    assert_status(
        status(client.propose(&c1, None, &other, "another").await),
        Code::FailedPrecondition,
        &format!("change `{}` is already open", change.id()),
    );

    // Separation of duties: the proposer does not approve her own change.
    let (me, f) = old_share(&fx, &client, 0);
    assert_status(
        status(client.approve_change(&me, None, &change, &f).await),
        Code::PermissionDenied,
        "",
    );
    let mut last = None;
    for i in 1..=3 {
        let (me, f) = old_share(&fx, &client, i);
        let (out, after) = client.approve_change(&me, None, &change, &f).await.unwrap();
        assert_eq!(out.accepted, i as u32);
        last = Some(after);
    }
    let dealt = last.unwrap();
    assert_eq!(
        dealt.request().state,
        pb::RequestState::ChangeDealt as i32,
        "{:?}",
        dealt.request().close_reason
    );
    let pending = dealt.pending().unwrap().clone();
    assert_eq!(
        (pending.epoch, pending.need),
        (2, 6),
        "every new custodian confirms"
    );
    assert_eq!(client.info().epoch, 1);

    // The removed custodian fetches nothing, and may not veto her removal.
    let c5 = load(&fx.custodian_key(4));
    assert_status(
        status(client.cancel_change(&c5, None, change.id(), "no").await),
        Code::PermissionDenied,
        &format!(
            "custodian `c5` may not cancel change `{}`: it removes her",
            change.id()
        ),
    );
    assert_eq!(
        client
            .get_change(change.id())
            .await
            .unwrap()
            .pending()
            .unwrap()
            .state,
        pb::PendingState::Confirming as i32
    );
    let e = client
        .fetch_new_share(&c5, Some("c5"), change.id())
        .await
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .contains("not a custodian of the policy change"),
        "{e}"
    );
    let raw = fetch_raw(&mut client, &c5, "c5", change.id(), 2).await;
    assert_status(raw, Code::PermissionDenied, "epoch 2");

    // Three of the six confirm, then the daemon restarts.
    let mut new_files = std::collections::BTreeMap::new();
    for i in 0..3 {
        let me = load(&fx.custodian_key(i));
        let got = client
            .fetch_new_share(&me, None, change.id())
            .await
            .unwrap();
        assert_eq!(got.file.epoch(), 2);
        let (out, _) = client
            .confirm_new_share(&me, None, change.id(), &got.file)
            .await
            .unwrap();
        assert_eq!(
            (out.confirmed, out.need, out.committed),
            (i as u32 + 1, 6, false)
        );
        new_files.insert(fx.keys.custodians[i].0.clone(), got.file);
    }
    // kill -9, not a clean stop: every step was one durable commit.
    fx.kill9();
    fx.start();
    let mut client = fx.client().await;
    assert_eq!(client.info().epoch, 1, "nothing committed yet");
    let after = client.get_change(change.id()).await.unwrap();
    assert_eq!(
        after.pending().unwrap().confirmed,
        3,
        "a restart loses nothing"
    );

    // The old epoch still unlocks until the commit.
    let r = open_token(&fx, &mut client).await;
    for i in 0..3 {
        let (me, f) = old_share(&fx, &client, i);
        client.submit(&me, None, &r, &f).await.unwrap();
    }
    assert_eq!(
        client.get(&r.id).await.unwrap().state,
        pb::RequestState::Unlocked as i32
    );

    // A request collecting when the epoch commits is cancelled with a reason.
    let collecting = open_token(&fx, &mut client).await;

    for (id, key) in [
        ("c4", fx.custodian_key(3)),
        ("n1", n1_path),
        ("n2", n2_path),
    ] {
        let me = load(&key);
        let got = client
            .fetch_new_share(&me, None, change.id())
            .await
            .unwrap();
        let (out, _) = client
            .confirm_new_share(&me, None, change.id(), &got.file)
            .await
            .unwrap();
        assert_eq!(out.committed, id == "n2", "{id}");
        new_files.insert(id.to_string(), got.file);
    }
    assert_eq!(client.info().epoch, 2);
    assert_eq!(client.info().threshold, 4);
    assert_eq!(
        client.info().authority_public_key,
        authority,
        "A never changes"
    );
    let gone = client.get(&collecting.id).await.unwrap();
    assert_eq!(gone.state, pb::RequestState::Cancelled as i32);
    assert!(
        gone.close_reason.contains("moved to epoch 2"),
        "{}",
        gone.close_reason
    );

    // After the commit: the removed custodian and every old share are refused.
    let r = open_token(&fx, &mut client).await;
    let c5_old = common::share_bytes(&client, &fx.custodian_key(4), &fx.share_file("c5"));
    let sub = Submission::new(&client, &r, "c5", &c5, c5_old);
    assert_status(
        client.rpc().submit_share(sub.message()).await,
        Code::PermissionDenied,
        "c5",
    );
    let (me, f) = old_share(&fx, &client, 0);
    assert_status(
        status(client.submit(&me, None, &r, &f).await),
        Code::FailedPrecondition,
        "your share is from epoch 1; this daemon is at epoch 2",
    );
    assert!(client.get(&r.id).await.unwrap().approvals.is_empty());

    // Four new shares unlock; the token verifies against the same A.
    for (i, id) in ["c1", "c2", "n1", "n2"].iter().enumerate() {
        let key = match *id {
            "n1" => fx.dir.path().join("keys").join("n1"),
            "n2" => fx.dir.path().join("keys").join("n2"),
            _ => fx.custodian_key(i),
        };
        let me = load(&key);
        let out = client.submit(&me, None, &r, &new_files[*id]).await.unwrap();
        assert_eq!(out.unlocked, i == 3, "{id}");
    }
    let b = client
        .fetch(&load(&fx.commander_key("ic")), None, &r.id)
        .await
        .unwrap();
    let a = AuthorityPublic::parse(&fx.authority_paserk()).unwrap();
    let claims = verify_token(&a, b.paseto.as_deref().unwrap(), unix_now()).unwrap();
    assert_eq!(claims.approvers, vec!["c1", "c2", "n1", "n2"]);
}

async fn fetch_raw(
    client: &mut Client,
    me: &Identity,
    id: &str,
    change: &str,
    epoch: u64,
) -> Result<pb::FetchNewShareResponse, tonic::Status> {
    let at = unix_now();
    let daemon = client.info().daemon_id.clone();
    let payload = signing::fetch_new_share(&daemon, change, epoch, id, at);
    client
        .rpc()
        .fetch_new_share(pb::FetchNewShareRequest {
            change_id: change.to_string(),
            epoch,
            signature: Some(pb::Signature {
                signer_id: id.to_string(),
                signed_at: at,
                signature: me.sign(&payload).to_vec(),
            }),
        })
        .await
        .map(|r| r.into_inner())
}

/// A policy-only change (a new scope, the same custodians and threshold)
/// applies at the quorum with no new shares, and the old shares unlock under
/// the new policy (invariant 8: the seal opens only under the policy it is
/// bound to, so the re-seal is what makes the old shares work under the new one).
#[tokio::test(flavor = "multi_thread")]
async fn a_policy_only_change_applies_at_once_and_the_same_shares_unlock_under_it() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let before = client.info().policy_digest.clone();
    let proposed = std::fs::read_to_string(fx.policy_path())
        .unwrap()
        .replace(
            "[[scopes]]\nname = \"prod-api\"",
            "[[scopes]]\nname = \"staging-api\"\ncredentials = [\"token\"]\n\n[[scopes]]\nname = \"prod-api\"",
        )
        .replace(
            "scopes = [\"prod-ssh\", \"prod-db\", \"prod-api\"]",
            "scopes = [\"prod-ssh\", \"prod-db\", \"prod-api\", \"staging-api\"]",
        );
    let ic = load(&fx.commander_key("ic"));
    let change = client
        .propose(&ic, None, &proposed, "a staging scope")
        .await
        .unwrap();
    assert!(!change.summary.rekey);
    assert_eq!(change.summary.scopes_added, vec!["staging-api"]);
    for i in 0..2 {
        let (me, f) = old_share(&fx, &client, i);
        client.approve_change(&me, None, &change, &f).await.unwrap();
    }
    let done = client.get_change(change.id()).await.unwrap();
    assert_eq!(done.request().state, pb::RequestState::ChangeApplied as i32);
    assert!(done.pending().is_none(), "nobody gets a new share");
    client.refresh().await.unwrap();
    assert_eq!(client.info().epoch, 1);
    assert_ne!(client.info().policy_digest, before);

    let r = client
        .open(&ic, None, "staging-api", "test the new scope", 600, "")
        .await
        .unwrap();
    for i in 0..2 {
        let (me, f) = old_share(&fx, &client, i);
        client.submit(&me, None, &r, &f).await.unwrap();
    }
    assert_eq!(
        client.get(&r.id).await.unwrap().state,
        pb::RequestState::Unlocked as i32
    );
    // And after a restart, too (the re-sealed state is what was stored).
    fx.stop();
    fx.start();
    let mut client = fx.client().await;
    assert_ne!(client.info().policy_digest, before);
    let r = open_token(&fx, &mut client).await;
    for i in 1..3 {
        let (me, f) = old_share(&fx, &client, i);
        client.submit(&me, None, &r, &f).await.unwrap();
    }
    assert_eq!(
        client.get(&r.id).await.unwrap().state,
        pb::RequestState::Unlocked as i32
    );
}

/// How many requests the daemon holds and its audit head: what "state
/// unchanged" is checked against.
async fn footprint(client: &mut Client) -> (usize, u64) {
    let n = client.list(false).await.unwrap_or_default().len();
    (n, client.audit_head().await.unwrap())
}

/// Every bad input to a proposal gets its own status and message and leaves
/// the state as it was (invariant 4 for signatures; the policy rules of `init`).
#[tokio::test(flavor = "multi_thread")]
async fn bad_proposals_are_refused_with_the_reason_and_change_nothing() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let c1 = load(&fx.custodian_key(0));
    let before = footprint(&mut client).await;

    // Fails validation: the validator's own message.
    let bad = policy_with(&fx, 7, &[], &[]);
    assert_status(
        status(client.propose(&c1, None, &bad, "x").await),
        Code::InvalidArgument,
        "the proposed policy is not valid: 3 custodians with threshold 7",
    );
    assert_status(
        client
            .rpc()
            .check_policy(pb::CheckPolicyRequest {
                policy: "threshold = \"three\"".into(),
            })
            .await,
        Code::InvalidArgument,
        "the proposed policy is not valid",
    );
    // The current policy again: nothing to change.
    let same = std::fs::read_to_string(fx.policy_path()).unwrap();
    assert_status(
        status(client.propose(&c1, None, &same, "x").await),
        Code::InvalidArgument,
        "is the current policy",
    );
    let after_same = footprint(&mut client).await;
    assert_eq!(after_same.0, before.0, "no change request was opened");

    // Someone not in the current epoch.
    let outsider = load(&fx.keys.outsider);
    let good = policy_with(&fx, 3, &[], &[]);
    assert_status(
        status(client.propose(&outsider, Some("mallory"), &good, "x").await),
        Code::PermissionDenied,
        "mallory",
    );
    // A signature over another proposal.
    let (checked, _) = client.check_policy(&good).await.unwrap();
    let at = unix_now();
    let nonce = [3u8; signing::NONCE_LEN];
    let payload = signing::propose_change(
        &client.info().daemon_id,
        "c1",
        1,
        &checked.current_policy_digest.as_slice().try_into().unwrap(),
        &[9u8; 32],
        "x",
        &nonce,
        at,
    );
    assert_status(
        client
            .rpc()
            .propose_change(pb::ProposeChangeRequest {
                policy: good.clone(),
                reason: "x".into(),
                nonce: nonce.to_vec(),
                signature: Some(pb::Signature {
                    signer_id: "c1".into(),
                    signed_at: at,
                    signature: c1.sign(&payload).to_vec(),
                }),
            })
            .await,
        Code::Unauthenticated,
        "",
    );
    let (n, _) = footprint(&mut client).await;
    assert_eq!(n, before.0, "nothing was opened");
}

/// An approval is bound to the change, its epoch and the policy it proposes:
/// one signed over another policy digest, one naming another epoch, one for
/// a cancelled change, and a plain `SubmitShare` on a change are each
/// refused with a message that says which, and count for nothing
/// (invariant 4: signed, bound, fresh; invariant 9).
#[tokio::test(flavor = "multi_thread")]
async fn bad_approvals_are_refused_and_count_for_nothing() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let change = client
        .propose(&ic, None, &policy_with(&fx, 3, &[], &[]), "all three")
        .await
        .unwrap();
    let r = change.request().clone();
    let (me, f) = old_share(&fx, &client, 0);
    let share = common::share_bytes(&client, &fx.custodian_key(0), &fx.share_file("c1"));
    let approve = |epoch: u64, digest: [u8; 32]| {
        let eph: [u8; 32] = r.ephemeral_public_key.as_slice().try_into().unwrap();
        let d: [u8; 32] = r.digest.as_slice().try_into().unwrap();
        let sealed =
            transport::seal_share(&eph, &d, &r.id, "c1", &share, rand_core::OsRng).unwrap();
        let at = unix_now();
        let payload =
            signing::approve_change(&r.daemon_id, &r.id, &d, epoch, &digest, "c1", &sealed, at);
        pb::ApproveChangeRequest {
            change_id: r.id.clone(),
            sealed_share: sealed,
            epoch,
            new_policy_digest: digest.to_vec(),
            signature: Some(pb::Signature {
                signer_id: "c1".into(),
                signed_at: at,
                signature: me.sign(&payload).to_vec(),
            }),
        }
    };
    let proposed: [u8; 32] = change.view.new_policy_digest.as_slice().try_into().unwrap();
    assert_status(
        client.rpc().approve_change(approve(1, [9u8; 32])).await,
        Code::FailedPrecondition,
        &format!(
            "signed an approval of policy 0909090909090909, but change `{}` proposes",
            r.id
        ),
    );
    assert_status(
        client.rpc().approve_change(approve(2, proposed)).await,
        Code::FailedPrecondition,
        "your share is from epoch 2; this daemon is at epoch 1",
    );
    let sub = Submission::new(&client, &r, "c1", &me, share.clone());
    assert_status(
        client.rpc().submit_share(sub.message()).await,
        Code::FailedPrecondition,
        "is a policy change: approve it with `breakglass policy approve`",
    );
    let now = client.get_change(&r.id).await.unwrap();
    assert!(now.request().approvals.is_empty(), "nothing counted");

    // A change is not an access request: the CLI refuses to show it as one,
    // CancelRequest refuses it, lists show it as a change; GetChange checks ids.
    let (ok, _, err) = fx.cli(
        &fx.custodian_key(0),
        &[
            "share",
            "submit",
            &r.id,
            "--share",
            fx.share_file("c1").to_str().unwrap(),
            "--yes",
        ],
    );
    assert!(
        !ok && err.contains("is a policy change, not an access request"),
        "{err}"
    );
    let at = unix_now();
    let payload = signing::cancel_request(
        &r.daemon_id,
        &r.id,
        &r.digest.as_slice().try_into().unwrap(),
        "c1",
        "",
        at,
    );
    assert_status(
        client
            .rpc()
            .cancel_request(pb::CancelRequestRequest {
                request_id: r.id.clone(),
                reason: String::new(),
                signature: Some(pb::Signature {
                    signer_id: "c1".into(),
                    signed_at: at,
                    signature: me.sign(&payload).to_vec(),
                }),
            })
            .await,
        Code::FailedPrecondition,
        "is a policy change: cancel it with `breakglass policy cancel`",
    );
    let (ok, out, err) = fx.cli(&fx.custodian_key(0), &["request", "list", "--json"]);
    assert!(ok && out.contains("\"kind\":\"change\""), "{out}{err}");
    assert_status(
        client
            .rpc()
            .get_change(pb::GetChangeRequest { id: String::new() })
            .await,
        Code::InvalidArgument,
        "must be a change id",
    );
    let access = open_token(&fx, &mut client).await;
    assert_status(
        client
            .rpc()
            .get_change(pb::GetChangeRequest {
                id: access.id.clone(),
            })
            .await,
        Code::FailedPrecondition,
        "is not a policy change",
    );
    assert_status(
        client
            .rpc()
            .get_change(pb::GetChangeRequest {
                id: "chg-0000000000000000".into(),
            })
            .await,
        Code::NotFound,
        "",
    );
    assert_eq!(
        client.get_change(&r.id).await.unwrap().request().state,
        pb::RequestState::Collecting as i32,
        "still open"
    );

    // Cancelled by a custodian, on the record; an approval after it is refused.
    let c2 = load(&fx.custodian_key(1));
    let cancelled = client
        .cancel_change(&c2, None, &r.id, "not now")
        .await
        .unwrap();
    assert_eq!(
        cancelled.request().state,
        pb::RequestState::Cancelled as i32
    );
    assert_status(
        status(client.approve_change(&me, None, &change, &f).await),
        Code::FailedPrecondition,
        "is cancelled",
    );
    // A commander who did not propose it may not cancel a change.
    let change2 = client
        .propose(
            &load(&fx.custodian_key(2)),
            None,
            &policy_with(&fx, 3, &[], &[]),
            "again",
        )
        .await
        .unwrap();
    assert_status(
        status(
            client
                .cancel_change(&load(&fx.commander_key("ic2")), None, change2.id(), "no")
                .await,
        ),
        Code::PermissionDenied,
        "ic2",
    );
    let still: Change = client.get_change(change2.id()).await.unwrap();
    assert_eq!(still.request().state, pb::RequestState::Collecting as i32);
}

/// A new custodian's confirmation is checked against her new commitment: a
/// share that fails it is refused naming her; another custodian cannot fetch
/// her file; confirming twice is refused; a cancelled pending epoch takes no
/// confirmations and the current epoch stays (invariant 5: a bad share is
/// caught at once and attributed; invariant 9).
#[tokio::test(flavor = "multi_thread")]
async fn bad_confirmations_are_refused_naming_the_custodian() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let (n1, _) = new_key(&fx, "n1");
    let ic = load(&fx.commander_key("ic"));
    let change = client
        .propose(
            &ic,
            None,
            &policy_with(&fx, 2, &["c3"], &[("n1", n1.ssh_public())]),
            "c3 leaves",
        )
        .await
        .unwrap();
    for i in 0..2 {
        let (me, f) = old_share(&fx, &client, i);
        client.approve_change(&me, None, &change, &f).await.unwrap();
    }
    // c1 signs a fetch as n1: not n1's signature.
    let c1 = load(&fx.custodian_key(0));
    assert_status(
        fetch_raw(&mut client, &c1, "n1", change.id(), 2).await,
        Code::Unauthenticated,
        "",
    );
    // Another epoch number.
    assert_status(
        fetch_raw(&mut client, &n1, "n1", change.id(), 3).await,
        Code::FailedPrecondition,
        "dealt epoch 2, not epoch 3",
    );
    let got = client
        .fetch_new_share(&n1, None, change.id())
        .await
        .unwrap();
    // A share that fails its commitment (one byte of y flipped), sealed and
    // signed correctly, with the right commitment named.
    let view = client.get_change(change.id()).await.unwrap();
    let p = view.pending().unwrap();
    let eph: [u8; 32] = p.ephemeral_public_key.as_slice().try_into().unwrap();
    let digest: [u8; 32] = view.request().digest.as_slice().try_into().unwrap();
    let mut bytes = got.file.share_bytes().unwrap().to_vec();
    bytes[5] ^= 1;
    let commitment = p
        .shares
        .iter()
        .find(|s| s.custodian_id == "n1")
        .unwrap()
        .commitment
        .clone();
    let sealed =
        transport::seal_share(&eph, &digest, change.id(), "n1", &bytes, rand_core::OsRng).unwrap();
    let at = unix_now();
    let daemon = client.info().daemon_id.clone();
    let payload = signing::confirm_new_share(
        &daemon,
        change.id(),
        2,
        &eph,
        "n1",
        &commitment.as_slice().try_into().unwrap(),
        &sealed,
        at,
    );
    let bad = pb::ConfirmNewShareRequest {
        change_id: change.id().to_string(),
        epoch: 2,
        commitment: commitment.clone(),
        sealed_share: sealed,
        signature: Some(pb::Signature {
            signer_id: "n1".into(),
            signed_at: at,
            signature: n1.sign(&payload).to_vec(),
        }),
        ephemeral_public_key: eph.to_vec(),
    };
    // Sealed to a key the daemon does not hold (as after a restart).
    let stale = pb::ConfirmNewShareRequest {
        ephemeral_public_key: vec![9u8; 32],
        ..bad.clone()
    };
    assert_status(
        client.rpc().confirm_new_share(stale).await,
        Code::FailedPrecondition,
        "the daemon restarted since you read the key",
    );
    assert_status(
        client.rpc().confirm_new_share(bad).await,
        Code::InvalidArgument,
        "share from custodian `n1` does not match their commitment",
    );
    let view = client.get_change(change.id()).await.unwrap();
    assert_eq!(view.pending().unwrap().confirmed, 0, "nothing counted");

    // Her real share confirms; a second confirmation is refused.
    client
        .confirm_new_share(&n1, None, change.id(), &got.file)
        .await
        .unwrap();
    assert_status(
        status(
            client
                .confirm_new_share(&n1, None, change.id(), &got.file)
                .await,
        ),
        Code::AlreadyExists,
        "n1",
    );

    // Cancelled by a current custodian: no more confirmations; epoch 1 stays.
    let c2 = load(&fx.custodian_key(1));
    let cancelled = client
        .cancel_change(&c2, None, change.id(), "wrong person")
        .await
        .unwrap();
    let p = cancelled.pending().unwrap();
    assert_eq!(p.state, pb::PendingState::Cancelled as i32);
    assert!(
        p.shares.iter().all(|s| !s.file_available),
        "share files deleted"
    );
    let got = client
        .fetch_new_share(&c1, None, change.id())
        .await
        .err()
        .unwrap();
    assert!(got.to_string().contains("cancelled"), "{got}");
    client.refresh().await.unwrap();
    assert_eq!(client.info().epoch, 1);
    let r = open_token(&fx, &mut client).await;
    for i in 1..3 {
        let (me, f) = old_share(&fx, &client, i);
        client.submit(&me, None, &r, &f).await.unwrap();
    }
    assert_eq!(
        client.get(&r.id).await.unwrap().state,
        pb::RequestState::Unlocked as i32
    );
}

/// The CLI runs a whole rekey: `policy propose`, `policy show`, `policy
/// approve`, `share fetch`, `share confirm`, `policy status --json`; the new
/// share files then approve with `share submit`.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_proposes_approves_fetches_and_confirms_a_rekey() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let (n1, n1_path) = new_key(&fx, "n1");
    let file = fx.dir.path().join("new-policy.toml");
    std::fs::write(&file, policy_with(&fx, 2, &[], &[("n1", n1.ssh_public())])).unwrap();
    let (ok, out, err) = fx.cli(
        &fx.commander_key("ic"),
        &[
            "policy",
            "propose",
            file.to_str().unwrap(),
            "--reason",
            "n1 joins",
            "--yes",
            "--json",
        ],
    );
    assert!(ok, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["rekey"], true);
    assert!(
        v["summary"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("n1")),
        "{out}"
    );
    let (ok, out, err) = fx.cli(&fx.custodian_key(0), &["policy", "show", &id]);
    assert!(
        ok && out.contains("n1") && out.contains("computed by this client"),
        "{out}{err}"
    );
    for i in 0..2 {
        let share = fx.share_file(&fx.keys.custodians[i].0);
        let mut args = vec![
            "policy",
            "approve",
            &id,
            "--share",
            share.to_str().unwrap(),
            "--yes",
        ];
        if i == 0 {
            args.push("--full");
        }
        let (ok, out, err) = fx.cli(&fx.custodian_key(i), &args);
        assert!(ok, "{out}{err}");
        assert!(
            out.contains("You are asked to approve a POLICY CHANGE"),
            "{out}"
        );
        assert_eq!(
            out.contains("proposed policy (canonical JSON"),
            i == 0,
            "{out}"
        );
        if i == 1 {
            assert!(out.contains("epoch 2 was dealt"), "{out}");
        }
    }
    let members: Vec<(String, std::path::PathBuf)> = fx
        .keys
        .custodians
        .iter()
        .cloned()
        .chain([("n1".to_string(), n1_path)])
        .collect();
    let mut new_files = Vec::new();
    for (who, key) in &members {
        let out_file = fx.dir.path().join(format!("{who}-epoch2.share"));
        let (ok, out, err) = fx.cli(
            key,
            &["share", "fetch", &id, "--out", out_file.to_str().unwrap()],
        );
        assert!(ok && out.contains("of epoch 2"), "{who}: {out}{err}");
        let (ok, out, err) = fx.cli(
            key,
            &[
                "share",
                "confirm",
                &id,
                "--share",
                out_file.to_str().unwrap(),
            ],
        );
        assert!(ok, "{who}: {out}{err}");
        assert_eq!(
            out.contains("epoch 2 committed"),
            who == "n1",
            "{who}: {out}"
        );
        new_files.push((key.clone(), out_file));
    }
    let (ok, out, err) = fx.cli(&fx.custodian_key(0), &["policy", "status", &id, "--json"]);
    assert!(ok, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["pending"]["state"], "committed");
    assert_eq!(v["pending"]["confirmed"], 4);

    let (ok, out, err) = fx.cli(&fx.custodian_key(0), &["info", "--json"]);
    assert!(ok, "{out}{err}");
    let info: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (info["epoch"].as_u64(), info["threshold"].as_u64()),
        (Some(2), Some(2))
    );
    // A confirmation proves possession of the new share: the new epoch starts ready.
    let (ok, out, err) = fx.cli(&fx.custodian_key(0), &["readiness", "--json"]);
    assert!(ok, "{out}{err}");
    let ready: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (ready["epoch"].as_u64(), ready["proven"].as_u64()),
        (Some(2), Some(4)),
        "{out}"
    );
    assert_eq!(ready["ready"], true);

    // The new files approve an access request through the CLI.
    let mut client = fx.client().await;
    assert_eq!(client.info().epoch, 2);
    let r = open_token(&fx, &mut client).await;
    for (key, f) in new_files.iter().skip(2) {
        let (ok, out, err) = fx.cli(
            key,
            &[
                "share",
                "submit",
                &r.id,
                "--share",
                f.to_str().unwrap(),
                "--yes",
            ],
        );
        assert!(ok, "{out}{err}");
    }
    assert_eq!(
        client.get(&r.id).await.unwrap().state,
        pb::RequestState::Unlocked as i32
    );
}

/// `breakglass drill --json` rehearses a rekey after the unlock (one
/// custodian leaves, one joins, the threshold changes) and reports each step;
/// the new shares unlock and the credential verifies against the same A.
#[test]
fn the_drill_rehearses_a_rekey_and_reports_it_in_json() {
    let (ok, out, err) = common::run("breakglass", &["drill", "--json"], &[]);
    assert!(ok, "{out}{err}");
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["ok"], true, "{out}");
    let steps: Vec<(String, bool, String)> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["ok"].as_bool().unwrap(),
                s["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for name in [
        "rekey: propose",
        "rekey: quorum deals epoch 2",
        "rekey: confirm new shares",
        "rekey: old shares refused",
        "rekey: new shares unlock, same A",
    ] {
        let s = steps
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("no step {name:?}: {out}"));
        assert!(s.1, "{name}: {}", s.2);
    }
    let propose = &steps.iter().find(|s| s.0 == "rekey: propose").unwrap().2;
    assert!(
        propose.contains("custodians removed: custodian-5")
            && propose.contains("threshold: 3 -> 4"),
        "{propose}"
    );
    let events = r["audit_events"].to_string();
    assert!(events.contains("epoch_committed"), "{events}");
}

/// Separation of duties applies to the proposer: a custodian's proposal that
/// the others could never approve (2 of 2) is refused, saying who may propose
/// it; a commander's is opened (invariant 2: the quorum must stay reachable
/// without the proposer's own share).
#[tokio::test(flavor = "multi_thread")]
async fn a_custodian_proposal_the_others_cannot_approve_is_refused() {
    let mut fx = Fixture::new(2, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let (n1, _) = new_key(&fx, "n1");
    let proposed = policy_with(&fx, 2, &[], &[("n1", n1.ssh_public())]);
    assert_status(
        status(
            client
                .propose(&load(&fx.custodian_key(0)), None, &proposed, "2 of 3")
                .await,
        ),
        Code::FailedPrecondition,
        "custodian `c1` may not propose this change: with separation_of_duties their own share does not count",
    );
    let c = client
        .propose(&load(&fx.commander_key("ic")), None, &proposed, "2 of 3")
        .await
        .unwrap();
    assert_eq!(c.summary.custodians_added, vec!["n1"]);
}

/// `rekey_confirm = "threshold"`: the pending epoch commits once the new
/// threshold have confirmed; a custodian who had not confirmed can still
/// fetch her file until the deadline, and her share then approves
/// (invariant 1: the confirmed custodians' files are deleted at once).
#[tokio::test(flavor = "multi_thread")]
async fn with_rekey_confirm_threshold_the_epoch_commits_at_the_new_threshold() {
    let mut fx = Fixture::with_extra(3, 2, "15m", &["root"], "rekey_confirm = \"threshold\"", "");
    fx.start();
    let mut client = fx.client().await;
    let (n1, n1_path) = new_key(&fx, "n1");
    let proposed = policy_with(&fx, 2, &[], &[("n1", n1.ssh_public())]);
    let ic = load(&fx.commander_key("ic"));
    let change = client
        .propose(&ic, None, &proposed, "n1 joins")
        .await
        .unwrap();
    for i in 0..2 {
        let (me, f) = old_share(&fx, &client, i);
        client.approve_change(&me, None, &change, &f).await.unwrap();
    }
    let p = client.get_change(change.id()).await.unwrap();
    assert_eq!(p.pending().unwrap().need, 2, "the new threshold");
    let mut files = Vec::new();
    for i in 0..2 {
        let me = load(&fx.custodian_key(i));
        let got = client
            .fetch_new_share(&me, None, change.id())
            .await
            .unwrap();
        let (out, _) = client
            .confirm_new_share(&me, None, change.id(), &got.file)
            .await
            .unwrap();
        assert_eq!(out.committed, i == 1);
        files.push((me, got.file));
    }
    assert_eq!(client.info().epoch, 2);
    // n1 had not confirmed: her file is still there until the deadline.
    let got = client
        .fetch_new_share(&n1, None, change.id())
        .await
        .unwrap();
    assert_eq!(got.file.custodian_id, "n1");
    let after = client.get_change(change.id()).await.unwrap();
    let p = after.pending().unwrap();
    assert_eq!(p.state, pb::PendingState::Committed as i32);
    assert!(
        p.shares
            .iter()
            .all(|s| s.file_available == (s.confirmed_at == 0)),
        "the confirmed custodians' files are deleted at the commit, the others' kept: {:?}",
        p.shares
    );
    assert_eq!(
        p.shares.iter().filter(|s| s.file_available).count(),
        2,
        "c3 and n1"
    );
    let r = open_token(&fx, &mut client).await;
    client.submit(&n1, None, &r, &got.file).await.unwrap();
    let (me, f) = &files[0];
    let out = client.submit(me, None, &r, f).await.unwrap();
    assert!(out.unlocked);
    // A confirmation after the commit is refused: the epoch is no longer pending.
    let late = client
        .confirm_new_share(&load(&n1_path), None, change.id(), &got.file)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        late.contains("epoch 2 of change") && late.contains("is committed"),
        "{late}"
    );
    // And by the daemon, to a client that sends it anyway.
    let raw = pb::ConfirmNewShareRequest {
        change_id: change.id().to_string(),
        epoch: 2,
        commitment: vec![0u8; 32],
        sealed_share: vec![0u8; transport::SEALED_LEN],
        signature: Some(pb::Signature {
            signer_id: "n1".into(),
            signed_at: unix_now(),
            signature: vec![0u8; 64],
        }),
        ephemeral_public_key: Vec::new(),
    };
    assert_status(
        client.rpc().confirm_new_share(raw).await,
        Code::FailedPrecondition,
        "epoch 2 is committed (2 of 4 new custodians confirmed); it takes no more confirmations: a share file of it that was not confirmed works as it is",
    );
}

fn signed_by(id: &str, key: &Identity, payload: &[u8]) -> Option<pb::Signature> {
    Some(pb::Signature {
        signer_id: id.to_string(),
        signed_at: unix_now(),
        signature: key.sign(payload).to_vec(),
    })
}

/// A client written from the proto alone: each malformed change call gets
/// its own status and a message naming the field or the state, and changes
/// nothing (invariant 9).
#[tokio::test(flavor = "multi_thread")]
async fn malformed_change_calls_get_specific_statuses_and_change_nothing() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut client = fx.client().await;
    let (n1, _) = new_key(&fx, "n1");
    let proposed = policy_with(&fx, 2, &[], &[("n1", n1.ssh_public())]);
    let c1 = load(&fx.custodian_key(0));

    // Unsigned, empty, or with a nonce of the wrong size.
    assert_status(
        client
            .rpc()
            .propose_change(pb::ProposeChangeRequest::default())
            .await,
        Code::InvalidArgument,
        "signature: is missing",
    );
    assert_status(
        client
            .rpc()
            .propose_change(pb::ProposeChangeRequest {
                policy: proposed.clone(),
                reason: "x".into(),
                nonce: vec![1, 2, 3],
                signature: signed_by("c1", &c1, b"x"),
            })
            .await,
        Code::InvalidArgument,
        "nonce",
    );
    assert_status(
        client
            .rpc()
            .check_policy(pb::CheckPolicyRequest::default())
            .await,
        Code::InvalidArgument,
        "the proposed policy is not valid",
    );
    let change = client
        .propose(&load(&fx.commander_key("ic")), None, &proposed, "n1 joins")
        .await
        .unwrap();
    let id = change.id().to_string();

    // Approvals: a digest of the wrong size, an unknown change.
    let bad_digest = pb::ApproveChangeRequest {
        change_id: id.clone(),
        sealed_share: vec![0u8; transport::SEALED_LEN],
        epoch: 1,
        new_policy_digest: vec![1u8; 5],
        signature: signed_by("c1", &c1, b"x"),
    };
    assert_status(
        client.rpc().approve_change(bad_digest).await,
        Code::InvalidArgument,
        "new_policy_digest",
    );
    let unknown = pb::ApproveChangeRequest {
        change_id: "chg-0000000000000000".into(),
        sealed_share: vec![0u8; transport::SEALED_LEN],
        epoch: 1,
        new_policy_digest: vec![1u8; 32],
        signature: signed_by("c1", &c1, b"x"),
    };
    assert_status(
        client.rpc().approve_change(unknown).await,
        Code::NotFound,
        "chg-0000000000000000",
    );
    // Fetch and confirm before anything was dealt.
    let at = unix_now();
    let payload = signing::fetch_new_share(&client.info().daemon_id, &id, 2, "n1", at);
    assert_status(
        client
            .rpc()
            .fetch_new_share(pb::FetchNewShareRequest {
                change_id: id.clone(),
                epoch: 2,
                signature: signed_by("n1", &n1, &payload),
            })
            .await,
        Code::FailedPrecondition,
        "has no pending epoch: it is collecting",
    );
    assert_status(
        client
            .rpc()
            .confirm_new_share(pb::ConfirmNewShareRequest {
                change_id: id.clone(),
                epoch: 2,
                commitment: vec![0u8; 3],
                sealed_share: vec![0u8; transport::SEALED_LEN],
                signature: signed_by("n1", &n1, b"x"),
                ephemeral_public_key: Vec::new(),
            })
            .await,
        Code::InvalidArgument,
        "commitment",
    );
    // Cancels: no id, an unknown id.
    assert_status(
        client
            .rpc()
            .cancel_change(pb::CancelChangeRequest {
                change_id: String::new(),
                reason: String::new(),
                signature: signed_by("c1", &c1, b"x"),
            })
            .await,
        Code::InvalidArgument,
        "change id",
    );
    assert_status(
        client
            .rpc()
            .cancel_change(pb::CancelChangeRequest {
                change_id: "chg-0000000000000000".into(),
                reason: String::new(),
                signature: signed_by("c1", &c1, b"x"),
            })
            .await,
        Code::NotFound,
        "",
    );
    let now = client.get_change(&id).await.unwrap();
    assert_eq!(now.request().state, pb::RequestState::Collecting as i32);
    assert!(now.request().approvals.is_empty(), "nothing counted");

    // Once dealt, a second proposal is refused, naming the pending change.
    for i in 0..2 {
        let (me, f) = old_share(&fx, &client, i);
        client.approve_change(&me, None, &change, &f).await.unwrap();
    }
    assert_status(
        status(
            client
                .propose(&c1, None, &policy_with(&fx, 3, &[], &[]), "another")
                .await,
        ),
        Code::FailedPrecondition,
        &format!("change `{id}` is waiting for its new custodians to confirm epoch 2"),
    );
}
