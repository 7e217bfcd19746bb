//! `breakglass share check`, offline and online, against files the ceremony of
//! a real `breakglassd init` wrote and against substituted files: share files
//! encrypted to the right custodian by someone who is not the ceremony.
//! Guards invariant 5 (a share is checked against its commitment and
//! attributed) on the custodian's side, before any incident.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey};
use serde_json::Value;

use breakglass_client::api::open_share_file;
use breakglass_formats::envelope::encrypt_to_ssh;
use breakglass_formats::share_file::{commitment_hash, Origin, ShareFile};
use breakglass_proto::signing::{share_statement, ShareStatement};
use common::{load, run, Fixture};

/// `breakglass --key KEY share check --share FILE ARGS…` with no daemon at all.
fn offline(key: &Path, file: &Path, args: &[&str]) -> (bool, String, String) {
    let key = key.display().to_string();
    let file = file.display().to_string();
    let mut all = vec![
        "--key",
        key.as_str(),
        "share",
        "check",
        "--share",
        file.as_str(),
        "--offline",
    ];
    all.extend_from_slice(args);
    run("breakglass", &all, &[])
}

/// A share file for custodian c1 (`key`) with another share in it, built like
/// the genuine one; `origin` says what is written beside the share. Encrypted
/// to c1's public key, as anyone can.
fn substitute(
    fx: &Fixture,
    key: &Path,
    name: &str,
    origin: impl Fn(&ShareFile, &[u8]) -> Origin,
) -> PathBuf {
    let me = load(key);
    let real = open_share_file(&me, &fx.share_file("c1")).unwrap();
    let mut share = real.share_bytes().unwrap().to_vec();
    share[7] ^= 0x5a;
    let o = origin(&real, &share);
    let fake = ShareFile::new(
        real.daemon_id.clone(),
        real.ceremony_id.clone(),
        real.custodian_id.clone(),
        real.threshold,
        real.custodians,
        real.authority_public_key.clone(),
        &o,
        &share,
    );
    let ct = encrypt_to_ssh(&me.ssh_public(), &fake.to_bytes()).unwrap();
    let path = fx.dir.path().join(name);
    std::fs::write(&path, ct).unwrap();
    path
}

fn sig64(s: &Option<String>) -> [u8; 64] {
    hex::decode(s.as_deref().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn hex32(s: &Option<String>) -> [u8; 32] {
    hex::decode(s.as_deref().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

/// Readiness, offline check: the genuine file proves its origin with and without
/// the expected key; a substituted file with the genuine commitment and
/// signature copied beside it fails; one signed by a forger's own key passes
/// only without the expected key (saying D was not compared) and fails with
/// it and online; a wrong --daemon-key is refused online before anything else.
#[tokio::test]
async fn offline_and_online_checks_prove_the_files_origin() {
    let mut fx = Fixture::new(3, 2, "10m");
    fx.start();
    let d_hex = hex::encode(&fx.client().await.info().daemon_public_key);
    let c1 = fx.custodian_key(0);
    let genuine = fx.share_file("c1");

    let (ok, out, err) = offline(&c1, &genuine, &[]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("daemon key {d_hex} signed the file")),
        "{out}"
    );
    assert!(
        out.contains("D was not compared with your daemon's key"),
        "{out}"
    );
    let (ok, out, err) = offline(&c1, &genuine, &["--daemon-key", &d_hex, "--json"]);
    assert!(ok, "{err}");
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["checked"], "offline");
    assert_eq!(j["daemon_key_compared"], true);
    assert_eq!(j["daemon_public_key"], d_hex.as_str());
    assert_eq!(j["epoch"], 1);
    assert_eq!(j["custodian_id"], "c1");

    let (ok, out, err) = fx.cli(
        &c1,
        &["share", "check", "--share", genuine.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("matches the commitment the daemon publishes for c1"),
        "{out}"
    );

    // The genuine commitment and D's signature copied beside another share.
    let copied = substitute(&fx, &c1, "copied.share", |real, _| Origin {
        epoch: 1,
        commitment: hex32(&real.commitment),
        daemon_public_key: hex32(&real.daemon_public_key),
        signature: sig64(&real.daemon_signature),
    });
    let (ok, _, err) = offline(&c1, &copied, &[]);
    assert!(!ok);
    assert!(
        err.contains("does not match the commitment written beside it"),
        "{err}"
    );
    let (ok, _, err) = fx.cli(
        &c1,
        &["share", "check", "--share", copied.to_str().unwrap()],
    );
    assert!(!ok);
    assert!(
        err.contains("does not match the commitment daemon"),
        "{err}"
    );

    // Its own commitment, and the genuine D named but not able to sign.
    let unsigned = substitute(&fx, &c1, "unsigned.share", |real, share| Origin {
        epoch: 1,
        commitment: commitment_hash(&real.ceremony_id, 1, &real.custodian_id, share),
        daemon_public_key: hex32(&real.daemon_public_key),
        signature: sig64(&real.daemon_signature),
    });
    let (ok, _, err) = offline(&c1, &unsigned, &[]);
    assert!(!ok);
    assert!(
        err.contains("signature in this share file does not verify"),
        "{err}"
    );

    // A forger's own D': self-consistent, so only the expected key tells.
    let forger = SigningKey::from_bytes(&[0x42; 32]);
    let forged = substitute(&fx, &c1, "forged.share", |real, share| {
        let commitment = commitment_hash(&real.ceremony_id, 1, &real.custodian_id, share);
        let statement = share_statement(&ShareStatement {
            daemon_id: &real.daemon_id,
            ceremony_id: &real.ceremony_id,
            epoch: 1,
            custodian_id: &real.custodian_id,
            x: share[0],
            commitment: &commitment,
            threshold: real.threshold,
            custodians: real.custodians,
        });
        Origin {
            epoch: 1,
            commitment,
            daemon_public_key: forger.verifying_key().to_bytes(),
            signature: forger.sign(&statement).to_bytes(),
        }
    });
    let (ok, out, err) = offline(&c1, &forged, &[]);
    assert!(ok, "{err}");
    assert!(out.contains("D was not compared"), "{out}");
    assert!(!out.contains(&d_hex), "{out}");
    let (ok, _, err) = offline(&c1, &forged, &["--daemon-key", &d_hex]);
    assert!(!ok);
    assert!(err.contains("the file is not from this daemon"), "{err}");
    let (ok, _, err) = fx.cli(
        &c1,
        &["share", "check", "--share", forged.to_str().unwrap()],
    );
    assert!(!ok);
    assert!(
        err.contains("does not match the commitment daemon"),
        "{err}"
    );

    let other = hex::encode(forger.verifying_key().to_bytes());
    let (ok, _, err) = fx.cli(
        &c1,
        &[
            "share",
            "check",
            "--share",
            genuine.to_str().unwrap(),
            "--daemon-key",
            &other,
        ],
    );
    assert!(!ok);
    assert!(err.contains("this is not the daemon you meant"), "{err}");
    let (ok, _, err) = offline(&c1, &genuine, &["--daemon-key", "zz"]);
    assert!(!ok);
    assert!(
        err.contains("--daemon-key: expected 64 hex digits"),
        "{err}"
    );
}
