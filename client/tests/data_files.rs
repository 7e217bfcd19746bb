//! The signed revocation lists under `tests/cmd/data/` (see its README) are
//! made here, from the fixed seeds, so they can be remade when the format
//! changes: `BREAKGLASS_BLESS=1 cargo test -p breakglass-client --test
//! data_files`. Without it the test checks the files are exactly what the
//! seeds give, and that they verify.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey};

use breakglass_formats::keys::AuthorityPublic;
use breakglass_formats::revocation::{signed_payload, RevocationListJson, RevokedItem};

const DAEMON_ID: &str = "fuzz-daemon";
const GENERATED_AT: u64 = 4_000_000_000;

fn item(request_id: &str, serial: u64, by: &str, reason: &str, expires_at: u64) -> RevokedItem {
    RevokedItem {
        request_id: request_id.into(),
        ssh_key_id: format!("breakglass:{request_id}:ic"),
        ssh_serial: serial,
        revoked_at: GENERATED_AT,
        revoked_by: by.into(),
        reason: reason.into(),
        expires_at,
    }
}

/// A list of `items` signed by the daemon key of seed `d_seed`.
fn signed(d_seed: u8, items: Vec<RevokedItem>) -> RevocationListJson {
    let d = SigningKey::from_bytes(&[d_seed; 32]);
    let a = AuthorityPublic(SigningKey::from_bytes(&[200; 32]).verifying_key());
    let sig = d
        .sign(&signed_payload(DAEMON_ID, GENERATED_AT, &a, &items))
        .to_bytes();
    RevocationListJson::new(DAEMON_ID, GENERATED_AT, &d.verifying_key(), &a, items, &sig)
}

fn files() -> Vec<(&'static str, RevocationListJson)> {
    let golden = item("req-golden", 42, "c2", "key leaked", 4_070_908_800);
    let mut tampered_expiry = signed(150, vec![golden.clone()]);
    tampered_expiry.revoked[0].expires_at = 4_000_000_001;
    let mut entry_removed = signed(
        150,
        vec![
            golden.clone(),
            item("req-other", 43, "c1", "lost", 4_070_908_800),
        ],
    );
    entry_removed.revoked.remove(0);
    entry_removed.revoked_token_ids.remove(0);
    vec![
        ("revoked.json", signed(150, vec![golden.clone()])),
        (
            "other-revocations.json",
            signed(
                150,
                vec![item(
                    "req-9958897fb8d2da1d",
                    16_862_805_556_262_942_166,
                    "c2",
                    "key leaked",
                    4_000_001_800,
                )],
            ),
        ),
        // Stored text written by an older daemon: ESC sequences (erase the
        // line, hide what follows) and a right-to-left override.
        (
            "revoked-escapes.json",
            signed(
                150,
                vec![item(
                    "req-golden",
                    42,
                    "c2\u{1b}[8m",
                    "disk full\u{1b}[2K\u{1b}[1Ascope prod-api  reason: routine \u{202e}noitator",
                    4_070_908_800,
                )],
            ),
        ),
        ("revoked-expiry-edited.json", tampered_expiry),
        ("revoked-entry-removed.json", entry_removed),
        ("revoked-other-daemon.json", signed(151, vec![golden])),
    ]
}

#[test]
fn signed_revocation_lists_are_what_the_seeds_give() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cmd/data");
    let bless = std::env::var_os("BREAKGLASS_BLESS").is_some();
    for (name, list) in files() {
        let mut text = serde_json::to_string_pretty(&list).unwrap();
        text.push('\n');
        let path = dir.join(name);
        if bless {
            std::fs::write(&path, &text).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            on_disk, text,
            "{name} differs from what the seeds give: BREAKGLASS_BLESS=1 remakes it"
        );
    }
    let d = SigningKey::from_bytes(&[150; 32]).verifying_key();
    let verdicts: Vec<(&str, bool)> = files()
        .into_iter()
        .map(|(name, l)| (name, l.verify(Some(&d)).is_ok()))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("revoked.json", true),
            ("other-revocations.json", true),
            ("revoked-escapes.json", true),
            ("revoked-expiry-edited.json", false),
            ("revoked-entry-removed.json", false),
            ("revoked-other-daemon.json", false),
        ]
    );
}
