//! The daemon in process, served over `tokio::io::duplex` (tonic's in-memory
//! transport, no TLS, no sockets), with a fake clock and a seeded RNG.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use breakglass_client::api::{unix_now, Client};
use breakglass_daemon::{serve_duplex_insecure, Daemon, Limits, Store};
use rand::SeedableRng;

use super::Fixture;

/// A daemon on a fake clock, and a client talking to it in memory.
pub struct InProcess {
    pub daemon: Arc<Daemon>,
    pub clock: Arc<AtomicU64>,
    pub client: Client,
    pub server: tokio::task::JoinHandle<breakglass_daemon::Result<()>>,
}

impl InProcess {
    /// Starts the fixture's state with the clock at the real time (so the
    /// client's signatures are fresh) and the RNG seeded with `seed`.
    pub async fn start(fx: &Fixture, seed: u64) -> InProcess {
        InProcess::start_limited(fx, seed, Limits::default()).await
    }

    /// As [`InProcess::start`], with the given rate limits.
    pub async fn start_limited(fx: &Fixture, seed: u64, limits: Limits) -> InProcess {
        let clock = Arc::new(AtomicU64::new(unix_now()));
        let c = clock.clone();
        let daemon = Arc::new(
            Daemon::start_with(
                Store::open(&fx.state).unwrap(),
                &fx.state,
                Arc::new(move || c.load(Ordering::SeqCst)),
                Box::new(rand::rngs::StdRng::seed_from_u64(seed)),
                Vec::new(),
            )
            .unwrap(),
        );
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let server = tokio::spawn(serve_duplex_insecure(daemon.clone(), server_io, limits));
        let client = Client::over_duplex(client_io).await.unwrap();
        InProcess {
            daemon,
            clock,
            client,
            server,
        }
    }

    /// Closes the connection, waits for the server to end, and drops the daemon
    /// (releasing the state directory).
    pub async fn stop(self) {
        let InProcess {
            daemon,
            client,
            server,
            ..
        } = self;
        drop(client);
        server.await.unwrap().unwrap();
        // The connection's last tasks let go of their clones shortly after.
        for _ in 0..200 {
            if Arc::strong_count(&daemon) == 1 {
                return;
            }
            tokio::task::yield_now().await;
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("the daemon is still shared after the server ended");
    }

    pub fn set_clock(&self, t: u64) {
        self.clock.store(t, Ordering::SeqCst);
    }
}
