//! Operator errors at init and start: clear messages, non-zero exit, nothing overwritten
//! (invariant 9; and invariant 8: a damaged or missing state is never rebuilt or replaced).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{run, serve_once, Fixture};

#[test]
fn init_refuses_an_initialised_state() {
    let fx = Fixture::new(3, 2, "15m");
    let before = std::fs::read(fx.state.join("state.redb")).unwrap();
    let other_shares = fx.dir.path().join("shares2");
    let (ok, _, err) = run(
        "breakglassd",
        &[
            "init",
            "--policy",
            fx.policy_path().to_str().unwrap(),
            "--state",
            fx.state.to_str().unwrap(),
            "--shares-out",
            other_shares.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!ok);
    assert!(
        err.contains("already holds an initialised daemon; refusing to overwrite it"),
        "{err}"
    );
    assert_eq!(std::fs::read(fx.state.join("state.redb")).unwrap(), before);
    assert!(!other_shares.exists() || std::fs::read_dir(&other_shares).unwrap().count() == 0);
}

#[test]
fn init_rejects_a_bad_policy() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(&p, "threshold = 1\ncollection_window = \"1m\"\nmax_ttl = \"1h\"\ncustodians = []\ncommanders = []\nscopes = []\n").unwrap();
    let state = dir.path().join("s");
    let (ok, _, err) = run(
        "breakglassd",
        &[
            "init",
            "--policy",
            p.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--shares-out",
            dir.path().join("o").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!ok);
    assert!(err.contains("policy: threshold 1 is below 2"), "{err}");
    assert!(!state.exists(), "nothing written for a bad policy");
}

#[test]
fn serve_on_missing_state_says_to_run_init() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let (ok, _, err) = serve_once(&missing, &[]);
    assert!(!ok);
    assert!(
        err.contains(
            "no breakglass state here (the directory does not exist); run `breakglassd init"
        ),
        "{err}"
    );
}

#[test]
fn serve_on_corrupt_state_refuses_and_leaves_it() {
    let fx = Fixture::new(3, 2, "15m");
    let db = fx.state.join("state.redb");
    let len = std::fs::metadata(&db).unwrap().len() as usize;
    let garbage: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&db, &garbage).unwrap();
    let (ok, _, err) = serve_once(&fx.state, &[]);
    assert!(!ok);
    assert!(err.contains("breakglass state is damaged"), "{err}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        garbage,
        "a damaged store is not rewritten"
    );
}

#[test]
fn serve_without_daemon_key_refuses() {
    let fx = Fixture::new(3, 2, "15m");
    std::fs::remove_file(fx.state.join("daemon.key")).unwrap();
    let (ok, _, err) = serve_once(&fx.state, &[]);
    assert!(!ok);
    assert!(err.contains("daemon.key is missing"), "{err}");
}
