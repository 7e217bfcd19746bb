//! `breakglassd` command-line behaviour. (Having an integration test here also makes
//! `cargo test --workspace` build the binary that the end-to-end tests in `tests/` run.)

#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn help_lists_init_and_serve() {
    let out = Command::new(env!("CARGO_BIN_EXE_breakglassd")).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("init") && text.contains("serve"), "{text}");
}

#[test]
fn init_with_unreadable_policy_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_breakglassd"))
        .args(["init", "--policy", "/nonexistent/policy.toml", "--state"])
        .arg(dir.path().join("s"))
        .arg("--shares-out")
        .arg(dir.path().join("o"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/policy.toml: cannot read the policy"), "{err}");
}
