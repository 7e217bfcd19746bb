//! `breakglassd` command-line behaviour. (Having an integration test here also makes
//! `cargo test --workspace` build the binary that the end-to-end tests in `tests/` run.)

#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn help_lists_init_and_serve() {
    let out = Command::new(env!("CARGO_BIN_EXE_breakglassd"))
        .arg("--help")
        .output()
        .unwrap();
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
    assert!(
        err.contains("/nonexistent/policy.toml: cannot read the policy"),
        "{err}"
    );
}

#[test]
fn deploy_example_policy_is_valid() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/policy.example.toml"
    ))
    .unwrap();
    let p = breakglass_daemon::engine::policy::Policy::from_toml(&text).unwrap();
    assert_eq!(p.threshold, 3);
    assert_eq!(p.custodians.len(), 5);
    assert_eq!(p.ttl_cap(p.scope("prod-ssh").unwrap()), 1800);
}

#[test]
fn deploy_example_config_is_valid_for_the_example_policy() {
    let dir = tempfile::tempdir().unwrap();
    for n in ["security-slack", "alice"] {
        std::fs::write(
            dir.path().join(format!("{n}.secret")),
            "0123456789abcdef0123",
        )
        .unwrap();
    }
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/breakglassd.example.toml"
    ))
    .unwrap()
    .replace("/etc/breakglass", dir.path().to_str().unwrap());
    let cfg: breakglass_daemon::Config = toml::from_str(&text).unwrap();
    let policy = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/policy.example.toml"
    ))
    .unwrap();
    let policy = breakglass_daemon::engine::policy::Policy::from_toml(&policy).unwrap();
    let hooks = cfg.webhooks(&policy, None).unwrap();
    assert_eq!(hooks.len(), 2);
    assert!(hooks[1].kinds.contains("request_opened") && hooks[1].kinds.contains("quorum_reached"));
}
