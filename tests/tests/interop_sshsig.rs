//! Interop for signatures in OpenSSH's SSHSIG format (issue 13, first step):
//! `ssh-keygen -Y sign` with a key file produces what `formats::sshsig`
//! accepts, and what the test authenticator produces for security keys is
//! accepted by `ssh-keygen -Y verify`: proof, from a tool nobody here wrote,
//! that the signed data (application, flags, counter, message) is built as
//! OpenSSH defines it. `ssh-keygen -Y verify` leaves presence and verification
//! to the caller; breakglass always requires presence and reports verification.
//! Guards invariant 4 (every call is signed by the registered key).
//!
//! Needs ssh-keygen, so `#[ignore]`d in the plain run; `.ci/run` runs it with
//! `--ignored`. A missing tool fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use breakglass_formats::sshsig::{self, KeyKind, SigError, FLAG_USER_PRESENT, FLAG_USER_VERIFIED};
use common::authenticator::Authenticator;
use ssh_key::PublicKey;

const PAYLOAD: &[u8] = b"breakglass/v1/submit-share: interop payload";

fn keygen() -> std::path::PathBuf {
    let p = std::path::PathBuf::from("/usr/bin/ssh-keygen");
    assert!(
        p.is_file(),
        "ssh-keygen is missing (apt-get install openssh-client)"
    );
    p
}

/// `ssh-keygen -Y verify` of `sig` over PAYLOAD for signer `tester` with the
/// allowed-signers line `tester options key`.
fn keygen_verify(dir: &Path, key: &PublicKey, options: &str, pem: &str) -> bool {
    let allowed = dir.join("allowed_signers");
    let line = format!(
        "tester {options}{} {}\n",
        if options.is_empty() { "" } else { " " },
        key.to_openssh().unwrap()
    );
    std::fs::write(&allowed, line).unwrap();
    let sig_path = dir.join("payload.sig");
    std::fs::write(&sig_path, pem).unwrap();
    let mut child = Command::new(keygen())
        .args(["-Y", "verify", "-f"])
        .arg(&allowed)
        .args(["-I", "tester", "-n", "breakglass", "-s"])
        .arg(&sig_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(PAYLOAD).unwrap();
    child.wait_with_output().unwrap().status.success()
}

#[test]
#[ignore = "interop: needs ssh-keygen; run by .ci/run with --ignored"]
fn ssh_keygen_file_key_signatures_verify_here() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_ed25519");
    let ok = Command::new(keygen())
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let payload = dir.path().join("payload");
    std::fs::write(&payload, PAYLOAD).unwrap();
    for ns in ["breakglass", "git"] {
        let _ = std::fs::remove_file(dir.path().join("payload.sig"));
        let ok = Command::new(keygen())
            .args(["-Y", "sign", "-f"])
            .arg(&key)
            .args(["-n", ns])
            .arg(&payload)
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "ssh-keygen -Y sign -n {ns}");
        let pem = std::fs::read(dir.path().join("payload.sig")).unwrap();
        let sig = sshsig::parse(&pem).unwrap();
        let public = PublicKey::read_openssh_file(&key.with_extension("pub")).unwrap();
        let got = sshsig::verify(&public, PAYLOAD, &sig);
        if ns == "breakglass" {
            assert_eq!(got.unwrap().kind, KeyKind::Ed25519);
            assert_eq!(
                sshsig::verify(&public, b"other", &sig),
                Err(SigError::BadSignature)
            );
        } else {
            assert_eq!(got, Err(SigError::Namespace { got: "git".into() }));
        }
    }
}

#[test]
#[ignore = "interop: needs ssh-keygen; run by .ci/run with --ignored"]
fn ssh_keygen_accepts_the_test_authenticators_signatures() {
    let dir = tempfile::tempdir().unwrap();
    for a in [
        Authenticator::ed25519(4, "ssh:"),
        Authenticator::p256(5, "ssh:"),
    ] {
        let key = a.public();
        let both = a.sign(PAYLOAD, FLAG_USER_PRESENT | FLAG_USER_VERIFIED, 10);
        let touch = a.sign(PAYLOAD, FLAG_USER_PRESENT, 11);
        let none = a.sign(PAYLOAD, 0, 12);
        let what = key.algorithm().as_str().to_string();
        // OpenSSH verifies each signature as a signature, whatever the flags
        // (it leaves presence and verification to the caller's policy)...
        for (signed, flags) in [
            (&both, "presence + verification"),
            (&touch, "presence"),
            (&none, "no flags"),
        ] {
            assert!(
                keygen_verify(dir.path(), &key, "", &signed.pem),
                "{what}: {flags}"
            );
        }
        // ...and the flags are signed: raising one afterwards breaks it for OpenSSH too.
        let raised = a.sign_as(
            PAYLOAD,
            FLAG_USER_PRESENT,
            FLAG_USER_PRESENT | FLAG_USER_VERIFIED,
            11,
        );
        assert!(
            !keygen_verify(dir.path(), &key, "", &raised.pem),
            "{what}: raised flag"
        );
        assert_eq!(
            sshsig::verify(&key, PAYLOAD, &raised.sig),
            Err(SigError::BadSignature)
        );
        // Presence is our rule: always required; verification is reported.
        let ours = sshsig::verify(&key, PAYLOAD, &both.sig)
            .unwrap()
            .sk
            .unwrap();
        assert_eq!(ours.counter, 10);
        assert!(ours.user_present() && ours.user_verified());
        assert!(!sshsig::verify(&key, PAYLOAD, &touch.sig)
            .unwrap()
            .sk
            .unwrap()
            .user_verified());
        assert_eq!(
            sshsig::verify(&key, PAYLOAD, &none.sig),
            Err(SigError::NoUserPresence)
        );
        // A signature over other bytes fails in both.
        let other = a.sign(b"other", FLAG_USER_PRESENT, 13);
        assert!(
            !keygen_verify(dir.path(), &key, "", &other.pem),
            "{what}: other payload"
        );
        assert_eq!(
            sshsig::verify(&key, PAYLOAD, &other.sig),
            Err(SigError::BadSignature)
        );
    }
}
