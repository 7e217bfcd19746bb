//! `breakglass` command-line behaviour that needs no daemon. (Having an integration
//! test here also makes `cargo test --workspace` build the binary that the
//! end-to-end tests in `tests/` run.)

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn bg(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_breakglass"))
        .args(args)
        .env_remove("BREAKGLASS_TLS_FINGERPRINT")
        .env_remove("BREAKGLASS_CA")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn refuses_to_connect_without_a_trust_anchor() {
    let (ok, _, err) = bg(&["info"]);
    assert!(!ok);
    assert!(
        err.contains("no way to trust the daemon: give --tls-fingerprint"),
        "{err}"
    );
}

#[test]
fn rejects_a_malformed_fingerprint() {
    let (ok, _, err) = bg(&["info", "--tls-fingerprint", "sha256:xyz"]);
    assert!(!ok);
    assert!(
        err.contains("is not `sha256:` followed by 64 hex digits"),
        "{err}"
    );
}

#[test]
fn verify_rejects_a_malformed_authority() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t");
    std::fs::write(&f, "v4.public.AAAA").unwrap();
    let (ok, _, err) = bg(&[
        "credential",
        "verify",
        f.to_str().unwrap(),
        "--authority",
        "nope",
    ]);
    assert!(!ok);
    assert!(
        err.contains("expected k4.public.…, ssh-ed25519 … or 64 hex digits"),
        "{err}"
    );
}

#[test]
fn keygen_writes_a_usable_key_pair() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k");
    let (ok, out, err) = bg(&[
        "keygen",
        "--out",
        p.to_str().unwrap(),
        "--no-passphrase",
        "--comment",
        "alice@test",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("ssh-ed25519 ") && out.contains("alice@test"),
        "{out}"
    );
    let pubkey = std::fs::read_to_string(dir.path().join("k.pub")).unwrap();
    assert!(pubkey.starts_with("ssh-ed25519 "));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let (ok, _, err) = bg(&["keygen", "--out", p.to_str().unwrap(), "--no-passphrase"]);
    assert!(
        !ok && err.contains("already exists; nothing written"),
        "keygen never overwrites a key: {err}"
    );
}

/// `keygen --out` into a directory that does not exist makes it, 0700, before
/// asking anything.
#[test]
fn keygen_creates_the_directory_private() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("new").join("k");
    let (ok, _, err) = bg(&["keygen", "--out", p.to_str().unwrap(), "--no-passphrase"]);
    assert!(ok, "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("new"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
