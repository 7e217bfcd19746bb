//! Writes the seed corpora under `fuzz/corpus/<target>/`: small valid inputs
//! made against the fixture (`breakglass_fuzz::fixture`), so fuzzing starts
//! past the first checks. Run from `fuzz/`: `cargo run --example make_seeds`.
//! The age-encrypted seeds differ on every run (age picks a fresh key); the
//! rest are the same bytes every time.

use std::path::Path;

use breakglass_formats::audit::{chain, parse_jsonl, verify_log};
use breakglass_formats::audit::{Event, Record};
use breakglass_formats::credential::{CredentialBundle, BUNDLE_FORMAT};
use breakglass_formats::envelope::encrypt_to_ssh;
use breakglass_formats::revocation::{signed_payload, RevocationListJson, RevokedItem};
use breakglass_formats::share_file::{commitment_hash, Origin, ShareFile};
use breakglass_fuzz::calls::{check, Kind, Outcome};
use breakglass_fuzz::fixture::*;
use breakglass_fuzz::frames::Builder;
use breakglass_proto::{pb, signing, transport};
use ed25519_dalek::Signer;
use prost::Message;
use rand::SeedableRng;
use x25519_dalek::PublicKey;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(name), bytes).expect("seed written");
}

fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

fn sealed_share(custodian: &str, x: u8) -> Vec<u8> {
    let w = world();
    let r = &w.collecting;
    let eph = PublicKey::from(&w.ephemeral).to_bytes();
    transport::seal_share(
        &eph,
        &r.digest,
        &r.id,
        custodian,
        &share(x),
        rng(u64::from(x)),
    )
    .expect("fixture share seals")
}

fn signature(seed: u8, id: &str, payload: &[u8]) -> pb::Signature {
    pb::Signature {
        signer_id: id.into(),
        signed_at: NOW,
        signature: signing_key(seed).sign(payload).to_bytes().to_vec(),
    }
}

/// A `proto_calls` input; it must pass every check, or it would not be a useful seed.
fn call(kind: Kind, msg: &impl Message) -> Vec<u8> {
    let bytes = msg.encode_to_vec();
    let outcome = check(kind, &bytes, NOW);
    assert!(
        matches!(outcome, Outcome::Passed),
        "{kind:?} seed: {outcome:?}"
    );
    let mut out = vec![kind.byte()];
    out.extend_from_slice(&bytes);
    out
}

fn share_seeds() {
    write("share_transport", "sealed-c2", &sealed_share("c2", 2));
    let mut low_order = vec![transport::VERSION];
    low_order.resize(transport::SEALED_LEN, 0);
    write("share_transport", "low-order-sender", &low_order);
    for x in 1..=3u8 {
        write("share_verify", &format!("share-c{x}"), &share(x));
    }
    // A genuine attestation: c1's share sealed to the target's challenge.
    let (_, issued) = breakglass_fuzz::fixture::attestation();
    let sealed = transport::seal_share(
        &issued.public_key,
        &issued.digest,
        &issued.id,
        "c1",
        &share(1),
        rand::rngs::StdRng::seed_from_u64(12),
    )
    .expect("sealed");
    write("attest", "genuine-c1", &sealed);
    write("attest", "sealed-for-c2", &sealed_share("c2", 2));
}

fn share_file_seeds() {
    // A v2 file as the ceremony writes it: commitment and D's signature beside the share.
    let d = signing_key(9);
    let commitment = commitment_hash(CEREMONY_ID, EPOCH, "c1", &share(1));
    let statement = signing::share_statement(&signing::ShareStatement {
        daemon_id: DAEMON_ID,
        ceremony_id: CEREMONY_ID,
        epoch: signing::FIRST_EPOCH,
        custodian_id: "c1",
        x: 1,
        commitment: &commitment,
        threshold: 2,
        custodians: 3,
    });
    let origin = Origin {
        epoch: signing::FIRST_EPOCH,
        commitment,
        daemon_public_key: d.verifying_key().to_bytes(),
        signature: d.sign(&statement).to_bytes(),
    };
    let f = ShareFile::new(
        DAEMON_ID.into(),
        CEREMONY_ID.into(),
        "c1".into(),
        2,
        3,
        hex::encode(world().authority.0.as_bytes()),
        &origin,
        &share(1),
    );
    f.check_origin(Some(&d.verifying_key().to_bytes()))
        .expect("the seed share file is genuine");
    let plain = f.to_bytes();
    write("share_file", "share-file.json", &plain);
    let c1 = ssh_public(&signing_key(1));
    let sealed = encrypt_to_ssh(&c1, &plain).expect("age encrypts");
    write("share_file", "share-file.age", &sealed);
    let bundle = bundle();
    let sealed =
        encrypt_to_ssh(&c1, &serde_json::to_vec(&bundle).expect("json")).expect("age encrypts");
    write("share_file", "credential.age", &sealed);
}

fn bundle() -> CredentialBundle {
    let w = world();
    CredentialBundle {
        format: BUNDLE_FORMAT.into(),
        request_id: w.unlocked.id.clone(),
        daemon_id: DAEMON_ID.into(),
        requester: COMMANDER.into(),
        scope: SCOPE.into(),
        principals: vec!["root".into()],
        issued_at: NOW - 10,
        expires_at: NOW - 10 + TTL,
        approvers: vec!["c1".into(), "c2".into()],
        authority_public_key: hex::encode(w.authority.0.as_bytes()),
        paseto: Some(w.token.clone()),
        ssh_certificate: Some(w.certificate.clone()),
        ssh_serial: w.unlocked.credential.as_ref().and_then(|c| c.ssh_serial),
        ssh_key_id: w
            .unlocked
            .credential
            .as_ref()
            .and_then(|c| c.ssh_key_id.clone()),
    }
}

fn signed_payload_seeds() {
    let payload = b"breakglass fuzz payload";
    for (name, mode, seed, id) in [
        ("custodian-c1", 0u8, 1u8, "c1"),
        ("commander-ic", 1, COMMANDER_SEED, COMMANDER),
        ("any-c3", 2, 3, "c3"),
    ] {
        let sig = signing_key(seed).sign(payload).to_bytes();
        let input = Builder::new()
            .u8(mode)
            .u64(NOW)
            .u64(NOW)
            .bytes(id.as_bytes())
            .bytes(&sig)
            .rest(payload)
            .finish();
        write("signed_payload", name, &input);
    }
}

fn proto_seeds() {
    let w = world();
    let nonce = [9u8; 16];
    let key = format!("{} ic@laptop", commander_ssh_key());
    let open = signing::open_request(
        DAEMON_ID,
        COMMANDER,
        SCOPE,
        "disk full",
        600,
        &key,
        &nonce,
        NOW,
    );
    let msg = pb::OpenRequestRequest {
        scope: SCOPE.into(),
        reason: "disk full".into(),
        ttl_seconds: 600,
        nonce: nonce.to_vec(),
        signature: Some(signature(COMMANDER_SEED, COMMANDER, &open)),
        ssh_public_key: key,
        kind: pb::RequestKind::Access as i32,
    };
    write("proto_calls", "open-ic", &call(Kind::Open, &msg));

    let r = &w.collecting;
    for (x, id) in [(1u8, "c1"), (2, "c2")] {
        let sealed = sealed_share(id, x);
        let p = signing::submit_share(DAEMON_ID, &r.id, &r.digest, id, &sealed, NOW);
        let msg = pb::SubmitShareRequest {
            request_id: r.id.clone(),
            sealed_share: sealed,
            signature: Some(signature(x, id, &p)),
            ..Default::default()
        };
        write(
            "proto_calls",
            &format!("submit-{id}"),
            &call(Kind::Submit, &msg),
        );
    }

    for (seed, id) in [(COMMANDER_SEED, COMMANDER), (3, "c3")] {
        let p = signing::cancel_request(DAEMON_ID, &r.id, &r.digest, id, "false alarm", NOW);
        let msg = pb::CancelRequestRequest {
            request_id: r.id.clone(),
            reason: "false alarm".into(),
            signature: Some(signature(seed, id, &p)),
        };
        write(
            "proto_calls",
            &format!("cancel-{id}"),
            &call(Kind::Cancel, &msg),
        );
    }

    let u = &w.unlocked;
    let p = signing::fetch_credential(DAEMON_ID, &u.id, &u.digest, COMMANDER, NOW);
    let msg = pb::FetchCredentialRequest {
        request_id: u.id.clone(),
        signature: Some(signature(COMMANDER_SEED, COMMANDER, &p)),
    };
    write("proto_calls", "fetch-ic", &call(Kind::Fetch, &msg));

    for (seed, id) in [(COMMANDER_SEED, COMMANDER), (2, "c2")] {
        let p = signing::revoke_credential(DAEMON_ID, &u.id, &u.digest, id, "key leaked", NOW);
        let msg = pb::RevokeCredentialRequest {
            request_id: u.id.clone(),
            reason: "key leaked".into(),
            signature: Some(signature(seed, id, &p)),
        };
        write(
            "proto_calls",
            &format!("revoke-{id}"),
            &call(Kind::Revoke, &msg),
        );
    }
}

fn policy_seeds() {
    let toml = policy_toml();
    write("policy_toml", "policy.toml", toml.as_bytes());
    let with_freshness = toml.replace(
        "max_ttl = \"1h\"\n",
        "max_ttl = \"1h\"\nfreshness = \"2m\"\n",
    );
    write(
        "policy_toml",
        "policy-freshness.toml",
        with_freshness.as_bytes(),
    );
    write(
        "policy_json",
        "policy.json",
        &world().policy.canonical_json().expect("policy encodes"),
    );
    // Change summaries: the fixture policy against itself, and against a
    // policy with another threshold and one custodian fewer.
    let current = world().policy.canonical_json().expect("policy encodes");
    let mut v: serde_json::Value = serde_json::from_slice(&current).expect("policy is JSON");
    v["threshold"] = serde_json::json!(1);
    if let Some(c) = v["custodians"].as_array_mut() {
        c.pop();
    }
    let proposed = serde_json::to_vec(&v).expect("encodes");
    for (name, other) in [("same.bin", &current), ("rekey.bin", &proposed)] {
        let mut seed = u16::try_from(current.len())
            .expect("a small policy")
            .to_be_bytes()
            .to_vec();
        seed.extend_from_slice(&current);
        seed.extend_from_slice(other);
        write("change_summary", name, &seed);
    }
}

fn credential_seeds() {
    let w = world();
    write("credential", "token", w.token.as_bytes());
    // A drill statement signed by the fixture authority A.
    let mut st = breakglass_formats::drill::DrillStatement {
        format: breakglass_formats::drill::DRILL_STATEMENT_FORMAT.into(),
        daemon_id: DAEMON_ID.into(),
        epoch: 1,
        request_id: "req-0123456789abcdef".into(),
        digest: hex::encode([5u8; 32]),
        approvers: vec!["c1".into(), "c2".into()],
        opened_at: NOW - 60,
        quorum_at: NOW,
        seconds_to_quorum: 60,
        authority_public_key: hex::encode(w.authority.0.to_bytes()),
        signature: String::new(),
    };
    let payload = st.payload().expect("drill payload");
    st.signature = hex::encode(signing_key(AUTHORITY_SEED).sign(&payload).to_bytes());
    write(
        "credential",
        "drill-statement",
        serde_json::to_string(&st).expect("json").as_bytes(),
    );
    write("credential", "certificate", w.certificate.as_bytes());
    let c = w
        .unlocked
        .credential
        .as_ref()
        .expect("unlocked fixture has a credential");
    let items = vec![RevokedItem {
        request_id: w.unlocked.id.clone(),
        ssh_key_id: c.ssh_key_id.clone().unwrap_or_default(),
        ssh_serial: c.ssh_serial.unwrap_or(0),
        revoked_at: NOW,
        revoked_by: "c2".into(),
        reason: "key leaked".into(),
        expires_at: c.expires_at,
    }];
    let d = daemon_key();
    let sig = d
        .sign(&signed_payload(DAEMON_ID, NOW, &w.authority, &items))
        .to_bytes();
    let list = RevocationListJson::new(
        DAEMON_ID,
        NOW,
        &d.verifying_key(),
        &w.authority,
        items,
        &sig,
    );
    write(
        "credential",
        "revocations.json",
        &serde_json::to_vec_pretty(&list).expect("json"),
    );
    write(
        "credential",
        "bundle.json",
        &serde_json::to_vec_pretty(&bundle()).expect("json"),
    );
    write(
        "credential",
        "authority-paserk",
        w.authority.paserk().as_bytes(),
    );
    write("credential", "authority-ssh", w.authority.ssh().as_bytes());
    write(
        "credential",
        "authority-hex",
        hex::encode(w.authority.0.as_bytes()).as_bytes(),
    );
}

fn audit_seeds() {
    let w = world();
    let r = &w.collecting;
    let records = vec![
        Record {
            time: NOW - 100,
            actor: "daemon".into(),
            request_id: None,
            event: Event::DaemonStarted {
                policy_digest: hex::encode(w.policy.digest().expect("policy encodes")),
                version: "0.1.0".into(),
                zero_counter_allowed: false,
            },
            signed_with: None,
        },
        Record {
            time: OPENED_AT,
            actor: COMMANDER.into(),
            request_id: Some(r.id.clone()),
            event: Event::RequestOpened {
                requester: COMMANDER.into(),
                scope: SCOPE.into(),
                reason: REASON.into(),
                ttl_seconds: TTL,
                deadline: r.deadline,
                digest: hex::encode(r.digest),
                kinds: vec![],
                principals: vec![],
                ssh_extensions: vec![],
                ssh_key_type: None,
                ssh_key_fingerprint: None,
            },
            signed_with: None,
        },
        Record {
            time: NOW,
            actor: "c1".into(),
            request_id: Some(r.id.clone()),
            event: Event::ShareAccepted {
                custodian: "c1".into(),
                accepted: 1,
                threshold: 2,
            },
            signed_with: None,
        },
        Record {
            time: NOW,
            actor: "daemon".into(),
            request_id: None,
            event: Event::DaemonStopped,
            signed_with: None,
        },
    ];
    let mut prev = [0u8; 32];
    let mut log = Vec::new();
    let mut seq = 0u64;
    let mut push = |rec: Record, prev: &mut [u8; 32]| {
        seq += 1;
        let (e, h) = chain(seq, prev, rec).expect("chain");
        *prev = h;
        log.extend_from_slice(&serde_json::to_vec(&e).expect("json"));
        log.push(b'\n');
        (seq, h)
    };
    for rec in records {
        let wants = rec.event.wants_checkpoint();
        let (covered, head) = push(rec, &mut prev);
        if wants {
            let sig = daemon_key().sign(&signing::audit_checkpoint(DAEMON_ID, covered, &head));
            let checkpoint = Record {
                time: NOW,
                actor: "daemon".into(),
                request_id: None,
                event: Event::Checkpoint {
                    daemon_id: DAEMON_ID.into(),
                    seq: covered,
                    head: hex::encode(head),
                    signature: hex::encode(sig.to_bytes()),
                },
                signed_with: None,
            };
            push(checkpoint, &mut prev);
        }
    }
    let text = String::from_utf8(log).expect("utf-8");
    let entries = parse_jsonl(&text).expect("seed log parses");
    let anchor = daemon_key().verifying_key();
    let report = verify_log(&entries, Some((&anchor, DAEMON_ID))).expect("seed log verifies");
    assert_eq!(report.checkpoints, 2);
    write("audit_chain", "log.jsonl", text.as_bytes());
}

fn tls_seeds() {
    let dir = std::env::temp_dir().join(format!("breakglass-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let tls =
        breakglass_daemon::load_or_create(&dir, None, None, &[]).expect("self-signed certificate");
    write("tls_cert", "cert.pem", &tls.cert_pem);
    let der = rustls_pemfile::certs(&mut tls.cert_pem.as_slice())
        .next()
        .expect("one certificate")
        .expect("readable PEM");
    assert!(breakglass_daemon::cert_identity(der.as_ref()).is_some());
    write("tls_cert", "cert.der", der.as_ref());
    std::fs::remove_dir_all(&dir).expect("temp dir removed");
}

fn main() {
    tls_seeds();
    share_seeds();
    share_file_seeds();
    signed_payload_seeds();
    proto_seeds();
    policy_seeds();
    credential_seeds();
    audit_seeds();
    println!("seeds written under {}/corpus", env!("CARGO_MANIFEST_DIR"));
}
