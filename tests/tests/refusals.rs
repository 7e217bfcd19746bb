//! Every refusal of a caller whose signature verified is on the record
//! (invariant 6: audited before acknowledged, here for refusals too): a
//! `call_refused` entry for opens, cancels, revocations and fetches, a
//! `share_rejected` entry for submissions, each naming the call, the caller and
//! the reason the caller was told. Unauthenticated refusals (a forged
//! signature) write nothing to the audit log. In process, on a fake clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use breakglass_client::api::unix_now;
use breakglass_formats::audit::{AuditEntry, Event};
use breakglass_proto::{pb, signing};
use common::inprocess::InProcess;
use common::{approve, assert_status, load, share_bytes, Fixture, Submission};
use tonic::Code;

/// Audit entries after `since`.
fn entries_after(d: &InProcess, since: u64) -> Vec<AuditEntry> {
    let store = d.daemon.store();
    store.audit(since + 1, 1000).unwrap()
}

fn head(d: &InProcess) -> u64 {
    d.daemon.store().audit_head().unwrap()
}

/// The one `call_refused` written since `since`: (call, caller, reason, request).
fn refused_since(d: &InProcess, since: u64) -> (String, String, String, Option<String>) {
    let found: Vec<_> = entries_after(d, since)
        .into_iter()
        .filter_map(|e| match e.event {
            Event::CallRefused {
                call,
                caller,
                reason,
            } => Some((call, caller, reason, e.request_id)),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

/// A signed open as the client would send it.
fn signed_open(
    d: &InProcess,
    fx: &Fixture,
    who: &str,
    scope: &str,
    reason: &str,
) -> pb::OpenRequestRequest {
    let me = load(&fx.commander_key(who));
    let nonce = [7u8; 16];
    let now = unix_now();
    let ssh = me.ssh_public();
    let payload = signing::open_request(
        &d.client.info().daemon_id,
        who,
        scope,
        reason,
        60,
        &ssh,
        &nonce,
        now,
    );
    pb::OpenRequestRequest {
        scope: scope.into(),
        reason: reason.into(),
        ttl_seconds: 60,
        nonce: nonce.to_vec(),
        signature: Some(pb::Signature {
            signer_id: who.into(),
            signed_at: now,
            signature: me.sign(&payload).to_vec(),
        }),
        ssh_public_key: ssh,
        kind: pb::RequestKind::Access as i32,
    }
}

/// Open: a scope the commander may not use, and a replayed signed open, are
/// refused and recorded with the caller; a forged signature is refused and
/// not recorded (it names nobody).
#[tokio::test]
async fn refused_opens_are_recorded() {
    let fx = Fixture::new(3, 2, "15m");
    let mut d = InProcess::start(&fx, 21).await;

    let h = head(&d);
    let m = signed_open(&d, &fx, "ic2", "prod-db", "not mine");
    assert_status(
        d.client.rpc().open_request(m).await,
        Code::PermissionDenied,
        "may not open requests for scope `prod-db`",
    );
    let (call, caller, reason, req) = refused_since(&d, h);
    assert_eq!((call.as_str(), caller.as_str()), ("open_request", "ic2"));
    assert!(reason.contains("prod-db"), "{reason}");
    assert_eq!(req, None);

    let m = signed_open(&d, &fx, "ic", "prod-ssh", "replayed");
    d.client.rpc().open_request(m.clone()).await.unwrap();
    let h = head(&d);
    assert_status(
        d.client.rpc().open_request(m.clone()).await,
        Code::AlreadyExists,
        "this signed open was already used",
    );
    let (call, caller, _, req) = refused_since(&d, h);
    assert_eq!((call.as_str(), caller.as_str()), ("open_request", "ic"));
    assert!(req.is_some(), "the replay names the request it repeats");

    let mut forged = m;
    forged.reason = "forged".into();
    let h = head(&d);
    assert_status(
        d.client.rpc().open_request(forged).await,
        Code::Unauthenticated,
        "signature",
    );
    assert!(
        entries_after(&d, h).is_empty(),
        "nothing recorded for a forgery"
    );
}

/// Submissions: a duplicate approval, a replayed submission, a share after the
/// request closed and a separation-of-duties refusal each leave a
/// `share_rejected` entry naming the custodian.
#[tokio::test]
async fn refused_shares_are_recorded() {
    let fx = Fixture::with_extra(
        3,
        2,
        "15m",
        &["root"],
        "",
        "[[commanders]]\nid = \"c1\"\nssh_key = \"{c1_key}\"\nscopes = [\"prod-ssh\"]\n",
    );
    let mut d = InProcess::start(&fx, 22).await;
    let c1 = load(&fx.custodian_key(0));
    let r = d
        .client
        .open(
            &c1,
            Some("c1"),
            "prod-ssh",
            "own request",
            60,
            &c1.ssh_public(),
        )
        .await
        .unwrap();
    let rejected = |d: &InProcess, h: u64| -> Vec<(String, String)> {
        entries_after(d, h)
            .into_iter()
            .filter_map(|e| match e.event {
                Event::ShareRejected { custodian, reason } => Some((custodian, reason)),
                _ => None,
            })
            .collect()
    };

    // Separation of duties: c1 opened it, so c1 cannot approve it.
    let h = head(&d);
    let f = d.client.read_share_file(&c1, &fx.share_file("c1")).unwrap();
    assert!(d.client.submit(&c1, Some("c1"), &r, &f).await.is_err());
    let got = rejected(&d, h);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "c1");
    assert!(
        got[0].1.contains("another custodian must approve"),
        "{got:?}"
    );

    // A replay of c2's signed submission, then a duplicate approval.
    let c2 = load(&fx.custodian_key(1));
    let s2 = share_bytes(&d.client, &fx.custodian_key(1), &fx.share_file("c2"));
    let m = Submission::new(&d.client, &r, "c2", &c2, s2.clone()).message();
    d.client.rpc().submit_share(m.clone()).await.unwrap();
    let h = head(&d);
    assert_status(
        d.client.rpc().submit_share(m).await,
        Code::AlreadyExists,
        "already",
    );
    assert_eq!(rejected(&d, h).len(), 1, "the replay is recorded");
    let h = head(&d);
    let fresh = Submission::new(&d.client, &r, "c2", &c2, s2).message();
    assert!(d.client.rpc().submit_share(fresh).await.is_err());
    assert_eq!(rejected(&d, h).len(), 1, "the duplicate is recorded");

    // After the unlock, a late share is refused on the record too.
    approve(&fx, &mut d.client, &r, 2).await;
    let h = head(&d);
    let late = Submission::new(
        &d.client,
        &r,
        "c2",
        &c2,
        share_bytes(&d.client, &fx.custodian_key(1), &fx.share_file("c2")),
    )
    .message();
    assert_status(
        d.client.rpc().submit_share(late).await,
        Code::FailedPrecondition,
        "unlocked",
    );
    let got = rejected(&d, h);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "c2");
}

/// Cancel, revoke and fetch refusals of verified callers are recorded:
/// cancelling a closed request, cancelling someone else's request, revoking
/// twice, fetching a revoked credential and fetching another commander's.
#[tokio::test]
async fn refused_cancels_revokes_and_fetches_are_recorded() {
    let fx = Fixture::new(3, 2, "15m");
    let mut d = InProcess::start(&fx, 23).await;
    let ic = load(&fx.commander_key("ic"));
    let ic2 = load(&fx.commander_key("ic2"));

    // Someone else's request.
    let other = d
        .client
        .open(&ic, None, "prod-ssh", "ic's", 60, &ic.ssh_public())
        .await
        .unwrap();
    let h = head(&d);
    assert!(d
        .client
        .cancel(&ic2, Some("ic2"), &other.id, "not mine")
        .await
        .is_err());
    let (call, caller, reason, req) = refused_since(&d, h);
    assert_eq!((call.as_str(), caller.as_str()), ("cancel_request", "ic2"));
    assert!(reason.contains("may not cancel"), "{reason}");
    assert_eq!(req.as_deref(), Some(other.id.as_str()));

    // A closed request cannot be cancelled again.
    d.client.cancel(&ic, None, &other.id, "done").await.unwrap();
    let h = head(&d);
    assert!(d
        .client
        .cancel(&ic, None, &other.id, "again")
        .await
        .is_err());
    let (call, caller, reason, _) = refused_since(&d, h);
    assert_eq!((call.as_str(), caller.as_str()), ("cancel_request", "ic"));
    assert!(reason.contains("cancelled"), "{reason}");

    // Unlock, fetch, revoke; then revoke again and fetch again.
    let r = d
        .client
        .open(&ic, None, "prod-api", "to revoke", 60, "")
        .await
        .unwrap();
    for i in 0..2 {
        approve(&fx, &mut d.client, &r, i).await;
    }
    let h = head(&d);
    assert!(d.client.fetch(&ic2, Some("ic2"), &r.id).await.is_err());
    let (call, caller, _, _) = refused_since(&d, h);
    assert_eq!(
        (call.as_str(), caller.as_str()),
        ("fetch_credential", "ic2")
    );

    let c1 = load(&fx.custodian_key(0));
    d.client.revoke(&c1, None, &r.id, "stolen").await.unwrap();
    let h = head(&d);
    assert!(d.client.revoke(&c1, None, &r.id, "twice").await.is_err());
    let (call, caller, reason, _) = refused_since(&d, h);
    assert_eq!(
        (call.as_str(), caller.as_str()),
        ("revoke_credential", "c1")
    );
    assert!(reason.contains("already revoked"), "{reason}");

    let h = head(&d);
    assert!(d.client.fetch(&ic, None, &r.id).await.is_err());
    let (call, caller, reason, _) = refused_since(&d, h);
    assert_eq!((call.as_str(), caller.as_str()), ("fetch_credential", "ic"));
    assert!(reason.contains("was revoked by c1"), "{reason}");
}
