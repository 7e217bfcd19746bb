//! What operators watch: the Prometheus metrics listener (scraped for real and
//! parsed as the text format), its write-health probe, and the one-line-per-call
//! operational log in text and JSON (no ANSI colours when stderr is not a
//! terminal, never a secret).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};

use common::{approve, load, Fixture};

/// GET `path` from the metrics listener: (status line, body).
fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// Parses the Prometheus text format: `name{labels}` → value. Every sample line
/// must parse, and every family must carry HELP and TYPE.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let mut typed = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut f = rest.split_whitespace();
            typed.insert(f.next().unwrap().to_string());
            let kind = f.next().unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        let (name, value) = line.rsplit_once(' ').unwrap();
        let family = name.split('{').next().unwrap();
        let base = family
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            typed.contains(family) || typed.contains(base),
            "no TYPE line before {line}"
        );
        out.insert(name.to_string(), value.parse::<f64>().unwrap());
    }
    out
}

/// A real scrape during an unlock finds the shares, the unlock, the calls by
/// method and code, and the open → quorum histogram counted; /healthz answers
/// 200 while the store is writable.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_shares_unlocks_and_calls() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start_with(&["--metrics", "127.0.0.1:0"]);
    let addr = fx
        .daemon
        .as_ref()
        .unwrap()
        .metrics
        .clone()
        .expect("metrics address printed");
    let before = parse_metrics(&http_get(&addr, "/metrics").1);
    assert_eq!(before["breakglass_unlocks_total"], 0.0);
    assert_eq!(before["breakglass_store_writable"], 1.0);

    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let r = client
        .open(&ic, None, "prod-ssh", "metrics", 600, &ic.ssh_public())
        .await
        .unwrap();
    approve(&fx, &mut client, &r, 0).await;
    let mid = parse_metrics(&http_get(&addr, "/metrics").1);
    assert_eq!(mid["breakglass_requests{state=\"collecting\"}"], 1.0);
    approve(&fx, &mut client, &r, 1).await;
    // A refused share (a duplicate from c1) is counted by reason.
    let c1 = load(&fx.custodian_key(0));
    let f = client.read_share_file(&c1, &fx.share_file("c1")).unwrap();
    assert!(client.submit(&c1, None, &r, &f).await.is_err());

    let (status, body) = http_get(&addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let m = parse_metrics(&body);
    assert_eq!(m["breakglass_shares_accepted_total"], 2.0, "{body}");
    assert_eq!(m["breakglass_unlocks_total"], 1.0, "{body}");
    assert_eq!(m["breakglass_requests{state=\"collecting\"}"], 0.0);
    assert_eq!(
        m["breakglass_shares_refused_total{reason=\"request_closed\"}"], 1.0,
        "{body}"
    );
    assert_eq!(
        m["breakglass_calls_total{method=\"SubmitShare\",code=\"OK\"}"], 2.0,
        "{body}"
    );
    assert_eq!(
        m["breakglass_calls_total{method=\"OpenRequest\",code=\"OK\"}"],
        1.0
    );
    assert_eq!(m["breakglass_open_to_quorum_seconds_count"], 1.0);
    assert_eq!(
        m["breakglass_open_to_quorum_seconds_bucket{le=\"+Inf\"}"],
        1.0
    );
    assert!(m["breakglass_audit_head_sequence"] > before["breakglass_audit_head_sequence"]);
    assert!(m["breakglass_last_checkpoint_timestamp_seconds"] > 0.0);
    assert!(m
        .keys()
        .any(|k| k.starts_with("breakglass_build_info{version=")));

    let (status, body) = http_get(&addr, "/healthz");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, "ok\n");
    let (status, _) = http_get(&addr, "/nothing");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    assert!(fx.stop());
}

/// One log line per call, with method, code and duration; a refused call says
/// why; nothing secret; no ANSI escapes when stderr is a file. `--log-format
/// json` writes one JSON object per line with the same fields.
#[tokio::test(flavor = "multi_thread")]
async fn one_log_line_per_call_in_text_and_json() {
    for json in [false, true] {
        let mut fx = Fixture::new(3, 2, "15m");
        if json {
            fx.start_with(&["--log-format", "json"]);
        } else {
            fx.start();
        }
        let mut client = fx.client().await;
        let ic = load(&fx.commander_key("ic"));
        let r = client
            .open(&ic, None, "prod-ssh", "logged", 600, &ic.ssh_public())
            .await
            .unwrap();
        approve(&fx, &mut client, &r, 0).await;
        let outsider = load(&fx.keys.outsider);
        assert!(client
            .open(
                &outsider,
                Some("mallory"),
                "prod-ssh",
                "x",
                60,
                &ic.ssh_public()
            )
            .await
            .is_err());
        let stderr = fx.stop_and_stderr();
        assert!(
            !stderr.contains('\u{1b}'),
            "ANSI escapes in a redirected log:\n{stderr}"
        );
        let calls: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("breakglass::call"))
            .collect();
        if json {
            let objs: Vec<serde_json::Value> = calls
                .iter()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let submit = objs
                .iter()
                .find(|o| o["fields"]["method"] == "SubmitShare")
                .expect("a SubmitShare line");
            assert_eq!(submit["fields"]["code"], "OK");
            assert_eq!(submit["fields"]["caller"], "c1");
            assert_eq!(submit["fields"]["request"], r.id.as_str());
            assert!(submit["fields"]["ms"].as_f64().unwrap() > 0.0);
            let refused = objs
                .iter()
                .find(|o| o["fields"]["code"] == "PERMISSION_DENIED")
                .expect("the refused open");
            assert_eq!(refused["fields"]["method"], "OpenRequest");
            assert_eq!(refused["fields"]["claimed_signer"], "mallory");
        } else {
            let open = calls
                .iter()
                .find(|l| l.contains("method=\"OpenRequest\"") && l.contains("code=\"OK\""))
                .unwrap_or_else(|| panic!("no OpenRequest line in:\n{stderr}"));
            assert!(open.contains(&format!("request=\"{}\"", r.id)), "{open}");
            assert!(open.contains("caller=\"ic\""), "{open}");
            assert!(calls
                .iter()
                .any(|l| l.contains("call refused") && l.contains("claimed_signer=\"mallory\"")));
        }
    }
}

/// Readiness on the metrics listener: proven custodians, the threshold,
/// ready or not, and each custodian's attestation age, scraped for real.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_show_readiness() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start_with(&["--metrics", "127.0.0.1:0"]);
    let addr = fx.daemon.as_ref().unwrap().metrics.clone().unwrap();
    let m = parse_metrics(&http_get(&addr, "/metrics").1);
    assert_eq!(m["breakglass_quorum_proven_custodians"], 0.0);
    assert_eq!(m["breakglass_quorum_threshold"], 2.0);
    assert_eq!(m["breakglass_quorum_ready"], 0.0);
    assert_eq!(m["breakglass_custodian_proven{custodian=\"c1\"}"], 0.0);
    assert!(!m.contains_key("breakglass_custodian_attestation_age_seconds{custodian=\"c1\"}"));
    let mut client = fx.client().await;
    for (i, id) in [(0, "c1"), (1, "c2")] {
        let me = load(&fx.custodian_key(i));
        let f = client.read_share_file(&me, &fx.share_file(id)).unwrap();
        client.attest(&me, None, &f).await.unwrap();
    }
    let (_, body) = http_get(&addr, "/metrics");
    let m = parse_metrics(&body);
    assert_eq!(m["breakglass_quorum_proven_custodians"], 2.0, "{body}");
    assert_eq!(m["breakglass_quorum_ready"], 1.0, "{body}");
    assert_eq!(m["breakglass_custodian_proven{custodian=\"c2\"}"], 1.0);
    assert_eq!(m["breakglass_custodian_proven{custodian=\"c3\"}"], 0.0);
    let age = m["breakglass_custodian_attestation_age_seconds{custodian=\"c1\"}"];
    assert!((0.0..120.0).contains(&age), "{body}");
    assert!(!m.contains_key("breakglass_custodian_attestation_age_seconds{custodian=\"c3\"}"));
    assert_eq!(
        m["breakglass_calls_total{method=\"AttestShare\",code=\"OK\"}"],
        2.0
    );
}
