//! A live drill on a real `breakglassd` over loopback TLS with three
//! custodians: the commander runs `breakglass drill --live`, the custodians
//! approve with their real shares through `share submit` (whose screen says it
//! is a drill), the daemon rebuilds the key and A signs a drill statement that
//! verifies offline; nothing is minted, the credential calls are refused, and
//! the drill appears in the audit log and the readiness report. Guards
//! invariant 2 (only a quorum unlocks: a drill proves it without granting
//! anything) and invariant 4 (a drill's signatures cannot stand for access).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tonic::Code;

use breakglass_client::api::{unix_now, Client};
use breakglass_proto::{pb, signing};
use common::{assert_status, bin, load, Fixture};

/// Waits until a drill is collecting; returns it.
async fn collecting_drill(c: &mut Client) -> pb::RequestView {
    let start = Instant::now();
    loop {
        let open = c.list(true).await.unwrap();
        if let Some(v) = open
            .into_iter()
            .find(|v| v.kind == pb::RequestKind::Drill as i32)
        {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no drill was opened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A drill open signed over `payload` (by commander `ic`).
fn drill_msg(
    c: &Client,
    ic: &breakglass_client::identity::Identity,
    scope: &str,
    payload_for_access: bool,
) -> pb::OpenRequestRequest {
    let nonce = [9u8; signing::NONCE_LEN];
    let at = unix_now();
    let payload = if payload_for_access {
        signing::open_request(&c.info().daemon_id, "ic", scope, "drill", 0, "", &nonce, at)
    } else {
        signing::open_drill(&c.info().daemon_id, "ic", "drill", &nonce, at)
    };
    pb::OpenRequestRequest {
        scope: scope.into(),
        reason: "drill".into(),
        ttl_seconds: 0,
        nonce: nonce.to_vec(),
        signature: Some(pb::Signature {
            signer_id: "ic".into(),
            signed_at: at,
            signature: ic.sign(&payload).to_vec(),
        }),
        ssh_public_key: String::new(),
        kind: pb::RequestKind::Drill as i32,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_drill_proves_the_quorum_and_mints_nothing() {
    let mut fx = Fixture::new(3, 2, "15m");
    let other = Fixture::new(3, 2, "15m");
    fx.start_with(&["--metrics", "127.0.0.1:0"]);
    let mut c = fx.client().await;
    let statement = fx.dir.path().join("drill.json");
    let mut args = fx.conn_args();
    args.extend(
        [
            "--key",
            &fx.commander_key("ic").display().to_string(),
            "drill",
            "--live",
            "--reason",
            "quarterly live drill",
            "--out",
            &statement.display().to_string(),
        ]
        .map(String::from),
    );
    let commander = Command::new(bin("breakglass"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let v = collecting_drill(&mut c).await;
    assert_eq!((v.scope.as_str(), v.ttl_seconds), ("", 0));

    // One live drill at a time.
    let ic = load(&fx.commander_key("ic"));
    let e = c.open_drill(&ic, None, "another").await.unwrap_err();
    assert!(e.to_string().contains("one live drill at a time"), "{e}");

    // The custodians approve with their real shares; the screen says it is a drill.
    for (i, id) in [(0, "c1"), (1, "c2")] {
        let share = fx.share_file(id).display().to_string();
        let (ok, out, err) = fx.cli(
            &fx.custodian_key(i),
            &["share", "submit", &v.id, "--share", &share, "--yes"],
        );
        assert!(ok, "{out}{err}");
        assert!(
            out.contains("You are asked to approve a LIVE DRILL. It grants nothing"),
            "{out}"
        );
        assert!(!out.contains("emergency access"), "{out}");
        if i == 1 {
            assert!(
                out.contains("the drill passed; the key was rebuilt and nothing was minted"),
                "{out}"
            );
        }
    }
    let done = commander.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{err}");
    assert!(
        err.contains("passed in") && err.contains("nothing was minted"),
        "{err}"
    );

    // Nothing was minted, and the credential calls say why.
    let r = c.get(&v.id).await.unwrap();
    assert_eq!(r.state, pb::RequestState::DrillPassed as i32);
    assert_eq!(r.credential_expires_at, 0);
    assert_status(
        {
            let m = fetch_msg(&c, &ic, &r);
            c.rpc().fetch_credential(m).await
        },
        Code::FailedPrecondition,
        "is a drill: it grants nothing",
    );
    let e = c.revoke(&ic, None, &v.id, "no").await.unwrap_err();
    assert!(
        e.to_string().contains("is a drill: it grants nothing"),
        "{e}"
    );

    // The statement verifies offline against A, for this daemon only.
    let a = fx.authority_paserk();
    let file = statement.display().to_string();
    let daemon_id = c.info().daemon_id.clone();
    let (ok, out, err) = common::run(
        "breakglass",
        &[
            "drill",
            "--live",
            "--verify",
            &file,
            "--authority",
            &a,
            "--daemon-id",
            &daemon_id,
        ],
        &[],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("valid: drill") && out.contains("approved by c1, c2"),
        "{out}"
    );
    let (ok, _, err) = common::run(
        "breakglass",
        &[
            "drill",
            "--live",
            "--verify",
            &file,
            "--authority",
            &other.authority_paserk(),
        ],
        &[],
    );
    assert!(!ok && err.contains("it is from another daemon"), "{err}");
    let (ok, _, err) = common::run(
        "breakglass",
        &[
            "drill",
            "--live",
            "--verify",
            &file,
            "--authority",
            &a,
            "--daemon-id",
            "d-other",
        ],
        &[],
    );
    assert!(!ok && err.contains("is for daemon"), "{err}");
    let text = std::fs::read_to_string(&statement).unwrap();
    let forged = fx.dir.path().join("forged.json");
    std::fs::write(&forged, text.replace("\"c2\"", "\"c3\"")).unwrap();
    let (ok, _, err) = common::run(
        "breakglass",
        &[
            "drill",
            "--live",
            "--verify",
            &forged.display().to_string(),
            "--authority",
            &a,
        ],
        &[],
    );
    assert!(!ok && err.contains("signature does not verify"), "{err}");

    // The audit log: the drill and its approvals, no quorum_reached, no credential.
    let kinds = common::request_events(&mut c, &v.id).await;
    assert!(
        kinds.starts_with(&[
            "drill_opened".to_string(),
            "share_accepted".into(),
            "share_accepted".into(),
            "drill_passed".into()
        ]),
        "{kinds:?}"
    );
    assert!(
        !kinds
            .iter()
            .any(|k| k == "quorum_reached" || k == "credential_minted"),
        "{kinds:?}"
    );

    // The metrics show the drill, and count none of it as approvals or unlocks.
    let addr = fx.daemon.as_ref().unwrap().metrics.clone().unwrap();
    let metrics = scrape(&addr);
    assert_eq!(metrics["breakglass_shares_accepted_total"], 0.0);
    assert_eq!(metrics["breakglass_unlocks_total"], 0.0);
    assert_eq!(metrics["breakglass_open_to_quorum_seconds_count"], 0.0);
    assert!(metrics["breakglass_drill_age_seconds"] >= 0.0);
    assert!(metrics.contains_key("breakglass_last_drill_quorum_seconds"));

    // The readiness report shows the drill; it is not an approval.
    let rd = c.readiness().await.unwrap();
    assert_eq!(rd.last_drill_request_id, v.id);
    assert!(rd.last_drill_at >= v.opened_at);
    assert!(rd.custodians[0].last_drill_at != 0 && rd.custodians[1].last_drill_at != 0);
    assert_eq!(rd.custodians[2].last_drill_at, 0);
    assert!(rd.custodians.iter().all(|cu| cu.last_approved_at == 0));
    let (ok, out, _) = fx.cli(&fx.custodian_key(0), &["readiness"]);
    assert!(
        ok && out.contains(&format!("last live drill: {}", v.id)),
        "{out}"
    );
}

fn fetch_msg(
    c: &Client,
    ic: &breakglass_client::identity::Identity,
    r: &pb::RequestView,
) -> pb::FetchCredentialRequest {
    let at = unix_now();
    let digest: [u8; 32] = r.digest.as_slice().try_into().unwrap();
    let payload = signing::fetch_credential(&c.info().daemon_id, &r.id, &digest, "ic", at);
    pb::FetchCredentialRequest {
        request_id: r.id.clone(),
        signature: Some(pb::Signature {
            signer_id: "ic".into(),
            signed_at: at,
            signature: ic.sign(&payload).to_vec(),
        }),
    }
}

/// Invariant 4: a drill cannot carry a scope, TTL or key, cannot be opened
/// with a signature over an access open, nor by a custodian who is not a
/// commander; and an access view cannot be passed off as a drill.
#[tokio::test]
async fn drill_opens_are_checked() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let mut c = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let mut rpc = c.rpc().clone();
    assert_status(
        rpc.open_request(drill_msg(&c, &ic, "prod-ssh", false))
            .await,
        Code::InvalidArgument,
        "a drill grants nothing",
    );
    assert_status(
        rpc.open_request(drill_msg(&c, &ic, "", true)).await,
        Code::Unauthenticated,
        "does not verify",
    );
    let mut bad_kind = drill_msg(&c, &ic, "", false);
    bad_kind.kind = 7;
    assert_status(
        rpc.open_request(bad_kind).await,
        Code::InvalidArgument,
        "is not a request kind",
    );
    // A policy change is proposed, never opened as a request (DESIGN.md "Epochs").
    let mut change = drill_msg(&c, &ic, "", false);
    change.kind = pb::RequestKind::Change as i32;
    assert_status(
        rpc.open_request(change).await,
        Code::InvalidArgument,
        "a policy change is not opened with OpenRequest: propose it with `breakglass policy propose`",
    );
    let c1 = load(&fx.custodian_key(0));
    let head = c.audit_head().await.unwrap();
    let e = c.open_drill(&c1, None, "me").await.unwrap_err();
    let breakglass_client::ClientError::Status(st) = &e else {
        panic!("{e}")
    };
    assert_eq!(st.code(), Code::PermissionDenied);
    assert!(
        st.message().contains(
            "custodian `c1` may not open a live drill: the policy does not set `custodians_may_drill = true`"
        ),
        "{e}"
    );
    assert!(
        c.list(false).await.unwrap().is_empty(),
        "nothing was opened"
    );
    let refused = c.audit_export(head + 1).await.unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].event.kind(), "call_refused");
    // A drill's digest is not an access digest: a view claiming the other kind fails.
    let v = c.open_drill(&ic, None, "check").await.unwrap();
    let mut as_access = v.clone();
    as_access.kind = pb::RequestKind::Access as i32;
    let e = c.check_view(&as_access).unwrap_err();
    assert!(e.to_string().contains("digest does not match"), "{e}");
}

/// Where the policy says `custodians_may_drill = true`, a custodian opens a
/// drill; with separation of duties her own share does not count toward it.
#[tokio::test]
async fn custodians_may_open_drills_when_the_policy_says_so() {
    let mut fx = custodian_drills(3);
    fx.start();
    let mut c = fx.client().await;
    let c1 = load(&fx.custodian_key(0));
    let v = c
        .open_drill(&c1, None, "custodian-led drill")
        .await
        .unwrap();
    assert_eq!(v.requester, "c1");
    let f = c.read_share_file(&c1, &fx.share_file("c1")).unwrap();
    let e = c.submit(&c1, None, &v, &f).await.unwrap_err();
    assert!(
        e.to_string().contains("their own share does not count"),
        "{e}"
    );
    assert!(e.to_string().contains("(as `c1`)"), "{e}");
    for (i, id) in [(1, "c2"), (2, "c3")] {
        let me = load(&fx.custodian_key(i));
        let f = c.read_share_file(&me, &fx.share_file(id)).unwrap();
        c.submit(&me, None, &v, &f).await.unwrap();
    }
    let done = c.get(&v.id).await.unwrap();
    assert_eq!(done.state, pb::RequestState::DrillPassed as i32);
    let st = c.drill_statement(&done).unwrap();
    assert_eq!(st.approvers, vec!["c2", "c3"]);
}

/// A custodian-opened drill the others could never complete (separation of
/// duties, two custodians, threshold 2) is refused at the open, on the record.
#[tokio::test]
async fn a_custodian_drill_that_cannot_reach_quorum_is_refused() {
    let mut fx = custodian_drills(2);
    fx.start();
    let mut c = fx.client().await;
    let c1 = load(&fx.custodian_key(0));
    let e = c.open_drill(&c1, None, "cannot finish").await.unwrap_err();
    let breakglass_client::ClientError::Status(st) = &e else {
        panic!("{e}")
    };
    assert_eq!(st.code(), Code::FailedPrecondition);
    assert!(
        st.message()
            .contains("the other 1 custodians are fewer than the threshold 2"),
        "{e}"
    );
    assert!(c.list(false).await.unwrap().is_empty());
    // A commander's drill is fine.
    let ic = load(&fx.commander_key("ic"));
    c.open_drill(&ic, None, "fine").await.unwrap();
}

/// `GET /metrics`, as `name{labels}` → value.
fn scrape(addr: &str) -> std::collections::BTreeMap<String, f64> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let body = out.split_once("\r\n\r\n").unwrap().1;
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

/// `n` custodians, threshold 2, and a policy that lets custodians open drills.
fn custodian_drills(n: usize) -> Fixture {
    Fixture::with_extra(
        n,
        2,
        "15m",
        &["root", "ops"],
        "custodians_may_drill = true\n",
        "",
    )
}
