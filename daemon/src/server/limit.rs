//! Rate limits on state-changing calls: a token bucket per peer address and a
//! global one. The per-peer bucket is charged first, so a flooding peer spends
//! its own budget and not everyone else's; refusals are `RESOURCE_EXHAUSTED`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Limits, per second with a burst allowance.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Sustained calls per second from one peer address.
    pub per_peer_per_second: f64,
    /// Burst from one peer address.
    pub per_peer_burst: f64,
    /// Sustained calls per second from everyone.
    pub global_per_second: f64,
    /// Global burst.
    pub global_burst: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_peer_per_second: 50.0,
            per_peer_burst: 100.0,
            global_per_second: 1000.0,
            global_burst: 2000.0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(burst);
        self.last = now;
    }

    fn take(&mut self) -> bool {
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Most peer buckets kept; idle (full) ones are dropped beyond this.
const MAX_PEERS: usize = 10_000;

/// The limiter.
#[derive(Debug)]
pub struct Limiter {
    limits: Limits,
    global: Mutex<Bucket>,
    peers: Mutex<HashMap<IpAddr, Bucket>>,
}

impl Limiter {
    /// Another limiter with the same limits and its own, full buckets.
    pub fn same_limits(&self) -> Limiter {
        Limiter::new(self.limits)
    }

    /// A limiter with full buckets.
    pub fn new(limits: Limits) -> Limiter {
        let now = Instant::now();
        Limiter {
            limits,
            global: Mutex::new(Bucket::full(limits.global_burst, now)),
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one call from `peer`, or says why not.
    pub fn admit(&self, peer: Option<IpAddr>) -> Result<()> {
        let now = Instant::now();
        let l = self.limits;
        if let Some(ip) = peer {
            let mut peers = self
                .peers
                .lock()
                .map_err(|_| Error::Internal("rate limiter lock poisoned".into()))?;
            if peers.len() >= MAX_PEERS {
                peers.retain(|_, b| {
                    b.refill(l.per_peer_per_second, l.per_peer_burst, now);
                    b.tokens < l.per_peer_burst
                });
            }
            let b = peers
                .entry(ip)
                .or_insert_with(|| Bucket::full(l.per_peer_burst, now));
            b.refill(l.per_peer_per_second, l.per_peer_burst, now);
            if !b.take() {
                return Err(Error::RateLimited(format!(
                    "too many calls from {ip} (more than {} per second); slow down and retry in a second",
                    l.per_peer_per_second
                )));
            }
        }
        let mut g = self
            .global
            .lock()
            .map_err(|_| Error::Internal("rate limiter lock poisoned".into()))?;
        g.refill(l.global_per_second, l.global_burst, now);
        if !g.take() {
            return Err(Error::RateLimited(format!(
                "the daemon is taking more than {} calls per second from everyone; retry in a second",
                l.global_per_second
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_peer_budget_is_separate_and_charged_first() {
        let lim = Limiter::new(Limits {
            per_peer_per_second: 0.001,
            per_peer_burst: 3.0,
            global_per_second: 0.001,
            global_burst: 5.0,
        });
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..3 {
            lim.admit(Some(a)).unwrap();
        }
        // a is out of its own budget; its refusals do not spend the global one.
        for _ in 0..10 {
            assert!(
                matches!(lim.admit(Some(a)), Err(Error::RateLimited(m)) if m.contains("from 127.0.0.2"))
            );
        }
        lim.admit(Some(b)).unwrap();
        lim.admit(Some(b)).unwrap();
        assert!(
            matches!(lim.admit(Some(b)), Err(Error::RateLimited(m)) if m.contains("from everyone"))
        );
    }
}
