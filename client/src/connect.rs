//! TLS to the daemon. The client trusts the daemon either through a CA file
//! (`--ca`) or by pinning the SHA-256 fingerprint of its certificate
//! (`--tls-fingerprint sha256:…`, what `breakglassd serve` prints). There is no
//! plaintext mode.

use std::sync::Arc;

use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::error::{ClientError, Result};

/// How the client decides the daemon is the right one.
#[derive(Debug, Clone)]
pub enum Trust {
    /// PEM CA certificate(s).
    Ca(Vec<u8>),
    /// SHA-256 of the daemon's leaf certificate.
    Fingerprint([u8; 32]),
}

impl Trust {
    /// Parses `sha256:<64 hex>` (colons between bytes allowed; `SHA256:` and
    /// capital hex digits too, as other tools print fingerprints).
    pub fn fingerprint(s: &str) -> Result<Trust> {
        let t = s.trim();
        let hexpart = match t.get(..7) {
            Some(p) if p.eq_ignore_ascii_case("sha256:") => &t[7..],
            _ => t,
        }
        .replace(':', "");
        let mut fp = [0u8; 32];
        hex::decode_to_slice(&hexpart, &mut fp).map_err(|_| {
            ClientError::Other(format!(
                "--tls-fingerprint {s:?} is not `sha256:` followed by 64 hex digits (breakglassd prints it at start)"
            ))
        })?;
        Ok(Trust::Fingerprint(fp))
    }
}

/// Where and how to connect. `Debug` shows no key material.
#[derive(Clone)]
pub struct ConnectOptions {
    /// `host:port`.
    pub addr: String,
    /// Trust anchor.
    pub trust: Trust,
    /// Name to check in the certificate (default: the host of `addr`).
    pub server_name: Option<String>,
    /// Client certificate chain and key (PEM), for daemons that require mutual TLS.
    pub client_cert: Option<ClientCert>,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("addr", &self.addr)
            .field("trust", &self.trust)
            .field("server_name", &self.server_name)
            .field(
                "client_cert",
                &self
                    .client_cert
                    .as_ref()
                    .map(|_| "(certificate and key, not shown)"),
            )
            .finish()
    }
}

/// A client certificate chain and its private key, both PEM.
pub type ClientCert = (Vec<u8>, zeroize::Zeroizing<Vec<u8>>);

#[derive(Debug)]
struct PinnedCert {
    fingerprint: [u8; 32],
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if bool::from(got.ct_eq(&self.fingerprint)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the daemon's certificate is sha256:{}, not the pinned sha256:{}; check --tls-fingerprint",
                hex::encode(got),
                hex::encode(self.fingerprint)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn client_auth(
    builder: rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>,
    cert: Option<&ClientCert>,
) -> Result<ClientConfig> {
    match cert {
        None => Ok(builder.with_no_client_auth()),
        Some((chain, key)) => {
            let mut rd = chain.as_slice();
            let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut rd)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| ClientError::Other(format!("--client-cert: unreadable PEM: {e}")))?;
            if certs.is_empty() {
                return Err(ClientError::Other(
                    "--client-cert: no CERTIFICATE in the file".into(),
                ));
            }
            let mut rk = key.as_slice();
            let key = rustls_pemfile::private_key(&mut rk)
                .map_err(|e| ClientError::Other(format!("--client-key: unreadable PEM: {e}")))?
                .ok_or_else(|| {
                    ClientError::Other("--client-key: no PRIVATE KEY in the file".into())
                })?;
            builder.with_client_auth_cert(certs, key).map_err(|e| {
                ClientError::Other(format!(
                    "client certificate and key do not fit together: {e}"
                ))
            })
        }
    }
}

fn tls_config(trust: &Trust, cert: Option<&ClientCert>) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Other(format!("TLS setup: {e}")))?;
    let mut cfg = match trust {
        Trust::Ca(pem) => {
            let mut roots = RootCertStore::empty();
            let mut rd = pem.as_slice();
            for cert in rustls_pemfile::certs(&mut rd) {
                let cert =
                    cert.map_err(|e| ClientError::Other(format!("--ca: unreadable PEM: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| ClientError::Other(format!("--ca: unusable certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(ClientError::Other(
                    "--ca: no CERTIFICATE in the file".into(),
                ));
            }
            client_auth(builder.with_root_certificates(roots), cert)?
        }
        Trust::Fingerprint(fp) => client_auth(
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedCert {
                    fingerprint: *fp,
                    provider,
                })),
            cert,
        )?,
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

/// Opens a TLS channel to the daemon.
pub async fn channel(opts: &ConnectOptions) -> Result<Channel> {
    let addr = opts.addr.clone();
    let fail = |why: String| ClientError::Connect {
        addr: addr.clone(),
        why,
    };
    let host = match addr.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']').to_string(),
        None => return Err(fail("expected host:port".into())),
    };
    let name = opts.server_name.clone().unwrap_or(host);
    let server_name = ServerName::try_from(name.clone())
        .map_err(|_| fail(format!("{name:?} is not a valid TLS server name")))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(
        &opts.trust,
        opts.client_cert.as_ref(),
    )?));
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| fail(e.to_string()))?
        .connect_timeout(std::time::Duration::from_secs(10))
        // A daemon that dies or drops off the network is noticed within seconds
        // (a ping every 5 s, 5 s to answer), even while a watch waits for news.
        .http2_keep_alive_interval(std::time::Duration::from_secs(5))
        .keep_alive_timeout(std::time::Duration::from_secs(5))
        .keep_alive_while_idle(true);
    let target = addr.clone();
    endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let connector = connector.clone();
            let server_name = server_name.clone();
            let target = target.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(&target).await?;
                tcp.set_nodelay(true)?;
                let tls = connector.connect(server_name, tcp).await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await
        .map_err(|e| fail(connect_failure(&e)))
}

/// What to check when the daemon cannot be reached.
const CHECK_DAEMON: &str = "check --daemon / BREAKGLASS_DAEMON and that breakglassd is running";

/// Why a connection failed, for people: the OS error once (every layer of
/// tonic and hyper repeats it), and what to check.
fn connect_failure(e: &(dyn std::error::Error + 'static)) -> String {
    use std::io::ErrorKind::*;
    let mut parts: Vec<String> = Vec::new();
    let mut kind = None;
    let mut cur = Some(e);
    while let Some(x) = cur {
        let t = x.to_string();
        if !t.is_empty() && !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        if let Some(io) = x.downcast_ref::<std::io::Error>() {
            kind = Some(io.kind());
        }
        cur = x.source();
    }
    // tonic's outer "transport error" says nothing when a cause follows.
    if parts.len() > 1 && parts[0] == "transport error" {
        parts.remove(0);
    }
    let text = parts.join(": ");
    match kind {
        Some(ConnectionRefused) => format!("connection refused; {CHECK_DAEMON}"),
        Some(TimedOut) => format!("timed out; {CHECK_DAEMON}"),
        Some(HostUnreachable | NetworkUnreachable | AddrNotAvailable) => {
            format!("{text}; {CHECK_DAEMON}")
        }
        Some(ConnectionReset | ConnectionAborted | UnexpectedEof) => format!(
            "the connection was closed during the TLS handshake ({text}); check that --daemon is \
             breakglassd's port and, if it requires client certificates, --client-cert and --client-key"
        ),
        _ if text.contains("timed out") || text.contains("lookup") => {
            format!("{text}; {CHECK_DAEMON}")
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client's TLS key never shows in `Debug`.
    #[test]
    fn debug_hides_the_client_key() {
        let o = ConnectOptions {
            addr: "127.0.0.1:1".into(),
            trust: Trust::Ca(Vec::new()),
            server_name: None,
            client_cert: Some((
                b"CERT".to_vec(),
                zeroize::Zeroizing::new(b"PRIVATE-KEY-BYTES".to_vec()),
            )),
        };
        let shown = format!("{o:?}");
        assert!(!shown.contains("80, 82, 73"), "{shown}");
        assert!(shown.contains("not shown"), "{shown}");
    }

    /// Fingerprints as other tools print them: `SHA256:`, capitals, colons.
    #[test]
    fn fingerprints_in_any_case() {
        let lower = format!("sha256:{}", "ab".repeat(32));
        let upper = format!("SHA256:{}", "AB:".repeat(32).trim_end_matches(':'));
        for s in [lower, upper] {
            assert!(
                matches!(Trust::fingerprint(&s), Ok(Trust::Fingerprint(fp)) if fp == [0xab; 32]),
                "{s}"
            );
        }
        assert!(Trust::fingerprint("SHA256:xyz").is_err());
    }

    /// A refused connection names the OS error once and says what to check.
    #[test]
    fn refused_connection_says_what_to_check() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            connect_failure(&io),
            format!("connection refused; {CHECK_DAEMON}")
        );
    }
}
