//! Signatures on signed payloads: `engine::auth::authenticate_custodian`,
//! `authenticate_commander` and `authenticate_any` against the fixture policy,
//! over an arbitrary signer id, signing time, clock, signature bytes and payload
//! (membership, freshness, ed25519 `verify_strict`, and OpenSSH signatures
//! from any of a member's signing keys with the policy's hardware rules).
//!
//! Input (see `breakglass_fuzz::frames`): `mode (1) ‖ now (8) ‖ signed_at (8) ‖
//! signer id (u16 len ‖ bytes) ‖ signature (u16 len ‖ bytes) ‖ payload (rest)`.
#![no_main]

use breakglass_daemon::engine::auth::{
    authenticate_any, authenticate_commander, authenticate_custodian, check_fresh, Actor, SignedBy,
};
use breakglass_fuzz::fixture::{checks, world};
use breakglass_fuzz::frames::Frames;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut f = Frames::new(data);
    let mode = f.u8();
    let now = f.u64();
    let signed_at = f.u64();
    let signer_id = f.str();
    let signature = f.bytes();
    let payload = f.rest();
    let p = &world().policy;
    let sig = SignedBy {
        signer_id,
        signed_at,
        signature,
    };
    let fresh = check_fresh(signer_id, signed_at, now, p.freshness_seconds).is_ok();
    match mode % 3 {
        0 => {
            if let Ok(c) = authenticate_custodian(checks(p, now), &sig, payload) {
                assert!(fresh);
                assert_eq!(c.id(), signer_id);
                assert_eq!(p.custodian(signer_id).map(|(x, _)| x).ok(), Some(c.x()));
            }
        }
        1 => {
            if let Ok(c) = authenticate_commander(checks(p, now), &sig, payload) {
                assert!(fresh);
                assert_eq!(c.id(), signer_id);
            }
        }
        _ => match authenticate_any(checks(p, now), &sig, payload) {
            Ok(Actor::Commander(c)) => assert_eq!(c.id(), signer_id),
            Ok(Actor::Custodian(c)) => assert_eq!(c.id(), signer_id),
            Err(_) => {}
        },
    }
});
