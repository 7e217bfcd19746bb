//! The tonic server: TLS (rustls via tonic), the `BreakGlass` service, standard
//! health and reflection services, and the expiry sweeper. `run` takes the
//! listener and the shutdown signal, so tests bind `127.0.0.1:0`.

mod attest;
mod calllog;
mod change;
pub mod decode;
pub mod grpc;
pub mod limit;
pub mod metrics_http;
pub mod status;
mod stream;
pub mod tls;
mod view;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use breakglass_proto::pb;

use crate::error::{Error, Result};
use crate::ops::Daemon;
use tls::TlsMaterial;

/// How long a shutdown waits for calls in flight before closing connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Largest message accepted: calls are small, so junk is cut off early.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Options beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// PEM CA for mutual TLS: when set, clients must present a certificate it signed,
    /// whose subject common name is the policy id that signs their calls.
    pub client_ca: Option<Vec<u8>>,
    /// Rate limits.
    pub limits: limit::Limits,
}

/// Installs rustls' process-wide crypto provider (ring); the one place the
/// daemon does so. Calling it again is harmless.
pub fn install_crypto_provider() {
    // Err means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn service(
    daemon: Arc<Daemon>,
    limiter: Arc<limit::Limiter>,
    mtls: bool,
) -> pb::break_glass_server::BreakGlassServer<grpc::BreakGlassService> {
    let reads = Arc::new(limiter.same_limits());
    pb::break_glass_server::BreakGlassServer::new(grpc::BreakGlassService::new(
        daemon, limiter, reads, mtls,
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
}

/// Serves the `BreakGlass` service, without TLS, over one in-process
/// `tokio::io::duplex` stream, until the other end closes: the transport of
/// the fast service tests (fake clock, seeded RNG, no sockets). It takes only
/// a `DuplexStream`, so it can never listen on a network; there is no sweeper
/// (tests call [`Daemon::sweep`] after moving their clock).
pub async fn serve_duplex_insecure(
    daemon: Arc<Daemon>,
    io: tokio::io::DuplexStream,
    limits: limit::Limits,
) -> Result<()> {
    let svc = service(daemon, Arc::new(limit::Limiter::new(limits)), false);
    Server::builder()
        .add_service(svc)
        .serve_with_incoming(tokio_stream::once(Ok::<_, std::io::Error>(io)))
        .await
        .map_err(|e| Error::Internal(format!("server: {e}")))
}

/// Serves with default options.
pub async fn run(
    daemon: Arc<Daemon>,
    listener: TcpListener,
    tls: &TlsMaterial,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    run_with(daemon, listener, tls, ServeOptions::default(), shutdown).await
}

/// Serves until `shutdown` resolves, then wipes memory-only secrets and records the stop.
pub async fn run_with(
    daemon: Arc<Daemon>,
    listener: TcpListener,
    tls: &TlsMaterial,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    install_crypto_provider();
    let identity = Identity::from_pem(&tls.cert_pem, tls.key_pem.as_slice());
    let mut tls_config = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &opts.client_ca {
        tls_config = tls_config.client_ca_root(tonic::transport::Certificate::from_pem(ca));
    }
    let limiter = Arc::new(limit::Limiter::new(opts.limits));
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<pb::break_glass_server::BreakGlassServer<grpc::BreakGlassService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::Internal(format!("reflection: {e}")))?;
    let svc = service(daemon.clone(), limiter, opts.client_ca.is_some());

    // The sweeper stops between sweeps and is awaited, so no clone of the daemon
    // outlives `run_with` (a caller may reopen the state directory right after).
    let (stop_sweeper, mut stopping) = tokio::sync::watch::channel(false);
    // The health service follows the store: NOT_SERVING while writes fail.
    let health_follower = {
        let mut writable = daemon.writable();
        let reporter = reporter.clone();
        tokio::spawn(async move {
            while writable.changed().await.is_ok() {
                let ok = *writable.borrow_and_update();
                if ok {
                    reporter
                        .set_serving::<pb::break_glass_server::BreakGlassServer<grpc::BreakGlassService>>()
                        .await;
                } else {
                    tracing::error!(
                        "store writes fail: reporting NOT_SERVING until a write succeeds"
                    );
                    reporter
                        .set_not_serving::<pb::break_glass_server::BreakGlassServer<grpc::BreakGlassService>>()
                        .await;
                }
            }
        })
    };
    let sweeper = {
        let d = daemon.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = stopping.changed() => return,
                }
                let d = d.clone();
                match tokio::task::spawn_blocking(move || d.sweep()).await {
                    Ok(Ok(ids)) => {
                        for id in ids {
                            tracing::info!(request = %id, "request expired without a quorum");
                        }
                    }
                    Ok(Err(e)) => tracing::error!(error = %e, "expiry sweep failed"),
                    Err(e) => tracing::error!(error = %e, "expiry sweep panicked"),
                }
            }
        })
    };

    // On the signal, streams are told to end; the server then waits for calls in
    // flight, but never longer than SHUTDOWN_GRACE, whatever clients do.
    let (signalled, mut signal) = tokio::sync::watch::channel(false);
    let graceful = {
        let d = daemon.clone();
        async move {
            shutdown.await;
            d.begin_stop();
            signalled.send_replace(true);
        }
    };
    let server = Server::builder()
        .tls_config(tls_config)
        .map_err(|e| Error::Internal(format!("TLS configuration: {e}")))?
        .add_service(health)
        .add_service(reflection)
        .add_service(svc)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            graceful,
        );
    let served = tokio::select! {
        served = server => served,
        _ = async {
            let _ = signal.wait_for(|s| *s).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!(
                grace_seconds = SHUTDOWN_GRACE.as_secs(),
                "clients still connected after the shutdown grace period; closing them"
            );
            Ok(())
        }
    };
    let _ = stop_sweeper.send(true);
    let _ = sweeper.await;
    health_follower.abort();
    let d = daemon.clone();
    let stopped = tokio::task::spawn_blocking(move || d.shutdown())
        .await
        .map_err(|e| Error::Internal(format!("shutdown: {e}")))?;
    served.map_err(|e| Error::Internal(format!("server: {e}")))?;
    stopped
}
