//! `breakglass share attest` against a real `breakglassd` over loopback TLS:
//! a custodian proves her share without unlocking anything, and every way an
//! attestation can be wrong is refused with its own status and message, on the
//! record when the custodian's signature verified. Guards invariant 5 (a
//! share is checked against its commitment and attributed) and invariant 4
//! (every call is signed, fresh, and cannot be replayed).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use tonic::Code;

use breakglass_client::api::{open_share_file, unix_now, Client};
use breakglass_client::identity::Identity;
use breakglass_proto::{pb, signing, transport};
use common::{assert_status, load, share_bytes, Fixture};

/// A start signed by `signer_id` with `key`.
fn start_msg(c: &Client, signer_id: &str, key: &Identity) -> pb::StartAttestationRequest {
    let at = unix_now();
    let payload = signing::start_attestation(&c.info().daemon_id, signer_id, at);
    pb::StartAttestationRequest {
        signature: Some(pb::Signature {
            signer_id: signer_id.into(),
            signed_at: at,
            signature: key.sign(&payload).to_vec(),
        }),
    }
}

/// An attestation of `share` for challenge `ch`, sealed for `sealed_for` and
/// signed by `signer_id` with `key`.
fn attest_msg(
    c: &Client,
    ch: &pb::AttestationChallenge,
    signer_id: &str,
    key: &Identity,
    share: &[u8],
) -> pb::AttestShareRequest {
    let (pk, digest) = challenge_digest(c, ch);
    let sealed = transport::seal_share(
        &pk,
        &digest,
        &ch.attestation_id,
        signer_id,
        share,
        rand_core::OsRng,
    )
    .unwrap();
    signed_attest(c, ch, &digest, signer_id, key, sealed)
}

/// A challenge's one-shot key and the digest its seal and signature bind.
fn challenge_digest(c: &Client, ch: &pb::AttestationChallenge) -> ([u8; 32], [u8; 32]) {
    let pk: [u8; 32] = ch.public_key.as_slice().try_into().unwrap();
    let digest = signing::attestation_digest(&signing::Challenge {
        daemon_id: &c.info().daemon_id,
        ceremony_id: &c.info().ceremony_id,
        epoch: ch.epoch,
        attestation_id: &ch.attestation_id,
        custodian_id: &ch.custodian_id,
        public_key: &pk,
        expires_at: ch.expires_at,
    });
    (pk, digest)
}

fn signed_attest(
    c: &Client,
    ch: &pb::AttestationChallenge,
    digest: &[u8; 32],
    signer_id: &str,
    key: &Identity,
    sealed: Vec<u8>,
) -> pb::AttestShareRequest {
    let at = unix_now();
    let payload = signing::attest_share(
        &c.info().daemon_id,
        &ch.attestation_id,
        digest,
        signer_id,
        &sealed,
        at,
    );
    pb::AttestShareRequest {
        attestation_id: ch.attestation_id.clone(),
        sealed_share: sealed,
        signature: Some(pb::Signature {
            signer_id: signer_id.into(),
            signed_at: at,
            signature: key.sign(&payload).to_vec(),
        }),
    }
}

/// Audit events after `since`, as `kind:custodian-or-caller`.
async fn events_since(c: &mut Client, since: u64) -> Vec<String> {
    c.audit_export(since + 1)
        .await
        .unwrap()
        .into_iter()
        .map(|e| format!("{}:{}", e.event.kind(), e.actor))
        .collect()
}

/// Readiness: a custodian proves her share with the CLI; the daemon records
/// `share_attested`, and nothing is unlocked or minted.
#[tokio::test]
async fn a_custodian_attests_with_the_cli() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut c = fx.client().await;
    let head = c.audit_head().await.unwrap();
    let key = fx.custodian_key(0);
    let file = fx.share_file("c1").display().to_string();
    let (ok, out, err) = fx.cli(&key, &["share", "attest", "--share", &file]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("attested: c1 proved their share"), "{out}");
    assert!(out.contains("nothing was unlocked"), "{out}");
    let (ok, out, err) = fx.cli(&key, &["share", "attest", "--share", &file, "--json"]);
    assert!(ok, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["custodian_id"], "c1");
    assert_eq!(v["epoch"], 1);
    assert!(v["attestation_id"].as_str().unwrap().starts_with("att-"));
    let evs = events_since(&mut c, head).await;
    assert_eq!(evs, vec!["share_attested:c1", "share_attested:c1"]);
    // Nothing else happened: no request, no credential.
    assert!(c.list(false).await.unwrap().is_empty());
    // Another custodian's file with my key: refused before anything is sent.
    let other = fx.share_file("c2").display().to_string();
    let (ok, _, err) = fx.cli(&key, &["share", "attest", "--share", &other]);
    assert!(!ok);
    assert!(err.contains("use your own share file"), "{err}");
    assert_eq!(c.audit_head().await.unwrap(), head + 2);
}

/// Invariants 4 and 5: each wrong attestation gets its own status and message;
/// those whose signature verified are audited as `share_rejected` naming the
/// custodian, the others leave no trace but the operational log; none is
/// recorded as an attestation.
#[tokio::test]
async fn wrong_attestations_are_refused() {
    let mut fx = Fixture::new(3, 2, "15m");
    // Another daemon's ceremony, with custodians of the same names.
    let other = Fixture::new(3, 2, "15m");
    fx.start();
    let mut c = fx.client().await;
    let c1 = load(&fx.custodian_key(0));
    let c2 = load(&fx.custodian_key(1));
    let good = share_bytes(&c, &fx.custodian_key(0), &fx.share_file("c1"));
    let head = c.audit_head().await.unwrap();
    let mut rpc = c.rpc().clone();

    // Not a custodian: a commander cannot attest.
    let ic = load(&fx.commander_key("ic"));
    assert_status(
        rpc.start_attestation(start_msg(&c, "ic", &ic)).await,
        Code::PermissionDenied,
        "is not a custodian",
    );
    // A start signed with another key.
    assert_status(
        rpc.start_attestation(start_msg(&c, "c1", &c2)).await,
        Code::Unauthenticated,
        "does not verify",
    );
    // An attestation id the daemon never issued.
    let ch = c.start_attestation(&c1, "c1").await.unwrap();
    let mut fake = ch.clone();
    fake.attestation_id = "att-0000000000000000".into();
    assert_status(
        rpc.attest_share(attest_msg(&c, &fake, "c1", &c1, &good))
            .await,
        Code::NotFound,
        "no attestation `att-0000000000000000` is pending",
    );
    // Not an attestation id at all.
    let mut junk = ch.clone();
    junk.attestation_id = "req-1".into();
    assert_status(
        rpc.attest_share(attest_msg(&c, &junk, "c1", &c1, &good))
            .await,
        Code::InvalidArgument,
        "attestation_id: must be an attestation id like `att-0123456789abcdef`",
    );
    // A bad signature on a real challenge: refused, and the challenge survives.
    let mut bad = attest_msg(&c, &ch, "c1", &c1, &good);
    bad.signature.as_mut().unwrap().signature[3] ^= 1;
    assert_status(
        rpc.attest_share(bad).await,
        Code::Unauthenticated,
        "does not verify",
    );
    assert_eq!(events_since(&mut c, head).await, Vec::<String>::new());

    // Another custodian using c1's challenge (signed by c2 itself).
    assert_status(
        rpc.attest_share(attest_msg(&c, &ch, "c2", &c2, &good))
            .await,
        Code::PermissionDenied,
        "was issued to `c1`, not to `c2`",
    );
    // A share from another ceremony: refused against the commitment.
    let theirs = open_share_file(&load(&other.custodian_key(0)), &other.share_file("c1"))
        .unwrap()
        .share_bytes()
        .unwrap()
        .to_vec();
    assert_status(
        rpc.attest_share(attest_msg(&c, &ch, "c1", &c1, &theirs))
            .await,
        Code::InvalidArgument,
        "share from custodian `c1` does not match their commitment",
    );
    // The challenge was used up by that refusal: the same call again is a replay.
    let ch = c.start_attestation(&c1, "c1").await.unwrap();
    let msg = attest_msg(&c, &ch, "c1", &c1, &good);
    let ok = c
        .rpc()
        .attest_share(msg.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!((ok.custodian_id.as_str(), ok.epoch), ("c1", 1));
    assert_status(
        rpc.attest_share(msg).await,
        Code::FailedPrecondition,
        "this call is a replay",
    );
    // A sealed share that is not one.
    let ch = c.start_attestation(&c1, "c1").await.unwrap();
    let (_, digest) = challenge_digest(&c, &ch);
    assert_status(
        rpc.attest_share(signed_attest(&c, &ch, &digest, "c1", &c1, vec![1; 30]))
            .await,
        Code::InvalidArgument,
        "share from custodian `c1` is malformed",
    );
    // Sealed for the request transport of another custodian (c2's name in the seal).
    let ch = c.start_attestation(&c1, "c1").await.unwrap();
    let (pk, digest) = challenge_digest(&c, &ch);
    let sealed = transport::seal_share(
        &pk,
        &digest,
        &ch.attestation_id,
        "c2",
        &good,
        rand_core::OsRng,
    )
    .unwrap();
    assert_status(
        rpc.attest_share(signed_attest(&c, &ch, &digest, "c1", &c1, sealed))
            .await,
        Code::InvalidArgument,
        "does not open",
    );

    let evs = events_since(&mut c, head).await;
    assert_eq!(
        evs,
        vec![
            "share_rejected:c2",
            "share_rejected:c1",
            "share_attested:c1",
            "share_rejected:c1",
            "share_rejected:c1",
            "share_rejected:c1",
        ]
    );
    let entries = c.audit_export(head + 1).await.unwrap();
    let text =
        serde_json::to_string(&entries.iter().map(|e| &e.event).collect::<Vec<_>>()).unwrap();
    assert!(text.contains("attestation `att-"), "{text}");
    assert!(text.contains("replay"), "{text}");
}

/// Readiness: the report flips from at risk to ready as custodians attest
/// (threshold 2 of 3), turns at risk again when a fake clock makes the
/// attestations older than `attest_every`, and each overdue custodian gets
/// one `attestation_due` entry, not one per sweep or per start.
#[tokio::test]
async fn the_report_follows_attestations_and_time() {
    let fx = Fixture::new(3, 2, "15m");
    let mut ip = common::inprocess::InProcess::start(&fx, 1).await;
    // The daemon's fake clock, fixed at its start (not the time now).
    let t0 = ip.clock.load(std::sync::atomic::Ordering::SeqCst);
    let r = ip.client.readiness().await.unwrap();
    assert_eq!((r.proven, r.ready, r.threshold), (0, false, 2));
    assert_eq!(r.stale, vec!["c1", "c2", "c3"]);
    assert_eq!(r.attest_every_seconds, 90 * 86_400);
    assert!(r.custodians.iter().all(|c| c.last_attested_at == 0));
    for (i, id) in [(0, "c1"), (1, "c2")] {
        let me = load(&fx.custodian_key(i));
        let f = ip.client.read_share_file(&me, &fx.share_file(id)).unwrap();
        let a = ip.client.attest(&me, None, &f).await.unwrap();
        assert_eq!(a.custodian_id, id);
    }
    let r = ip.client.readiness().await.unwrap();
    assert_eq!((r.proven, r.ready), (2, true));
    assert_eq!(r.stale, vec!["c3"]);
    assert!(r.custodians[0].proven && r.custodians[0].last_attested_at >= t0);
    assert_eq!(
        r.custodians[0].attest_due_at,
        r.custodians[0].last_attested_at + 90 * 86_400
    );
    assert_eq!(ip.daemon.notify_due().unwrap(), 0, "nothing is due yet");

    // 91 days later: both proofs are stale, and everyone is due.
    ip.set_clock(t0 + 91 * 86_400);
    let r = ip.client.readiness().await.unwrap();
    assert_eq!((r.proven, r.ready), (0, false));
    assert_eq!(r.stale, vec!["c1", "c2", "c3"]);
    assert_eq!(ip.daemon.notify_due().unwrap(), 3);
    ip.set_clock(t0 + 91 * 86_400 + 120);
    assert_eq!(ip.daemon.notify_due().unwrap(), 0, "each due date once");
    let due: Vec<String> = ip
        .client
        .audit_export(1)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.kind() == "attestation_due")
        .map(|e| serde_json::to_string(&e.event).unwrap())
        .collect();
    assert_eq!(due.len(), 3, "{due:?}");
    assert!(due[0].contains("\"custodian\":\"c1\"") && due[0].contains("last_attested"));
    assert!(due[2].contains("\"custodian\":\"c3\"") && !due[2].contains("last_attested"));
    ip.stop().await;
    // Restarted, still overdue, but already notified.
    let ip = common::inprocess::InProcess::start(&fx, 2).await;
    ip.set_clock(t0 + 92 * 86_400);
    assert_eq!(
        ip.daemon.notify_due().unwrap(),
        0,
        "not again on every start"
    );
    // 180 days after the ceremony the live drill is due, once.
    ip.set_clock(t0 + 181 * 86_400);
    assert_eq!(ip.daemon.notify_due().unwrap(), 1);
    ip.set_clock(t0 + 181 * 86_400 + 120);
    assert_eq!(ip.daemon.notify_due().unwrap(), 0);
    let mut client = ip.client.clone();
    let drill_due: Vec<_> = client
        .audit_export(1)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.kind() == "drill_due")
        .collect();
    assert_eq!(drill_due.len(), 1);
    let r = client.readiness().await.unwrap();
    assert_eq!(r.last_drill_at, 0);
    assert!(r.drill_due_at <= t0 + 180 * 86_400 && r.drill_due_at > t0);
    drop(client);
    ip.stop().await;
}

/// `breakglass readiness` over TLS: text and JSON, and `--require-ready`
/// exits 3 while the quorum is at risk.
#[tokio::test]
async fn readiness_cli() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let key = fx.custodian_key(0);
    let (ok, out, err) = fx.cli(&key, &["readiness"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("AT RISK: 0 of 3 custodians proved their share within 90d, but 2 are needed"),
        "{out}"
    );
    assert!(out.contains("STALE  c1"), "{out}");
    assert_eq!(require_ready(&fx, &key), Some(3), "at risk exits 3");
    for (i, id) in [(0, "c1"), (1, "c2")] {
        let file = fx.share_file(id).display().to_string();
        let (ok, out, err) = fx.cli(&fx.custodian_key(i), &["share", "attest", "--share", &file]);
        assert!(ok, "{out}{err}");
    }
    assert_eq!(require_ready(&fx, &key), Some(0), "ready exits 0");
    let (ok, out, err) = fx.cli(&key, &["readiness", "--require-ready", "--json"]);
    assert!(ok, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "ready");
    assert_eq!(v["proven"], 2);
    assert_eq!(v["stale"], serde_json::json!(["c3"]));
    assert_eq!(v["custodians"][0]["proven"], true);
    assert!(v["custodians"][0]["last_attested_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(
        v["custodians"][2]["last_attested_at"],
        serde_json::Value::Null
    );
}

/// The exit code of `breakglass readiness --require-ready`.
fn require_ready(fx: &Fixture, key: &std::path::Path) -> Option<i32> {
    let mut args = fx.conn_args();
    args.extend(["--key".into(), key.display().to_string()]);
    args.extend(["readiness".into(), "--require-ready".into()]);
    std::process::Command::new(common::bin("breakglass"))
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
        .status
        .code()
}
