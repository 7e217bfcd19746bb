//! Abuse resistance: rate limits, the bound on open requests per commander, and
//! mutual TLS. (Separation of duties, the requester's own share, is checked on a
//! fake clock in `service.rs`.)
//!
//! Invariant 4 (the caller is who signed: mutual TLS binds the
//! certificate to the signer) and invariant 9 (each refusal has its own status and
//! message and changes nothing).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use breakglass_client::api::Client;
use breakglass_client::connect::{ConnectOptions, Trust};
use common::{load, Fixture};

fn err_of<T>(r: breakglass_client::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

/// Per-peer rate limits answer RESOURCE_EXHAUSTED with a message saying what to do.
#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_refuse_with_resource_exhausted() {
    let mut fx = Fixture::new(3, 2, "15m");
    let cfg = fx.dir.path().join("limits.toml");
    std::fs::write(
        &cfg,
        "[limits]\nper_peer_per_second = 0.5\nper_peer_burst = 3.0\n",
    )
    .unwrap();
    fx.start_with(&["--config", cfg.to_str().unwrap()]);
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let c1 = load(&fx.custodian_key(0));
    let mut errors = Vec::new();
    let _ = &c1;
    for i in 0..6 {
        // Cancels of a request that does not exist: cheap, but still state-changing calls.
        let msg = breakglass_proto::pb::CancelRequestRequest {
            request_id: format!("req-{i:016x}"),
            reason: "x".into(),
            signature: Some(breakglass_proto::pb::Signature {
                signer_id: "c1".into(),
                signed_at: 0,
                signature: vec![0; 64],
            }),
        };
        let r = client.rpc().cancel_request(msg).await;
        errors.push(match r {
            Ok(_) => panic!("accepted"),
            Err(s) => format!(
                "{}: {}",
                breakglass_client::error::code_name(s.code()),
                s.message()
            ),
        });
    }
    assert!(
        errors[..3].iter().all(|e| e.starts_with("NOT_FOUND")),
        "{errors:?}"
    );
    assert!(
        errors[3..]
            .iter()
            .all(|e| e.starts_with("RESOURCE_EXHAUSTED")
                && e.contains("too many calls from 127.0.0.1")),
        "{errors:?}"
    );
    // Reads are not rate limited, and the refused calls changed nothing.
    assert!(client.list(false).await.unwrap().is_empty());
    let e = err_of(
        client
            .open(&ic, None, "prod-ssh", "limited", 60, &ic.ssh_public())
            .await,
    );
    assert!(e.starts_with("RESOURCE_EXHAUSTED"), "{e}");
}

/// A commander may keep at most `max_open_per_commander` requests collecting.
#[tokio::test(flavor = "multi_thread")]
async fn open_requests_per_commander_are_bounded() {
    let mut fx = Fixture::with_extra(3, 2, "15m", &["root"], "max_open_per_commander = 2", "");
    fx.start();
    let mut client = fx.client().await;
    let ic = load(&fx.commander_key("ic"));
    let ic2 = load(&fx.commander_key("ic2"));
    let a = client
        .open(&ic, None, "prod-ssh", "one", 60, &ic.ssh_public())
        .await
        .unwrap();
    let b = client
        .open(&ic, None, "prod-ssh", "two", 60, &ic.ssh_public())
        .await
        .unwrap();
    let e = err_of(
        client
            .open(&ic, None, "prod-ssh", "three", 60, &ic.ssh_public())
            .await,
    );
    assert!(e.starts_with("RESOURCE_EXHAUSTED"), "{e}");
    let mut ids = [a.id.clone(), b.id.clone()];
    ids.sort();
    assert!(
        e.contains(&format!(
            "commander `ic` already has 2 requests collecting shares ({}, {})",
            ids[0], ids[1]
        )),
        "{e}"
    );
    assert_eq!(
        client.list(false).await.unwrap().len(),
        2,
        "the refused open created nothing"
    );
    // Another commander is not affected; cancelling one frees a slot.
    client
        .open(
            &ic2,
            None,
            "prod-ssh",
            "other commander",
            60,
            &ic2.ssh_public(),
        )
        .await
        .unwrap();
    client.cancel(&ic, None, &a.id, "done").await.unwrap();
    client
        .open(&ic, None, "prod-ssh", "three again", 60, &ic.ssh_public())
        .await
        .unwrap();
}

struct Pki {
    ca_pem: String,
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl Pki {
    fn new() -> Pki {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "breakglass clients CA");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = p.self_signed(&ca_key).unwrap();
        Pki {
            ca_pem: ca.pem(),
            ca,
            ca_key,
        }
    }

    fn client(&self, id: &str) -> (Vec<u8>, Vec<u8>) {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, id);
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        (cert.pem().into_bytes(), key.serialize_pem().into_bytes())
    }
}

async fn connect(
    fx: &Fixture,
    cert: Option<(Vec<u8>, Vec<u8>)>,
) -> breakglass_client::Result<Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let d = fx.daemon.as_ref().unwrap();
    Client::connect(&ConnectOptions {
        addr: d.addr.clone(),
        trust: Trust::fingerprint(&d.fingerprint).unwrap(),
        server_name: None,
        client_cert: cert.map(|(c, k)| (c, zeroize::Zeroizing::new(k))),
    })
    .await
}

/// Mutual TLS: no certificate, no connection; a certificate must belong to the signer.
#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_requires_a_certificate_matching_the_signer() {
    let pki = Pki::new();
    let mut fx = Fixture::new(3, 2, "15m");
    let ca = fx.dir.path().join("clients-ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    fx.start_with(&["--client-ca", ca.to_str().unwrap()]);

    let e = err_of(connect(&fx, None).await);
    assert!(
        e.contains("cannot reach the daemon") && e.contains("pass --client-cert and --client-key"),
        "{e}"
    );

    // A certificate from another CA is refused too.
    let other = Pki::new();
    let e = err_of(connect(&fx, Some(other.client("ic"))).await);
    assert!(e.contains("cannot reach the daemon"), "{e}");

    let ic = load(&fx.commander_key("ic"));
    let mut as_ic = connect(&fx, Some(pki.client("ic"))).await.unwrap();
    let r = as_ic
        .open(&ic, None, "prod-ssh", "mtls", 60, &ic.ssh_public())
        .await
        .unwrap();

    let mut as_c1 = connect(&fx, Some(pki.client("c1"))).await.unwrap();
    let e = err_of(
        as_c1
            .open(
                &ic,
                None,
                "prod-ssh",
                "someone else's cert",
                60,
                &ic.ssh_public(),
            )
            .await,
    );
    assert!(e.starts_with("PERMISSION_DENIED"), "{e}");
    assert!(
        e.contains("the client certificate is for `c1` but the call is signed by `ic`"),
        "{e}"
    );
    // c1's own signed call over c1's certificate works.
    let c1 = load(&fx.custodian_key(0));
    let f = as_c1.read_share_file(&c1, &fx.share_file("c1")).unwrap();
    as_c1.submit(&c1, None, &r, &f).await.unwrap();

    // The CLI takes the certificate with --client-cert / --client-key.
    let (cert, key) = pki.client("ic");
    let (cp, kp) = (fx.dir.path().join("ic.crt"), fx.dir.path().join("ic.key"));
    std::fs::write(&cp, cert).unwrap();
    std::fs::write(&kp, key).unwrap();
    let (ok, out, err) = fx.cli(
        &fx.commander_key("ic"),
        &[
            "--client-cert",
            cp.to_str().unwrap(),
            "--client-key",
            kp.to_str().unwrap(),
            "request",
            "show",
            &r.id,
        ],
    );
    assert!(ok && out.contains("approvals 1/2 c1"), "{out}{err}");
    let (ok, _, err) = fx.cli(&fx.commander_key("ic"), &["request", "show", &r.id]);
    assert!(
        !ok && err.contains("pass --client-cert and --client-key"),
        "{err}"
    );
}
