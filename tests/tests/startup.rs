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

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn set_mode(p: &std::path::Path, m: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// Invariant 1 (no secret at rest beyond the seal): the state is private from
/// the start: the directory 0700, the store and the daemon key 0600.
#[test]
fn init_makes_the_state_private() {
    let fx = Fixture::new(3, 2, "15m");
    assert_eq!(mode(&fx.state), 0o700);
    assert_eq!(mode(&fx.state.join("state.redb")), 0o600);
    assert_eq!(mode(&fx.state.join("daemon.key")), 0o600);
}

/// Invariant 8 (the seal, policy and D are what the ceremony made): a state
/// others may write is refused at start, naming the path and the fix; nothing
/// is written.
#[test]
fn serve_refuses_state_others_can_write() {
    let fx = Fixture::new(3, 2, "15m");
    let before = std::fs::read(fx.state.join("state.redb")).unwrap();
    set_mode(&fx.state.join("daemon.key"), 0o666);
    let (ok, _, err) = serve_once(&fx.state, &[]);
    assert!(!ok);
    let key = fx.state.join("daemon.key");
    assert!(
        err.contains(&format!(
            "{} is mode 666, writable by group and others; run `chmod 600 {}`",
            key.display(),
            key.display()
        )),
        "{err}"
    );
    assert!(std::fs::read(fx.state.join("state.redb")).unwrap() == before);
    set_mode(&key, 0o600);
    set_mode(&fx.state, 0o770);
    let (ok, _, err) = serve_once(&fx.state, &[]);
    assert!(!ok);
    assert!(
        err.contains("is mode 770, writable by group; run `chmod 700"),
        "{err}"
    );
}

/// Readable by others is served, with a warning that says how to fix it.
#[test]
fn serve_warns_about_state_others_can_read() {
    let mut fx = Fixture::new(3, 2, "15m");
    let key = fx.state.join("daemon.key");
    set_mode(&key, 0o644);
    fx.start();
    let stderr = fx.stop_and_stderr();
    assert!(
        stderr.contains(&format!(
            "warning: {} is mode 644, readable by group and others; run `chmod 600 {}`",
            key.display(),
            key.display()
        )),
        "{stderr}"
    );
}

/// A self-signed TLS key deleted while its certificate stays is reported as such,
/// not as an unrelated file error, and nothing is written.
#[test]
fn serve_names_a_missing_tls_key() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    fx.stop();
    std::fs::remove_file(fx.state.join("tls").join("key.pem")).unwrap();
    let before = std::fs::read(fx.state.join("state.redb")).unwrap();
    let (ok, _, err) = serve_once(&fx.state, &[]);
    assert!(!ok);
    assert!(
        err.contains("key.pem is missing but") && err.contains("cert.pem is there"),
        "{err}"
    );
    assert!(
        std::fs::read(fx.state.join("state.redb")).unwrap() == before,
        "the state was written before the TLS material was checked"
    );
}

/// A state another daemon serves is reported as in use, not as damaged.
#[test]
fn serve_on_a_state_in_use_says_so() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let (ok, _, err) = serve_once(&fx.state, &[]);
    assert!(!ok);
    assert!(
        err.contains("is in use by another breakglassd") && err.contains("stop that one first"),
        "{err}"
    );
    // The holder is named by PID, so the operator knows which process to stop.
    let pid = fx.daemon.as_ref().unwrap().child.id().to_string();
    assert!(
        err.contains(&format!("it holds the store's lock, PID {pid}")),
        "{err}"
    );
    assert!(!err.contains("damaged"), "{err}");
    assert!(fx.stop());
}

/// A truncated store is refused as damaged with a clear message, never a panic,
/// and left as it was.
#[test]
fn serve_on_a_truncated_store_refuses_without_a_panic() {
    let fx = Fixture::new(3, 2, "15m");
    let db = fx.state.join("state.redb");
    let full = std::fs::read(&db).unwrap();
    let cut = full[..full.len() / 3].to_vec();
    std::fs::write(&db, &cut).unwrap();
    let out = std::process::Command::new(common::bin("breakglassd"))
        .args([
            "serve",
            "--state",
            fx.state.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("breakglass state is damaged"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        std::fs::read(&db).unwrap() == cut,
        "a damaged store is not rewritten"
    );
}

/// A stored request that does not decode is reported as damage to the state,
/// not as a failure to write the audit log.
#[test]
fn a_corrupt_stored_request_is_reported_as_damage() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    let id = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let mut client = fx.client().await;
            let ic = common::load(&fx.commander_key("ic"));
            client
                .open(&ic, None, "prod-ssh", "to be damaged", 60, &ic.ssh_public())
                .await
                .unwrap()
                .id
        })
    };
    fx.kill9();
    {
        let db = redb::Database::open(fx.state.join("state.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx
                .open_table(redb::TableDefinition::<&str, &[u8]>::new("requests"))
                .unwrap();
            t.insert(id.as_str(), b"{not json".as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }
    let (ok, _, err) = serve_once(&fx.state, &[]);
    assert!(!ok);
    assert!(
        err.contains("breakglass state is damaged: a stored request does not decode"),
        "{err}"
    );
    assert!(!err.contains("audit log could not be written"), "{err}");
}

fn edit_meta(fx: &Fixture, table: &str, key: &str, edit: impl FnOnce(&mut Vec<u8>)) {
    use redb::ReadableTable;
    let db = redb::Database::open(fx.state.join("state.redb")).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut t = tx
            .open_table(redb::TableDefinition::<&str, &[u8]>::new(table))
            .unwrap();
        let mut v = t.get(key).unwrap().unwrap().value().to_vec();
        edit(&mut v);
        t.insert(key, v.as_slice()).unwrap();
    }
    tx.commit().unwrap();
}

/// Invariant 8: one flipped bit in the seal is found at start and named, not at
/// quorum after custodians approved.
#[test]
fn a_damaged_seal_is_refused_at_start() {
    let fx = Fixture::new(3, 2, "15m");
    edit_meta(&fx, "meta", "seal", |v| v[40] ^= 1);
    let (ok, _, err) = serve_once(&fx.state, &[]);
    assert!(!ok);
    assert!(
        err.contains("the seal of the authority seed differs from what D signed at the ceremony or the last committed change"),
        "{err}"
    );
}

/// Invariant 5: an edited commitment is found at start and named as damage,
/// never blamed on the custodian whose valid share it would refuse.
#[test]
fn an_edited_commitment_is_refused_at_start() {
    let fx = Fixture::new(3, 2, "15m");
    edit_meta(&fx, "commitments", "c2", |v| {
        let mut c: serde_json::Value = serde_json::from_slice(v).unwrap();
        c["hash"][0] = serde_json::json!((c["hash"][0].as_u64().unwrap() + 1) % 256);
        *v = serde_json::to_vec(&c).unwrap();
    });
    let (ok, _, err) = serve_once(&fx.state, &[]);
    assert!(!ok);
    assert!(
        err.contains(
            "the share commitment of custodian `c2` differs from what D signed at the ceremony or the last committed change"
        ),
        "{err}"
    );
}

/// Invariant 6: a replaced daemon key is refused at start (it would sign views,
/// checkpoints and revocation lists nobody can trust).
#[test]
fn a_replaced_daemon_key_is_refused_at_start() {
    let fx = Fixture::new(3, 2, "15m");
    let key = fx.state.join("daemon.key");
    std::fs::write(&key, "11".repeat(32)).unwrap();
    let (ok, _, err) = serve_once(&fx.state, &[]);
    assert!(!ok);
    assert!(
        err.contains("daemon.key is not the key the ceremony made"),
        "{err}"
    );
}

/// Invariant 6: an entry edited inside the store is found at the next start
/// (the newest entries are re-chained and their checkpoints checked with D).
#[test]
fn an_edited_audit_entry_is_refused_at_start() {
    use redb::ReadableTable;
    let fx = Fixture::new(3, 2, "15m");
    {
        let db = redb::Database::open(fx.state.join("state.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx
                .open_table(redb::TableDefinition::<u64, &[u8]>::new("audit"))
                .unwrap();
            let mut e: serde_json::Value =
                serde_json::from_slice(t.get(1).unwrap().unwrap().value()).unwrap();
            e["actor"] = serde_json::json!("someone else");
            t.insert(1, serde_json::to_vec(&e).unwrap().as_slice())
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let (ok, _, err) = serve_once(&fx.state, &[]);
    assert!(!ok);
    assert!(
        err.contains("the newest audit entries do not verify"),
        "{err}"
    );
}

/// Invariant 9: a TLS key that is not a key, or one that belongs to another
/// certificate, is refused before anything is written (no `daemon_started`, no
/// collecting request cancelled), naming the file and what to do.
#[test]
fn serve_refuses_bad_tls_material_before_writing() {
    let mut fx = Fixture::new(3, 2, "15m");
    fx.start();
    fx.stop();
    let key = fx.state.join("tls").join("key.pem");
    let good = std::fs::read(&key).unwrap();
    let before = std::fs::read(fx.state.join("state.redb")).unwrap();

    std::fs::write(
        &key,
        b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let (ok, out, err) = serve_once(&fx.state, &[]);
    assert!(!ok);
    assert!(err.contains("tls key") && err.contains("key.pem"), "{err}");
    assert!(err.contains("not a usable private key"), "{err}");
    assert!(!out.contains("listening"), "{out}");

    // A real key of another pair: parses, but does not match the certificate.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(&key, other.key_pair.serialize_pem()).unwrap();
    let (ok, out, err) = serve_once(&fx.state, &[]);
    assert!(!ok);
    assert!(
        err.contains("it does not belong to the certificate"),
        "{err}"
    );
    assert!(!out.contains("listening"), "{out}");

    assert!(
        std::fs::read(fx.state.join("state.redb")).unwrap() == before,
        "the state was written before the TLS material was checked"
    );
    std::fs::write(&key, good).unwrap();
}

/// A damaged daemon key file is named as such (not a generic I/O error).
#[test]
fn serve_names_a_corrupt_daemon_key() {
    let fx = Fixture::new(3, 2, "15m");
    std::fs::write(fx.state.join("daemon.key"), "not hex at all").unwrap();
    let (ok, _, err) = serve_once(&fx.state, &[]);
    assert!(!ok);
    assert!(
        err.contains("daemon.key") && err.contains("not a 32-byte hex key"),
        "{err}"
    );
}

/// A state this user may not read is reported as a permission problem naming
/// the path and the user, not as missing or damaged state. As root (CI), the
/// daemon is run as `nobody` through setpriv; otherwise the directory is made
/// unreadable.
#[test]
fn serve_on_an_unreadable_state_names_the_path_and_user() {
    let fx = Fixture::new(3, 2, "15m");
    let root = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").unwrap().uid() == 0
    };
    let (ok, err) = if root {
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(common::bin("breakglassd"))
            .args([
                "serve",
                "--state",
                fx.state.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .output()
            .expect("setpriv (util-linux) is needed to run this test as root");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fx.state, std::fs::Permissions::from_mode(0o000)).unwrap();
        let (ok, _, err) = serve_once(&fx.state, &[]);
        std::fs::set_permissions(&fx.state, std::fs::Permissions::from_mode(0o700)).unwrap();
        (ok, err)
    };
    assert!(!ok);
    assert!(err.contains("permission denied for"), "{err}");
    assert!(err.contains(fx.state.to_str().unwrap()), "{err}");
    if root {
        assert!(err.contains("uid 65534"), "{err}");
    }
    assert!(
        !err.contains("damaged") && !err.contains("missing"),
        "{err}"
    );
}

/// Invariant 8: deleting D's integrity statement does not downgrade the start
/// check (it would let a seal edit through); the operator adopts a genuinely
/// old state explicitly, and only then does it start.
#[test]
fn a_state_without_its_integrity_statement_is_refused_until_adopted() {
    let fx = Fixture::new(3, 2, "15m");
    {
        let db = redb::Database::open(fx.state.join("state.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx
                .open_table(redb::TableDefinition::<&str, &[u8]>::new("meta"))
                .unwrap();
            t.remove("integrity").unwrap();
        }
        tx.commit().unwrap();
    }
    let (ok, _, err) = serve_once(&fx.state, &[]);
    assert!(!ok);
    assert!(
        err.contains("it has no integrity statement signed by D")
            && err.contains("--adopt-state-integrity"),
        "{err}"
    );
    let store = breakglass_daemon::Store::open(&fx.state).unwrap();
    assert!(breakglass_daemon::Daemon::adopt_integrity(&store, &fx.state).unwrap());
    assert!(!breakglass_daemon::Daemon::adopt_integrity(&store, &fx.state).unwrap());
    drop(store);
    let d = breakglass_daemon::Daemon::start(&fx.state, breakglass_daemon::system_clock());
    assert!(d.is_ok(), "an adopted state starts");
}

/// Invariant 8 across an upgrade: a state made before epochs existed (no
/// `epoch` or `epoch_since` in its meta; seal, commitments and D's integrity
/// statement in their pre-epoch bytes, which epoch 1 keeps) starts as epoch 1
/// and unlocks with the custodians' existing share files.
#[tokio::test(flavor = "multi_thread")]
async fn a_state_made_before_epochs_starts_as_epoch_1_and_unlocks() {
    let mut fx = Fixture::new(3, 2, "15m");
    {
        use redb::ReadableTable;
        let db = redb::Database::open(fx.state.join("state.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx
                .open_table(redb::TableDefinition::<&str, &[u8]>::new("meta"))
                .unwrap();
            assert!(t.remove("epoch").unwrap().is_some());
            assert!(t.remove("epoch_since").unwrap().is_some());
            let integrity = t.get("integrity").unwrap().unwrap().value().to_vec();
            let integrity = String::from_utf8(integrity).unwrap();
            assert!(
                !integrity.contains("epoch"),
                "epoch 1 signs the pre-epoch statement: {integrity}"
            );
        }
        tx.commit().unwrap();
    }
    // The pre-epoch bytes, computed here from DESIGN.md, not by the daemon's code:
    // commitment H(len‖"breakglass/v1/share"‖len‖ceremony‖len‖custodian‖len‖share)
    // and the seal's associated data `len‖ceremony‖policy digest`.
    let sealed = common::sealed(&fx.state);
    assert_eq!(sealed.epoch.number, 1);
    let stored: std::collections::BTreeMap<String, serde_json::Value> = {
        let store = breakglass_daemon::Store::open(&fx.state).unwrap();
        store
            .commitments()
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, serde_json::to_value(v).unwrap()))
            .collect()
    };
    fx.start();
    let mut client = fx.client().await;
    assert_eq!(client.info().epoch, 1);
    let mut shares = Vec::new();
    for i in 0..3 {
        let id = &fx.keys.custodians[i].0;
        let share = common::share_bytes(&client, &fx.custodian_key(i), &fx.share_file(id));
        let mut h = <sha2::Sha256 as sha2::Digest>::new();
        for part in [
            &b"breakglass/v1/share"[..],
            sealed.meta.ceremony_id.as_bytes(),
            id.as_bytes(),
            &share,
        ] {
            sha2::Digest::update(&mut h, (part.len() as u32).to_be_bytes());
            sha2::Digest::update(&mut h, part);
        }
        let legacy: Vec<u64> = sha2::Digest::finalize(h)
            .iter()
            .map(|b| u64::from(*b))
            .collect();
        let hash: Vec<u64> = stored[id]["hash"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(
            hash, legacy,
            "custodian {id}'s commitment has the pre-epoch bytes"
        );
        shares.push(share);
    }
    common::rebuild_secrets(&sealed, &shares[..2], &client.info().authority_public_key);
    let ic = common::load(&fx.commander_key("ic"));
    let r = client
        .open(&ic, None, "prod-ssh", "upgrade test", 600, &ic.ssh_public())
        .await
        .unwrap();
    for i in 0..2 {
        common::approve(&fx, &mut client, &r, i).await;
    }
    let b = client.fetch(&ic, None, &r.id).await.unwrap();
    assert_eq!(b.request_id, r.id);
    assert!(fx.stop());
}
