//! The audit log, as `breakglass audit verify` reads an export: the input is
//! split into JSON lines and each is deserialized as a `store::audit::AuditEntry`
//! (both leniently, skipping bad lines, and with `store::audit::parse_jsonl`),
//! then `verify_chain` and `verify_log` (chain start, checkpoints,
//! checkpoint signatures under the fixture daemon key D) run over the entries.
//!
//! A second pass re-hashes the same entries with `store::audit::chain`, keeping
//! their sequence numbers, and re-signs their checkpoints with D, so the fuzzer
//! also reaches the sequence, link and checkpoint checks behind the hash check.
//! Such a chain must verify, or fail only on its sequence numbers.
#![no_main]

use breakglass_formats::audit::{
    chain, parse_export, parse_jsonl, verify_chain, verify_log, AuditEntry, ChainError,
};
use breakglass_formats::audit::{Event, Record};
use breakglass_fuzz::fixture::{daemon_key, DAEMON_ID};
use breakglass_proto::signing;
use ed25519_dalek::Signer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let d = daemon_key();
    let anchor = Some((&d.verifying_key(), DAEMON_ID));
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(entries) = parse_jsonl(text) {
            let _ = verify_log(&entries, None);
            let _ = verify_log(&entries, anchor);
        }
        // As `audit verify --file` reads an export: entries, then the signed trailer.
        if let Ok((entries, Some(trailer))) = parse_export(text) {
            let _ = trailer.check(&entries, None);
            let _ = trailer.check(&entries, anchor);
        }
    }
    let entries: Vec<AuditEntry> = data
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect();
    let _ = verify_chain(&entries);

    let rehashed = rehash(entries);
    match verify_chain(&rehashed) {
        Ok(head) => assert_eq!(head.is_some(), !rehashed.is_empty()),
        Err(ChainError::Sequence { .. }) => {}
        Err(e) => panic!("a freshly hashed chain fails with {e}"),
    }
    let _ = verify_log(&rehashed, None);
    let _ = verify_log(&rehashed, anchor);
});

/// Re-chains `entries` in order (keeping each `seq`), pointing each checkpoint at
/// the hash of the entry it names, if that entry came before, and signing it with D.
fn rehash(entries: Vec<AuditEntry>) -> Vec<AuditEntry> {
    let d = daemon_key();
    let mut prev = [0u8; 32];
    if let Some(first) = entries.first() {
        if hex::decode_to_slice(&first.prev_hash, &mut prev).is_err() {
            prev = [0u8; 32];
        }
    }
    let mut out: Vec<AuditEntry> = Vec::with_capacity(entries.len());
    for e in entries {
        let event = match e.event {
            Event::Checkpoint { daemon_id, seq, .. } => {
                let mut head = [0u8; 32];
                if let Some(c) = out.iter().rev().find(|x| x.seq == seq) {
                    let _ = hex::decode_to_slice(&c.hash, &mut head);
                }
                let sig = d.sign(&signing::audit_checkpoint(&daemon_id, seq, &head));
                Event::Checkpoint {
                    daemon_id,
                    seq,
                    head: hex::encode(head),
                    signature: hex::encode(sig.to_bytes()),
                }
            }
            other => other,
        };
        let record = Record {
            time: e.time,
            actor: e.actor,
            request_id: e.request_id,
            event,
            signed_with: None,
        };
        let (entry, h) = chain(e.seq, &prev, record).expect("chain");
        prev = h;
        out.push(entry);
    }
    out
}
