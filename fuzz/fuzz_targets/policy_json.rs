//! Stored policies: `engine::policy::Policy::from_canonical_json` over arbitrary
//! bytes, as the daemon reads the policy back from its state at start. A policy
//! that loads must be a fixed point: re-encoding and reloading it gives the
//! same policy and digest.
#![no_main]

use breakglass_daemon::engine::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Policy::from_canonical_json(data) else {
        return;
    };
    let again = Policy::from_canonical_json(
        &p.canonical_json()
            .unwrap_or_else(|e| panic!("a valid policy does not encode: {e}")),
    )
    .unwrap_or_else(|e| panic!("a loaded policy does not reload from its own JSON: {e}"));
    assert_eq!(again, p);
    assert_eq!(again.digest().ok(), p.digest().ok());
});
