//! The drill's look at what operators see: it serves the daemon's Prometheus
//! metrics on a loopback port, scrapes them over HTTP as Prometheus would, and
//! checks that the shares and the unlock it just made were counted.

use std::io::{Read, Write};
use std::sync::Arc;

use breakglass_daemon::{serve_metrics, Daemon};

/// Starts the metrics listener on 127.0.0.1:0 for the drill's daemon; it ends
/// when the daemon stops.
pub(super) async fn start(daemon: &Arc<Daemon>) -> Result<std::net::SocketAddr, String> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("metrics listener: {e}"))?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(serve_metrics(l, daemon.clone(), daemon.stopping()));
    Ok(addr)
}

/// One sample's value from the Prometheus text format.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Scrapes `/metrics` and checks `shares` accepted shares and one unlock.
pub(super) async fn check(addr: std::net::SocketAddr, shares: u8) -> Result<String, String> {
    let body = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut s = std::net::TcpStream::connect(addr)?;
        write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("scrape: {e}"))?;
    if !body.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "scrape answered {}",
            body.lines().next().unwrap_or("")
        ));
    }
    let accepted = sample(&body, "breakglass_shares_accepted_total");
    let unlocks = sample(&body, "breakglass_unlocks_total");
    if accepted != Some(f64::from(shares)) || unlocks != Some(1.0) {
        return Err(format!(
            "metrics do not match the drill: shares accepted {accepted:?} (expected {shares}), unlocks {unlocks:?} (expected 1)"
        ));
    }
    Ok(format!(
        "http://{addr}/metrics: {shares} shares accepted, 1 unlock counted"
    ))
}
