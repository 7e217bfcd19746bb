//! Attestations: `engine::attest::Attestations::attest` over arbitrary sealed
//! bytes, for the challenge issued to custodian `c1` (authenticated with a real
//! signature). Only c1's own committed share, sealed to that one-shot key, may
//! pass; whatever the input, the challenge is then used up, so the same bytes
//! again are refused as a replay.
#![no_main]

use breakglass_daemon::engine::attest::Attested;
use breakglass_daemon::Error;
use breakglass_fuzz::fixture::{attestation, world, CEREMONY_ID, NOW};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|sealed: &[u8]| {
    let w = world();
    let who = &w.custodians[0];
    let com = &w.commitments[who.id()];
    let (mut a, issued) = attestation();
    let first = a.attest(&issued.id, who, com, CEREMONY_ID, sealed, NOW);
    if let Ok(Attested { custodian, .. }) = &first {
        assert_eq!(custodian, who.id());
    }
    let again = a.attest(&issued.id, who, com, CEREMONY_ID, sealed, NOW);
    assert!(
        matches!(again, Err(Error::AttestationUsed { .. })),
        "{again:?}"
    );
});
