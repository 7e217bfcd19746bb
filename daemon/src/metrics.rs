//! Operational metrics, rendered in the Prometheus text format for the optional
//! plain-HTTP metrics listener (`breakglassd serve --metrics ADDR`).
//!
//! Nothing here is secret: counts, durations, sequence numbers and the build.
//! Most figures are derived from the audit entries as they are committed (one
//! place, so a metric can never disagree with the record); calls and their
//! gRPC codes are counted by the server as it answers.

pub mod readiness;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use breakglass_formats::audit::{AuditEntry, Event};

/// Upper bounds (seconds) of the open → quorum histogram's buckets.
const QUORUM_BUCKETS: [u64; 9] = [10, 30, 60, 120, 300, 600, 1800, 3600, 86_400];

/// The daemon's counters.
#[derive(Default)]
pub struct Metrics {
    calls: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    shares_refused: Mutex<BTreeMap<&'static str, u64>>,
    shares_accepted: AtomicU64,
    unlocks: AtomicU64,
    closed: Mutex<BTreeMap<&'static str, u64>>,
    quorum_buckets: [AtomicU64; QUORUM_BUCKETS.len()],
    quorum_count: AtomicU64,
    quorum_sum: AtomicU64,
    rate_limited: AtomicU64,
    store_write_errors: AtomicU64,
    audit_head: AtomicU64,
    last_checkpoint_at: AtomicU64,
    signed_refusals: AtomicU64,
}

/// Figures read from the store and the live map at scrape time.
pub struct Gauges {
    /// Requests collecting now.
    pub collecting: u64,
    /// Whether the store accepts writes (health SERVING).
    pub writable: bool,
}

fn bump<K: Ord>(m: &Mutex<BTreeMap<K, u64>>, k: K) {
    if let Ok(mut m) = m.lock() {
        *m.entry(k).or_insert(0) += 1;
    }
}

impl Metrics {
    /// One answered call: its method and gRPC code name.
    pub fn call(&self, method: &'static str, code: &'static str) {
        bump(&self.calls, (method, code));
        if code == "RESOURCE_EXHAUSTED" {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A refused share, by the kind of refusal (an `Error::kind`).
    pub fn share_refused(&self, kind: &'static str) {
        bump(&self.shares_refused, kind);
    }

    /// A write to the store failed.
    pub fn store_write_error(&self) {
        self.store_write_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Entries just committed; `opened_at` finds a request's opening time (for
    /// the open → quorum histogram).
    /// A share accepted on a drill counts toward nothing an approval counts
    /// toward (`is_drill` says which requests are drills).
    pub fn committed(
        &self,
        entries: &[AuditEntry],
        opened_at: impl Fn(&str) -> Option<u64>,
        is_drill: impl Fn(&str) -> bool,
    ) {
        for e in entries {
            self.audit_head.fetch_max(e.seq, Ordering::Relaxed);
            match &e.event {
                Event::ShareAccepted { .. } if !e.request_id.as_deref().is_some_and(&is_drill) => {
                    self.shares_accepted.fetch_add(1, Ordering::Relaxed);
                }
                Event::ShareRejected { .. } => {
                    self.signed_refusals.fetch_add(1, Ordering::Relaxed);
                }
                Event::CallRefused { .. } => {
                    self.signed_refusals.fetch_add(1, Ordering::Relaxed);
                }
                Event::QuorumReached { .. } => {
                    if let Some(at) = e.request_id.as_deref().and_then(&opened_at) {
                        self.quorum_time(e.time.saturating_sub(at));
                    }
                }
                Event::CredentialMinted { .. } => {
                    self.unlocks.fetch_add(1, Ordering::Relaxed);
                }
                Event::RequestExpired { .. } => bump(&self.closed, "expired"),
                Event::RequestCancelled { .. } => bump(&self.closed, "cancelled"),
                Event::Checkpoint { .. } => {
                    self.last_checkpoint_at.fetch_max(e.time, Ordering::Relaxed);
                }
                _ => {}
            }
        }
    }

    fn quorum_time(&self, secs: u64) {
        for (i, b) in QUORUM_BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.quorum_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.quorum_count.fetch_add(1, Ordering::Relaxed);
        self.quorum_sum.fetch_add(secs, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self, g: &Gauges) -> String {
        let mut o = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let head = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        head(
            &mut o,
            "breakglass_build_info",
            "gauge",
            "Version of this breakglassd.",
        );
        let _ = writeln!(
            o,
            "breakglass_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        head(
            &mut o,
            "breakglass_calls_total",
            "counter",
            "gRPC calls answered, by method and status code.",
        );
        if let Ok(calls) = self.calls.lock() {
            for ((m, c), n) in calls.iter() {
                let _ = writeln!(
                    o,
                    "breakglass_calls_total{{method=\"{m}\",code=\"{c}\"}} {n}"
                );
            }
        }
        head(
            &mut o,
            "breakglass_shares_accepted_total",
            "counter",
            "Shares accepted (checked against their commitment).",
        );
        let _ = writeln!(
            o,
            "breakglass_shares_accepted_total {}",
            get(&self.shares_accepted)
        );
        head(
            &mut o,
            "breakglass_shares_refused_total",
            "counter",
            "Shares refused, by reason.",
        );
        if let Ok(r) = self.shares_refused.lock() {
            for (k, n) in r.iter() {
                let _ = writeln!(o, "breakglass_shares_refused_total{{reason=\"{k}\"}} {n}");
            }
        }
        head(
            &mut o,
            "breakglass_signed_refusals_total",
            "counter",
            "Refusals of callers whose signature verified (each is in the audit log).",
        );
        let _ = writeln!(
            o,
            "breakglass_signed_refusals_total {}",
            get(&self.signed_refusals)
        );
        head(
            &mut o,
            "breakglass_unlocks_total",
            "counter",
            "Credentials minted.",
        );
        let _ = writeln!(o, "breakglass_unlocks_total {}", get(&self.unlocks));
        head(
            &mut o,
            "breakglass_requests_closed_total",
            "counter",
            "Requests closed without a credential, by how.",
        );
        if let Ok(c) = self.closed.lock() {
            for (k, n) in c.iter() {
                let _ = writeln!(o, "breakglass_requests_closed_total{{how=\"{k}\"}} {n}");
            }
        }
        head(
            &mut o,
            "breakglass_requests",
            "gauge",
            "Requests by state now (collecting: open for shares).",
        );
        let _ = writeln!(
            o,
            "breakglass_requests{{state=\"collecting\"}} {}",
            g.collecting
        );
        head(
            &mut o,
            "breakglass_open_to_quorum_seconds",
            "histogram",
            "Time from a request's opening to its quorum.",
        );
        for (i, b) in QUORUM_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "breakglass_open_to_quorum_seconds_bucket{{le=\"{b}\"}} {}",
                get(&self.quorum_buckets[i])
            );
        }
        let count = get(&self.quorum_count);
        let _ = writeln!(
            o,
            "breakglass_open_to_quorum_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            o,
            "breakglass_open_to_quorum_seconds_sum {}",
            get(&self.quorum_sum)
        );
        let _ = writeln!(o, "breakglass_open_to_quorum_seconds_count {count}");
        head(
            &mut o,
            "breakglass_rate_limited_total",
            "counter",
            "Calls refused by a rate limit.",
        );
        let _ = writeln!(
            o,
            "breakglass_rate_limited_total {}",
            get(&self.rate_limited)
        );
        head(
            &mut o,
            "breakglass_store_write_errors_total",
            "counter",
            "Failed writes to the store (the daemon fails closed meanwhile).",
        );
        let _ = writeln!(
            o,
            "breakglass_store_write_errors_total {}",
            get(&self.store_write_errors)
        );
        head(
            &mut o,
            "breakglass_store_writable",
            "gauge",
            "1 while the store accepts writes (health SERVING), 0 otherwise.",
        );
        let _ = writeln!(o, "breakglass_store_writable {}", u8::from(g.writable));
        head(
            &mut o,
            "breakglass_audit_head_sequence",
            "gauge",
            "Sequence number of the newest audit entry.",
        );
        let _ = writeln!(
            o,
            "breakglass_audit_head_sequence {}",
            get(&self.audit_head)
        );
        head(
            &mut o,
            "breakglass_last_checkpoint_timestamp_seconds",
            "gauge",
            "Unix time of the newest checkpoint signed by D (0: none since start).",
        );
        let _ = writeln!(
            o,
            "breakglass_last_checkpoint_timestamp_seconds {}",
            get(&self.last_checkpoint_at)
        );
        o
    }

    /// Seeds the audit figures at start from the store's head.
    pub fn seed(&self, head: u64, last_checkpoint_at: u64) {
        self.audit_head.store(head, Ordering::Relaxed);
        self.last_checkpoint_at
            .store(last_checkpoint_at, Ordering::Relaxed);
    }
}
