//! `--json` of the read commands against a real daemon, parsed with serde_json,
//! and `request watch`'s exit codes: 0 unlocked, 3 expired, 4 cancelled, 5 lost
//! connection (the daemon killed with SIGKILL).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use breakglass_proto::pb;
use common::{approve, bin, load, Fixture};

/// Opens a `prod-api` request (token only, no SSH key needed) as `ic`.
async fn open(fx: &Fixture, reason: &str) -> pb::RequestView {
    let mut c = fx.client().await;
    c.open(
        &load(&fx.commander_key("ic")),
        None,
        "prod-api",
        reason,
        600,
        "",
    )
    .await
    .unwrap()
}

/// Starts `breakglass request watch ID --json` with its stdout piped.
fn spawn_watch(fx: &Fixture, id: &str) -> Child {
    Command::new(bin("breakglass"))
        .args(fx.conn_args())
        .args(["request", "watch", id, "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the watch's remaining JSON lines from `out` until it exits (killed
/// after `limit`); returns (exit code, every line including `first`, stderr).
fn finish(
    mut child: Child,
    first: Option<Value>,
    out: BufReader<ChildStdout>,
    limit: Duration,
) -> (i32, Vec<Value>, String) {
    let pid = child.id().to_string();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        if !flag.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
    });
    let mut lines: Vec<Value> = first.into_iter().collect();
    for l in out.lines() {
        let l = l.unwrap();
        lines.push(serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")));
    }
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let status = child.wait().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        status.code().is_some(),
        "request watch did not exit within {limit:?}"
    );
    (status.code().unwrap_or(-1), lines, err)
}

/// Waits until the watch printed its first line (it is connected and following).
fn first_line(child: &mut Child) -> (Value, BufReader<ChildStdout>) {
    let mut r = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    (serde_json::from_str(&line).unwrap(), r)
}

/// `info`, `request show` and `request list` print JSON with the documented
/// fields; a reason with a control character stays data (escaped, never raw).
#[tokio::test(flavor = "multi_thread")]
async fn read_commands_print_parseable_json() {
    let mut fx = Fixture::new(3, 2, "10m");
    fx.start();
    let ic = fx.commander_key("ic");
    let (ok, out, err) = fx.cli(&ic, &["info", "--json"]);
    assert!(ok, "{err}");
    let info: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["threshold"], 2);
    assert_eq!(info["custodians"].as_array().unwrap().len(), 3);
    let api = info["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "prod-api")
        .unwrap();
    assert_eq!(api["credentials"], serde_json::json!(["token"]));
    assert!(info["daemon_public_key"].as_str().unwrap().len() == 64);

    let r = open(&fx, "db primary down").await;
    let (ok, out, err) = fx.cli(&ic, &["request", "show", &r.id, "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["id"], r.id.as_str());
    assert_eq!(v["state"], "collecting");
    assert_eq!(v["reason"], "db primary down");
    assert_eq!(v["threshold"], 2);
    assert_eq!(v["deadline_unix"], r.deadline);
    assert!(v["deadline"].as_str().unwrap().ends_with('Z'), "{v}");
    assert!(v["closed_at"].is_null() && v["revoked"].is_null(), "{v}");

    let (ok, out, err) = fx.cli(&ic, &["request", "list", "--json"]);
    assert!(ok, "{err}");
    let l: Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<&str> = l["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![r.id.as_str()]);

    let c2 = fx.custodian_key(1);
    let share = fx.share_file("c2");
    let (ok, out, err) = fx.cli(
        &c2,
        &[
            "share",
            "check",
            "--share",
            share.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["ok"], true);
    assert_eq!(s["custodian_id"], "c2");
    assert_eq!(s["x"], 2);
    assert_eq!(s["threshold"], 2);
    assert_eq!(s["custodians"], 3);
    assert_eq!(s["daemon_id"], info["daemon_id"]);
    assert!(!out.contains("share\":"), "no share bytes printed: {out}");
}

/// Unlocked: exit 0, one `update` per change, then an `outcome` line.
#[tokio::test(flavor = "multi_thread")]
async fn watch_exits_0_when_unlocked() {
    let mut fx = Fixture::new(3, 2, "10m");
    fx.start();
    let r = open(&fx, "unlock me").await;
    let mut child = spawn_watch(&fx, &r.id);
    let (first, rest) = first_line(&mut child);
    assert_eq!(first["event"], "update");
    assert_eq!(first["request"]["state"], "collecting");
    let mut c = fx.client().await;
    approve(&fx, &mut c, &r, 0).await;
    approve(&fx, &mut c, &r, 1).await;
    let (code, lines, err) = finish(child, Some(first), rest, Duration::from_secs(30));
    assert_eq!(code, 0, "{err}");
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "outcome");
    assert_eq!(last["outcome"], "unlocked");
    assert_eq!(last["exit_code"], 0);
    assert_eq!(last["request"]["state"], "unlocked");
    assert!(lines.iter().any(
        |l| l["event"] == "update" && l["request"]["approvals"].as_array().unwrap().len() == 1
    ));
}

/// Expired: the window closes without a quorum, exit 3.
#[tokio::test(flavor = "multi_thread")]
async fn watch_exits_3_when_expired() {
    let mut fx = Fixture::new(3, 2, "2s");
    fx.start();
    let r = open(&fx, "nobody answers").await;
    let mut child = spawn_watch(&fx, &r.id);
    let (first, rest) = first_line(&mut child);
    let (code, lines, err) = finish(child, Some(first), rest, Duration::from_secs(30));
    assert_eq!(code, 3, "{err}");
    let last = lines.last().unwrap();
    assert_eq!(last["outcome"], "expired");
    assert_eq!(last["request"]["state"], "expired");
}

/// Cancelled by its requester: exit 4.
#[tokio::test(flavor = "multi_thread")]
async fn watch_exits_4_when_cancelled() {
    let mut fx = Fixture::new(3, 2, "10m");
    fx.start();
    let r = open(&fx, "never mind").await;
    let mut child = spawn_watch(&fx, &r.id);
    let (first, rest) = first_line(&mut child);
    let mut c = fx.client().await;
    c.cancel(&load(&fx.commander_key("ic")), None, &r.id, "fixed")
        .await
        .unwrap();
    let (code, lines, err) = finish(child, Some(first), rest, Duration::from_secs(30));
    assert_eq!(code, 4, "{err}");
    assert_eq!(lines.last().unwrap()["outcome"], "cancelled");
}

/// The daemon dies (SIGKILL): the watch stops counting down, says so, exit 5.
#[tokio::test(flavor = "multi_thread")]
async fn watch_exits_5_when_the_daemon_is_gone() {
    let mut fx = Fixture::new(3, 2, "10m");
    fx.start();
    let r = open(&fx, "daemon will die").await;
    let mut child = spawn_watch(&fx, &r.id);
    let (first, rest) = first_line(&mut child);
    fx.kill9();
    // Keepalive notices within seconds; a FIN from the dead process sooner.
    let (code, lines, err) = finish(child, Some(first), rest, Duration::from_secs(20));
    assert_eq!(code, 5, "{err}");
    let last = lines.last().unwrap();
    assert_eq!(last["outcome"], "lost_connection");
    assert!(last["error"].is_string(), "{last}");
    assert!(
        err.contains("lost the connection to the daemon")
            && err.contains(&format!("breakglass request show {}", r.id)),
        "{err}"
    );
}
